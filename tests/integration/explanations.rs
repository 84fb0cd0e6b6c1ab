//! Explanations against shap's `TreeExplainer` (golden files written by
//! models/train.py), the export version 2 rules, and the bins drift reuses.

use scorer::core::explain::NoExplanation;
use scorer::core::model::{Model, EMBEDDED_MODEL};
use scorer::core::observation::Observation;

use crate::goldens::Export;
use crate::helpers::{FEATURES, FEATURE_COUNT};
use scorer::model_file::load_model_file;
use serde_json::Value;

use crate::helpers::{dataset_values, root};

/// shap's values may differ from ours by summation order only.
const SHAP_TOLERANCE: f64 = 1e-9;
/// base value + contributions against the raw score.
const ADDITIVITY_TOLERANCE: f64 = 1e-12;

struct Row {
    set: String,
    values: [f64; FEATURE_COUNT],
    /// sklearn's decision_function.
    raw_score: f64,
    base_value: f64,
    contributions: [f64; FEATURE_COUNT],
}

fn golden_explanations(name: &str) -> Vec<Row> {
    let path = root().join("tests/golden").join(name);
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let mut expected = vec!["set".to_owned(), "row".to_owned()];
    expected.extend(FEATURES.iter().map(|f| f.api_name.to_owned()));
    expected.extend(["raw_score".to_owned(), "base_value".to_owned()]);
    expected.extend(FEATURES.iter().map(|f| format!("contribution_{}", f.api_name)));
    assert_eq!(headers, expected, "{name}: columns");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let f = |i: usize| r[i].parse::<f64>().unwrap();
            Row {
                set: r[0].to_owned(),
                values: std::array::from_fn(|i| f(2 + i)),
                raw_score: f(7),
                base_value: f(8),
                contributions: std::array::from_fn(|i| f(9 + i)),
            }
        })
        .collect()
}

/// Largest differences seen, per golden set.
#[derive(Default, Debug)]
struct Worst {
    rows: usize,
    phi: f64,
    base: f64,
    additivity: f64,
}

/// Checks every row of `file` against `model`; returns the worst differences per set.
fn check_against_shap(model: &Model, file: &str) -> Vec<(String, Worst)> {
    let rows = golden_explanations(file);
    assert!(!rows.is_empty());
    let mut worst: Vec<(String, Worst)> = Vec::new();
    for (i, g) in rows.iter().enumerate() {
        let obs = Observation::from_values(g.values).unwrap();
        let e = model.explain(&obs).unwrap();
        let base_diff = (e.base_value - g.base_value).abs();
        assert!(base_diff <= SHAP_TOLERANCE, "{file} row {i}: base value off by {base_diff:e}");
        let mut phi_diff = 0.0f64;
        for (f, (ours, shap)) in e.contributions.iter().zip(&g.contributions).enumerate() {
            let d = (ours - shap).abs();
            assert!(d <= SHAP_TOLERANCE, "{file} row {i}: {} off by {d:e}", FEATURES[f].api_name);
            phi_diff = phi_diff.max(d);
        }
        // Additive: base + Σ contributions is the raw score, ours and sklearn's.
        let additivity = (e.raw_score() - model.raw_score_exact(&obs)).abs();
        assert!(additivity <= ADDITIVITY_TOLERANCE, "{file} row {i}: E + Σφ - raw = {additivity:e}");
        let sklearn = (e.raw_score() - g.raw_score).abs();
        assert!(sklearn <= ADDITIVITY_TOLERANCE, "{file} row {i}: E + Σφ - decision_function = {sklearn:e}");
        // The tables (and the TreeSHAP of deep trees) against TreeSHAP on every tree.
        let exact = model.explain_exact(&obs).unwrap();
        for (a, b) in e.contributions.iter().zip(&exact.contributions) {
            assert!((a - b).abs() <= ADDITIVITY_TOLERANCE, "{file} row {i}: table {a} vs TreeSHAP {b}");
        }
        let w = match worst.iter_mut().find(|(s, _)| *s == g.set) {
            Some((_, w)) => w,
            None => {
                worst.push((g.set.clone(), Worst::default()));
                &mut worst.last_mut().unwrap().1
            }
        };
        w.rows += 1;
        w.phi = w.phi.max(phi_diff);
        w.base = w.base.max(base_diff);
        w.additivity = w.additivity.max(additivity);
    }
    for (set, w) in &worst {
        eprintln!(
            "{file} {set}: {} rows, max |phi - shap| {:e}, |E - shap E| {:e}, max |E + Σphi - raw| {:e}",
            w.rows, w.phi, w.base, w.additivity
        );
    }
    worst
}

