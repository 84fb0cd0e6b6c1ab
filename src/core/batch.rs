//! The batch pipeline: CSV bytes in, scored CSV bytes out, streamed row by row.
//!
//! Every batch entry point (S3 objects, local files, stdin) calls
//! [`score_csv`]. Rows go through the same [`Observation::from_inputs`] and
//! [`Model::predict`] as the HTTP path. Each input row appears exactly once in
//! the output, in order, with its original columns plus `prediction`,
//! `probability`, `status`, `reason` and `warnings`; a bad row is a row with status 400,
//! never an aborted file. Only a file that is unusable as a whole (not CSV, no
//! header, a needed column missing, a record over [`MAX_RECORD_BYTES`], a
//! quote that never closes, a read error) fails.
//!
//! Memory is bounded by bytes, whatever the file: records are read by
//! [`RecordReader`] (at most [`MAX_RECORD_BYTES`] each, no more fields stored
//! than the header has plus one), and rows travel in reused blocks bounded by
//! rows and by bytes. Nothing is allocated per row on the happy path.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use csv::ByteRecord;

use super::columns::match_names;
pub use super::csv_reader::MAX_RECORD_BYTES;
use super::csv_reader::{without_bom, Dialect, Fields, Record, RecordError, RecordReader, RecordSpan};
use super::model::{Model, Prediction};
use super::observation::{FieldInput, Observation, FEATURES, FEATURE_COUNT};
use super::scoring::{write_range_names, Scorer, Wants};
use super::status::Status;
use super::text::{field_text, utf8_reader, Counted, InputEncoding};

/// The reason code of a row whose field count is not the header's.
pub const WRONG_FIELD_COUNT: &str = "wrong_field_count";
/// Most columns accepted in the header.
pub const MAX_COLUMNS: usize = 10_000;
/// Columns appended to every row (and, by the same names, to every
/// Distributed Map item): the CSV answer's shape. `warnings` names the
/// features outside the training range (the HTTP answer's `warnings`, joined
/// with "; "), empty when there is none.
pub const RESULT_COLUMNS: [&str; 5] = ["prediction", "probability", "status", "reason", "warnings"];
/// Input bytes read before anything else, to find the encoding and the delimiter.
const SNIFF_BYTES: usize = 64 * 1024;
/// With [`ScoreOptions::explain`], after the result columns: `base_value`, then
/// `contribution_<apiName>` per feature in model order; empty on rejected rows.
pub const BASE_VALUE_COLUMN: &str = "base_value";
pub const CONTRIBUTION_PREFIX: &str = "contribution_";

/// Counts for one file: logged and written beside the output (no data).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCounts {
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    pub malignant: u64,
    /// Rejected rows by the first problem found: missing, negative, wrong_field_count, ...
    pub rejected_by_reason: std::collections::BTreeMap<&'static str, u64>,
    pub bytes_in: u64,
}

impl BatchCounts {
    /// Counts one scored row.
    #[inline]
    pub fn count_scored(&mut self, prediction: &Prediction) {
        self.rows += 1;
        self.scored += 1;
        self.malignant += u64::from(prediction.label);
    }

    /// Counts one rejected row under its reason code.
    pub fn count_rejected(&mut self, code: &'static str) {
        self.rows += 1;
        self.rejected += 1;
        *self.rejected_by_reason.entry(code).or_default() += 1;
    }
}

/// Why a whole file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the file is empty: a header row is needed")]
    Empty,
    #[error("the header has no column for: {0}")]
    MissingColumns(HeaderMismatch),
    #[error("the header has more than one column for {0} (duplicate): columns name a feature whatever their case, spaces, '_' or '-' and a unit in brackets")]
    DuplicateColumn(&'static str),
    #[error("the header has {0} columns; at most {MAX_COLUMNS} are accepted")]
    TooManyColumns(usize),
    #[error("the record starting on line {line} is longer than {MAX_RECORD_BYTES} bytes: this is not a CSV of measurements (or a quote is never closed)")]
    RecordTooLong { line: u64 },
    #[error(
        "the record starting on line {line} opens a quote that never closes: the rest of the file would be one field"
    )]
    UnterminatedQuote { line: u64 },
    #[error("{0}")]
    NoExplanation(#[from] super::explain::NoExplanation),
    #[error("reading the input failed: {0}")]
    Read(#[source] io::Error),
    #[error("writing the output failed: {0}")]
    Write(#[source] io::Error),
}

/// What a header that lacks a feature's column looked like: counts and the
/// dialect, never its cells (a file without a header row has data there).
#[derive(Debug)]
pub struct HeaderMismatch {
    pub missing: Vec<&'static str>,
    /// Columns the header was read as.
    pub columns: usize,
    /// Columns that name a feature.
    pub found: usize,
    pub dialect: Dialect,
    /// The delimiter was given (`--delimiter`, `CSV_DELIMITER`), not detected.
    pub forced: bool,
}

impl std::fmt::Display for HeaderMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, delimiter) = (self.columns, self.dialect.delimiter_name());
        let how = if self.forced { "as given" } else { "detected" };
        write!(
            f,
            "{}; columns are matched by API name (e.g. worstArea) or dataset name (e.g. \"worst area\"), ignoring \
             case, spaces, '_' or '-' and a unit in brackets. The header was read as {n} column{} separated by \
             {delimiter} ({how}): ",
            self.missing.join(", "),
            if n == 1 { "" } else { "s" },
        )?;
        match (n, self.found, self.forced) {
            (1, _, false) => f.write_str(
                "the header is one column: is the file separated by another character? Give it with --delimiter \
                 or CSV_DELIMITER (',', ';' or tab)",
            ),
            (1, _, true) => f.write_str("the header is one column: is the delimiter given the file's?"),
            (_, 0, _) => f.write_str("no column names a feature: is the first row a header?"),
            (_, found, _) => write!(f, "{found} of the {n} columns name a feature; the others are passed through"),
        }
    }
}

