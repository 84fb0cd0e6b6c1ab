//! The batch pipeline's memory is bounded by bytes, whatever the file: the
//! peak heap allocation while scoring hostile files stays under a constant.
//!
//! Its own test binary: a counting global allocator sees every allocation of
//! the process, so these tests take a lock and run one at a time.

use std::sync::{Mutex, MutexGuard, OnceLock};

use scorer::core::csv_pipeline::{score_csv, score_csv_with, BatchError, ScoreOptions, MAX_RECORD_BYTES};
use scorer::core::model::Model;

#[path = "../support/counting_alloc.rs"]
mod counting_alloc;

/// The pipeline's bound (core::csv_pipeline, BLOCKS_QUEUED): at most four blocks of
/// about 3 MiB, the writer's record, 256 KiB buffers in and out. Peak
/// allocation above what was allocated before the call.
const BOUND: usize = 16 * 1024 * 1024;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().unwrap())
}

/// Taken first by every test, so no other test allocates while one measures.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Scores `input` (output discarded) and returns the result and the peak
/// allocation during the call.
fn peak_while_scoring(input: &[u8]) -> (Result<u64, BatchError>, usize) {
    let model = model();
    let (result, peak) =
        counting_alloc::peak_during(|| score_csv(model, input, std::io::sink(), |_| {}).map(|c| c.rows));
    eprintln!("peak allocation: {peak} bytes for {} input bytes", input.len());
    (result, peak)
}

const HEADER: &str = "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints";

#[test]
fn a_row_of_a_million_commas_does_not_allocate_a_million_fields() {
    let _one = one_at_a_time();
    let mut input = format!("{HEADER}\n").into_bytes();
    input.extend(std::iter::repeat_n(b',', 1_000_000));
    input.push(b'\n');
    let (rows, peak) = peak_while_scoring(&input);
    assert_eq!(rows.unwrap(), 1);
    // A million field positions alone would be 8 MB.
    assert!(peak < 2 * 1024 * 1024, "peak allocation {peak} bytes");
}

#[test]
fn long_lines_of_commas_stay_under_the_bound() {
    let _one = one_at_a_time();
    let line = ",".repeat(900 * 1024);
    let input = format!("{HEADER}\n{}", format!("{line}\n").repeat(12));
    let (rows, peak) = peak_while_scoring(input.as_bytes());
    assert_eq!(rows.unwrap(), 12);
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", input.len());
}

#[test]
fn quoted_multi_line_cells_near_the_cap_stay_under_the_bound() {
    let _one = one_at_a_time();
    let notes = "a line of notes, in quotes\n".repeat((MAX_RECORD_BYTES - 100) / 27);
    let row = format!("S1,0.1471,25.38,17.33,2019.0,0.2654\nS2,\"{notes}\",0.1471,25.38,17.33,2019.0\n");
    let input = format!("{HEADER}\n{}", row.repeat(12));
    let (rows, peak) = peak_while_scoring(input.as_bytes());
    assert_eq!(rows.unwrap(), 24);
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", input.len());
}