fn test_model(name: &str) -> Model {
    load_model_file(&root().join("models/testdata").join(name)).unwrap()
}

#[test]
fn explanations_of_the_shipped_model_match_shap_on_every_golden_row() {
    let worst = check_against_shap(&Model::embedded().unwrap(), "explanations.csv");
    let sets: Vec<(&str, usize)> = worst.iter().map(|(s, w)| (s.as_str(), w.rows)).collect();
    // Every row of each golden set (train.py's dataset.csv, random.csv, thresholds.csv).
    let export = Export::shipped();
    let expected: Vec<(&str, usize)> = ["dataset", "random", "thresholds"]
        .into_iter()
        .map(|set| (set, export.predictions(&format!("{set}.csv")).len()))
        .collect();
    assert_eq!(sets, expected);
}

#[test]
fn tree_shap_matches_shap_on_a_model_of_depth_two() {
    let model = test_model("gbc-depth2.json");
    assert_eq!(model.info().max_depth, 2);
    check_against_shap(&model, "explanations-depth2.csv");
}

#[test]
fn tree_shap_matches_shap_on_a_model_mixing_stumps_and_trees_of_depth_two_and_three_with_weighted_covers() {
    let model = test_model("gbc-depth3.json");
    assert_eq!(model.info().max_depth, 3);
    check_against_shap(&model, "explanations-depth3.csv");
}

#[test]
fn deeper_models_predict_like_sklearn() {
    for (model, file) in
        [("gbc-depth2.json", "explanations-depth2.csv"), ("gbc-depth3.json", "explanations-depth3.csv")]
    {
        let model = test_model(model);
        for (i, g) in golden_explanations(file).iter().enumerate() {
            let obs = Observation::from_values(g.values).unwrap();
            let raw = model.raw_score_exact(&obs);
            assert!((raw - g.raw_score).abs() <= 1e-12, "{file} row {i}: raw {raw} vs sklearn {}", g.raw_score);
            // The compiled form sums in another order: labels equal, probabilities within 1e-12.
            let (p, exact) = (model.predict(&obs), model.predict_exact(&obs));
            assert_eq!(p.label, exact.label, "{file} row {i}");
            assert!((p.probability - exact.probability).abs() <= 1e-12, "{file} row {i}");
            assert_eq!(p.label, u8::from(g.raw_score > 0.0), "{file} row {i}: label");
        }
    }
}

#[test]
fn golden_explanations_were_computed_on_the_models_in_the_repository() {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/golden/explanations.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["shap_version"], "0.42.1");
    let files = meta["files"].as_object().unwrap();
    assert_eq!(files.len(), 3);
    for (file, entry) in files {
        let model = load_model_file(&root().join(entry["model"].as_str().unwrap())).unwrap();
        assert_eq!(model.info().sha256, entry["model_sha256"].as_str().unwrap(), "{file} explains another model");
        assert_eq!(model.info().base_value, entry["expected_value"].as_f64().map(|e| model_base(&model, e)));
    }
    // The shipped model is the embedded one.
    assert_eq!(files["explanations.csv"]["model"], "models/breast-cancer-gbc.json");
    assert_eq!(std::fs::read(root().join("models/breast-cancer-gbc.json")).unwrap(), EMBEDDED_MODEL);
}

