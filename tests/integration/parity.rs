//! Exact parity with sklearn on the golden files written by models/train.py:
//! labels identical, probabilities within 1e-12, through `Model::predict` and
//! through the CSV pipeline (`score_csv`: parsing, blocks, formatting).

use std::io::Read;

use scorer::core::csv_pipeline::score_csv;
use scorer::core::model::Model;
use scorer::core::observation::Observation;

use crate::helpers::root;

struct Golden {
    values: [f64; 5],
    label: u8,
    probability: f64,
}

fn golden(name: &str) -> Vec<Golden> {
    let path = root().join("tests/golden").join(name);
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers.iter().collect::<Vec<_>>()[5..], ["prediction", "probability"]);
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let f = |i: usize| r[i].parse::<f64>().unwrap();
            Golden { values: [f(0), f(1), f(2), f(3), f(4)], label: r[5].parse().unwrap(), probability: f(6) }
        })
        .collect()
}

fn check(name: &str, min_rows: usize) {
    let model = Model::embedded().unwrap();
    let rows = golden(name);
    assert!(rows.len() >= min_rows, "{name}: {} rows", rows.len());
    let mut worst = 0.0f64;
    for (i, g) in rows.iter().enumerate() {
        let obs = Observation::from_values(g.values).unwrap();
        let p = model.predict(&obs);
        assert_eq!(p.label, g.label, "{name} row {i}: label");
        let diff = (p.probability - g.probability).abs();
        assert!(diff <= 1e-12, "{name} row {i}: probability off by {diff:e}");
        let exact = model.predict_exact(&obs);
        assert_eq!(exact.label, g.label, "{name} row {i}: exact walk label");
        assert!((exact.probability - g.probability).abs() <= 1e-12, "{name} row {i}: exact walk probability");
        worst = worst.max(diff);
    }
    eprintln!("{name}: {} rows, largest probability difference {worst:e}", rows.len());
}

#[test]
fn every_dataset_row_matches_sklearn() {
    check("dataset.csv", 569);
}

#[test]
fn ten_thousand_random_observations_match_sklearn() {
    check("random.csv", 10_000);
}

/// thresholds.csv must hold, for every split threshold of the export (read
/// off its trees), a value on it and the float32 neighbours either side (as
/// the model compares float32(x) <= threshold). Returns how many rows that
/// takes at least: three per threshold.
fn threshold_rows_cover_every_split() -> usize {
    let export = crate::goldens::Export::shipped();
    let rows = golden("thresholds.csv");
    let thresholds = export.split_thresholds();
    for (f, edges) in thresholds.iter().enumerate() {
        for &t in edges {
            let on = t as f32;
            for (side, want) in [("on", on), ("below", on.next_down()), ("above", on.next_up())] {
                if want < 0.0 {
                    continue; // never an input
                }
                assert!(
                    rows.iter().any(|g| g.values[f] as f32 == want),
                    "thresholds.csv has no row {side} feature {f}'s threshold {t}"
                );
            }
        }
    }
    3 * thresholds.iter().map(Vec::len).sum::<usize>()
}

#[test]
fn observations_on_and_beside_every_split_threshold_match_sklearn() {
    check("thresholds.csv", threshold_rows_cover_every_split());
}

/// Hands out the input in reads of irregular sizes, so records straddle every
/// buffer boundary.
struct Irregular<'a> {
    data: &'a [u8],
    reads: usize,
}

impl Read for Irregular<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads += 1;
        let n = (self.reads * 7919 % 4093 + 1).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The golden file itself through `score_csv`: its feature columns are read
/// as any CSV's (sklearn's own columns pass through), and the appended
/// columns must carry sklearn's answers.
fn check_through_the_csv_pipeline(name: &str, min_rows: usize) {
    let model = Model::embedded().unwrap();
    let rows = golden(name);
    assert!(rows.len() >= min_rows, "{name}: {} rows", rows.len());
    let input = std::fs::read(root().join("tests/golden").join(name)).unwrap();
    let mut out = Vec::new();
    let counts = score_csv(&model, Irregular { data: &input, reads: 0 }, &mut out, |_| {}).unwrap();
    assert_eq!((counts.rows as usize, counts.scored as usize), (rows.len(), rows.len()), "{name}");

    let mut reader = csv::Reader::from_reader(&out[..]);
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(headers[7..], ["prediction", "probability", "status", "reason", "warnings"], "{name}");
    let mut worst = 0.0f64;
    let mut read = 0;
    for (i, (record, g)) in reader.records().zip(&rows).enumerate() {
        let record = record.unwrap();
        assert_eq!((&record[9], &record[10]), ("200", "OK"), "{name} row {i}");
        assert_eq!(record[7].parse::<u8>().unwrap(), g.label, "{name} row {i}: label");
        let probability: f64 = record[8].parse().unwrap();
        let diff = (probability - g.probability).abs();
        assert!(diff <= 1e-12, "{name} row {i}: probability off by {diff:e}");
        // The text round-trips: the very value Model::predict gives.
        let direct = model.predict(&Observation::from_values(g.values).unwrap());
        assert_eq!(probability, direct.probability, "{name} row {i}: formatting");
        worst = worst.max(diff);
        read += 1;
    }
    assert_eq!(read, rows.len(), "{name}: rows out");
    eprintln!("{name} through score_csv: {read} rows, largest probability difference {worst:e}");
}

#[test]
fn ten_thousand_random_observations_match_sklearn_through_the_csv_pipeline() {
    check_through_the_csv_pipeline("random.csv", 10_000);
}

#[test]
fn dataset_rows_and_threshold_neighbours_match_sklearn_through_the_csv_pipeline() {
    check_through_the_csv_pipeline("dataset.csv", 569);
    check_through_the_csv_pipeline("thresholds.csv", threshold_rows_cover_every_split());
}
