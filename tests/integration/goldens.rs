//! The golden files models/train.py writes beside every export (models/README.md):
//! `dataset.csv`, `random.csv`, `thresholds.csv` (sklearn's label and
//! probability per row), `explanations.csv` (shap's base value and
//! contributions on the same rows), `training_rows.csv` and
//! `explanations.meta.json`. Column headers are the export's API names, so
//! what a test expects is read from the files beside the export it serves,
//! whichever export that is; and the drift statistics' expected values are
//! computed here, independently of the crate (the split rule written out).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::root;

/// sklearn's probability against ours.
pub const PROBABILITY_TOLERANCE: f64 = 1e-12;
/// shap's base value and contributions against ours (summation order only).
pub const SHAP_TOLERANCE: f64 = 1e-9;

/// An export and the directory of its golden files.
pub struct Export {
    pub name: String,
    pub path: PathBuf,
    pub golden_dir: PathBuf,
    pub bytes: Vec<u8>,
    pub doc: Value,
}

impl Export {
    pub fn at(path: PathBuf, golden_dir: PathBuf) -> Export {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let name = doc["name"].as_str().unwrap().to_owned();
        Export { name, path, golden_dir, bytes, doc }
    }

    /// The shipped export (models/breast-cancer-gbc.json) and tests/golden/.
    pub fn shipped() -> Export {
        Export::at(root().join("models/breast-cancer-gbc.json"), root().join("tests/golden"))
    }

    /// An example export of another contract: `models/testdata/<name>.json` and
    /// `tests/golden/<name>/`, under SCORER_TRAINED_DIR when it is set
    /// (tests/run.sh trains them there afresh and checks they are the committed
    /// bytes), else the committed ones.
    pub fn example(name: &str) -> Export {
        let base = match std::env::var_os("SCORER_TRAINED_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => root(),
        };
        let export =
            Export::at(base.join("models/testdata").join(format!("{name}.json")), base.join("tests/golden").join(name));
        assert_eq!(export.name, name, "{}", export.path.display());
        export
    }

    /// The model as a cold start loads it: from the compiled form of this
    /// export (compiled_form.rs checks it answers as the export itself does).
    pub fn model(&self) -> scorer::core::model::Model {
        use scorer::core::model::Model;
        let compiled = Model::from_json_bytes(&self.bytes).unwrap().to_compiled_bytes();
        Model::from_export_and_compiled(&self.bytes, &compiled).unwrap()
    }

    pub fn golden(&self, file: &str) -> PathBuf {
        self.golden_dir.join(file)
    }

    /// API names in model order (version 3 `api_name`, version 2 `name`).
    pub fn api_names(&self) -> Vec<String> {
        self.features().iter().map(|f| f["api_name"].as_str().or(f["name"].as_str()).unwrap().to_owned()).collect()
    }

    pub fn dataset_names(&self) -> Vec<String> {
        self.features().iter().map(|f| f["dataset_name"].as_str().unwrap().to_owned()).collect()
    }

    fn features(&self) -> &Vec<Value> {
        self.doc["features"].as_array().unwrap()
    }

    /// The export's name of label 0 or 1.
    pub fn class_name(&self, label: u8) -> String {
        let classes = self.doc["classes"].as_array().unwrap();
        let class = classes.iter().find(|c| c["label"] == u64::from(label)).unwrap();
        class["name"].as_str().unwrap().to_owned()
    }

    /// Training (min, max) per feature, as the export states them.
    pub fn ranges(&self) -> Vec<(f64, f64)> {
        self.features().iter().map(|f| (f["min"].as_f64().unwrap(), f["max"].as_f64().unwrap())).collect()
    }

