//! Exact parity with sklearn on the golden files written by models/train.py:
//! labels identical, probabilities within 1e-12.

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

#[test]
fn observations_on_and_beside_every_split_threshold_match_sklearn() {
    check("thresholds.csv", 38 * 4 * 3);
}