impl BatchError {
    /// True when the file itself is at fault (retrying cannot help).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, BatchError::Read(_) | BatchError::Write(_))
    }
}

impl From<RecordError> for BatchError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::TooLong { line } => BatchError::RecordTooLong { line },
            RecordError::UnterminatedQuote { line } => BatchError::UnterminatedQuote { line },
            RecordError::Read(e) => BatchError::Read(e),
        }
    }
}

/// Most rows in one block handed from the reading thread to the writing thread.
const BLOCK_ROWS: usize = 4096;
/// A block takes no new row once it holds this many bytes (fields, their
/// positions, reasons, row entries); one more record may add up to
/// MAX_RECORD_BYTES. Between uses a block keeps at most this much.
const BLOCK_BYTES: usize = 1024 * 1024;
/// Blocks queued for the writer. With the one being filled and the one being
/// written, at most four blocks exist. One block holds under BLOCK_BYTES, then
/// one more record (up to MAX_RECORD_BYTES), and buffers grow with some slack:
/// at most about 3 MiB. The pipeline's heap is then bounded by
/// 4 × 3 MiB + the writer's record (up to 2 MiB) + the 256 KiB input and
/// output buffers: under 16 MiB, whatever the file (tests/memory and the
/// csv_pipeline fuzz target check it on hostile files).
const BLOCKS_QUEUED: usize = 2;

/// What happened to one row.
#[derive(Debug, Clone, Copy)]
enum RowOutcome {
    Scored(Prediction),
    /// Rejected, with its reason code; the text is in `Block::reasons`.
    Rejected(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Row {
    span: RecordSpan,
    outcome: RowOutcome,
    /// End of this row's reason in `Block::reasons` (it starts where the previous one ended).
    reason_end: usize,
}

/// A reusable block of rows: fields, rows and reasons keep their
/// allocations from one use to the next, so steady state allocates nothing.
#[derive(Default)]
struct Block {
    fields: Fields,
    rows: Vec<Row>,
    reasons: String,
    /// With `explain`: the contributions of each scored row, in order.
    contributions: Vec<[f64; FEATURE_COUNT]>,
    /// Bytes read when the block's last row ended.
    bytes: u64,
}

impl Block {
    fn clear(&mut self) {
        self.fields.clear();
        self.rows.clear();
        self.reasons.clear();
        self.contributions.clear();
    }

    fn used_bytes(&self) -> usize {
        self.fields.used_bytes()
            + self.reasons.len()
            + self.rows.len() * size_of::<Row>()
            + self.contributions.len() * size_of::<[f64; FEATURE_COUNT]>()
    }

    /// Gives back what one large record made the block grow to.
    fn shrink(&mut self) {
        self.clear();
        self.fields.shrink_to(BLOCK_BYTES);
        self.reasons.shrink_to(BLOCK_BYTES / 4);
    }

    fn reason(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.rows[i - 1].reason_end };
        &self.reasons[start..self.rows[i].reason_end]
    }
}

/// How one file is scored: what each entry point chooses (CLI flags, the
/// Lambda environment, a message's or an item's fields). Every batch path
/// builds one and calls [`score_csv_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Append `base_value` and `contribution_<apiName>` columns.
    pub explain: bool,
    /// Gather the drift statistics (on by default).
    pub drift: bool,
    /// The field delimiter; `None` detects it from the header.
    pub delimiter: Option<u8>,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { explain: false, drift: true, delimiter: None }
    }
}

/// What scoring one file produced besides the output: its counts and, when
/// asked for, the drift statistics of its scored rows.
#[derive(Debug, Clone)]
pub struct ScoreOutcome {
    pub counts: BatchCounts,
    pub drift: Option<super::drift::DriftStats>,
}

/// Scores a CSV stream with the default options, returning only the counts.
pub fn score_csv<R: Read + Send, W: Write>(
    model: &Model,
    input: R,
    output: W,
    progress: impl FnMut(u64),
) -> Result<BatchCounts, BatchError> {
    score_csv_with(model, input, output, &ScoreOptions::default(), progress).map(|o| o.counts)
}

