//! CSV records with memory bounded by bytes, whatever the file.
//!
//! The csv crate's reader grows a record to whatever the file holds: a quote
//! that never closes makes the rest of the file one field, a line of a million
//! commas a million field positions. Here its own parser, csv-core, is driven
//! directly, so this module decides how far a record may grow:
//!
//! - a record may take at most [`MAX_RECORD_BYTES`] of input, line breaks
//!   inside quoted fields and bare-CR line ends included;
//! - at most `max_fields` fields of a record are stored; the rest are counted
//!   and dropped;
//! - a quote still open at the end of the input is an error, not a record.
//!
//! Lines are counted as people count them (LF, CRLF and a bare CR each end
//! one), so errors name the line where the record starts. The parse itself is
//! csv-core's, byte for byte the csv crate's (a property test holds the two
//! side by side).

use std::io::{self, Read};

use csv_core::ReadRecordResult;

mod dialect;
mod fields;

pub use dialect::{without_bom, Dialect, DELIMITERS};
pub use fields::{Fields, Record, RecordSpan};

/// Most input bytes one record may take (its line end included).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Input read at a time (the csv crate's reader used the same).
const INPUT_BUFFER: usize = 256 * 1024;
/// Scratch for the fields of a record beyond `max_fields`, which are counted, not kept.
const DISCARD_BYTES: usize = 64 * 1024;
const DISCARD_FIELDS: usize = 1024;

/// Why the input cannot be read as records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the record starting on line {line} is longer than {MAX_RECORD_BYTES} bytes")]
    TooLong { line: u64 },
    #[error("the record starting on line {line} opens a quote that never closes")]
    UnterminatedQuote { line: u64 },
    #[error("{0}")]
    Read(#[source] io::Error),
}

/// The first line of `bytes` if it is plain: its length (up to its first CR
/// or LF) and how many delimiters it has; the end of each of its first
/// `ends.len()` fields, as it will be once the delimiters before it are
/// dropped, is written to `ends`. None when the line holds a quote or does
/// not end within `bytes`.
///
/// memchr's searches: a hand-written eight-bytes-at-a-time scan of the four
/// special bytes at once took ~90 more instructions a row on
/// benches/throughput.sh's file (callgrind).
#[inline]
fn scan_plain_line(bytes: &[u8], delimiter: u8, quote: u8, ends: &mut [usize]) -> Option<(usize, usize)> {
    let len = memchr::memchr2(b'\n', b'\r', bytes)?;
    let line = &bytes[..len];
    if memchr::memchr(quote, line).is_some() {
        return None;
    }
    let mut n = 0;
    for i in memchr::memchr_iter(delimiter, line) {
        if let Some(end) = ends.get_mut(n) {
            *end = i - n;
        }
        n += 1;
    }
    if let Some(end) = ends.get_mut(n) {
        *end = len - n;
    }
    Some((len, n))
}

/// Where the current record starts: a position in the buffer, or its line
/// once the buffer moved on (lines are counted lazily, a buffer at a time).
#[derive(Debug, Clone, Copy)]
enum Start {
    At(usize),
    Line(u64),
}

/// Line ends counted the way csv-core ends records: `\n`, `\r\n`, bare `\r`.
#[derive(Debug, Default)]
struct LineCount {
    ended: u64,
    after_cr: bool,
}