#[test]
fn a_quote_that_never_closes_is_refused_without_reading_the_rest_into_memory() {
    let _one = one_at_a_time();
    let input =
        format!("{HEADER}\n\"S0,0.1,20,20,900,0.1\n{}", "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(500_000));
    let (rows, peak) = peak_while_scoring(input.as_bytes());
    assert!(matches!(rows, Err(BatchError::RecordTooLong { line: 2 })), "{rows:?}");
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", input.len());
}

#[test]
fn the_widest_header_with_rows_of_empty_fields_and_records_near_the_cap_stays_under_the_bound() {
    let _one = one_at_a_time();
    // 10,000 columns: a row of empty fields costs 8 bytes of positions per input byte.
    let mut header = "meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints".to_owned();
    header.push_str(&",c".repeat(9_995));
    let empty_row = format!("{}\n", ",".repeat(9_999));
    let big_row = format!("\"{}\"{}\n", "n".repeat(MAX_RECORD_BYTES - 20_000), ",".repeat(9_999));
    let chunk = format!("{}{big_row}", empty_row.repeat(13));
    let input = format!("{header}\n{}", chunk.repeat(8));
    let (rows, peak) = peak_while_scoring(input.as_bytes());
    assert_eq!(rows.unwrap(), 8 * 14);
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", input.len());
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0xfe];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn utf16_files_of_commas_and_of_a_quote_that_never_closes_stay_under_the_bound_through_the_decoder() {
    let _one = one_at_a_time();
    // A megabyte of commas on one line, then long lines of them.
    let commas =
        utf16le(&format!("{HEADER}\n{}\n{}", ",".repeat(1_000_000), format!("{}\n", ",".repeat(900 * 1024)).repeat(6)));
    let (rows, peak) = peak_while_scoring(&commas);
    assert_eq!(rows.unwrap(), 7);
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", commas.len());

    let open = utf16le(&format!(
        "{HEADER}\n\"S0,0.1,20,20,900,0.1\n{}",
        "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(200_000)
    ));
    let (rows, peak) = peak_while_scoring(&open);
    assert!(matches!(rows, Err(BatchError::RecordTooLong { line: 2 })), "{rows:?}");
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", open.len());
}

#[test]
fn windows_1252_fields_near_the_cap_that_triple_when_decoded_stay_under_the_bound() {
    let _one = one_at_a_time();
    // 0x80 is '€' in Windows-1252: three bytes of UTF-8 for each input byte.
    let mut input = format!("{HEADER},note\n").into_bytes();
    for _ in 0..12 {
        input.extend(b"S1,0.1471,25.38,17.33,2019.0,0.2654,");
        input.extend(std::iter::repeat_n(0x80u8, MAX_RECORD_BYTES - 100));
        input.push(b'\n');
    }
    let (rows, peak) = peak_while_scoring(&input);
    assert_eq!(rows.unwrap(), 12);
    assert!(peak < BOUND, "peak allocation {peak} bytes for {} input bytes", input.len());
}

/// The bound on N workers (core::csv_pipeline::parallel): the reading
/// thread's chunk and scan, then per worker two chunks, a block, the output
/// buffers.
fn workers_bound(workers: usize) -> usize {
    (4 + 18 * workers) * 1024 * 1024
}

#[test]
fn hostile_files_on_many_workers_stay_under_the_bound_for_their_count() {
    let _one = one_at_a_time();
    let notes = "a line of notes, in quotes\n".repeat((MAX_RECORD_BYTES - 100) / 27);
    let quoted =
        format!("{HEADER}\n{}", format!("S1,0.1471,25.38,17.33,2019.0,0.2654\nS2,\"{notes}\",1,2,3,4\n").repeat(12));
    let commas = format!("{HEADER}\n{}", format!("{}\n", ",".repeat(900 * 1024)).repeat(12));
    let mut header = "meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints".to_owned();
    header.push_str(&",c".repeat(9_995));
    let empty_row = format!("{}\n", ",".repeat(9_999));
    let big_row = format!("\"{}\"{}\n", "n".repeat(MAX_RECORD_BYTES - 20_000), ",".repeat(9_999));
    let widest = format!("{header}\n{}", format!("{}{big_row}", empty_row.repeat(13)).repeat(8));
    let rows = format!("{HEADER}\n{}", "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(100_000));
    let open = format!("{HEADER}\n\"S0,0.1,20,20,900,0.1\n{}", "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(500_000));
    for workers in [2, 8] {
        let options = ScoreOptions { workers, ..ScoreOptions::default() };
        for (name, input, rows) in [
            ("quoted", &quoted, Some(24)),
            ("commas", &commas, Some(12)),
            ("widest", &widest, Some(8 * 14)),
            ("rows", &rows, Some(100_000)),
            ("open quote", &open, None),
        ] {
            let (result, peak) = counting_alloc::peak_during(|| {
                score_csv_with(model(), input.as_bytes(), std::io::sink(), &options, |_| {}).map(|o| o.counts.rows)
            });
            eprintln!("{workers} workers, {name}: peak allocation {peak} bytes for {} input bytes", input.len());
            match rows {
                Some(rows) => assert_eq!(result.unwrap(), rows, "{name}"),
                None => assert!(matches!(result, Err(BatchError::RecordTooLong { line: 2 })), "{result:?}"),
            }
            assert!(peak < workers_bound(workers), "{workers} workers, {name}: peak allocation {peak} bytes");
        }
    }
}
