//! The batch pipeline: CSV bytes in, scored CSV bytes out, streamed row by row.
//!
//! Every batch entry point (S3 objects, local files, stdin) calls
//! [`score_csv`]. Rows go through the same [`Observation::from_inputs`] and
//! [`Model::predict`] as the HTTP path. Each input row appears exactly once in
//! the output, in order, with its original columns plus `prediction`,
//! `probability`, `status` and `reason`; a bad row is a row with status 400,
//! never an aborted file. Only a file that is unusable as a whole (not CSV, no
//! header, a needed column missing, a read error) fails.
//!
//! Memory is bounded: one reused record, the csv crate's buffers, and a guard
//! on line length. Nothing is allocated per row on the happy path.

use std::io::{self, Read, Write};

use csv::ByteRecord;

use super::model::{Model, Prediction};
use super::observation::{feature_by_header, FieldInput, Observation, FEATURES, FEATURE_COUNT};

/// Longest physical line accepted; longer means this is not a CSV of measurements.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Most columns accepted in the header.
pub const MAX_COLUMNS: usize = 10_000;
/// Columns appended to every row.
pub const RESULT_COLUMNS: [&str; 4] = ["prediction", "probability", "status", "reason"];

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

/// Why a whole file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the file is empty: a header row is needed")]
    Empty,
    #[error("the header has no column for: {}; columns are matched by API name (e.g. worstArea) or dataset name (e.g. \"worst area\"), ignoring case", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    #[error("the header has more than one column for {0}")]
    DuplicateColumn(&'static str),
    #[error("the header has {0} columns; at most {MAX_COLUMNS} are accepted")]
    TooManyColumns(usize),
    #[error("line {line} is longer than {MAX_LINE_BYTES} bytes: this is not a CSV of measurements")]
    LineTooLong { line: u64 },
    #[error("reading the input failed: {0}")]
    Read(#[source] io::Error),
    #[error("writing the output failed: {0}")]
    Write(#[source] io::Error),
    #[error("the input is not readable CSV (record {record}, line {line}): {kind}")]
    Csv { record: u64, line: u64, kind: String },
}

impl BatchError {
    /// True when the file itself is at fault (retrying cannot help).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, BatchError::Read(_) | BatchError::Write(_))
    }
}

/// Rows handed from the reading thread to the writing thread at a time.
const BATCH_ROWS: usize = 4096;

/// What happened to one row.
#[derive(Debug, Clone, Copy)]
enum RowOutcome {
    Scored(Prediction),
    /// Rejected, with its reason code; the text is in `Batch::reasons`.
    Rejected(&'static str),
}

/// A reusable block of rows: records, outcomes and reasons keep their
/// allocations from one use to the next, so steady state allocates nothing.
#[derive(Default)]
struct Batch {
    records: Vec<ByteRecord>,
    outcomes: Vec<RowOutcome>,
    reasons: Vec<String>,
    len: usize,
    /// Bytes read when the batch's last row ended.
    bytes: u64,
}

/// Scores a CSV stream. `progress` is called now and then with bytes read so far.
///
/// Two threads: one reads, parses and predicts, the other formats and writes,
/// handing blocks of rows over a small bounded channel (memory stays bounded).
pub fn score_csv<R: Read + Send, W: Write>(
    model: &Model,
    input: R,
    output: W,
    mut progress: impl FnMut(u64),
) -> Result<BatchCounts, BatchError> {
    let guard = LineGuard { inner: input, since_newline: 0, lines: 0 };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(256 * 1024).from_reader(guard);
    let mut writer = csv::WriterBuilder::new().buffer_capacity(256 * 1024).from_writer(output);

    let mut header = ByteRecord::new();
    if !reader.read_byte_record(&mut header).map_err(|e| csv_error(e, reader.get_ref()))? {
        return Err(BatchError::Empty);
    }
    let columns = match_columns(&header)?;
    let width = header.len();
    for (i, field) in header.iter().enumerate() {
        // csv-core strips a BOM only when it arrives whole; be sure.
        let field = if i == 0 { field.strip_prefix(b"\xef\xbb\xbf").unwrap_or(field) } else { field };
        writer.write_field(field).map_err(write_error)?;
    }
    writer.write_record(RESULT_COLUMNS).map_err(write_error)?;

    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Batch, BatchError>>(2);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || loop {
            let mut batch = empty_rx.try_recv().unwrap_or_default();
            let filled = fill(&mut reader, &mut batch, model, &columns, width);
            let done = !matches!(filled, Ok(true));
            let sent = match filled {
                Ok(_) if batch.len == 0 => Ok(()),
                Ok(_) => full_tx.send(Ok(batch)),
                Err(e) => full_tx.send(Err(e)),
            };
            if done || sent.is_err() {
                return reader.position().byte();
            }
        });
        let mut counts = BatchCounts::default();
        let written = write_batches(&mut writer, &full_rx, &empty_tx, width, &mut counts, &mut progress);
        // Unblock the reader if the writer stopped first, then collect it.
        drop(full_rx);
        let bytes = reading.join().map_err(|_| BatchError::Read(io::Error::other("the reading thread failed")))?;
        written?;
        writer.flush().map_err(BatchError::Write)?;
        counts.bytes_in = bytes;
        progress(bytes);
        Ok(counts)
    })
}