/// Scores a CSV stream. `progress` is called now and then with bytes read so far.
///
/// Two threads: one reads, parses and predicts, the other formats and writes,
/// handing blocks of rows over a small bounded channel (memory stays bounded).
pub fn score_csv_with<R: Read + Send, W: Write>(
    model: &Model,
    input: R,
    output: W,
    options: &ScoreOptions,
    mut progress: impl FnMut(u64),
) -> Result<ScoreOutcome, BatchError> {
    let explain = options.explain;
    // Refuses `explain` of a model that cannot explain before anything is read or written.
    let mut scorer = Scorer::new(model, Wants { explain, drift: options.drift })?;
    let mut input = input;
    let mut output = output;
    let head = read_head(&mut input)?;
    let encoding = InputEncoding::sniff(&head);
    let dialect = match options.delimiter {
        Some(d) => Dialect::with_delimiter(d),
        None => Dialect::detect(&encoding.decode_head(&head)),
    };
    // The input's own bytes, for progress and the counts (UTF-16 decodes to fewer).
    let (head_bytes, after_head) = (head.len() as u64, Arc::new(AtomicU64::new(0)));
    let raw = Counted { inner: input, count: Arc::clone(&after_head) };
    let transcoded = !matches!(encoding, InputEncoding::Utf8 { .. });
    let mut reader = RecordReader::new(utf8_reader(io::Cursor::new(head).chain(raw), encoding), dialect);
    let input_bytes = move |reader: &RecordReader<_>| {
        if transcoded {
            head_bytes + after_head.load(Ordering::Relaxed)
        } else {
            reader.bytes_read()
        }
    };
    if encoding.had_bom() {
        output.write_all(b"\xef\xbb\xbf").map_err(BatchError::Write)?;
    }
    let mut writer = dialect.writer(output);

    let (width, columns) = {
        let mut header = Fields::default();
        let span = reader.read_record(&mut header, MAX_COLUMNS + 1)?.ok_or(BatchError::Empty)?;
        if span.fields > MAX_COLUMNS {
            return Err(BatchError::TooManyColumns(span.fields));
        }
        let names: Vec<Cow<'_, str>> =
            header.iter(&span).enumerate().map(|(i, f)| field_text(if i == 0 { without_bom(f) } else { f })).collect();
        let columns = match_columns(&names, dialect, options.delimiter.is_some())?;
        for name in &names {
            writer.write_field(name.as_bytes()).map_err(write_error)?;
        }
        for name in RESULT_COLUMNS {
            writer.write_field(name).map_err(write_error)?;
        }
        if explain {
            write_explanation_header(&mut writer)?;
        }
        writer.write_record(None::<&[u8]>).map_err(write_error)?;
        (span.fields, columns)
    };
    let decimal_comma = dialect.decimal_comma();

    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Block, BatchError>>(BLOCKS_QUEUED);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Block>(BLOCKS_QUEUED + 2);
    std::thread::scope(|scope| {
        // The reading thread scores (and counts the drift statistics): it holds each row's observation.
        let reading = scope.spawn(move || loop {
            let mut block = empty_rx.try_recv().unwrap_or_default();
            let rules = Rules { columns: &columns, width, decimal_comma };
            let filled = fill(&mut reader, &mut block, &mut scorer, &rules);
            block.bytes = input_bytes(&reader);
            let done = !matches!(filled, Ok(true));
            let sent = match filled {
                Ok(_) if block.rows.is_empty() => Ok(()),
                Ok(_) => full_tx.send(Ok(block)),
                Err(e) => full_tx.send(Err(e)),
            };
            if done || sent.is_err() {
                return (input_bytes(&reader), scorer.into_drift());
            }
        });
        let mut counts = BatchCounts::default();
        let base_value = model.info().base_value.filter(|_| explain);
        let written = write_blocks(&mut writer, &full_rx, &empty_tx, width, base_value, &mut counts, &mut progress);
        // Unblock the reader if the writer stopped first, then collect it.
        drop(full_rx);
        let (bytes, drift) =
            reading.join().map_err(|_| BatchError::Read(io::Error::other("the reading thread failed")))?;
        written?;
        writer.flush().map_err(BatchError::Write)?;
        counts.bytes_in = bytes;
        progress(bytes);
        Ok(ScoreOutcome { counts, drift })
    })
}

/// How the rows of one file are read: where each feature's column is, the
/// header's width, whether `;` files' decimal commas are read.
struct Rules<'a> {
    columns: &'a [usize; FEATURE_COUNT],
    width: usize,
    decimal_comma: bool,
}

/// Reads rows into `block` until it is full (by rows or bytes) and scores
/// them with the file's `scorer` (which explains them and counts them into
/// the drift statistics when asked to). Ok(false) at the end of input.
fn fill<R: Read>(
    reader: &mut RecordReader<R>,
    block: &mut Block,
    scorer: &mut Scorer<'_>,
    rules: &Rules<'_>,
) -> Result<bool, BatchError> {
    let width = rules.width;
    block.clear();
    while block.rows.len() < BLOCK_ROWS && block.used_bytes() < BLOCK_BYTES {
        // Header width + 1 fields: enough to see a trailing empty field; a
        // longer row is rejected and its extra fields are never output.
        let Some(span) = reader.read_record(&mut block.fields, width + 1)? else { return Ok(false) };
        block.bytes = reader.bytes_read();
        let record = block.fields.record(&span);
        let outcome = if !fits_header(&record, &span, width) {
            use std::fmt::Write as _;
            let _ = write!(block.reasons, "the row has {} fields but the header has {width}", span.fields);
            scorer.reject(WRONG_FIELD_COUNT);
            RowOutcome::Rejected(WRONG_FIELD_COUNT)
        } else {
            let inputs: [FieldInput; FEATURE_COUNT] =
                std::array::from_fn(|f| cell(record.get(rules.columns[f]), rules.decimal_comma));
            match scorer.score_input(Observation::from_inputs(&inputs)) {
                Ok(scored) => {
                    // A scored row's text in `reasons` is its warnings.
                    let _ = write_range_names(scored.out_of_range, &mut block.reasons);
                    if let Some(e) = scored.explanation {
                        block.contributions.push(e.contributions);
                    }
                    RowOutcome::Scored(scored.prediction)
                }
                Err(rejection) => {
                    rejection.write_field_messages(&mut block.reasons);
                    RowOutcome::Rejected(rejection.code())
                }
            }
        };
        block.rows.push(Row { span, outcome, reason_end: block.reasons.len() });
    }
    Ok(true)
}

/// A row fits the header when it has its width, or one more field that is
/// empty: a trailing delimiter, as spreadsheets sometimes write.
fn fits_header(record: &Record<'_>, span: &RecordSpan, width: usize) -> bool {
    span.fields == width || (span.fields == width + 1 && record.get(width) == Some(b""))
}

