//! The blocks of rows the reading thread hands to the writing thread, and
//! the bounds that keep the pipeline's memory bounded by bytes whatever the
//! file: rows and bytes per block, blocks in flight, what a block keeps
//! between uses.

use crate::core::csv_reader::{Fields, RecordSpan};
use crate::core::model::Prediction;

/// Most rows in one block handed from the reading thread to the writing thread.
pub(super) const BLOCK_ROWS: usize = 4096;
/// A block takes no new row once it holds this many bytes (fields, their
/// positions, reasons, row entries); one more record may add up to
/// MAX_RECORD_BYTES. Between uses a block keeps at most this much.
pub(super) const BLOCK_BYTES: usize = 1024 * 1024;
/// Blocks queued for the writer. With the one being filled and the one being
/// written, at most four blocks exist. One block holds under BLOCK_BYTES, then
/// one more record (up to MAX_RECORD_BYTES), and buffers grow with some slack:
/// at most about 3 MiB. The pipeline's heap is then bounded by
/// 4 × 3 MiB + the writer's record (up to 2 MiB) + the 256 KiB input and
/// output buffers: under 16 MiB, whatever the file (tests/memory and the
/// csv_pipeline fuzz target check it on hostile files).
///
/// On N workers (`parallel`) each worker fills and formats its own block
/// (nothing is queued between threads as blocks): per worker two chunks of
/// the input, one block, its output buffers, at most about 18 MiB; in all
/// under 4 MiB + N × 18 MiB (tests/memory checks it with N = 2 and 8).
pub(super) const BLOCKS_QUEUED: usize = 2;

/// What happened to one row.
#[derive(Debug, Clone, Copy)]
pub(super) enum RowOutcome {
    Scored(Prediction),
    /// Rejected, with its reason code; the text is in `Block::reasons`.
    Rejected(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub(super) span: RecordSpan,
    pub(super) outcome: RowOutcome,
    /// End of this row's reason in `Block::reasons` (it starts where the previous one ended).
    pub(super) reason_end: usize,
}

/// A reusable block of rows: fields, rows and reasons keep their
/// allocations from one use to the next, so steady state allocates nothing.
#[derive(Default)]
pub(super) struct Block {
    pub(super) fields: Fields,
    pub(super) rows: Vec<Row>,
    /// Each row's text, one after the other: a rejected row's reason, a
    /// scored row's warnings.
    pub(super) reasons: String,
    /// With `explain`: the contributions of each scored row, in order, one
    /// per feature each (flat: the model's feature count is the stride).
    pub(super) contributions: Vec<f64>,
    /// Bytes read when the block's last row ended.
    pub(super) bytes: u64,
}

impl Block {
    pub(super) fn clear(&mut self) {
        self.fields.clear();
        self.rows.clear();
        self.reasons.clear();
        self.contributions.clear();
    }

    /// Whether the block takes another row (by rows and by bytes).
    pub(super) fn has_room(&self) -> bool {
        self.rows.len() < BLOCK_ROWS && self.used_bytes() < BLOCK_BYTES
    }

    pub(super) fn used_bytes(&self) -> usize {
        self.fields.used_bytes()
            + self.reasons.len()
            + self.rows.len() * size_of::<Row>()
            + self.contributions.len() * size_of::<f64>()
    }

    /// Readies a written block for reuse, giving back what a large record made it grow to.
    pub(super) fn recycle(&mut self) {
        if self.fields.allocated_bytes() > BLOCK_BYTES || self.reasons.capacity() > BLOCK_BYTES / 4 {
            self.clear();
            self.fields.shrink_to(BLOCK_BYTES);
            self.reasons.shrink_to(BLOCK_BYTES / 4);
        }
    }

    /// Row `i`'s text in `reasons`.
    pub(super) fn reason(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.rows[i - 1].reason_end };
        &self.reasons[start..self.rows[i].reason_end]
    }
}

#[cfg(test)]
mod tests {
    use super::super::rows::{fill, Rules};
    use super::super::testing::HEADER;
    use super::super::MAX_COLUMNS;
    use super::*;
    use crate::core::csv_reader::{Dialect, RecordReader, MAX_RECORD_BYTES};
    use crate::core::model::Model;
    use crate::core::scoring::{Scorer, Wants};

    #[test]
    fn blocks_are_bounded_by_bytes_as_well_as_rows_and_shrink_back() {
        let model = Model::embedded().unwrap();
        let columns = [2, 3, 4, 5, 6];
        let first_block = |input: &[u8]| {
            let mut reader = RecordReader::new(input, Dialect::default());
            reader.read_record(&mut Fields::default(), MAX_COLUMNS + 1).unwrap();
            let mut block = Block::default();
            let rules = Rules { columns: &columns, width: 7, decimal_comma: false };
            let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
            fill(&mut reader, &mut block, &mut scorer, &rules).unwrap();
            block
        };
        let small = format!("id,notes,{}\n{}", &HEADER[3..], "A,n,0.1,20,20,900,0.1\n".repeat(BLOCK_ROWS + 10));
        assert_eq!(first_block(small.as_bytes()).rows.len(), BLOCK_ROWS);

        // Rows of 100 KB: a block stops near BLOCK_BYTES, not at BLOCK_ROWS.
        let notes = "n".repeat(100_000);
        let wide = format!("id,notes,{}\n{}", &HEADER[3..], format!("A,\"{notes}\",0.1,20,20,900,0.1\n").repeat(40));
        let block = first_block(wide.as_bytes());
        assert_eq!(block.rows.len(), BLOCK_BYTES / 100_000 + 1);
        assert!(block.used_bytes() < BLOCK_BYTES + 100_100);

        // One row just under the cap: the block grows for it, then gives it back.
        let big =
            format!("id,notes,{}\nA,\"{}\",0.1,20,20,900,0.1\n", &HEADER[3..], "n".repeat(MAX_RECORD_BYTES - 100));
        let mut block = first_block(big.as_bytes());
        assert_eq!(block.rows.len(), 1);
        assert!(block.fields.allocated_bytes() > MAX_RECORD_BYTES - 100);
        block.recycle();
        assert!(block.fields.allocated_bytes() <= BLOCK_BYTES);
    }
}