/// Reads up to BATCH_ROWS rows into `batch` and scores them. Ok(false) at the end of input.
fn fill<R: Read>(
    reader: &mut csv::Reader<LineGuard<R>>,
    batch: &mut Batch,
    model: &Model,
    columns: &[usize; FEATURE_COUNT],
    width: usize,
) -> Result<bool, BatchError> {
    batch.len = 0;
    while batch.len < BATCH_ROWS {
        if batch.records.len() == batch.len {
            batch.records.push(ByteRecord::new());
            batch.outcomes.push(RowOutcome::Rejected(""));
            batch.reasons.push(String::new());
        }
        let record = &mut batch.records[batch.len];
        if !reader.read_byte_record(record).map_err(|e| csv_error(e, reader.get_ref()))? {
            return Ok(false);
        }
        batch.bytes = record.position().map_or(batch.bytes, |p| p.byte());
        let reason = &mut batch.reasons[batch.len];
        reason.clear();
        batch.outcomes[batch.len] = if record.len() != width {
            use std::fmt::Write as _;
            let _ = write!(reason, "the row has {} fields but the header has {width}", record.len());
            RowOutcome::Rejected("wrong_field_count")
        } else {
            let inputs: [FieldInput; FEATURE_COUNT] = std::array::from_fn(|f| cell(record, columns[f]));
            match Observation::from_inputs(&inputs) {
                Ok(observation) => RowOutcome::Scored(model.predict(&observation)),
                Err(rejection) => {
                    rejection.write_field_messages(reason);
                    RowOutcome::Rejected(rejection.errors()[0].problem.code())
                }
            }
        };
        batch.len += 1;
    }
    Ok(true)
}

/// Writes scored batches in order and returns their buffers to the reader.
fn write_batches<W: Write>(
    writer: &mut csv::Writer<W>,
    full: &std::sync::mpsc::Receiver<Result<Batch, BatchError>>,
    empty: &std::sync::mpsc::SyncSender<Batch>,
    width: usize,
    counts: &mut BatchCounts,
    progress: &mut impl FnMut(u64),
) -> Result<(), BatchError> {
    let mut out = ByteRecord::with_capacity(256, width + RESULT_COLUMNS.len());
    let mut number = ryu::Buffer::new();
    for batch in full.iter() {
        let batch = batch?;
        for i in 0..batch.len {
            let record = &batch.records[i];
            counts.rows += 1;
            // Original columns, padded to the header's width so the output stays
            // rectangular (a longer row's extra fields cannot be placed). One
            // reused record: write_byte_record copies fields that need no
            // quoting straight into the buffer.
            out.clear();
            for j in 0..width {
                out.push_field(record.get(j).unwrap_or(b""));
            }
            match batch.outcomes[i] {
                RowOutcome::Scored(p) => {
                    counts.scored += 1;
                    counts.malignant += u64::from(p.label);
                    out.push_field(if p.label == 1 { b"1" } else { b"0" });
                    out.push_field(number.format_finite(p.probability).as_bytes());
                    out.push_field(b"200");
                    out.push_field(b"OK");
                }
                RowOutcome::Rejected(code) => {
                    counts.rejected += 1;
                    *counts.rejected_by_reason.entry(code).or_default() += 1;
                    out.push_field(b"");
                    out.push_field(b"");
                    out.push_field(b"400");
                    out.push_field(batch.reasons[i].as_bytes());
                }
            }
            writer.write_byte_record(&out).map_err(write_error)?;
        }
        progress(batch.bytes);
        // The reader makes a new batch if this one cannot be returned.
        let _ = empty.try_send(batch);
    }
    Ok(())
}