/// Our base value, after checking it is shap's within the tolerance.
fn model_base(model: &Model, shap: f64) -> f64 {
    let ours = model.info().base_value.unwrap();
    assert!((ours - shap).abs() <= SHAP_TOLERANCE, "base value {ours} vs shap {shap}");
    ours
}

// ---- export version 2: what the loader accepts and refuses ------------------------

fn embedded_doc() -> Value {
    serde_json::from_slice(EMBEDDED_MODEL).unwrap()
}

fn load(doc: &Value) -> Result<Model, String> {
    Model::from_json_bytes(&serde_json::to_vec(doc).unwrap()).map_err(|e| e.to_string())
}

/// The embedded export as version 1: no covers, no profile.
fn as_version_1(mut doc: Value) -> Value {
    doc["format_version"] = 1.into();
    doc.as_object_mut().unwrap().remove("training_profile");
    for tree in doc["trees"].as_array_mut().unwrap() {
        tree.as_object_mut().unwrap().remove("cover");
    }
    doc
}

#[test]
fn a_version_1_export_still_loads_and_predicts_identically_but_cannot_explain() {
    let v2 = Model::embedded().unwrap();
    let v1 = load(&as_version_1(embedded_doc())).unwrap();
    assert_eq!(v1.info().format_version, 1);
    assert_eq!(v1.info().base_value, None);
    assert!(v1.training_profile().is_none());
    assert!(!v1.can_explain());
    for row in golden_explanations("explanations.csv").iter().step_by(7) {
        let obs = Observation::from_values(row.values).unwrap();
        assert_eq!(v1.predict(&obs), v2.predict(&obs));
        assert_eq!(v1.predict_with_bins(&obs), v2.predict_with_bins(&obs));
        let err = v1.explain(&obs).unwrap_err();
        assert_eq!(err, NoExplanation::NoCovers);
        assert_eq!(err.code(), "explanations_unavailable");
        assert!(err.to_string().contains("format version 1"), "{err}");
        assert!(v1.explain_exact(&obs).is_err());
    }
}

#[test]
fn a_version_2_export_whose_covers_do_not_add_up_is_refused() {
    // Tree 7's left leaf gains one training row its root never saw.
    let mut doc = embedded_doc();
    let cover = &mut doc["trees"][7]["cover"][1];
    *cover = (cover.as_f64().unwrap() + 1.0).into();
    let err = load(&doc).unwrap_err();
    assert!(err.contains("tree 7") && err.contains("node 0") && err.contains("not the sum of its children"), "{err}");

    // A relative error of 1e-6 is far beyond float rounding: refused.
    let mut doc = embedded_doc();
    let cover = &mut doc["trees"][3]["cover"][0];
    *cover = (cover.as_f64().unwrap() * (1.0 + 1e-6)).into();
    assert!(load(&doc).unwrap_err().contains("tree 3"));

    // sklearn sums float weights per node: a few ulps apart is accepted.
    let mut doc = embedded_doc();
    let cover = &mut doc["trees"][3]["cover"][0];
    *cover = (cover.as_f64().unwrap() * (1.0 + 1e-13)).into();
    load(&doc).unwrap();
}

#[test]
fn a_version_2_export_with_missing_or_unusable_covers_or_profile_is_refused() {
    type Edit = fn(&mut Value);
    let cases: [(Edit, &str); 9] = [
        (|d| drop(d["trees"][2].as_object_mut().unwrap().remove("cover")), "tree 2: format_version 2 needs a cover"),
        (|d| drop(d["trees"][2]["cover"].as_array_mut().unwrap().pop()), "cover has 2 entries for 3 nodes"),
        (
            |d| d["trees"][4]["cover"] = serde_json::json!([0.0, 0.0, 0.0]),
            "tree 4: node 0 has a cover that is not a positive",
        ),
        (|d| d["trees"][4]["cover"][2] = (-1.0).into(), "node 2 has a cover that is not a positive"),
        (|d| drop(d.as_object_mut().unwrap().remove("training_profile")), "needs a training_profile"),
        (|d| d["training_profile"]["features"][3]["thresholds"][0] = 489.0.into(), "thresholds of \"worstArea\""),
        (|d| d["training_profile"]["features"][1]["counts"][0] = 207.into(), "counts of \"worstRadius\" do not add up"),
        (|d| d["training_profile"]["features"][0]["name"] = "worstArea".into(), "feature 0 is \"worstArea\""),
        (|d| d["training_profile"]["predicted_malignant"] = 456.into(), "predicted_malignant) exceeds rows"),
    ];
    for (edit, expected) in cases {
        let mut doc = embedded_doc();
        edit(&mut doc);
        let err = load(&doc).unwrap_err();
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }
}