    /// Each feature's distinct split thresholds, ascending, read off the
    /// export's trees (not its training profile, not the crate's model).
    pub fn split_thresholds(&self) -> Vec<Vec<f64>> {
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); self.features().len()];
        for tree in self.doc["trees"].as_array().unwrap() {
            let features = tree["feature"].as_array().unwrap();
            let thresholds = tree["threshold"].as_array().unwrap();
            for (f, t) in features.iter().zip(thresholds) {
                if let Ok(f) = usize::try_from(f.as_i64().unwrap()) {
                    per[f].push(t.as_f64().unwrap());
                }
            }
        }
        for t in &mut per {
            t.sort_by(f64::total_cmp);
            t.dedup();
        }
        per
    }

    /// `explanations.meta.json`'s entry for `explanations.csv`: the export it
    /// explains (path and sha256) and shap's expected value.
    pub fn meta(&self) -> Value {
        let text = std::fs::read_to_string(self.golden("explanations.meta.json")).unwrap();
        let meta: Value = serde_json::from_str(&text).unwrap();
        meta["files"]["explanations.csv"].clone()
    }

    /// The rows of `file` (dataset.csv, random.csv, thresholds.csv): values,
    /// sklearn's label and probability.
    pub fn predictions(&self, file: &str) -> Vec<Predicted> {
        let n = self.api_names().len();
        let mut reader = csv::Reader::from_path(self.golden(file)).unwrap();
        let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let mut expected = self.api_names();
        expected.extend(["prediction".to_owned(), "probability".to_owned()]);
        assert_eq!(headers, expected, "{}", self.golden(file).display());
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                let values = (0..n).map(|i| r[i].parse().unwrap()).collect();
                (values, r[n].parse().unwrap(), r[n + 1].parse().unwrap())
            })
            .collect()
    }

    /// The feature values of every `dataset.csv` row.
    pub fn dataset_values(&self) -> Vec<Vec<f64>> {
        self.predictions("dataset.csv").into_iter().map(|(v, _, _)| v).collect()
    }

    /// The training split: the `dataset.csv` rows `training_rows.csv` lists.
    pub fn training_split(&self) -> Vec<Vec<f64>> {
        let rows = self.dataset_values();
        let mut reader = csv::Reader::from_path(self.golden("training_rows.csv")).unwrap();
        reader.records().map(|r| rows[r.unwrap()[0].parse::<usize>().unwrap()].clone()).collect()
    }

    /// Every row of `explanations.csv`, with sklearn's label and probability
    /// from its set's file (`dataset`, `random`, `thresholds`).
    pub fn golden_rows(&self) -> Vec<GoldenRow> {
        let names = self.api_names();
        let n = names.len();
        let sets: Vec<(String, Vec<Predicted>)> = ["dataset", "random", "thresholds"]
            .into_iter()
            .map(|s| (s.to_owned(), self.predictions(&format!("{s}.csv"))))
            .collect();
        let mut reader = csv::Reader::from_path(self.golden("explanations.csv")).unwrap();
        let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let mut expected = vec!["set".to_owned(), "row".to_owned()];
        expected.extend(names.iter().cloned());
        expected.extend(["raw_score".to_owned(), "base_value".to_owned()]);
        expected.extend(names.iter().map(|a| format!("contribution_{a}")));
        assert_eq!(headers, expected, "{}", self.golden("explanations.csv").display());
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                let (set, row) = (r[0].to_owned(), r[1].parse::<usize>().unwrap());
                let text: Vec<String> = (0..n).map(|i| r[2 + i].to_owned()).collect();
                let values: Vec<f64> = text.iter().map(|t| t.parse().unwrap()).collect();
                let rows = &sets.iter().find(|(s, _)| *s == set).unwrap_or_else(|| panic!("set {set}")).1;
                let (set_values, label, probability) = &rows[row];
                assert_eq!(set_values, &values, "{set} row {row}: explanations.csv and {set}.csv disagree");
                GoldenRow {
                    set,
                    row,
                    text,
                    values,
                    label: *label,
                    probability: *probability,
                    raw_score: r[2 + n].parse().unwrap(),
                    base_value: r[3 + n].parse().unwrap(),
                    contributions: (0..n).map(|i| r[4 + n + i].parse().unwrap()).collect(),
                }
            })
            .collect()
    }

    /// About `count` golden rows spread evenly over every set.
    pub fn sample_rows(&self, count: usize) -> Vec<GoldenRow> {
        let all = self.golden_rows();
        let step = all.len().div_ceil(count);
        let rows: Vec<GoldenRow> = all.into_iter().step_by(step).collect();
        for set in ["dataset", "random", "thresholds"] {
            assert!(rows.iter().any(|g| g.set == set), "the sample has {set} rows");
        }
        rows
    }
}