impl LineCount {
    fn count(&mut self, bytes: &[u8]) {
        let Some(&last) = bytes.last() else { return };
        if memchr::memchr(b'\r', bytes).is_none() {
            // No CR (most files): every LF ends a line but one right after a
            // CR at the end of the bytes before. Counted in byte-wide lanes
            // (255 bytes at most a lane), which the compiler vectorises: a
            // search per line end cost ~120 instructions a row, a count into
            // a usize ~460 (callgrind).
            let lf: u64 = bytes
                .chunks(255)
                .map(|chunk| u64::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
                .sum();
            self.ended += lf - u64::from(self.after_cr && bytes[0] == b'\n');
            self.after_cr = last == b'\r';
            return;
        }
        for i in memchr::memchr2_iter(b'\r', b'\n', bytes) {
            let after_cr = if i == 0 { self.after_cr } else { bytes[i - 1] == b'\r' };
            if bytes[i] == b'\r' || !after_cr {
                self.ended += 1;
            }
        }
        if let Some(&last) = bytes.last() {
            self.after_cr = last == b'\r';
        }
    }
}

/// What is left of a [`RecordReader`]'s input after the records it read.
pub struct Rest<R> {
    /// Bytes read ahead, not yet consumed.
    pub buffered: Vec<u8>,
    pub input: R,
    /// The input has ended: it is not to be read again.
    pub eof: bool,
    /// The line the next byte is on.
    pub line: u64,
    /// The byte before the next was `\r` (a `\n` next ends no line of its own).
    pub after_cr: bool,
}

/// Line ends in `bytes` as [`RecordReader`] counts lines (`\n`, `\r\n` and a
/// bare `\r` each end one); `after_cr`: the byte before `bytes` was `\r`.
pub fn line_ends(bytes: &[u8], after_cr: bool) -> u64 {
    let mut lines = LineCount { ended: 0, after_cr };
    lines.count(bytes);
    lines.ended
}

/// Reads records from `R` into [`Fields`], within the bounds above.
pub struct RecordReader<R> {
    input: R,
    parser: csv_core::Reader,
    /// The dialect's, for the fast path ([`RecordReader::plain_line`]).
    delimiter: u8,
    quote: u8,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Input bytes consumed so far.
    consumed: u64,
    lines: LineCount,
    /// `buf[..counted]` is in `lines`.
    counted: usize,
    start: Start,
    /// A record was asked for before.
    started: bool,
    discard: Vec<u8>,
    discard_ends: Vec<usize>,
}

impl<R: Read> RecordReader<R> {
    pub fn new(input: R, dialect: Dialect) -> Self {
        RecordReader {
            input,
            parser: dialect.parser(),
            delimiter: dialect.delimiter,
            quote: dialect.quote,
            buf: vec![0; INPUT_BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            consumed: 0,
            lines: LineCount::default(),
            counted: 0,
            start: Start::Line(1),
            started: false,
            discard: Vec::new(),
            discard_ends: Vec::new(),
        }
    }

    /// A reader that continues a file after a record boundary (issue 22's
    /// parallel pipeline gives each worker the records of one chunk): it
    /// skips line ends before its first record as it would between records,
    /// and never strips a byte-order mark (csv-core strips one only at the
    /// very start of what it is given; one after a boundary is data). Lines
    /// are counted from 1 at the start of `input`.
    pub fn after_boundary(input: R, dialect: Dialect) -> Self {
        let mut reader = RecordReader::new(input, dialect);
        // A line end at the start of a record is skipped by csv-core, which
        // then counts as having read: no mark is stripped after this.
        let _ = reader.parser.read_record(b"\n", &mut [0], &mut [0]);
        reader.started = true;
        reader
    }

    /// What is left after the records read so far (see [`Rest`]).
    pub fn into_rest(mut self) -> Rest<R> {
        let line = self.line_at(self.pos);
        let after_cr = if self.pos > 0 { self.buf[self.pos - 1] == b'\r' } else { self.lines.after_cr };
        Rest { buffered: self.buf[self.pos..self.end].to_vec(), input: self.input, eof: self.eof, line, after_cr }
    }

    /// Input bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.consumed
    }