fn cell(record: &ByteRecord, column: usize) -> FieldInput<'_> {
    match record.get(column) {
        None | Some(b"") => FieldInput::Missing,
        // Not UTF-8 cannot be a number; the cell's text is never echoed.
        Some(bytes) => FieldInput::Text(std::str::from_utf8(bytes).unwrap_or("\u{fffd}")),
    }
}

fn match_columns(header: &ByteRecord) -> Result<[usize; FEATURE_COUNT], BatchError> {
    if header.len() > MAX_COLUMNS {
        return Err(BatchError::TooManyColumns(header.len()));
    }
    let mut columns = [usize::MAX; FEATURE_COUNT];
    for (i, raw) in header.iter().enumerate() {
        let raw = if i == 0 { raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw) } else { raw };
        let Ok(name) = std::str::from_utf8(raw) else { continue };
        if let Some(f) = feature_by_header(name) {
            if columns[f] != usize::MAX {
                return Err(BatchError::DuplicateColumn(FEATURES[f].api_name));
            }
            columns[f] = i;
        }
    }
    let missing: Vec<&'static str> =
        (0..FEATURE_COUNT).filter(|&f| columns[f] == usize::MAX).map(|f| FEATURES[f].api_name).collect();
    if missing.is_empty() {
        Ok(columns)
    } else {
        Err(BatchError::MissingColumns(missing))
    }
}

fn write_error(e: csv::Error) -> BatchError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => BatchError::Write(io),
        other => BatchError::Write(io::Error::other(format!("{other:?}"))),
    }
}

fn csv_error<R>(e: csv::Error, guard: &LineGuard<R>) -> BatchError {
    let position = e.position().cloned();
    match e.into_kind() {
        csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<LineTooLong>()) => {
            BatchError::LineTooLong { line: guard.lines + 1 }
        }
        csv::ErrorKind::Io(io) => BatchError::Read(io),
        kind => BatchError::Csv {
            record: position.as_ref().map_or(0, |p| p.record()),
            line: position.as_ref().map_or(0, |p| p.line()),
            // Kinds here are structural (lengths, UTF-8 offsets): no cell content.
            kind: match kind {
                csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_owned(),
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                    format!("{len} fields where {expected_len} were expected")
                }
                _ => "malformed record".to_owned(),
            },
        },
    }
}

#[derive(Debug)]
struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a line is longer than {MAX_LINE_BYTES} bytes")
    }
}

impl std::error::Error for LineTooLong {}

/// Fails the read as soon as a physical line grows past [`MAX_LINE_BYTES`],
/// so no single record can take unbounded memory.
struct LineGuard<R> {
    inner: R,
    since_newline: usize,
    lines: u64,
}

impl<R: Read> Read for LineGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        match memchr::memrchr(b'\n', chunk) {
            Some(last) => {
                // Lines wholly inside this chunk are shorter than the chunk.
                let first = memchr::memchr(b'\n', chunk).unwrap_or(last);
                if self.since_newline + first > MAX_LINE_BYTES {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, LineTooLong));
                }
                self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
                self.since_newline = n - last - 1;
            }
            None => self.since_newline += n,
        }
        if self.since_newline > MAX_LINE_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, LineTooLong));
        }
        Ok(n)
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
        assert_eq!(lines[0], format!("{HEADER},prediction,probability,status,reason"));
        assert!(lines[1].starts_with("S1,0.1471,25.38,17.33,2019.0,0.2654,1,0.9"), "{}", lines[1]);
        assert!(lines[1].ends_with(",200,OK"));
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
        assert!(out.starts_with("\"Sample, ID\",WORSTAREA , worstRadius"), "{out}");
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
        input.extend(std::iter::repeat_n(b'7', MAX_LINE_BYTES + 10));
        assert!(matches!(score(&input).unwrap_err(), BatchError::LineTooLong { line: 2 }));
    }

    #[test]
    fn rows_never_echo_bad_values_in_reasons() {
        let input = format!("{HEADER}\nA,0.1,20,secret-1234,900,0.1\n");
        let (out, _) = score(input.as_bytes()).unwrap();
        let reason_column = out.lines().nth(1).unwrap().rsplit(',').next().unwrap();
        assert!(!reason_column.contains("secret"));
    }
}
