//! Output rows as CSV text in a [`Dialect`], byte for byte what the csv
//! crate's writer (`QuoteStyle::Necessary`, `\n` line ends) writes for the
//! same fields: a field is quoted when it holds the delimiter, the quote, a
//! CR or an LF, a quote inside is doubled, and a row of one empty field is
//! written `""`. A property test holds the two side by side.
//!
//! Why not the csv crate's writer itself: the batch output went through a
//! reused `ByteRecord` (one copy of every field) and `write_byte_record`
//! (a second copy, after a byte-at-a-time table check of every field);
//! callgrind measured ~1,680 instructions a row for the two on
//! benches/throughput.sh's file. Here a field is copied once, and fields
//! known to need no quotes (a block's input fields, checked in one
//! vectorised pass: [`RowText::needs_quotes`]) are not checked again.

use super::csv_reader::Dialect;

/// Rows of CSV text, appended to one reused buffer.
#[derive(Debug)]
pub struct RowText {
    buf: Vec<u8>,
    delimiter: u8,
    quote: u8,
    /// Where the current row starts in `buf`, and its fields so far.
    row_start: usize,
    fields: usize,
}

impl RowText {
    pub fn new(dialect: Dialect) -> Self {
        RowText { buf: Vec::new(), delimiter: dialect.delimiter, quote: dialect.quote, row_start: 0, fields: 0 }
    }

    /// Whether text written as a field needs quotes: it holds the
    /// delimiter, the quote, a CR or an LF. Written without an early exit,
    /// so the compiler vectorises it (one pass over a block's fields).
    #[inline]
    pub fn needs_quotes(&self, bytes: &[u8]) -> bool {
        let (d, q) = (self.delimiter, self.quote);
        bytes.iter().fold(false, |any, &b| any | (b == d) | (b == q) | (b == b'\r') | (b == b'\n'))
    }

    #[inline]
    fn separate(&mut self) {
        if self.fields > 0 {
            self.buf.push(self.delimiter);
        }
        self.fields += 1;
    }

    /// Appends a field, quoted when it needs it.
    #[inline]
    pub fn field(&mut self, bytes: &[u8]) {
        if self.needs_quotes(bytes) {
            self.quoted(bytes);
        } else {
            self.plain(bytes);
        }
    }

    /// Appends a field the caller knows needs no quotes ([`RowText::needs_quotes`]).
    #[inline]
    pub fn plain(&mut self, bytes: &[u8]) {
        debug_assert!(!self.needs_quotes(bytes));
        self.separate();
        self.buf.extend_from_slice(bytes);
    }

    fn quoted(&mut self, bytes: &[u8]) {
        self.separate();
        let q = self.quote;
        self.buf.reserve(bytes.len() + 2);
        self.buf.push(q);
        for part in bytes.split_inclusive(|&b| b == q) {
            self.buf.extend_from_slice(part);
            if part.last() == Some(&q) {
                self.buf.push(q);
            }
        }
        self.buf.push(q);
    }

    /// Ends the row.
    #[inline]
    pub fn end_row(&mut self) {
        if self.fields == 1 && self.buf.len() == self.row_start {
            // One empty field alone: quoted, or the row would be a blank line.
            self.buf.extend_from_slice(&[self.quote, self.quote]);
        }
        self.buf.push(b'\n');
        self.row_start = self.buf.len();
        self.fields = 0;
    }

    /// The text of the rows ended so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.row_start]
    }

    /// Bytes of text held (ended rows and the row being written).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the ended rows (keeps a row being written), keeping at most
    /// `max_bytes` of buffer (what one large row made it grow to goes back).
    pub fn clear(&mut self, max_bytes: usize) {
        self.buf.drain(..self.row_start);
        self.row_start = 0;
        if self.buf.capacity() > max_bytes && self.buf.len() <= max_bytes {
            self.buf.shrink_to(max_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The dialect's csv crate writer (the pipeline's before), a fresh one
    /// per row: it holds every row of a file to the first row's width.
    fn csv_crate(dialect: Dialect, rows: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            let mut writer = dialect.writer(&mut out);
            writer.write_record(row).unwrap();
            writer.flush().unwrap();
        }
        out
    }

    fn ours(dialect: Dialect, rows: &[Vec<Vec<u8>>], plain_when_possible: bool) -> Vec<u8> {
        let mut text = RowText::new(dialect);
        for row in rows {
            for field in row {
                if plain_when_possible && !text.needs_quotes(field) {
                    text.plain(field);
                } else {
                    text.field(field);
                }
            }
            text.end_row();
        }
        text.as_bytes().to_vec()
    }

    #[test]
    fn fields_are_quoted_exactly_where_the_csv_crate_quotes_them() {
        let rows: Vec<Vec<Vec<u8>>> = vec![
            vec![b"a".to_vec(), b"b,c".to_vec(), b"say \"hi\"".to_vec(), b"x\ny".to_vec(), b"\r".to_vec()],
            vec![b"".to_vec()],
            vec![b"".to_vec(), b"".to_vec()],
            vec![b"0;5".to_vec(), b"\t".to_vec(), b"\xff\xfe".to_vec()],
        ];
        for dialect in [Dialect::default(), Dialect::with_delimiter(b';'), Dialect::with_delimiter(b'\t')] {
            assert_eq!(ours(dialect, &rows, false), csv_crate(dialect, &rows), "{dialect:?}");
        }
        let text = ours(Dialect::default(), &rows[..2], false);
        assert_eq!(text, b"a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\",\"\r\"\n\"\"\n");
    }

    proptest! {
        #[test]
        fn any_rows_are_written_as_the_csv_crate_writes_them(
            rows in prop::collection::vec(
                prop::collection::vec(
                    prop::collection::vec(prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(b'"'),
                        Just(b'\n'), Just(b'\r'), Just(b'a'), Just(b' '), Just(0xc3)], 0..6),
                    1..5),
                0..6),
            delimiter in prop::sample::select(vec![b',', b';', b'\t']),
            plain_when_possible: bool,
        ) {
            let dialect = Dialect::with_delimiter(delimiter);
            prop_assert_eq!(ours(dialect, &rows, plain_when_possible), csv_crate(dialect, &rows));
        }
    }

    #[test]
    fn clearing_keeps_the_row_being_written_and_gives_back_a_large_rows_memory() {
        let mut text = RowText::new(Dialect::default());
        text.field(&vec![b'x'; 100_000]);
        text.end_row();
        text.field(b"next");
        text.clear(4096);
        assert_eq!(text.as_bytes(), b"");
        text.end_row();
        assert_eq!(text.as_bytes(), b"next\n");
        text.clear(4096);
        assert!(text.buf.capacity() <= 4096, "{}", text.buf.capacity());
    }
}