    /// Reads the next record, storing at most `max_fields` of its fields
    /// (at least one) in `out`. `Ok(None)` at the end of the input.
    pub fn read_record(&mut self, out: &mut Fields, max_fields: usize) -> Result<Option<RecordSpan>, RecordError> {
        let max_fields = max_fields.max(1);
        // The first record goes through csv-core: it strips a byte-order mark there.
        let first = !self.started;
        if first {
            self.fill_first()?;
        }
        // Blank lines between records: csv-core would skip them too; skipping
        // them here keeps them out of the record's size and start line. Not
        // before the first record: csv-core strips a byte-order mark only at
        // the very start of what it is given.
        while self.started {
            let rest = &self.buf[self.pos..self.end];
            let blank = rest.iter().position(|&b| b != b'\n' && b != b'\r').unwrap_or(rest.len());
            self.pos += blank;
            self.consumed += blank as u64;
            if self.pos < self.end || !self.refill()? {
                break;
            }
        }
        self.started = true;
        self.start = Start::At(self.pos);
        out.reserve_ends(max_fields);
        if !first {
            if let Some(span) = self.plain_line(out, max_fields) {
                return Ok(Some(span));
            }
        }
        let data_start = out.used;
        let first_end = out.ends_used;
        let (mut stored, mut dropped, mut taken) = (0usize, 0usize, 0usize);
        // At the end of the input, a pending record is first given a line end:
        // outside a quoted field that ends it exactly as the end of input
        // would; inside one it does not, and the end of input then still
        // yields a record: the quote never closed. (csv-core keeps its state
        // to itself, and its Reader::clone does not copy the parser tables.)
        let mut line_end_given = false;
        loop {
            if self.pos == self.end && !self.eof {
                self.refill()?;
                continue;
            }
            let at_end = self.pos == self.end;
            let give_line_end = at_end && taken > 0 && !line_end_given;
            line_end_given |= give_line_end;
            let input = if give_line_end {
                &b"\n"[..]
            } else {
                // Never hand csv-core more than one byte past the cap.
                &self.buf[self.pos..self.end.min(self.pos + MAX_RECORD_BYTES + 1 - taken)]
            };
            let (result, nin) = if stored < max_fields {
                if out.used == out.bytes.len() {
                    out.grow_bytes(data_start);
                }
                let ends = &mut out.ends[first_end + stored..first_end + max_fields];
                let (result, nin, nout, nend) = self.parser.read_record(input, &mut out.bytes[out.used..], ends);
                out.used += nout;
                stored += nend;
                (result, nin)
            } else {
                if self.discard.is_empty() {
                    self.discard = vec![0; DISCARD_BYTES];
                    self.discard_ends = vec![0; DISCARD_FIELDS];
                }
                let (result, nin, _, nend) = self.parser.read_record(input, &mut self.discard, &mut self.discard_ends);
                dropped += nend;
                (result, nin)
            };
            if !at_end {
                self.pos += nin;
                self.consumed += nin as u64;
                taken += nin;
                if taken > MAX_RECORD_BYTES {
                    return Err(RecordError::TooLong { line: self.start_line() });
                }
            }
            match result {
                ReadRecordResult::Record if at_end && !give_line_end && line_end_given => {
                    return Err(RecordError::UnterminatedQuote { line: self.start_line() });
                }
                ReadRecordResult::Record => {
                    out.ends_used += stored;
                    return Ok(Some(RecordSpan { data_start, first_end, stored, fields: stored + dropped }));
                }
                ReadRecordResult::End => return Ok(None),
                // More input, more room for bytes, or (ends full) the rest is dropped: go on.
                ReadRecordResult::InputEmpty | ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
            }
        }
    }

    /// The fast path for the common record: a whole line in the buffer with
    /// no quote in it. Such a line is its fields between delimiters, which
    /// is exactly how csv-core reads it (no quote: no quoted field, no
    /// escape; its line end ends the record), so it is split here with a
    /// vectorised search (memchr) instead of csv-core's byte-at-a-time
    /// state machine: callgrind measured ~1,240 instructions a row in
    /// csv-core on benches/throughput.sh's file. Anything else (a quote, a
    /// line not yet whole in the buffer, the end of input) is None: csv-core
    /// reads it, as before. Called at a record's start only, where csv-core
    /// is between records too, so its state needs no update. `out` has room
    /// for `max_fields` positions.
    #[inline]
    fn plain_line(&mut self, out: &mut Fields, max_fields: usize) -> Option<RecordSpan> {
        let rest = &self.buf[self.pos..self.end];
        let data_start = out.used;
        let first_end = out.ends_used;
        // Each stored field's end goes straight into `out.ends`.
        let ends = &mut out.ends[first_end..first_end + max_fields];
        let (len, delimiters) = scan_plain_line(rest, self.delimiter, self.quote, ends)?;
        // The line end counts towards the record's bytes, as in csv-core's path.
        if len >= MAX_RECORD_BYTES {
            return None;
        }
        let stored = (delimiters + 1).min(max_fields);
        let line = &rest[..len];
        if out.bytes.len() < data_start + len {
            // The line's fields are shorter than the line: within grow_bytes' bound.
            let most = data_start + MAX_RECORD_BYTES + 1;
            out.bytes.resize((2 * out.bytes.len()).max(4096).min(most).max(data_start + len), 0);
        }
        // Field k is line[end(k-1) + k..end(k) + k]: k delimiters come before it.
        let mut from = 0;
        for (k, &end) in out.ends[first_end..first_end + stored].iter().enumerate() {
            out.bytes[data_start + from..data_start + end].copy_from_slice(&line[from + k..end + k]);
            from = end;
        }
        let to = data_start + from;
        out.used = to;
        out.ends_used += stored;
        self.pos += len + 1;
        self.consumed += len as u64 + 1;
        Some(RecordSpan { data_start, first_end, stored, fields: delimiters + 1 })
    }

