//! The pipeline end to end: what a file as a whole gives (encodings, line
//! ends, file errors, read errors, panics, drift). Row rules are tested in
//! `rows`, the output's shape in `output`, the errors' words in `error`.

use std::io::{self, Read, Write};

use super::testing::{score, HEADER};
use super::*;

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

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut out = if little_endian { vec![0xff, 0xfe] } else { vec![0xfe, 0xff] };
    for unit in text.encode_utf16() {
        out.extend(if little_endian { unit.to_le_bytes() } else { unit.to_be_bytes() });
    }
    out
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

/// What a panic's message could hold: a cell of the file.
const SECRET: &str = "Patient-Secret 0.1471";

/// Serves `data` up to byte `until`, then panics (a bug in the handed
/// `Read`, or in the pipeline's own reading: the same to the caller).
struct PanicsAt {
    data: Vec<u8>,
    at: usize,
    until: usize,
}

impl Read for PanicsAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.until {
            panic!("{SECRET}");
        }
        let n = buf.len().min(self.until - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_panic_while_reading_rows_rejects_the_file_naming_its_row_never_the_panic() {
    let row = "A,0.1471,25.38,17.33,2019.0,0.2654\n";
    let data = format!("{HEADER}\n{}", row.repeat(20_000)).into_bytes();
    // Past the 64 KiB read for sniffing, so in the reading thread: halfway
    // through row 5000 (the header line is 86 bytes, each row 35).
    let until = HEADER.len() + 1 + 4999 * row.len() + row.len() / 2;
    assert!(until > SNIFF_BYTES);
    let model = Model::embedded().unwrap();
    let input = PanicsAt { data, at: 0, until };
    let err = score_csv(&model, input, io::sink(), |_| {}).unwrap_err();
    assert!(matches!(err, BatchError::Internal { row: Some(5000) }), "{err:?}");
    assert!(err.is_bad_input(), "a deterministic panic is never retried");
    let text = err.to_string();
    assert!(text.contains("at row 5000 after the header"), "{text}");
    assert!(!text.contains("Secret") && !text.contains("0.1471"), "{text}");
}

#[test]
fn a_panic_before_the_rows_or_while_writing_is_a_rejected_file_too() {
    let model = Model::embedded().unwrap();
    let data = format!("{HEADER}\n{}", "A,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(100_000)).into_bytes();
    // While sniffing the head, on the caller's thread.
    let err = score_csv(&model, PanicsAt { data: data.clone(), at: 0, until: 10 }, io::sink(), |_| {}).unwrap_err();
    assert!(matches!(err, BatchError::Internal { row: None }), "{err:?}");
    assert!(err.is_bad_input());
    assert!(!err.to_string().contains("Secret"), "{err}");

    /// Takes `left` bytes, then panics: the writing side's bug, with the
    /// reader blocked on a full queue (it must still be stopped and joined).
    struct PanicsAfter {
        left: usize,
    }
    impl Write for PanicsAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.left {
                panic!("{SECRET}");
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    for left in [0, 1 << 20] {
        let err = score_csv(&model, &data[..], PanicsAfter { left }, |_| {}).unwrap_err();
        assert!(matches!(err, BatchError::Internal { row: None }), "{left}: {err:?}");
        assert!(!err.to_string().contains("Secret"), "{err}");
    }
}

#[test]
fn a_challenger_leaves_the_output_byte_for_byte_and_counts_the_scored_rows_only() {
    let model = Model::embedded().unwrap();
    let depth2 = Model::from_json_bytes(include_bytes!("../../../models/testdata/gbc-depth2.json")).unwrap();
    let input: &[u8] = include_bytes!("../../../samples/bad-rows.csv");
    for options in [ScoreOptions::default(), ScoreOptions { explain: true, drift: false, ..ScoreOptions::default() }] {
        let (mut plain, mut shadowed) = (Vec::new(), Vec::new());
        let a = score_csv_with(&model, input, &mut plain, &options, |_| {}).unwrap();
        let b = score_csv_shadowed(&model, Some(&depth2), input, &mut shadowed, &options, |_| {}).unwrap();
        assert_eq!(plain, shadowed, "{options:?}");
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.drift, b.drift);
        assert!(a.challenger.is_none());
        let stats = b.challenger.unwrap();
        assert_eq!((stats.rows(), stats.not_comparable()), (b.counts.scored, 0), "rejected rows are not compared");
    }
}