#[test]
fn a_version_1_export_carrying_covers_is_refused_rather_than_half_read() {
    let mut doc = embedded_doc();
    doc["format_version"] = 1.into();
    let err = load(&doc).unwrap_err();
    assert!(err.contains("an export with them is version 2"), "{err}");
}

// ---- bins and the training profile (what drift statistics reuse) -------------------

/// The bin by the model's rule, written as the split itself: the number of
/// thresholds a value does not go left of (all but those with `float32(x) <= t`).
fn bin_by_the_split_rule(edges: &[f64], x: f64) -> u32 {
    let goes_left = edges.iter().filter(|&&t| (x as f32 as f64) <= t).count();
    (edges.len() - goes_left) as u32
}

#[test]
fn bins_follow_the_split_rule_on_and_beside_every_threshold() {
    let model = Model::embedded().unwrap();
    // The bin edges are each feature's distinct split thresholds, read off the export's trees here.
    let thresholds = Export::shipped().split_thresholds();
    for (f, t) in thresholds.iter().enumerate() {
        assert_eq!(model.bin_edges(f), t.as_slice(), "{}", FEATURES[f].api_name);
    }
    for row in golden_explanations("explanations.csv") {
        let obs = Observation::from_values(row.values).unwrap();
        let (p, bins) = model.predict_with_bins(&obs);
        assert_eq!(p, model.predict(&obs));
        assert_eq!(bins, model.bins(&obs));
        for (f, &b) in bins.iter().enumerate().take(FEATURE_COUNT) {
            assert_eq!(b, bin_by_the_split_rule(model.bin_edges(f), row.values[f]), "feature {f}");
        }
        // explain_with_bins with the bins predict found is explain.
        assert_eq!(model.explain_with_bins(&obs, &bins).unwrap(), model.explain(&obs).unwrap());
    }
}

#[test]
fn the_training_profile_is_the_training_split_binned_by_the_model() {
    let model = Model::embedded().unwrap();
    let profile = model.training_profile().unwrap();
    let rows = dataset_values();
    let mut reader = csv::Reader::from_path(root().join("tests/golden/training_rows.csv")).unwrap();
    let training: Vec<usize> = reader.records().map(|r| r.unwrap()[0].parse().unwrap()).collect();
    assert_eq!(profile.rows, training.len() as u64);
    let n = training.len() as f64;

    let mut counts: Vec<Vec<u64>> = (0..FEATURE_COUNT).map(|f| vec![0; model.bin_edges(f).len() + 1]).collect();
    let mut sums = [0.0f64; FEATURE_COUNT];
    let mut malignant = 0;
    for &i in &training {
        for (f, (c, s)) in counts.iter_mut().zip(&mut sums).enumerate() {
            c[bin_by_the_split_rule(model.bin_edges(f), rows[i][f]) as usize] += 1;
            *s += rows[i][f];
        }
        malignant += u64::from(model.predict(&Observation::from_values(rows[i]).unwrap()).label);
    }
    for (f, fp) in profile.features.iter().enumerate() {
        assert_eq!(fp.counts, counts[f], "{}", FEATURES[f].api_name);
        assert!((fp.mean - sums[f] / n).abs() <= 1e-12 * fp.mean.abs(), "{} mean", FEATURES[f].api_name);
    }
    assert_eq!(profile.predicted_malignant, malignant);
    assert_eq!(profile.predicted_malignant_share(), malignant as f64 / n);
}