/// Writes scored blocks in order and returns their buffers to the reader.
fn write_blocks<W: Write>(
    writer: &mut csv::Writer<W>,
    full: &std::sync::mpsc::Receiver<Result<Block, BatchError>>,
    empty: &std::sync::mpsc::SyncSender<Block>,
    width: usize,
    base_value: Option<f64>,
    counts: &mut BatchCounts,
    progress: &mut impl FnMut(u64),
) -> Result<(), BatchError> {
    let new_record = || ByteRecord::with_capacity(256, width + RESULT_COLUMNS.len() + 1 + FEATURE_COUNT);
    let mut out = new_record();
    let mut number = ryu::Buffer::new();
    // The same for every row: formatted once.
    let base_text = base_value.map(|b| number.format_finite(b).to_owned());
    for block in full.iter() {
        let mut block = block?;
        // All ASCII (one fast pass a block): every field is UTF-8 as it is.
        // Otherwise each field is checked on its own (a check of a whole row
        // would let a character split across two fields through).
        let ascii = block.fields.as_bytes().is_ascii();
        let mut contributions = block.contributions.iter();
        for (i, row) in block.rows.iter().enumerate() {
            counts.rows += 1;
            // Original columns, padded to the header's width so the output stays
            // rectangular (a longer row's extra fields cannot be placed). One
            // reused record: write_byte_record copies fields that need no
            // quoting straight into the buffer.
            out.clear();
            let record = block.fields.record(&row.span);
            if ascii {
                for j in 0..width {
                    out.push_field(record.get(j).unwrap_or(b""));
                }
            } else {
                // A field that is not UTF-8 is Windows-1252 (see core::text).
                for j in 0..width {
                    out.push_field(field_text(record.get(j).unwrap_or(b"")).as_bytes());
                }
            }
            match row.outcome {
                RowOutcome::Scored(p) => {
                    counts.scored += 1;
                    counts.malignant += u64::from(p.label);
                    out.push_field(if p.label == 1 { b"1" } else { b"0" });
                    out.push_field(number.format_finite(p.probability).as_bytes());
                    out.push_field(Status::Ok.as_str().as_bytes());
                    out.push_field(Status::Ok.reason_phrase().as_bytes());
                    out.push_field(block.reason(i).as_bytes());
                    if let (Some(base), Some(phi)) = (base_text.as_deref(), contributions.next()) {
                        out.push_field(base.as_bytes());
                        for &c in phi {
                            out.push_field(number.format_finite(c).as_bytes());
                        }
                    }
                }
                RowOutcome::Rejected(code) => {
                    counts.rejected += 1;
                    *counts.rejected_by_reason.entry(code).or_default() += 1;
                    out.push_field(b"");
                    out.push_field(b"");
                    out.push_field(Status::BadRequest.as_str().as_bytes());
                    out.push_field(block.reason(i).as_bytes());
                    out.push_field(b"");
                    if base_text.is_some() {
                        (0..=FEATURE_COUNT).for_each(|_| out.push_field(b""));
                    }
                }
            }
            writer.write_byte_record(&out).map_err(write_error)?;
            if out.as_slice().len() > 64 * 1024 {
                // It grew for a large record: let that memory go.
                out = new_record();
            }
        }
        progress(block.bytes);
        recycle(&mut block);
        // The reader makes a new block if this one cannot be returned.
        let _ = empty.try_send(block);
    }
    Ok(())
}

/// `base_value`, `contribution_<apiName>`...: the explanation's columns.
fn write_explanation_header<W: Write>(writer: &mut csv::Writer<W>) -> Result<(), BatchError> {
    writer.write_field(BASE_VALUE_COLUMN).map_err(write_error)?;
    for f in FEATURES {
        writer.write_field(format!("{CONTRIBUTION_PREFIX}{}", f.api_name)).map_err(write_error)?;
    }
    Ok(())
}

/// Readies a written block for reuse, giving back what a large record made it grow to.
fn recycle(block: &mut Block) {
    if block.fields.allocated_bytes() > BLOCK_BYTES || block.reasons.capacity() > BLOCK_BYTES / 4 {
        block.shrink();
    }
}

/// A cell as the one validation path takes it (an empty one is missing there).
fn cell(field: Option<&[u8]>, decimal_comma: bool) -> FieldInput<'_> {
    match field {
        None => FieldInput::Missing,
        // Not UTF-8 cannot be a number; the cell's text is never echoed.
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).unwrap_or("\u{fffd}");
            if decimal_comma {
                FieldInput::DecimalCommaText(text)
            } else {
                FieldInput::Text(text)
            }
        }
    }
}

/// The first [`SNIFF_BYTES`] of the input (fewer if it is shorter). Every
/// read error fails the file, `Interrupted` included (see RecordReader::refill).
fn read_head(input: &mut impl Read) -> Result<Vec<u8>, BatchError> {
    let mut head = vec![0; SNIFF_BYTES];
    let mut n = 0;
    while n < SNIFF_BYTES {
        match input.read(&mut head[n..]).map_err(BatchError::Read)? {
            0 => break,
            read => n += read,
        }
    }
    head.truncate(n);
    Ok(head)
}

