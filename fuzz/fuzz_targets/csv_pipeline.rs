//! Batch CSV scoring on arbitrary bytes: never panics; peak heap allocation
//! stays under a constant whatever the input's length; when it succeeds the
//! output is rectangular CSV with a header and one record per input data
//! record; when it refuses the file for a long record, a record is that long.
//!
//! Input layout (so seeds can be written by hand, see README.md):
//!   byte 0 != 0   the whole input is the CSV (every committed seed)
//!   byte 0 == 0   an expander, to reach sizes libFuzzer never grows to:
//!                 bytes 1-2 N (u16 little-endian), byte 3 prefix length P,
//!                 byte 4 segment length S, then the text; the CSV is
//!                 text[..P] + text[P..P+S] * N + text[P+S..], at most
//!                 EXPANDED_MAX bytes (past the 1 MiB record cap, the 1 MiB
//!                 and 4,096-row blocks; bigger only costs executions: with
//!                 coverage instrumentation a pass takes ~0.7 s per MB).
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use csv_core::ReadRecordResult;
use libfuzzer_sys::fuzz_target;
use scorer::core::csv_pipeline::{
    score_csv, score_csv_with, BatchError, ScoreOptions, MAX_RECORD_BYTES, RESULT_COLUMNS,
};
use scorer::core::csv_reader::Dialect;
use scorer::core::model::Model;

/// Counts live heap bytes and their peak (the fuzzer runs one input at a time).
#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;

/// The pipeline's documented bound (docs/batch-files.md "Bounded memory"; tests/memory checks it too).
const PEAK_BOUND: usize = 16 * 1024 * 1024;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().expect("embedded model loads"))
}

const EXPANDED_MAX: usize = 3 * 1024 * 1024;

fn expand(data: &[u8]) -> Option<Vec<u8>> {
    let (&[n0, n1, p, s], text) = data.get(1..)?.split_first_chunk::<4>()?;
    let p = usize::from(p).min(text.len());
    let s = usize::from(s).min(text.len() - p);
    let n = usize::from(u16::from_le_bytes([n0, n1])).min(EXPANDED_MAX.saturating_sub(text.len()) / s.max(1));
    let (prefix, rest) = text.split_at(p);
    let (segment, suffix) = rest.split_at(s);
    let mut out = Vec::with_capacity(prefix.len() + segment.len() * n + suffix.len());
    out.extend_from_slice(prefix);
    for _ in 0..n {
        out.extend_from_slice(segment);
    }
    out.extend_from_slice(suffix);
    Some(out)
}

/// The reference: csv-core counting records and the largest span between two
/// record ends, storing nothing (the csv crate would store a hostile record whole).
fn reference(data: &[u8], delimiter: u8) -> (u64, Option<usize>, usize) {
    let mut parser = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let (mut out, mut ends) = (vec![0u8; 64 * 1024], vec![0usize; 1024]);
    let (mut pos, mut records, mut width, mut since, mut longest) = (0, 0u64, None, 0usize, 0usize);
    let mut fields = 0usize;
    loop {
        let (result, nin, _, nend) = parser.read_record(&data[pos..], &mut out, &mut ends);
        pos += nin;
        since += nin;
        fields += nend;
        match result {
            ReadRecordResult::Record => {
                records += 1;
                width.get_or_insert(fields);
                longest = longest.max(since);
                (since, fields) = (0, 0);
            }
            ReadRecordResult::End => return (records, width, longest),
            _ => {}
        }
    }
}

/// Logs each new largest CSV (by a quarter or more), for run.sh's summary.
fn note_size(len: usize) {
    static LARGEST: AtomicUsize = AtomicUsize::new(0);
    let largest = LARGEST.load(Relaxed);
    if len > largest + largest / 4 {
        LARGEST.store(len, Relaxed);
        eprintln!("csv_pipeline: largest CSV so far: {len}");
    }
}

fuzz_target!(|raw: &[u8]| {
    let expanded;
    let data: &[u8] = match raw.first() {
        Some(0) => match expand(raw) {
            Some(e) => {
                expanded = e;
                &expanded
            }
            None => return,
        },
        _ => raw,
    };
    note_size(data.len());

    // The output is the caller's (a Vec here grows with the input); the
    // pipeline's own memory is what is bounded: measured with a sink.
    let (sunk, peak) = counting_alloc::peak_during(|| score_csv(model(), data, std::io::sink(), |_| {}));
    assert!(peak < PEAK_BOUND, "peak allocation {peak} bytes for {} input bytes", data.len());

    // UTF-16 (a byte-order mark) is decoded before it is read: the reference
    // below reads bytes as they are, so only the bound above applies.
    if data.starts_with(b"\xff\xfe") || data.starts_with(b"\xfe\xff") {
        return;
    }
    // The delimiter the pipeline detects from the header (core::csv_pipeline reads 64 KiB for it).
    let delimiter = Dialect::detect(&data[..data.len().min(64 * 1024)]).delimiter;
    let (input_records, header_width, longest) = reference(data, delimiter);
    let counts = match sunk {
        Ok(counts) => counts,
        Err(BatchError::RecordTooLong { .. }) => {
            // Ours counts a record from its first byte, the reference from the
            // previous record's end (blank lines included): never less.
            assert!(longest > MAX_RECORD_BYTES, "refused as too long, but no record is over the cap");
            return;
        }
        Err(BatchError::UnterminatedQuote { .. }) => {
            assert!(data.contains(&b'"'), "an unterminated quote without a quote");
            return;
        }
        // A panic becomes this error (never retried); here it is the bug
        // being looked for. (libfuzzer-sys's panic hook aborts first anyway.)
        Err(e @ BatchError::Internal { .. }) => panic!("{e}"),
        Err(e) => {
            assert!(e.is_bad_input(), "{e}");
            return;
        }
    };
    let data_records = input_records.checked_sub(1).expect("accepted input has a header");
    assert_eq!(counts.rows, data_records, "counts.rows differs from the input's data records");
    assert_eq!(counts.scored + counts.rejected, counts.rows, "scored + rejected != rows");
    assert_eq!(counts.bytes_in, data.len() as u64, "bytes_in is not the input's length");
    if data.len() > 256 * 1024 {
        return; // the output check below scores again into memory: keep big inputs cheap
    }
    let mut out = Vec::new();
    score_csv(model(), data, &mut out, |_| {}).expect("the same input scores again");
    // Three workers write what one writes, with the same counts (issue 22).
    let mut parallel = Vec::new();
    let options = ScoreOptions { workers: 3, ..ScoreOptions::default() };
    let outcome = score_csv_with(model(), data, &mut parallel, &options, |_| {}).expect("it scores on 3 workers too");
    assert!(parallel == out, "3 workers wrote another output");
    assert_eq!(outcome.counts, counts, "3 workers counted otherwise");

    // Output: strict (non-flexible) CSV, header + exactly one record per input record.
    let width = header_width.unwrap() + RESULT_COLUMNS.len();
    // A byte-order mark in is one out (the csv crate strips it when reading).
    let mut output =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(false).from_reader(out.as_slice());
    let head = output.byte_headers().expect("output header reads").clone();
    assert_eq!(head.len(), width, "output header width");
    let mut record = csv::ByteRecord::new();
    let mut output_records = 0u64;
    while output.read_byte_record(&mut record).unwrap_or_else(|e| panic!("output is not rectangular CSV: {e}")) {
        output_records += 1;
        let status = &record[header_width.unwrap() + 2];
        assert!(status == b"200" || status == b"400", "status column {:?}", String::from_utf8_lossy(status));
    }
    assert_eq!(output_records, data_records, "output records differ from input data records");
});
