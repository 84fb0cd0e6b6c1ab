//! The CSV pipeline: CSV bytes in, scored CSV bytes out, streamed row by row.
//!
//! Every route that scores a file (S3 objects, local files, stdin) calls
//! [`score_csv_with`]. Rows go through the same [`Observation::from_inputs`]
//! and [`Scorer`] as every other route. Each input row appears exactly once
//! in the output, in order, with its original columns plus `prediction`,
//! `probability`, `status`, `reason` and `warnings`; a bad row is a row with
//! status 400, never an aborted file. Only a file that is unusable as a whole
//! (not CSV, no header, a needed column missing, a record over
//! [`MAX_RECORD_BYTES`], a quote that never closes, a read error) fails.
//!
//! Memory is bounded by bytes, whatever the file: records are read by
//! [`RecordReader`] (at most [`MAX_RECORD_BYTES`] each, no more fields stored
//! than the header has plus one), and rows travel in reused blocks bounded by
//! rows and by bytes. Nothing is allocated per row on the happy path.
//!
//! Here: the options, the header, and the two threads. [`error`] holds why a
//! file fails, [`counts`] what its rows came to, `block` the blocks and their
//! bounds, `rows` reading and scoring rows, `output` writing them.
//!
//! [`Observation::from_inputs`]: crate::core::observation::Observation::from_inputs

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

mod block;
mod chunks;
pub mod counts;
pub mod error;
mod output;
mod parallel;
mod rows;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workers_tests;

use block::{Block, BLOCKS_QUEUED};
pub use counts::BatchCounts;
pub use error::{BatchError, HeaderMismatch};
use output::{write_blocks, write_header, ExplainColumns, NumberText, RowFormat};
pub use output::{BASE_VALUE_COLUMN, CONTRIBUTION_PREFIX, RESULT_COLUMNS};
pub use rows::{cell as cell_input, fits_header, WRONG_FIELD_COUNT};
use rows::{fill, Rules};

use super::challenger::ChallengerStats;
use super::columns::match_names;
pub use super::csv_reader::MAX_RECORD_BYTES;
use super::csv_reader::{without_bom, Dialect, Fields, RecordReader};
use super::csv_text::RowText;
use super::drift::DriftStats;
use super::features::Features;
use super::model::Model;
use super::scoring::{Scorer, Tallies, Wants};
use super::text::{field_text, utf8_reader, Counted, InputEncoding};

/// Most columns accepted in the header.
pub const MAX_COLUMNS: usize = 10_000;
/// Input bytes read before anything else, to find the encoding and the delimiter.
const SNIFF_BYTES: usize = 64 * 1024;

/// How one file is scored: what each entry point chooses (CLI flags, the
/// Lambda environment, a message's or an item's fields). Every route that
/// scores files builds one and calls [`score_csv_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Append `base_value` and `contribution_<apiName>` columns.
    pub explain: bool,
    /// Gather the drift statistics (on by default).
    pub drift: bool,
    /// The field delimiter; `None` detects it from the header.
    pub delimiter: Option<u8>,
    /// Workers that parse and score chunks of the file in parallel; 1 (the
    /// default here) reads and scores on one thread and writes on another.
    /// The entry points default to [`available_workers`].
    pub workers: usize,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { explain: false, drift: true, delimiter: None, workers: 1 }
    }
}

/// Most workers a file is scored on (more only adds memory: see `parallel`).
pub const MAX_WORKERS: usize = 64;

/// The entry points' default worker count: the cores this process may run
/// on (`std::thread::available_parallelism`: the CPU affinity mask and the
/// cgroup quota included; Lambda's vCPUs), 1 when that cannot be told.
pub fn available_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS)
}

/// A worker count as the edges take it (a flag, a setting): a whole number
/// from 1 to [`MAX_WORKERS`].
pub fn parse_workers(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!("the worker count must be a whole number from 1 to {MAX_WORKERS}, not {text:?}")),
    }
}