/// Each feature's column, by the one column-name rule.
fn match_columns(names: &[Cow<'_, str>], dialect: Dialect, forced: bool) -> Result<[usize; FEATURE_COUNT], BatchError> {
    let found = match_names(names.iter().map(|n| Some(n.as_ref())))
        .map_err(|d| BatchError::DuplicateColumn(FEATURES[d.feature].api_name))?;
    let missing: Vec<&'static str> =
        (0..FEATURE_COUNT).filter(|&f| found[f].is_none()).map(|f| FEATURES[f].api_name).collect();
    if missing.is_empty() {
        Ok(found.map(|c| c.unwrap_or(usize::MAX)))
    } else {
        let columns = names.len();
        let found = FEATURE_COUNT - missing.len();
        Err(BatchError::MissingColumns(HeaderMismatch { missing, columns, found, dialect, forced }))
    }
}

fn write_error(e: csv::Error) -> BatchError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => BatchError::Write(io),
        other => BatchError::Write(io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(input: &[u8]) -> Result<(String, BatchCounts), BatchError> {
        let model = Model::embedded().unwrap();
        let mut out = Vec::new();
        let counts = score_csv(&model, input, &mut out, |_| {})?;
        Ok((String::from_utf8(out).unwrap(), counts))
    }

    const HEADER: &str = "id,mean concave points,worst radius,worst texture,worst area,worst concave points";

    #[test]
    fn scores_valid_rows_and_passes_other_columns_through() {
        let input = format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\nS2,0.04781,15.11,26.5,711.2,0.07431\n");
        let (out, counts) = score(input.as_bytes()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("{HEADER},prediction,probability,status,reason,warnings"));
        assert!(lines[1].starts_with("S1,0.1471,25.38,17.33,2019.0,0.2654,1,0.9"), "{}", lines[1]);
        assert!(lines[1].ends_with(",200,OK,"));
        assert!(lines[2].starts_with("S2,0.04781,15.11,26.5,711.2,0.07431,0,0.0"), "{}", lines[2]);
        assert_eq!((counts.rows, counts.scored, counts.rejected, counts.malignant), (2, 2, 0, 1));
    }

    #[test]
    fn bad_rows_become_400_rows_in_place() {
        let input = format!(
            "{HEADER}\nA,0.1,20,20,900,0.1\nB,0.1,,20,900,0.1\nC,0.1,20,abc,900,0.1\nD,0.1,20,20,-5,0.1\n\
             E,0.1,20\nF,0.1,20,20,900,0.1,extra\nG,NaN,20,20,900,inf\nH,0.1,20,20,1e39,0.1\nI,0.1,20,20,900,0.1\n"
        );
        let (out, counts) = score(input.as_bytes()).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
        assert_eq!(ids, ["A", "B", "C", "D", "E", "F", "G", "H", "I"]);
        let status: Vec<&str> = rows.iter().map(|r| &r[8]).collect();
        assert_eq!(status, ["200", "400", "400", "400", "400", "400", "400", "400", "200"]);
        assert_eq!(&rows[1][9], "'worstRadius' is missing");
        assert_eq!(&rows[2][9], "'worstTexture' is not a number");
        assert_eq!(&rows[3][9], "'worstArea' must not be negative");
        assert_eq!(&rows[4][9], "the row has 3 fields but the header has 6");
        assert_eq!(rows[4].iter().skip(1).take(5).collect::<Vec<_>>(), ["0.1", "20", "", "", ""]);
        assert_eq!(&rows[5][9], "the row has 7 fields but the header has 6");
        assert!(rows[6][9].contains("'meanConcavePoints' must be a finite number"));
        assert!(rows[6][9].contains("'worstConcavePoints' must be a finite number"));
        assert!(rows[7][9].contains("too large"));
        assert_eq!((&rows[1][6], &rows[1][7]), ("", ""));
        assert_eq!((counts.rows, counts.scored, counts.rejected), (9, 2, 7));
        assert_eq!(counts.rejected_by_reason["wrong_field_count"], 2);
    }

    #[test]
    fn headers_match_either_name_with_bom_crlf_and_quotes() {
        let input =
            "\u{feff}\"Sample, ID\",WORSTAREA , worstRadius,Worst Texture,meanConcavePoints,worst concave points\r\n\
                     \"x, \"\"quoted\"\"\",2019,25.38,17.33,0.1471,0.2654\r\n";
        let (out, counts) = score(input.as_bytes()).unwrap();
        assert_eq!(counts.scored, 1, "{out}");
        // The input's byte-order mark is given back (issue 15: Excel then reads UTF-8).
        assert!(out.starts_with("\u{feff}\"Sample, ID\",WORSTAREA , worstRadius"), "{out}");
        assert!(out.contains("\"x, \"\"quoted\"\"\",2019,25.38,17.33,0.1471,0.2654,1,"), "{out}");
    }

    #[test]
    fn a_header_without_the_needed_columns_fails_the_file() {
        let err = score(b"id,worst area\n1,2\n").unwrap_err();
        assert!(err.is_bad_input());
        let text = err.to_string();
        assert!(
            text.starts_with(
                "the header has no column for: meanConcavePoints, worstRadius, worstTexture, worstConcavePoints;"
            ),
            "{text}"
        );
        assert!(matches!(score(b"").unwrap_err(), BatchError::Empty));
        assert!(matches!(score(b"\x1f\x8b\x08\x00\x00\x00binary").unwrap_err(), BatchError::MissingColumns(_)));
        let dup = format!("{HEADER},worstArea\n");
        assert!(matches!(score(dup.as_bytes()).unwrap_err(), BatchError::DuplicateColumn("worstArea")));
    }

    #[test]
    fn a_header_only_file_gives_a_header_only_output() {
        let (out, counts) = score(format!("{HEADER}\n").as_bytes()).unwrap();
        assert_eq!(out.lines().count(), 1);
        assert_eq!(counts.rows, 0);
    }

    #[test]
    fn an_endless_line_fails_the_file_instead_of_filling_memory() {
        let mut input = format!("{HEADER}\n").into_bytes();
        input.extend(std::iter::repeat_n(b'7', MAX_RECORD_BYTES + 10));
        assert!(matches!(score(&input).unwrap_err(), BatchError::RecordTooLong { line: 2 }));
    }

    #[test]
    fn a_quote_that_never_closes_rejects_the_file_naming_its_line() {
        let input = format!("{HEADER}\nA,0.1,20,20,900,0.1\n\"B,0.1,20,20,900,0.1\nC,0.1,20,20,900,0.1\n");
        let err = score(input.as_bytes()).unwrap_err();
        assert!(matches!(err, BatchError::UnterminatedQuote { line: 3 }), "{err:?}");
        assert!(err.is_bad_input());
        assert_eq!(
            err.to_string(),
            "the record starting on line 3 opens a quote that never closes: the rest of the file would be one field"
        );
    }

    #[test]
    fn a_record_over_the_cap_rejects_the_file_naming_its_first_line_even_when_quoted_or_cr_only() {
        let notes = "a note line\n".repeat(MAX_RECORD_BYTES / 12 + 1);
        let quoted = format!("id,notes,{}\nA,x,0.1,20,20,900,0.1\n\nB,\"{notes}\",0.1,20,20,900,0.1\n", &HEADER[3..]);
        let cr_only = quoted.replace('\n', "\r");
        let unclosed = format!("{HEADER}\n\"A,0.1,20,20,900,0.1\n{}", "B,0.1,20,20,900,0.1\n".repeat(60_000));
        for (input, line) in [(&quoted, 4), (&cr_only, 4), (&unclosed, 2)] {
            let err = score(input.as_bytes()).unwrap_err();
            assert!(matches!(err, BatchError::RecordTooLong { line: l } if l == line), "{err:?}");
            assert!(err.is_bad_input());
            assert!(err
                .to_string()
                .starts_with(&format!("the record starting on line {line} is longer than 1048576 bytes")));
        }
    }

    #[test]
    fn cr_lf_and_crlf_files_score_identically() {
        let lf = format!(
            "{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654\n\"B\nmulti-line id\",0.04781,15.11,26.5,711.2,0.07431\n\nC,-1,20,20,900,0.1\n"
        );
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        // Longer than 1 MiB with no \n at all: a classic-Mac file of ~25k rows.
        let big_cr = format!("{HEADER}\r{}", "A,0.1471,25.38,17.33,2019.0,0.2654\r".repeat(40_000));
        let (want, counts) = score(lf.as_bytes()).unwrap();
        assert_eq!((counts.rows, counts.scored, counts.rejected), (3, 2, 1));
        for input in [&crlf, &cr] {
            // Line ends inside a quoted field are data and pass through as they were.
            let (out, c) = score(input.as_bytes()).unwrap();
            assert_eq!(out.replace("\r\n", "\n").replace('\r', "\n"), want);
            assert_eq!(c.rows, counts.rows);
        }
        assert!(big_cr.len() > MAX_RECORD_BYTES);
        let (_, c) = score(big_cr.as_bytes()).unwrap();
        assert_eq!((c.rows, c.scored), (40_000, 40_000));
    }

    #[test]
    fn a_row_with_a_trailing_comma_scores() {
        let input = format!("{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654,\nB,0.1471,25.38,17.33,2019.0,0.2654\n");
        let (out, counts) = score(input.as_bytes()).unwrap();
        assert_eq!((counts.rows, counts.scored, counts.rejected), (2, 2, 0), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], lines[2].replacen('B', "A", 1));
        // One extra field only, and only an empty one.
        for extra in [",,", ",x", ",\" \""] {
            let input = format!("{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654{extra}\n");
            let (_, counts) = score(input.as_bytes()).unwrap();
            assert_eq!(counts.rejected_by_reason.get("wrong_field_count"), Some(&1), "{extra}");
        }
    }

    #[test]
    fn a_row_of_a_million_commas_is_one_rejected_row_and_its_fields_are_not_stored() {
        let mut input = format!("{HEADER}\n").into_bytes();
        input.extend(std::iter::repeat_n(b',', 1_000_000));
        input.extend(b"\nA,0.1471,25.38,17.33,2019.0,0.2654\n");
        let model = Model::embedded().unwrap();
        let mut reader = RecordReader::new(&input[..], Dialect::default());
        reader.read_record(&mut Fields::default(), MAX_COLUMNS + 1).unwrap();
        let mut block = Block::default();
        let rules = Rules { columns: &[1, 2, 3, 4, 5], width: 6, decimal_comma: false };
        let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
        assert!(!fill(&mut reader, &mut block, &mut scorer, &rules).unwrap());
        assert_eq!(block.rows.len(), 2);
        assert_eq!(block.rows[0].span.fields, 1_000_001);
        assert!(block.fields.allocated_bytes() < 64 * 1024, "{}", block.fields.allocated_bytes());
        assert_eq!(block.reason(0), "the row has 1000001 fields but the header has 6");

        let (out, counts) = score(&input).unwrap();
        assert_eq!((counts.rows, counts.scored, counts.rejected), (2, 1, 1));
        assert!(out.lines().nth(1).unwrap().starts_with(",,,,,,,,400,the row has 1000001 fields"));
    }

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
        recycle(&mut block);
        assert!(block.fields.allocated_bytes() <= BLOCK_BYTES);
    }

    #[test]
    fn input_columns_named_like_results_are_kept_and_the_results_are_appended() {
        let input = format!("{HEADER},status,reason\nA,0.1471,25.38,17.33,2019.0,0.2654,pending,screening\n");
        let (out, _) = score(input.as_bytes()).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!("{HEADER},status,reason,prediction,probability,status,reason,warnings")
        );
        let row = lines.next().unwrap();
        assert!(row.starts_with("A,0.1471,25.38,17.33,2019.0,0.2654,pending,screening,1,0.9"), "{row}");
        assert!(row.ends_with(",200,OK,"), "{row}");
    }

    #[test]
    fn a_read_stopped_with_interrupted_fails_the_file_and_is_never_taken_for_its_end() {
        /// Rows, then `Interrupted` (how the S3 path stops a read at its deadline), then EOF.
        struct Stopped(Vec<u8>, u8);
        impl Read for Stopped {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 += 1;
                match self.1 {
                    1 => {
                        buf[..self.0.len()].copy_from_slice(&self.0);
                        Ok(self.0.len())
                    }
                    2 => Err(io::Error::new(io::ErrorKind::Interrupted, "reading was stopped")),
                    _ => Ok(0),
                }
            }
        }
        let input = format!("{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654\n").into_bytes();
        let model = Model::embedded().unwrap();
        let err = score_csv(&model, Stopped(input, 0), io::sink(), |_| {}).unwrap_err();
        assert!(matches!(err, BatchError::Read(ref e) if e.kind() == io::ErrorKind::Interrupted), "{err:?}");
        assert!(!err.is_bad_input());
    }

    fn score_with(input: &[u8], delimiter: Option<u8>) -> Result<(String, BatchCounts), BatchError> {
        let model = Model::embedded().unwrap();
        let mut out = Vec::new();
        let options = ScoreOptions { delimiter, ..ScoreOptions::default() };
        let outcome = score_csv_with(&model, input, &mut out, &options, |_| {})?;
        Ok((String::from_utf8(out).expect("the output is UTF-8"), outcome.counts))
    }

    fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
        let mut out = if little_endian { vec![0xff, 0xfe] } else { vec![0xfe, 0xff] };
        for unit in text.encode_utf16() {
            out.extend(if little_endian { unit.to_le_bytes() } else { unit.to_be_bytes() });
        }
        out
    }

    #[test]
    fn out_of_range_features_are_named_in_the_warnings_column_as_http_names_them() {
        let input = format!(
            "{HEADER}\nA,0.1471,25.38,17.33,9000,0.2654\nB,0.1471,25.38,17.33,2019.0,0.2654\nC,x,1,1,1,1\nD,0.1471,99,17.33,9000,0.2654\n"
        );
        let (out, _) = score(input.as_bytes()).unwrap();
        let rows: Vec<csv::StringRecord> =
            csv::Reader::from_reader(out.as_bytes()).records().map(Result::unwrap).collect();
        let model = Model::embedded().unwrap();
        // The features the one out-of-range rule (HTTP's warnings) finds, by name, in model order.
        let far = Observation::from_values([0.1471, 99.0, 17.33, 9000.0, 0.2654]).unwrap();
        let names: Vec<&str> = model.out_of_range(&far).map(|i| FEATURES[i].api_name).collect();
        assert_eq!(names, ["worstRadius", "worstArea"]);
        assert_eq!((&rows[0][8], &rows[0][10]), ("200", "worstArea"));
        assert_eq!((&rows[1][8], &rows[1][10]), ("200", ""));
        assert_eq!((&rows[2][8], &rows[2][10]), ("400", ""));
        assert_eq!((&rows[3][8], &rows[3][10]), ("200", "worstRadius; worstArea"));
    }

    #[test]
    fn semicolon_files_with_decimal_commas_units_and_crlf_score_like_the_comma_file() {
        let (want, _) = score(format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\n").as_bytes()).unwrap();
        let want_row = want.lines().nth(1).unwrap().split_once(",0.2654,").unwrap().1.to_owned();
        let input = "id;Mean Concave Points;worst_radius (mm);WORST-TEXTURE;worst area (\u{b5}m\u{b2});worst concave points\r\n\
                     S1;0,1471;25,38;17,33;2019,0;0,2654\r\nS2;1.234,5;25,38;17,33;2019;0,2654\r\nS3;0,1;1,234,5;1;1;1\r\n";
        let (out, counts) = score(input.as_bytes()).unwrap();
        assert_eq!((counts.scored, counts.rejected), (1, 2), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with(";prediction;probability;status;reason;warnings"), "{}", lines[0]);
        assert_eq!(lines[1], format!("S1;0,1471;25,38;17,33;2019,0;0,2654;{}", want_row.replace(',', ";")));
        assert!(lines[2].contains(";400;'meanConcavePoints' has a thousands separator"), "{}", lines[2]);
        assert!(lines[3].contains(";400;'worstRadius' has a thousands separator"), "{}", lines[3]);
        assert_eq!(counts.rejected_by_reason["ambiguous_number"], 2);
        // Tab files read commas as text: a decimal comma there is not a number.
        let tab = format!("{}\nS1\t0,1471\t25.38\t17.33\t2019.0\t0.2654\n", HEADER.replace(',', "\t"));
        let (out, counts) = score(tab.as_bytes()).unwrap();
        assert_eq!(counts.rejected_by_reason["not_a_number"], 1, "{out}");
    }

    #[test]
    fn a_given_delimiter_wins_over_detection_and_a_wrong_one_says_what_was_seen() {
        let input = format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\n");
        let err = score_with(input.as_bytes(), Some(b';')).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("The header was read as 1 column separated by ';' (as given)"), "{text}");
        assert!(text.contains("is the delimiter given the file's?"), "{text}");
        let (_, counts) = score_with(input.as_bytes(), Some(b',')).unwrap();
        assert_eq!(counts.scored, 1);
        // A `|`-separated file is one column to the detector: the error points at the delimiter.
        let err = score(input.replace(',', "|").as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("the header has no column for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints;"), "{err}");
        assert!(err.contains("read as 1 column separated by ',' (detected): the header is one column: is the file separated by another character? Give it with --delimiter or CSV_DELIMITER"), "{err}");
        // A headerless file: no cell of the first row is echoed.
        let err = score(b"Patient-Secret,0.1,20,20,900,0.1\n").unwrap_err().to_string();
        assert!(
            err.contains(
                "6 columns separated by ',' (detected): no column names a feature: is the first row a header?"
            ),
            "{err}"
        );
        assert!(!err.contains("Secret") && !err.contains("900"), "{err}");
        let err = score(b"id,worst_area,worst radius,x\n").unwrap_err().to_string();
        assert!(err.contains("2 of the 4 columns name a feature"), "{err}");
    }

    #[test]
    fn two_columns_naming_one_feature_by_the_rule_are_a_duplicate() {
        for extra in ["worst_area", "WORST-AREA (mm2)", "WorstArea"] {
            let input = format!("{HEADER},{extra}\n");
            let err = score(input.as_bytes()).unwrap_err();
            assert!(matches!(err, BatchError::DuplicateColumn("worstArea")), "{extra}: {err:?}");
            assert!(err.to_string().contains("(duplicate)"));
        }
    }

    #[test]
    fn windows_1252_fields_come_out_as_utf8_and_utf8_fields_are_kept() {
        let mut input = format!("{HEADER},note\n").into_bytes();
        input.extend(b"Biopsia-Mu\xf1oz,0.1471,25.38,17.33,2019.0,0.2654,caf\xe9\n");
        input.extend("Biopsia-Muñoz,0.1471,25.38,17.33,2019.0,0.2654,µm²\n".as_bytes());
        let (out, counts) = score(&input).unwrap();
        assert_eq!(counts.scored, 2);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].starts_with("Biopsia-Muñoz,0.1471,25.38,17.33,2019.0,0.2654,café,1,"), "{}", lines[1]);
        assert!(lines[2].starts_with("Biopsia-Muñoz,0.1471,25.38,17.33,2019.0,0.2654,µm²,1,"), "{}", lines[2]);
        assert!(!out.starts_with('\u{feff}'), "no mark in, no mark out");
        // A UTF-8 character split across two fields is two Windows-1252 fields, not passed through.
        let mut split = format!("{HEADER},a,b\n").into_bytes();
        split.extend(b"S,0.1471,25.38,17.33,2019.0,0.2654,x\xc3,\xa9y\n");
        let (out, _) = score(&split).unwrap();
        assert!(out.lines().nth(1).unwrap().starts_with("S,0.1471,25.38,17.33,2019.0,0.2654,xÃ,©y,1,"), "{out}");
        // A 1252 header names its columns too.
        let mut header = b"id;worst area (\xb5m\xb2);".to_vec();
        header.extend(b"mean concave points;worst radius;worst texture;worst concave points\n1;2019;0,1;25;17;0,2\n");
        let (out, counts) = score(&header).unwrap();
        assert_eq!(counts.scored, 1, "{out}");
        assert!(out.starts_with("id;worst area (µm²);"), "{out}");
    }

    #[test]
    fn utf16_files_with_a_mark_score_like_utf8_and_come_out_as_utf8_with_a_mark() {
        let text = format!("{}\r\nMuñoz\t0.1471\t25.38\t17.33\t2019.0\t0.2654\r\n", HEADER.replace(',', "\t"));
        let (want, _) = score(text.as_bytes()).unwrap();
        for little_endian in [true, false] {
            let input = utf16(&text, little_endian);
            let (out, counts) = score(&input).unwrap();
            assert_eq!(counts.scored, 1);
            assert_eq!(counts.bytes_in, input.len() as u64, "the input's own bytes are counted");
            assert_eq!(out, format!("\u{feff}{want}"));
        }
        // A UTF-8 mark in, a UTF-8 mark out.
        let (out, _) = score(format!("\u{feff}{text}").as_bytes()).unwrap();
        assert_eq!(out, format!("\u{feff}{want}"));
    }

    #[test]
    fn an_open_quote_in_utf16_is_still_a_bounded_file_error() {
        let input = utf16(&format!("{HEADER}\n\"{}", ",".repeat(MAX_RECORD_BYTES)), true);
        let err = score(&input).unwrap_err();
        assert!(matches!(err, BatchError::RecordTooLong { line: 2 }), "{err:?}");
    }

    #[test]
    fn drift_counts_every_row_the_output_counts_and_nothing_when_off() {
        use crate::core::drift::DriftOptions;
        let model = Model::embedded().unwrap();
        let input = format!(
            "{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654\nB,0.1,,20,900,0.1\nC,0.1,20\nD,0.04781,15.11,26.5,711.2,0.07431\n"
        );
        let run = |drift| {
            let options = ScoreOptions { drift, ..ScoreOptions::default() };
            let mut out = Vec::new();
            let outcome = score_csv_with(&model, input.as_bytes(), &mut out, &options, |_| {}).unwrap();
            (outcome, out)
        };
        let (on, out_on) = run(true);
        let (off, out_off) = run(false);
        assert_eq!(out_on, out_off, "the statistics never change the output");
        assert!(off.drift.is_none());
        let report = on.drift.unwrap().report(&model, &DriftOptions::default());
        assert_eq!((report.rows, report.scored, report.rejected), (4, 2, 2));
        assert_eq!(report.predicted_malignant, on.counts.malignant);
        let by_reason: Vec<(&str, u64)> = report.rejected_by_reason.iter().map(|(c, n)| (*c, n.rows)).collect();
        assert_eq!(by_reason, [("missing", 1), ("wrong_field_count", 1)]);
        let area = &report.features[3];
        assert_eq!(area.bins.counts.iter().sum::<u64>(), 2);
    }

    #[test]
    fn rows_never_echo_bad_values_in_reasons() {
        let input = format!("{HEADER}\nA,0.1,20,secret-1234,900,0.1\n");
        let (out, _) = score(input.as_bytes()).unwrap();
        let reason_column = out.lines().nth(1).unwrap().rsplit(',').next().unwrap();
        assert!(!reason_column.contains("secret"));
    }
}