/// A row of dataset.csv, random.csv or thresholds.csv: values, sklearn's label and probability.
pub type Predicted = (Vec<f64>, u8, f64);

/// One golden row: the values as the file writes them, sklearn's answer and shap's.
#[derive(Debug, Clone)]
pub struct GoldenRow {
    pub set: String,
    pub row: usize,
    pub text: Vec<String>,
    pub values: Vec<f64>,
    pub label: u8,
    pub probability: f64,
    /// sklearn's decision_function.
    pub raw_score: f64,
    pub base_value: f64,
    pub contributions: Vec<f64>,
}

impl GoldenRow {
    pub fn what(&self) -> String {
        format!("{} row {}", self.set, self.row)
    }
}

/// Labels equal, probabilities within 1e-12 of sklearn's.
pub fn assert_like_sklearn(what: &str, label: u8, probability: f64, g: &GoldenRow) {
    assert_eq!(label, g.label, "{what} ({}): label", g.what());
    let diff = (probability - g.probability).abs();
    assert!(
        diff <= PROBABILITY_TOLERANCE,
        "{what} ({}): probability {probability} vs sklearn {}",
        g.what(),
        g.probability
    );
}

/// An explanation object (`{"unit","baseValue","contributions"}`) against
/// shap's row: the export's API names as keys, in model order.
pub fn assert_explanation_like_shap(what: &str, explanation: &Value, api_names: &[String], g: &GoldenRow) {
    assert_eq!(explanation["unit"], "log-odds", "{what}: {explanation}");
    let base = explanation["baseValue"].as_f64().unwrap_or_else(|| panic!("{what}: {explanation}"));
    let contributions: Vec<(String, f64)> = explanation["contributions"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {explanation}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    let names: Vec<&String> = contributions.iter().map(|(k, _)| k).collect();
    assert_eq!(names, api_names.iter().collect::<Vec<_>>(), "{what}: the export's API names, in model order");
    assert_like_shap(what, base, &contributions.iter().map(|(_, v)| *v).collect::<Vec<_>>(), g);
}

/// A base value and contributions (model order) within 1e-9 of shap's.
pub fn assert_like_shap(what: &str, base: f64, contributions: &[f64], g: &GoldenRow) {
    assert!(
        (base - g.base_value).abs() <= SHAP_TOLERANCE,
        "{what} ({}): base {base} vs shap {}",
        g.what(),
        g.base_value
    );
    assert_eq!(contributions.len(), g.contributions.len(), "{what}");
    for (f, (ours, shap)) in contributions.iter().zip(&g.contributions).enumerate() {
        assert!((ours - shap).abs() <= SHAP_TOLERANCE, "{what} ({}): feature {f} {ours} vs shap {shap}", g.what());
    }
}

// ---- drift, computed independently ---------------------------------------------------

/// Bin j holds thresholds[j-1] < float32(x) <= thresholds[j]: the number of
/// thresholds that float32(x) lies above.
pub fn bin(thresholds: &[f64], x: f64) -> usize {
    let x32 = x as f32 as f64;
    thresholds.iter().filter(|&&t| x32 > t).count()
}

/// Per feature, the number of `rows` in each bin.
pub fn bin_counts(rows: &[Vec<f64>], thresholds: &[Vec<f64>]) -> Vec<Vec<u64>> {
    thresholds
        .iter()
        .enumerate()
        .map(|(f, edges)| {
            let mut counts = vec![0u64; edges.len() + 1];
            for r in rows {
                counts[bin(edges, r[f])] += 1;
            }
            counts
        })
        .collect()
}

/// Per feature, the share of `rows` in each bin.
pub fn shares(rows: &[Vec<f64>], thresholds: &[Vec<f64>]) -> Vec<Vec<f64>> {
    bin_counts(rows, thresholds)
        .into_iter()
        .map(|counts| counts.iter().map(|&c| c as f64 / rows.len() as f64).collect())
        .collect()
}

/// PSI with both shares floored at 1e-4.
pub fn psi(actual: &[f64], expected: &[f64]) -> f64 {
    let mut sum = 0.0;
    for (&a, &e) in actual.iter().zip(expected) {
        let (a, e) = (a.max(1e-4), e.max(1e-4));
        sum += (a - e) * (a / e).ln();
    }
    sum
}

/// Each feature's PSI of `rows` against the export's training split, binned
/// by the export's split thresholds.
pub fn independent_psi(export: &Export, rows: &[Vec<f64>]) -> Vec<f64> {
    let thresholds = export.split_thresholds();
    let expected = shares(&export.training_split(), &thresholds);
    shares(rows, &thresholds).iter().zip(&expected).map(|(a, e)| psi(a, e)).collect()
}

/// A drift report's `features` (JSON) against the independent computation
/// for `rows`: names, bin edges and counts, PSI within 1e-9, and rows outside
/// the training range.
pub fn assert_drift_features_independently(what: &str, drift: &Value, export: &Export, rows: &[Vec<f64>]) {
    let features = drift["features"].as_array().unwrap_or_else(|| panic!("{what}: {drift}"));
    let names: Vec<&str> = features.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, export.api_names(), "{what}: drift features are the export's API names");
    let thresholds = export.split_thresholds();
    let counts = bin_counts(rows, &thresholds);
    let psi = independent_psi(export, rows);
    for (f, feature) in features.iter().enumerate() {
        let edges: Vec<f64> =
            feature["bins"]["edges"].as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect();
        assert_eq!(edges, thresholds[f], "{what} {}: bin edges", names[f]);
        let got: Vec<u64> = feature["bins"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
        assert_eq!(got, counts[f], "{what} {}: bin counts", names[f]);
        let ours = feature["psi"].as_f64().unwrap();
        assert!((ours - psi[f]).abs() <= 1e-9, "{what} {}: PSI {ours} vs {}", names[f], psi[f]);
        let (lo, hi) = export.ranges()[f];
        let outside = rows.iter().filter(|r| r[f] < lo || r[f] > hi).count() as u64;
        assert_eq!(feature["outOfRangeRows"].as_u64(), Some(outside), "{what} {}", names[f]);
    }
    assert_eq!(drift["scored"].as_u64(), Some(rows.len() as u64), "{what}");
}

/// `path` relative to the repository when inside it, as train.py names files.
pub fn shown(path: &Path) -> String {
    let path = path.canonicalize().unwrap();
    let root = root().canonicalize().unwrap();
    path.strip_prefix(&root).map(|p| p.display().to_string()).unwrap_or_else(|_| path.display().to_string())
}

/// sklearn's label for `values` (model order) under the shipped model: the
/// row of tests/golden/dataset.csv with exactly these values, which must exist.
pub fn shipped_golden_label(values: &[f64]) -> u8 {
    let rows = Export::shipped().predictions("dataset.csv");
    let (_, label, _) = rows
        .iter()
        .find(|(v, _, _)| v == values)
        .unwrap_or_else(|| panic!("{values:?} is not a row of tests/golden/dataset.csv: no golden label for it"));
    *label
}

/// [`shipped_golden_label`] of an observation's JSON body (the shipped API names).
pub fn shipped_golden_label_of_body(body: &str) -> u8 {
    let body: Value = serde_json::from_str(body).unwrap();
    let values: Vec<f64> = crate::helpers::FEATURES.iter().map(|f| body[f.api_name].as_f64().unwrap()).collect();
    shipped_golden_label(&values)
}