    fn start_line(&mut self) -> u64 {
        match self.start {
            Start::Line(line) => line,
            Start::At(pos) => self.line_at(pos),
        }
    }

    /// The line `buf[pos]` is on (`pos` at or after what was counted).
    fn line_at(&mut self, pos: usize) -> u64 {
        self.lines.count(&self.buf[self.counted..pos]);
        self.counted = pos;
        self.lines.ended + 1
    }

    /// The first read: at least four bytes (or the whole input), so csv-core
    /// sees a byte-order mark whole and never mistakes one for the end of input.
    fn fill_first(&mut self) -> Result<(), RecordError> {
        while self.end < 4 {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) => return Err(RecordError::Read(e)),
            }
        }
        Ok(())
    }

    /// Replaces the (fully consumed) buffer with the next input. False at the end.
    /// Every read error ends the file, `Interrupted` included, as with the csv
    /// crate: the S3 path stops a read that way at its deadline, and retrying
    /// would meet an end of input that is not the end of the file.
    fn refill(&mut self) -> Result<bool, RecordError> {
        if self.eof {
            return Ok(false);
        }
        if let Start::At(pos) = self.start {
            self.start = Start::Line(self.line_at(pos));
        }
        self.line_at(self.end);
        (self.pos, self.end, self.counted) = (0, 0, 0);
        let n = self.input.read(&mut self.buf).map_err(RecordError::Read)?;
        self.end = n;
        self.eof = n == 0;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hands out the input a few bytes at a time, to cross every buffer boundary.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Each record's stored fields and its field count.
    type Records = Vec<(Vec<Vec<u8>>, usize)>;

    fn records(input: &[u8], step: usize, max_fields: usize) -> Result<Records, RecordError> {
        let mut reader = RecordReader::new(Trickle { data: input, step }, Dialect::default());
        let mut fields = Fields::default();
        let mut all = Vec::new();
        while let Some(record) = reader.read_record(&mut fields, max_fields)? {
            all.push((fields.iter(&record).map(<[u8]>::to_vec).collect(), record.fields));
        }
        assert_eq!(reader.bytes_read(), input.len() as u64);
        Ok(all)
    }

    /// The csv crate's reading of the same bytes: the reference.
    fn csv_crate(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
        reader.byte_records().map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect()).collect()
    }

    fn line_of(err: RecordError) -> (&'static str, u64) {
        match err {
            RecordError::TooLong { line } => ("too long", line),
            RecordError::UnterminatedQuote { line } => ("unterminated", line),
            RecordError::Read(e) => panic!("{e}"),
        }
    }

    #[test]
    fn lf_crlf_and_cr_line_ends_read_the_same_records() {
        let lf = b"a,b\n\"x\ny\",2\n\n3,\"q\"\"\"\n";
        let crlf = b"a,b\r\n\"x\ny\",2\r\n\r\n3,\"q\"\"\"\r\n";
        let cr = b"a,b\r\"x\ny\",2\r\r3,\"q\"\"\"\r";
        for step in [1, 2, 3, 1000] {
            let want = records(lf, step, 10).unwrap();
            assert_eq!(want.len(), 3);
            assert_eq!(records(crlf, step, 10).unwrap(), want);
            assert_eq!(records(cr, step, 10).unwrap(), want);
        }
    }

    #[test]
    fn a_quote_that_never_closes_names_the_line_where_its_record_starts() {
        for (input, line) in [
            (&b"h1,h2\n1,2\n3,\"open\n4,5\n6,7\n"[..], 3),
            (b"h1,h2\r1,2\r\r3,\"open\r4,5\r", 4),
            (b"h1,h2\r\n1,\"two\r\nlines\"\r\n3,\"open\r\n4", 4),
            (b"\"never", 1),
        ] {
            for step in [1, 5, 1000] {
                let read = records(input, step, 10);
                assert!(read.is_err(), "{input:?} {step} {read:?}");
                assert_eq!(line_of(read.unwrap_err()), ("unterminated", line), "{input:?}");
            }
        }
        // A quote closed at the very end is fine, and so is one that ends a field mid-record.
        assert_eq!(records(b"a,\"b\nc\"", 1, 10).unwrap().len(), 1);
        assert_eq!(records(b"a,\"b\"c\n", 1, 10).unwrap()[0].0, [b"a".to_vec(), b"bc".to_vec()]);
    }

    #[test]
    fn a_record_over_the_cap_names_its_first_line_whatever_hides_its_line_ends() {
        let long = "x".repeat(MAX_RECORD_BYTES);
        let cases = [
            format!("h\n1\n\n{long}\n"),
            format!("h\n1\n\n\"{}\"\n", "y\n".repeat(MAX_RECORD_BYTES / 2)),
            format!("h\r1\r\r\"{}\"\r", "y\r".repeat(MAX_RECORD_BYTES / 2)),
            format!("h\r\n1\r\n\r\n\"open{long}"),
        ];
        for case in &cases {
            assert_eq!(line_of(records(case.as_bytes(), 100_000, 10).unwrap_err()), ("too long", 4));
        }
        // Exactly at the cap (line end included) is allowed.
        let fits = format!("h\n{}\n", "z".repeat(MAX_RECORD_BYTES - 1));
        let read = records(fits.as_bytes(), 100_000, 10).unwrap();
        assert_eq!(read[1].0[0].len(), MAX_RECORD_BYTES - 1);
    }

    #[test]
    fn fields_beyond_the_limit_are_counted_not_stored() {
        let mut input = b"a,b\n".to_vec();
        input.extend(std::iter::repeat_n(b',', 1_000_000));
        input.extend(b"\nc,d\n");
        let mut reader = RecordReader::new(&input[..], Dialect::default());
        let mut fields = Fields::default();
        let mut spans = Vec::new();
        while let Some(span) = reader.read_record(&mut fields, 3).unwrap() {
            spans.push(span);
        }
        assert_eq!(spans.iter().map(|s| s.fields).collect::<Vec<_>>(), [2, 1_000_001, 2]);
        assert_eq!(fields.ends_used, 2 + 3 + 2);
        assert!(fields.allocated_bytes() < 64 * 1024, "{} bytes allocated", fields.allocated_bytes());
        assert_eq!(fields.iter(&spans[2]).collect::<Vec<_>>(), [b"c", b"d"]);
    }

    #[test]
    fn header_cells_lose_every_leading_byte_order_mark_and_nothing_else() {
        assert_eq!(without_bom(b"\xef\xbb\xbfworst area"), b"worst area");
        assert_eq!(without_bom(b"\xef\xbb\xbf\xef\xbb\xbfid"), b"id");
        assert_eq!(without_bom(b"id\xef\xbb\xbf"), b"id\xef\xbb\xbf");
        assert_eq!(without_bom(b"\xef\xbbid"), b"\xef\xbbid", "half a mark is data");
        assert_eq!(without_bom(b""), b"");
    }

    #[test]
    fn a_byte_order_mark_is_stripped_even_when_it_arrives_a_byte_at_a_time() {
        let input = b"\xef\xbb\xbf\"a, b\",c\n1,2\n";
        assert_eq!(records(input, 1, 10).unwrap()[0].0, [b"a, b".to_vec(), b"c".to_vec()]);
        assert!(records(b"\xef\xbb\xbf", 1, 10).unwrap().is_empty());
    }

    #[test]
    fn the_delimiter_is_the_one_found_most_often_outside_quotes_in_the_header() {
        let detect = |head: &[u8]| Dialect::detect(head).delimiter;
        assert_eq!(detect(b"id,worst area,worst radius\n1;2;3;4;5\n"), b',');
        assert_eq!(detect(b"id;worst area (mm2);\"a,b,c\"\r\n1,5;2,5\r\n"), b';');
        assert_eq!(detect(b"id\tworst area\tx,y\n"), b'\t');
        assert_eq!(detect(b"\"a;b;c\",d\n"), b',');
        assert_eq!(detect(b"one column\n"), b',');
        assert_eq!(detect(b""), b',');
        assert_eq!(detect(b"a;b,c\n"), b',', "a tie goes to the comma");
        assert!(Dialect::detect(b"a;b").decimal_comma());
        assert!(!Dialect::detect(b"a\tb").decimal_comma());
        assert_eq!(Dialect::with_delimiter(b'\t').delimiter_name(), "tab");
        assert_eq!(Dialect::default().delimiter_name(), "','");
        for (text, want) in [(",", b','), (";", b';'), ("tab", b'\t'), ("TAB", b'\t'), ("\\t", b'\t'), ("\t", b'\t')] {
            assert_eq!(Dialect::parse_delimiter(text), Ok(want), "{text}");
        }
        for bad in ["|", "", " ", ",,", "comma"] {
            assert!(Dialect::parse_delimiter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shrinking_gives_back_what_a_large_record_took() {
        let input = format!("a\n\"{}\"\nb\n", "n".repeat(900_000));
        let mut reader = RecordReader::new(input.as_bytes(), Dialect::default());
        let mut fields = Fields::default();
        while reader.read_record(&mut fields, 2).unwrap().is_some() {}
        assert!(fields.allocated_bytes() > 900_000);
        fields.shrink_to(64 * 1024);
        assert!(fields.allocated_bytes() <= 64 * 1024);
    }

    fn csvish() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'a'), Just(b' '), Just(0xef)],
            0..200,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Same records as the csv crate for every input it reads to the end
        /// with every quote closed; an open quote is the only difference.
        /// The same with few quotes and steps up to whole lines, so records go
        /// through the fast path (plain_line) and csv-core by turns.
        #[test]
        fn plain_lines_read_exactly_what_the_csv_crate_reads(
            input in prop::collection::vec(
                prop_oneof![4 => Just(b','), 3 => Just(b'\n'), 1 => Just(b'\r'), 6 => Just(b'a'), 1 => Just(b' '),
                    1 => Just(b'"'), 1 => Just(0xef)],
                0..400,
            ),
            step in prop_oneof![1usize..9, 9usize..400],
            max_fields in 1usize..6,
        ) {
            match records(&input, step, max_fields) {
                Ok(read) => {
                    let want = csv_crate(&input);
                    prop_assert_eq!(read.len(), want.len());
                    for ((fields, n), want) in read.into_iter().zip(want) {
                        prop_assert_eq!(n, want.len());
                        prop_assert_eq!(&fields[..], &want[..want.len().min(max_fields)]);
                    }
                }
                Err(RecordError::UnterminatedQuote { .. }) => prop_assert!(input.contains(&b'"')),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        /// Lines counted a piece at a time are the lines of the whole: LF,
        /// CRLF and a bare CR each end one, a CRLF split between two pieces too.
        #[test]
        fn lines_are_counted_alike_however_the_input_is_cut(
            input in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..64),
            cuts in prop::collection::vec(0usize..64, 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut counted = LineCount::default();
            let mut from = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                counted.count(&input[from..cut]);
                from = cut;
            }
            let want = input.iter().enumerate().filter(|&(i, &b)| b == b'\r' || (b == b'\n' && (i == 0 || input[i - 1] != b'\r'))).count();
            prop_assert_eq!(counted.ended, want as u64);
        }

        #[test]
        fn reads_exactly_what_the_csv_crate_reads(input in csvish(), step in 1usize..9) {
            match records(&input, step, 1000) {
                Ok(read) => {
                    let read: Vec<Vec<Vec<u8>>> = read.into_iter().map(|(f, n)| { assert_eq!(f.len(), n); f }).collect();
                    prop_assert_eq!(read, csv_crate(&input));
                }
                Err(RecordError::UnterminatedQuote { .. }) => prop_assert!(input.contains(&b'"')),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