/// What scoring one file produced besides the output: its counts and, when
/// asked for, the drift statistics of its scored rows; with a challenger, how
/// it compared.
#[derive(Debug, Clone)]
pub struct ScoreOutcome {
    pub counts: BatchCounts,
    pub drift: Option<DriftStats>,
    pub challenger: Option<ChallengerStats>,
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
///
/// A panic on the way (the pipeline's code, or the `input`'s or `output`'s)
/// is [`BatchError::Internal`], not the caller's panic: its message is
/// dropped unread (it could quote a cell), and the output is left partial,
/// as after any error.
pub fn score_csv_with<R: Read + Send, W: Write>(
    model: &Model,
    input: R,
    output: W,
    options: &ScoreOptions,
    progress: impl FnMut(u64),
) -> Result<ScoreOutcome, BatchError> {
    score_csv_shadowed(model, None, input, output, options, progress)
}

/// [`score_csv_with`], each scored row also scored by `challenger` in shadow
/// ([`Scorer::with_challenger`]): the output is the same, byte for byte.
pub fn score_csv_shadowed<R: Read + Send, W: Write>(
    model: &Model,
    challenger: Option<&Model>,
    input: R,
    output: W,
    options: &ScoreOptions,
    progress: impl FnMut(u64),
) -> Result<ScoreOutcome, BatchError> {
    // Nothing is used after a panic but the error: unwind safety holds.
    panic::catch_unwind(AssertUnwindSafe(|| pipeline(model, challenger, input, output, options, progress)))
        .unwrap_or(Err(BatchError::Internal { row: None }))
}

fn pipeline<R: Read + Send, W: Write>(
    model: &Model,
    challenger: Option<&Model>,
    input: R,
    mut output: W,
    options: &ScoreOptions,
    mut progress: impl FnMut(u64),
) -> Result<ScoreOutcome, BatchError> {
    let explain = options.explain;
    // Refuses `explain` of a model that cannot explain before anything is read or written.
    let scorer = Scorer::new(model, Wants { explain, drift: options.drift })?.with_challenger(challenger);
    // The input's own bytes, for progress and the counts (UTF-16 decodes to fewer).
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let counted = Counted { inner: input, count: Arc::clone(&raw_bytes) };
    let CsvInput { reader, dialect, encoding, output_bom, names, width } = open_csv(counted, options.delimiter)?;
    let transcoded = !matches!(encoding, InputEncoding::Utf8 { .. });
    let raw = Arc::clone(&raw_bytes);
    let input_bytes = move |reader: &RecordReader<_>| {
        if transcoded {
            raw.load(Ordering::Relaxed)
        } else {
            reader.bytes_read()
        }
    };
    if output_bom {
        output.write_all(b"\xef\xbb\xbf").map_err(BatchError::Write)?;
    }
    let decimal_comma = dialect.decimal_comma();
    let columns = match_columns(model.features(), &names, dialect, options.delimiter.is_some())?;
    let mut header = RowText::new(dialect);
    write_header(&mut header, &names, explain.then(|| model.features()));
    output.write_all(header.as_bytes()).map_err(BatchError::Write)?;
    // The drift report names each feature as this header did (column names only).
    let headers: Vec<String> =
        if options.drift { columns.iter().map(|&c| names[c].clone().into_owned()).collect() } else { Vec::new() };

    let explained = model
        .info()
        .base_value
        .filter(|_| explain)
        .map(|base_value| ExplainColumns { base_value, features: model.features().len() });
    let format = move || RowFormat::new(width, NumberText::new(decimal_comma), explained, RowText::new(dialect));
    let rules = Rules { columns: &columns, width, decimal_comma };
    let (counts, tallies) = if options.workers > 1 {
        // The workers' buffers are written as they are, after the header.
        let header_bytes = reader.bytes_read();
        let rest = reader.into_rest();
        let start = parallel::Start { line: rest.line, header_bytes, transcoded };
        let wants = Wants { explain, drift: options.drift };
        let work = parallel::Work { model, challenger, wants, rules, dialect, format: &format };
        let raw_bytes_read = || raw_bytes.load(Ordering::Relaxed);
        let workers = options.workers.min(MAX_WORKERS);
        let scored =
            parallel::score_parallel(rest, &work, workers, start, &raw_bytes_read, &mut output, &mut progress)?;
        output.flush().map_err(BatchError::Write)?;
        (scored.counts, scored.tallies)
    } else {
        let scored = two_threads(reader, scorer, &rules, input_bytes, &mut output, format(), &mut progress)?;
        output.flush().map_err(BatchError::Write)?;
        scored
    };
    progress(counts.bytes_in);
    let drift = tallies.drift.map(|mut stats| {
        stats.name_columns(headers);
        stats
    });
    Ok(ScoreOutcome { counts, drift, challenger: tallies.challenger })
}

/// One worker: a thread that reads, parses and scores, handing blocks of
/// rows over a small bounded channel to this one, which formats and writes
/// them (memory stays bounded).
fn two_threads<R: Read + Send, W: Write>(
    mut reader: RecordReader<R>,
    mut scorer: Scorer<'_>,
    rules: &Rules<'_>,
    input_bytes: impl Fn(&RecordReader<R>) -> u64 + Send,
    writer: &mut W,
    mut format: RowFormat,
    progress: &mut impl FnMut(u64),
) -> Result<(BatchCounts, Tallies), BatchError> {
    let (full_tx, full_rx) = sync_channel::<Result<Block, BatchError>>(BLOCKS_QUEUED);
    let (empty_tx, empty_rx) = sync_channel::<Block>(BLOCKS_QUEUED + 2);
    std::thread::scope(|scope| {
        // The reading thread scores (and counts the drift statistics): it holds each row's observation.
        let reading = scope.spawn(move || {
            // Rows handed to the writer so far: where a panic stopped the file.
            let mut rows_before = 0;
            loop {
                let mut block = empty_rx.try_recv().unwrap_or_default();
                // A panic while reading or scoring (ours, or the input's)
                // ends the file at its row; its message is dropped unread.
                let filled =
                    panic::catch_unwind(AssertUnwindSafe(|| fill(&mut reader, &mut block, &mut scorer, rules)))
                        .unwrap_or_else(|_panic| {
                            Err(BatchError::Internal { row: Some(rows_before + block.rows.len() as u64 + 1) })
                        });
                rows_before += block.rows.len() as u64;
                block.bytes = input_bytes(&reader);
                let done = !matches!(filled, Ok(true));
                let sent = match filled {
                    Ok(_) if block.rows.is_empty() => Ok(()),
                    Ok(_) => full_tx.send(Ok(block)),
                    Err(e) => full_tx.send(Err(e)),
                };
                if done || sent.is_err() {
                    return (input_bytes(&reader), scorer.into_tallies());
                }
            }
        });
        let mut counts = BatchCounts::default();
        let written = write_blocks(writer, &full_rx, &empty_tx, &mut format, &mut counts, progress);
        // Unblock the reader if the writer stopped first, then collect it.
        drop(full_rx);
        let (bytes, tallies) = reading.join().map_err(|_panic| BatchError::Internal { row: None })?;
        written?;
        counts.bytes_in = bytes;
        Ok((counts, tallies))
    })
}

/// A CSV input opened as every route that reads files opens one: its
/// encoding sniffed ([`InputEncoding`]), the delimiter given or detected
/// from the header ([`Dialect::detect`]), and the header read.
pub struct CsvInput<'a> {
    /// Positioned after the header.
    pub reader: RecordReader<Box<dyn Read + Send + 'a>>,
    pub dialect: Dialect,
    pub encoding: InputEncoding,
    /// The scored output starts with a UTF-8 byte-order mark ([`InputEncoding::output_bom`]).
    pub output_bom: bool,
    /// The header's cells: byte-order marks dropped from the first, a cell
    /// that is not UTF-8 read as Windows-1252 ([`field_text`]).
    pub names: Vec<Cow<'static, str>>,
    /// Fields in the header.
    pub width: usize,
}

