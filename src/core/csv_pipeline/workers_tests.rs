//! N workers give what one gives: the output byte for byte, the counts, the
//! error (its line or row number) and the drift and challenger statistics,
//! for N = 2, 3, 8 against N = 1 (the two-thread pipeline) on hostile files.
//! Chunks are [`super::chunks::CHUNK_BYTES`] = 3000 bytes under test, so
//! these files of kilobytes cross many chunk boundaries.

use std::io::{self, Read};

use proptest::prelude::*;
use serde_json::Value;

use super::testing::HEADER;
use super::*;
use crate::core::drift::DriftOptions;

fn model() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().unwrap())
}

fn challenger() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| Model::from_json_bytes(include_bytes!("../../../models/testdata/gbc-depth2.json")).unwrap())
}

/// Everything one run gives, as comparable values: the output bytes, the
/// counts, the drift and challenger reports as JSON, or the error.
#[derive(Debug)]
struct Run {
    result: Result<(Vec<u8>, BatchCounts, Value, Value), String>,
    /// The output bytes written before an error too.
    output: Vec<u8>,
    last_progress: u64,
}

fn run_with(input: impl Read + Send, workers: usize, explain: bool) -> Run {
    let options = ScoreOptions { explain, workers, ..ScoreOptions::default() };
    let mut output = Vec::new();
    let mut last_progress = 0;
    let result = score_csv_shadowed(model(), Some(challenger()), input, &mut output, &options, |b| last_progress = b)
        .map(|o| {
            let drift = o.drift.map(|d| serde_json::to_value(d.report(model(), &DriftOptions::default())).unwrap());
            let shadow = o.challenger.map(|c| serde_json::to_value(c.report(challenger())).unwrap());
            (output.clone(), o.counts, drift.unwrap_or_default(), shadow.unwrap_or_default())
        })
        .map_err(|e| format!("{e:?}"));
    Run { result, output, last_progress }
}

fn run(input: &[u8], workers: usize) -> Run {
    run_with(input, workers, false)
}