/// Opens `input` as a CSV with a header row (see [`CsvInput`]); `delimiter`
/// `None` detects it. Fails when the input is empty, its header has more
/// than [`MAX_COLUMNS`] columns, or the header cannot be read.
pub fn open_csv<'a, R: Read + Send + 'a>(mut input: R, delimiter: Option<u8>) -> Result<CsvInput<'a>, BatchError> {
    let head = read_head(&mut input)?;
    let encoding = InputEncoding::sniff(&head);
    let dialect = match delimiter {
        Some(d) => Dialect::with_delimiter(d),
        None => Dialect::detect(&encoding.decode_head(&head)),
    };
    let output_bom = encoding.output_bom(&head, dialect.decimal_comma());
    let mut reader = RecordReader::new(utf8_reader(io::Cursor::new(head).chain(input), encoding), dialect);
    let mut header = Fields::default();
    let span = reader.read_record(&mut header, MAX_COLUMNS + 1)?.ok_or(BatchError::Empty)?;
    if span.fields > MAX_COLUMNS {
        return Err(BatchError::TooManyColumns(span.fields));
    }
    let names = header
        .iter(&span)
        .enumerate()
        .map(|(i, f)| Cow::Owned(field_text(if i == 0 { without_bom(f) } else { f }).into_owned()))
        .collect();
    Ok(CsvInput { reader, dialect, encoding, output_bom, names, width: span.fields })
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
fn match_columns(
    features: &Features,
    names: &[Cow<'_, str>],
    dialect: Dialect,
    forced: bool,
) -> Result<Vec<usize>, BatchError> {
    let found = match_names(features, names.iter().map(|n| Some(n.as_ref())))
        .map_err(|d| BatchError::DuplicateColumn(features.api_name(d.feature).to_owned()))?;
    let missing: Vec<String> =
        found.iter().enumerate().filter(|(_, c)| c.is_none()).map(|(f, _)| features.api_name(f).to_owned()).collect();
    if missing.is_empty() {
        Ok(found.into_iter().map(|c| c.unwrap_or(usize::MAX)).collect())
    } else {
        let columns = names.len();
        let found = features.len() - missing.len();
        Err(BatchError::MissingColumns(HeaderMismatch { missing, columns, found, dialect, forced }))
    }
}