/// Numbers equal, or within 1e-12 relative: a mean is a sum of values added
/// in another order when chunks are scored apart.
fn assert_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            for (k, x) in x {
                assert_close(x, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Scores `input` on 1, 2, 3 and 8 workers: all give what one gives.
fn assert_same_on_any_workers(input: &[u8]) -> Run {
    let one = run(input, 1);
    for workers in [2, 3, 8] {
        let many = run(input, workers);
        match (&one.result, &many.result) {
            (Ok((out1, counts1, drift1, shadow1)), Ok((out, counts, drift, shadow))) => {
                assert!(out1 == out, "{workers} workers: the output differs");
                assert_eq!(counts1, counts, "{workers} workers");
                assert_close(drift1, drift, &format!("{workers} workers: drift"));
                assert_close(shadow1, shadow, &format!("{workers} workers: challenger"));
                assert_eq!(one.last_progress, many.last_progress, "{workers} workers: progress ends at bytes_in");
            }
            (Err(e1), Err(e)) => {
                assert_eq!(e1, e, "{workers} workers");
                // What was written before the error is a prefix of the whole.
                let shorter = one.output.len().min(many.output.len());
                assert_eq!(one.output[..shorter], many.output[..shorter], "{workers} workers");
            }
            (a, b) => panic!("{workers} workers: {a:?} vs {b:?}"),
        }
    }
    one
}

const ROW: &str = "A,0.1471,25.38,17.33,2019.0,0.2654\n";

#[test]
fn a_file_of_many_chunks_scores_the_same_on_any_number_of_workers_with_and_without_explanations() {
    let input = format!("{HEADER}\n{}", ROW.repeat(2000)).into_bytes();
    let one = assert_same_on_any_workers(&input);
    let (_, counts, _, _) = one.result.unwrap();
    assert_eq!((counts.rows, counts.bytes_in), (2000, input.len() as u64));
    let explained = run_with(&input[..], 1, true);
    assert_eq!(explained.result.unwrap().0, run_with(&input[..], 3, true).result.unwrap().0);
    // And the same on a header alone, and on an empty file.
    assert_same_on_any_workers(format!("{HEADER}\n").as_bytes());
    assert_same_on_any_workers(HEADER.as_bytes());
    assert_same_on_any_workers(b"");
}

#[test]
fn quoted_line_breaks_delimiters_and_literal_quotes_across_chunk_boundaries_score_the_same() {
    let rows = [
        "\"Q\n1, \"\"with\"\" quotes\r\nand, commas\",0.1471,25.38,17.33,2019.0,0.2654\n",
        "5\" tumour,0.1471,25.38,17.33,2019.0,0.2654\n",
        "B,0.1,,20,900,0.1\n",
        "\n\r\n\r",
        "C,0.1,20\r\n",
        "D,0.1,20,20,900,0.1,extra,\"x\ny\"\r",
        "E,0.04781,15.11,26.5,711.2,0.07431,\n",
        "\u{feff}F,0.1471,25.38,17.33,2019.0,0.2654\n",
        "\"\",0.1471,25.38,17.33,2019.0,0.2654\r\n",
    ];
    for terminator in ["\n", "\r\n", "\r"] {
        let mut input = format!("{HEADER}{terminator}");
        for i in 0..600 {
            input.push_str(rows[i % rows.len()]);
        }
        assert_same_on_any_workers(input.as_bytes());
    }
}

#[test]
fn a_chunk_that_would_end_between_cr_and_lf_names_the_same_lines() {
    // Rows of every length around a chunk's size: one of them puts a `\r`
    // last in a chunk, its `\n` in the next; the open quote at the end names
    // its line, which counts every line end before it.
    for pad in 0..40 {
        let row = format!("A{},0.1471,25.38,17.33,2019.0,0.2654\r\n", "x".repeat(pad));
        let input = format!("{HEADER}\r\n{}\"open", row.repeat(150));
        let one = assert_same_on_any_workers(input.as_bytes());
        assert_eq!(one.result.unwrap_err(), "UnterminatedQuote { line: 152 }");
    }
}

#[test]
fn decimal_commas_windows_1252_and_utf16_score_the_same_on_any_number_of_workers() {
    let semicolon =
        format!("{}\n{}", HEADER.replace(',', ";"), "S\u{e9};0,1471;25,38;17,33;2019,0;0,2654\n".repeat(500));
    assert_same_on_any_workers(semicolon.as_bytes());
    let mut cp1252 = format!("{HEADER},note\n").into_bytes();
    for _ in 0..500 {
        cp1252.extend(b"Mu\xf1oz,0.1471,25.38,17.33,2019.0,0.2654,caf\xe9\n");
    }
    assert_same_on_any_workers(&cp1252);
    let mut utf16 = vec![0xff, 0xfe];
    let text = format!(
        "{}\r\n{}",
        HEADER.replace(',', "\t"),
        "Mu\u{f1}oz\t0.1471\t25.38\t17.33\t2019.0\t0.2654\r\n".repeat(500)
    );
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let one = assert_same_on_any_workers(&utf16);
    assert_eq!(one.result.unwrap().1.bytes_in, utf16.len() as u64, "the input's own bytes");
}

#[test]
fn file_errors_name_the_same_line_on_any_number_of_workers() {
    let rows = ROW.repeat(300);
    let cases = [
        // A quote that never closes, near the end (the rest is one field).
        format!("{HEADER}\n{rows}\"B,0.1,20\n{rows}"),
        // ... and one followed by more than the cap: the record is too long.
        format!("{HEADER}\n{rows}\n\r\n\"B,0.1,20\n{}", ROW.repeat(MAX_RECORD_BYTES / ROW.len() + 10)),
        // A line longer than the cap, after blank lines, CR only.
        format!("{HEADER}\r{}\r\r{}\r", rows.replace('\n', "\r"), "7".repeat(MAX_RECORD_BYTES + 5)),
        // Exactly at the cap (its line end included) is allowed.
        format!("{HEADER}\n{rows}{}\n{rows}", "8".repeat(MAX_RECORD_BYTES - 1)),
        format!("{HEADER}\n{rows}{}\n{rows}", "8".repeat(MAX_RECORD_BYTES)),
    ];
    let mut errors = Vec::new();
    for case in &cases {
        errors.push(assert_same_on_any_workers(case.as_bytes()).result.err());
    }
    assert_eq!(
        errors,
        [
            Some("UnterminatedQuote { line: 302 }".to_owned()),
            Some("RecordTooLong { line: 304 }".to_owned()),
            Some("RecordTooLong { line: 304 }".to_owned()),
            None,
            Some("RecordTooLong { line: 302 }".to_owned()),
        ]
    );
}

#[test]
fn a_megabyte_of_commas_and_short_and_long_rows_score_the_same() {
    let mut input = format!("{HEADER}\n{}", ROW.repeat(100)).into_bytes();
    input.extend(std::iter::repeat_n(b',', 1_000_000));
    input.extend(format!("\n{}", "A,1\n,,,,,,,,,,,,\n".repeat(200)).as_bytes());
    input.extend(ROW.repeat(100).as_bytes());
    assert_same_on_any_workers(&input);
}

/// Serves `data`, then at byte `until` panics or fails with `Interrupted`.
struct StopsAt {
    data: Vec<u8>,
    at: usize,
    until: usize,
    panics: bool,
}

impl Read for StopsAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.until {
            if self.panics {
                panic!("Patient-Secret 0.1471");
            }
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
        // Small reads, as a network stream gives them.
        let n = buf.len().min(self.until - self.at).min(1000);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_panic_or_an_error_of_the_input_stops_the_file_at_the_same_row_on_any_number_of_workers() {
    let data = format!("{HEADER}\n{}", ROW.repeat(20_000)).into_bytes();
    for panics in [true, false] {
        // Past the 64 KiB sniffed on the caller's thread: halfway through row 5000.
        let until = HEADER.len() + 1 + 4999 * ROW.len() + ROW.len() / 2;
        let results: Vec<String> = [1, 2, 3, 8]
            .into_iter()
            .map(|workers| {
                let stops = StopsAt { data: data.clone(), at: 0, until, panics };
                let options = ScoreOptions { workers, ..ScoreOptions::default() };
                format!("{:?}", score_csv_with(model(), stops, io::sink(), &options, |_| {}).unwrap_err())
            })
            .collect();
        let want = if panics {
            "Internal { row: Some(5000) }"
        } else {
            "Read(Custom { kind: Interrupted, error: \"stopped\" })"
        };
        assert_eq!(results, [want; 4], "panics: {panics}");
    }
}

#[test]
fn a_panic_while_writing_stops_every_worker_and_is_an_internal_error() {
    struct PanicsAfter(usize);
    impl io::Write for PanicsAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.0 {
                panic!("Patient-Secret");
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let data = format!("{HEADER}\n{}", ROW.repeat(50_000)).into_bytes();
    for left in [0, 100_000] {
        let options = ScoreOptions { workers: 3, ..ScoreOptions::default() };
        let err = score_csv_with(model(), &data[..], PanicsAfter(left), &options, |_| {}).unwrap_err();
        assert!(matches!(err, BatchError::Internal { row: None }), "{err:?}");
    }
}

/// Pieces of hostile CSV: numbers, bad values, quotes that hold line breaks
/// and delimiters, literal quotes, every line end, blank lines, marks, bytes
/// that are not UTF-8, short and long rows.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "0.1471",
        "25.38",
        "2019.0",
        "-5",
        "abc",
        "",
        "1e39",
        "NaN",
        "\"q,\nr\"",
        "\"\"\"\"",
        "5\" x",
        "\"a\r\nb\"",
        ",",
        ",",
        ",",
        ",",
        ",",
        "\n",
        "\n",
        "\r\n",
        "\r",
        "\n\n",
        "\u{feff}",
        "\u{e9}",
        "\"",
        " ",
    ])
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    let shape = (any::<bool>(), any::<bool>());
    (prop::collection::vec(piece(), 0..3000), shape, prop::collection::vec(0usize..3000, 0..3)).prop_map(
        |(pieces, (crlf, open_at_end), latin1_at)| {
            let mut bytes = format!("{HEADER}{}", if crlf { "\r\n" } else { "\n" }).into_bytes();
            for (i, p) in pieces.iter().enumerate() {
                if latin1_at.contains(&i) {
                    bytes.push(0xe9);
                }
                bytes.extend(p.as_bytes());
            }
            if open_at_end {
                // The error names the line it starts on: every line end before counts.
                bytes.extend(b"\n\"open");
            }
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn generated_hostile_files_score_the_same_on_any_number_of_workers(input in file()) {
        assert_same_on_any_workers(&input);
    }
}
