//! Hand-made exports that differ in one known way each, and the example
//! exports: the report must find exactly the difference made.

use serde_json::{json, Value};

use super::*;
use crate::core::csv_pipeline::BatchError;
use crate::core::observation::Observation;

/// One feature of a hand-made export: API name, dataset name, training range.
type F<'a> = (&'a str, &'a str, f64, f64);
/// One stump: feature, threshold, leaf value at or below it, leaf value above it.
type Stump = (usize, f64, f64, f64);

/// A loadable export (learning rate 1, initial score 0) of these stumps.
/// Versions 2 and 3 carry covers and a profile (10 training rows: bin 0
/// holds what the other bins, one row each, leave).
fn export(version: u32, features: &[F<'_>], stumps: &[Stump], classes: [&str; 2]) -> Value {
    let feats: Vec<Value> = features
        .iter()
        .map(|(api, dataset, min, max)| {
            let mut f = json!({"name": api, "dataset_name": dataset, "min": min, "max": max});
            if version >= 3 {
                f["api_name"] = json!(api);
            }
            f
        })
        .collect();
    let trees: Vec<Value> = stumps
        .iter()
        .map(|&(f, t, l, r)| {
            let mut tree = json!({"left": [1, -1, -1], "right": [2, -1, -1], "feature": [f, -1, -1],
                                   "threshold": [t, 0.0, 0.0], "value": [0.0, l, r]});
            if version >= 2 {
                tree["cover"] = json!([10.0, 4.0, 6.0]);
            }
            tree
        })
        .collect();
    let mut doc = json!({
        "format": "scorer-gbdt", "format_version": version, "name": "hand-made", "sklearn_version": "1.2.1",
        "classes": [{"label": 0, "name": classes[0]}, {"label": 1, "name": classes[1]}],
        "features": feats, "init_raw_score": 0.0, "learning_rate": 1.0,
        "parameters": {"n_estimators": stumps.len()}, "metrics": {"f1": 0.5}, "trees": trees,
    });
    if version >= 2 {
        let profile: Vec<Value> = features
            .iter()
            .enumerate()
            .map(|(i, (api, ..))| {
                let mut thresholds: Vec<f64> = stumps.iter().filter(|s| s.0 == i).map(|s| s.1).collect();
                thresholds.sort_by(f64::total_cmp);
                thresholds.dedup();
                let mut counts = vec![1u64; thresholds.len() + 1];
                counts[0] = 10 - thresholds.len() as u64;
                json!({"name": api, "mean": 1.0, "thresholds": thresholds, "counts": counts})
            })
            .collect();
        doc["training_profile"] = json!({"rows": 10, "predicted_malignant": 5, "features": profile});
    }
    doc
}

fn load(doc: &Value) -> Model {
    Model::from_json_bytes(doc.to_string().as_bytes()).unwrap()
}

const BENIGN: [&str; 2] = ["benign", "malignant"];

/// Two features, a stump on each.
fn base() -> Value {
    export(2, &[("worstArea", "worst area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN)
}
const BASE_STUMPS: [Stump; 2] = [(0, 1000.0, -1.0, 1.0), (1, 50.0, -0.5, 0.5)];

fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let (old, new) = (load(old), load(new));
    compare_contract(&old, &new, &FeatureMap::new(&old, &new))
}

/// The contract changes only (not the facts every other byte changes).
fn contract_changes(old: &Value, new: &Value) -> Vec<Change> {
    changes(old, new).into_iter().filter(|c| !matches!(c, Change::ModelVersionChanged { .. })).collect()
}

#[test]
fn an_export_against_itself_has_no_change_and_the_same_predictions() {
    for doc in [base(), export(1, &[("x", "x", 0.0, 1.0)], &[(0, 0.5, -1.0, 1.0)], BENIGN)] {
        let model = load(&doc);
        assert_eq!(changes(&doc, &doc), []);
        let report = diff_synthetic(&model, &model, 1000);
        assert!(!report.breaking);
        let rows = &report.rows;
        if model.training_profile().is_some() {
            assert_eq!((rows.source, rows.rows, rows.compared, rows.flips.rows), (RowSource::Synthetic, 1000, 1000, 0));
            assert_eq!((rows.abs_delta_p.mean, rows.abs_delta_p.max), (Some(0.0), Some(0.0)));
            assert_eq!(rows.positive_share.old, rows.positive_share.new);
        } else {
            // Version 1: no profile to draw from.
            assert_eq!((rows.source, rows.rows, rows.flips.share), (RowSource::None, 0, None));
        }
    }
}

#[test]
fn an_added_feature_breaks_clients_and_a_removed_one_does_not() {
    let old = base();
    let new = export(
        2,
        &[("worstArea", "worst area", 100.0, 2000.0), ("bmi", "body mass index", 15.0, 45.0)],
        &BASE_STUMPS,
        BENIGN,
    );
    let found = contract_changes(&old, &new);
    assert_eq!(
        found,
        [
            Change::FeatureAdded { feature: "bmi".into(), dataset_name: "body mass index".into(), position: 1 },
            Change::FeatureRemoved { feature: "age".into(), dataset_name: "age".into(), position: 1 },
        ]
    );
    assert!(found[0].breaks_clients() && !found[1].breaks_clients());
    assert!(found[0].to_string().contains("clients must send it"));
    assert!(found[1].to_string().contains("clients still sending it are fine"));
    // Only the removal: nothing breaks.
    let fewer = export(2, &[("worstArea", "worst area", 100.0, 2000.0)], &BASE_STUMPS[..1], BENIGN);
    let found = contract_changes(&old, &fewer);
    assert!(found.iter().all(|c| !c.breaks_clients()), "{found:?}");
    assert!(found.iter().any(|c| matches!(c, Change::FeatureRemoved { feature, .. } if feature == "age")));
}

#[test]
fn a_feature_whose_old_api_name_no_longer_names_it_but_its_dataset_name_does_is_renamed_and_breaks_clients() {
    // A version 2 export's API name need not come from its dataset name.
    let old = export(2, &[("area", "worst area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let new =
        export(2, &[("worstArea", "worst area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let found = contract_changes(&old, &new);
    assert_eq!(found.len(), 1, "{found:?}");
    let Change::FeatureRenamed { old: was, new: now, rule, .. } = &found[0] else { panic!("{found:?}") };
    assert_eq!((was.as_str(), now.as_str(), *rule), ("area", "worstArea", Match::DatasetName));
    assert!(found[0].breaks_clients());
    assert!(found[0].to_string().contains("clients sending area must send worstArea"), "{}", found[0]);
}

#[test]
fn another_api_name_for_the_same_dataset_name_breaks_nothing_when_the_old_key_names_it_by_the_rule() {
    // train.py's API names are camelCase of the dataset name, so the old key
    // `worstArea` names the new feature by its dataset name `worst area`:
    // HTTP, SQS and Distributed Map keys still reach it.
    let new =
        export(2, &[("areaWorst", "worst area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let found = contract_changes(&base(), &new);
    assert_eq!(found, [Change::ApiNameRespelled { old: "worstArea".into(), new: "areaWorst".into() }]);
    assert!(!found[0].breaks_clients());
    // And a file's rows reach both models through that column.
    let (old, new) = (load(&base()), load(&new));
    let report = diff_csv(&old, &new, &b"worstArea,age\n500,30\n"[..], None).unwrap();
    assert_eq!((report.rows.compared, report.rows.abs_delta_p.max), (1, Some(0.0)));
}

#[test]
fn same_position_and_exactly_the_same_range_under_other_names_is_a_rename_one_ulp_off_is_not() {
    let renamed = export(
        2,
        &[("worstArea", "worst area", 100.0, 2000.0), ("years", "years of age", 20.0, 90.0)],
        &BASE_STUMPS,
        BENIGN,
    );
    let found = contract_changes(&base(), &renamed);
    assert!(
        matches!(found.as_slice(), [Change::FeatureRenamed { old, new, rule: Match::PositionAndRange, range, .. }]
            if old == "age" && new == "years" && *range == [20.0, 90.0]),
        "{found:?}"
    );
    let off = export(
        2,
        &[("worstArea", "worst area", 100.0, 2000.0), ("years", "years of age", 20.0, 90.0f64.next_up())],
        &BASE_STUMPS,
        BENIGN,
    );
    let found = contract_changes(&base(), &off);
    assert!(matches!(found.as_slice(), [Change::FeatureAdded { .. }, Change::FeatureRemoved { .. }]), "{found:?}");
    // At another position, the same range is no rename either.
    let moved = export(
        2,
        &[("years", "years of age", 20.0, 90.0), ("worstArea", "worst area", 100.0, 2000.0)],
        &[(1, 1000.0, -1.0, 1.0), (0, 50.0, -0.5, 0.5)],
        BENIGN,
    );
    let found = contract_changes(&base(), &moved);
    assert!(found.iter().any(|c| matches!(c, Change::FeatureAdded { feature, .. } if feature == "years")), "{found:?}");
    assert!(found.iter().any(|c| matches!(c, Change::FeatureRemoved { feature, .. } if feature == "age")), "{found:?}");
}

#[test]
fn a_respelled_api_name_the_rule_still_matches_breaks_nothing_a_new_dataset_name_breaks_csv_headers() {
    let respelled =
        export(2, &[("WorstArea", "worst area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let found = contract_changes(&base(), &respelled);
    assert_eq!(found, [Change::ApiNameRespelled { old: "worstArea".into(), new: "WorstArea".into() }]);
    assert!(!found[0].breaks_clients());
    // A dataset name that no name of the new feature matches any more: CSV
    // headers written with it no longer reach it.
    let old = export(2, &[("area", "worst area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let dataset =
        export(2, &[("area", "largest area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let found = contract_changes(&old, &dataset);
    assert_eq!(
        found,
        [Change::DatasetNameChanged {
            feature: "area".into(),
            old: "worst area".into(),
            new: "largest area".into(),
            old_still_matches: false
        }]
    );
    assert!(found[0].breaks_clients());
    // When the new API name still matches the old dataset name, nothing breaks.
    let named =
        export(2, &[("worstArea", "largest area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    let found = contract_changes(&base(), &named);
    assert!(matches!(found.as_slice(), [Change::DatasetNameChanged { old_still_matches: true, .. }]), "{found:?}");
    assert!(!found[0].breaks_clients());
    // Another spelling the rule treats as the same name is no change.
    let spelled =
        export(2, &[("worstArea", "Worst_Area", 100.0, 2000.0), ("age", "age", 20.0, 90.0)], &BASE_STUMPS, BENIGN);
    assert_eq!(contract_changes(&base(), &spelled), []);
}

/// `base()` with its two features swapped: the same model, read in another order.
fn swapped() -> Value {
    export(
        2,
        &[("age", "age", 20.0, 90.0), ("worstArea", "worst area", 100.0, 2000.0)],
        &[(1, 1000.0, -1.0, 1.0), (0, 50.0, -0.5, 0.5)],
        BENIGN,
    )
}

#[test]
fn reordered_features_break_nothing_and_each_model_reads_its_own_values() {
    let found = contract_changes(&base(), &swapped());
    assert_eq!(
        found,
        [Change::FeaturesReordered {
            old_order: vec!["worstArea".into(), "age".into()],
            new_order: vec!["age".into(), "worstArea".into()]
        }]
    );
    assert!(!found[0].breaks_clients());
    // The same model in another order: every row compared, no difference,
    // whether the rows are synthetic or a file's.
    let (old, new) = (load(&base()), load(&swapped()));
    let report = diff_synthetic(&old, &new, 2000);
    assert_eq!((report.rows.compared, report.rows.flips.rows, report.rows.abs_delta_p.max), (2000, 0, Some(0.0)));
    let csv = "age,worst area\n30,500\n60,500\n30,1500\n60,1500\n";
    let report = diff_csv(&old, &new, csv.as_bytes(), None).unwrap();
    assert_eq!((report.rows.compared, report.rows.flips.rows, report.rows.abs_delta_p.max), (4, 0, Some(0.0)));
    // Both models labelled the rows as the stumps say: 1 where area + age leans positive.
    assert_eq!(report.rows.positive_share.old, Some(0.5));
}

#[test]
fn ranges_classes_explanations_and_the_exports_facts_are_reported_and_only_some_break() {
    let mut new = export(
        1,
        &[("worstArea", "worst area", 90.0, 2000.0), ("age", "age", 20.0, 90.0)],
        &[(0, 1000.0, -1.0, 1.0), (1, 50.0, -0.5, 0.5), (1, 60.0, 0.0, 0.1)],
        ["0", "1"],
    );
    new["name"] = json!("other");
    new["metrics"] = json!({"f1": 0.6, "auc": 0.9});
    let found = changes(&base(), &new);
    let breaking: Vec<&Change> = found.iter().filter(|c| c.breaks_clients()).collect();
    assert_eq!(
        breaking,
        [
            &Change::ClassNamesChanged { old: ["benign".into(), "malignant".into()], new: ["0".into(), "1".into()] },
            &Change::ExplanationsLost,
        ]
    );
    let v = |x: Value| Some(x);
    for want in [
        Change::TrainingRangeChanged { feature: "worstArea".into(), old: [100.0, 2000.0], new: [90.0, 2000.0] },
        Change::TrainingProfileLost,
        Change::NameChanged { old: "hand-made".into(), new: "other".into() },
        Change::FormatVersionChanged { old: 2, new: 1 },
        Change::TreesChanged { old: 2, new: 3 },
        Change::ParameterChanged { parameter: "n_estimators".into(), old: v(json!(2)), new: v(json!(3)) },
        Change::MetricChanged { metric: "f1".into(), old: v(json!(0.5)), new: v(json!(0.6)) },
        Change::MetricChanged { metric: "auc".into(), old: None, new: v(json!(0.9)) },
    ] {
        assert!(found.contains(&want), "{want:?} not in {found:?}");
    }
    assert!(found.iter().any(|c| matches!(c, Change::ModelVersionChanged { .. })));
    assert_eq!(found.len(), 11, "{found:?}");
    // The other way round: explanations and the profile are gained, which breaks nothing.
    let back = changes(&new, &base());
    assert!(back.contains(&Change::ExplanationsGained) && back.contains(&Change::TrainingProfileGained));
    assert!(back.iter().filter(|c| c.breaks_clients()).all(|c| matches!(c, Change::ClassNamesChanged { .. })));
    // Without a profile in the new export, there is nothing to sample.
    let report = diff_synthetic(&load(&base()), &load(&new), 100);
    assert_eq!((report.rows.source, report.rows.rows), (RowSource::None, 0));
    assert!(report.breaking);
}

/// One feature x in 0..1; old says 1 above 0.5, new above 0.7.
fn threshold_pair() -> (Model, Model) {
    let f = [("x", "x", 0.0, 1.0)];
    (load(&export(2, &f, &[(0, 0.5, -1.0, 1.0)], BENIGN)), load(&export(2, &f, &[(0, 0.7, -1.0, 1.0)], BENIGN)))
}

fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn flips_are_counted_by_direction_with_their_probability_differences() {
    let (old, new) = threshold_pair();
    let csv = "x\n0.1\n0.6\n0.65\n0.9\n0.55\n";
    let report = diff_csv(&old, &new, csv.as_bytes(), None).unwrap();
    let r = &report.rows;
    assert_eq!((r.rows, r.compared, r.not_comparable), (5, 5, 0));
    assert_eq!(r.flips, Flips { rows: 3, share: Some(0.6), zero_to_one: 0, one_to_zero: 3 });
    let dp = expit(1.0) - expit(-1.0);
    assert_eq!(r.abs_delta_p.max, Some(dp));
    assert!((r.abs_delta_p.mean.unwrap() - 3.0 * dp / 5.0).abs() < 1e-15);
    assert_eq!((r.positive_share.old, r.positive_share.new), (Some(0.8), Some(0.2)));
    // The other way round, the same rows flip from 0 to 1.
    let back = diff_csv(&new, &old, csv.as_bytes(), None).unwrap();
    assert_eq!(back.rows.flips, Flips { rows: 3, share: Some(0.6), zero_to_one: 3, one_to_zero: 0 });
    assert!(!report.breaking);
}

#[test]
fn synthetic_rows_of_a_threshold_move_flip_as_the_training_bins_say() {
    let (old, new) = threshold_pair();
    // new's profile: 10 rows, bins (.., 0.7] 9 and (0.7, ..] 1; old flips
    // 1 -> 0 exactly the sampled values in (0.5, 0.7]: within bin 0, which
    // spans 0 to 0.7 evenly, 2/7 of its 9 000 values.
    let report = diff_synthetic(&old, &new, 10_000);
    let r = &report.rows;
    assert_eq!((r.source, r.compared), (RowSource::Synthetic, 10_000));
    let in_bin0 = apportion(&[9, 1], 10_000)[0];
    assert_eq!(in_bin0, 9000);
    let expected = (0..in_bin0).filter(|&i| (i as f64 + 0.5) / in_bin0 as f64 * 0.7 > 0.5).count() as u64;
    assert_eq!(r.flips.one_to_zero, expected);
    assert_eq!(r.flips.zero_to_one, 0);
}

#[test]
fn rows_one_model_cannot_read_are_counted_by_each_models_reason() {
    let old = load(&base());
    // New: worstArea and bmi; age removed.
    let new = load(&export(
        2,
        &[("worstArea", "worst area", 100.0, 2000.0), ("bmi", "bmi", 15.0, 45.0)],
        &BASE_STUMPS,
        BENIGN,
    ));
    let csv = "id,worst_area,age,bmi\n\
               a,500,30,20\n\
               b,500,-1,20\n\
               c,500,30,\n\
               d,-5,30,20\n\
               e,500,30\n\
               f,500,x,20,\n\
               g,1500,60,30\n";
    let report = diff_csv(&old, &new, csv.as_bytes(), None).unwrap();
    let r = &report.rows;
    assert_eq!((r.rows, r.compared, r.not_comparable), (7, 2, 5));
    let count = |old: Option<&str>, new: Option<&str>| {
        r.not_comparable_by_reason.iter().find(|c| c.old == old && c.new == new).map(|c| c.rows)
    };
    assert_eq!(count(None, Some("missing")), Some(1));
    assert_eq!(count(Some("negative"), None), Some(1));
    assert_eq!(count(Some("negative"), Some("negative")), Some(1));
    assert_eq!(count(Some("wrong_field_count"), Some("wrong_field_count")), Some(1));
    assert_eq!(count(Some("not_a_number"), None), Some(1), "a trailing empty field is no wrong count");
    assert_eq!(r.not_comparable_by_reason.iter().map(|c| c.rows).sum::<u64>(), 5);
    assert_eq!(r.missing_features, MissingFeatures::default());

    // A column only one model has: the other's rows are all not comparable.
    let csv = "worstArea;age\n500;30\n1500,5;60\n";
    let report = diff_csv(&old, &new, csv.as_bytes(), None).unwrap();
    let r = &report.rows;
    assert_eq!((r.rows, r.compared), (2, 0));
    assert_eq!(r.not_comparable_by_reason, [ReasonCount { old: None, new: Some(NO_COLUMN), rows: 2 }]);
    assert_eq!(r.missing_features, MissingFeatures { old: vec![], new: vec!["bmi".into()] });
    assert_eq!((r.flips.share, r.abs_delta_p.mean, r.positive_share.old), (None, None, None));
}

#[test]
fn a_file_no_model_can_read_or_with_a_feature_twice_is_an_error_that_quotes_no_cell() {
    let (old, new) = (load(&base()), load(&swapped()));
    let err = diff_csv(&old, &new, &b"Patient-Secret,0.1\n1,2\n"[..], None).unwrap_err();
    assert!(matches!(err, BatchError::MissingColumns(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("no column names a feature") && !text.contains("Secret"), "{text}");
    let err = diff_csv(&old, &new, &b"age,worst area,Age\n1,2,3\n"[..], None).unwrap_err();
    assert!(matches!(&err, BatchError::DuplicateColumn(f) if f == "age"), "{err:?}");
    assert!(matches!(diff_csv(&old, &new, &b""[..], None).unwrap_err(), BatchError::Empty));
    let err = diff_csv(&old, &new, &b"age,worst area\n1,\"2\n"[..], None).unwrap_err();
    assert!(matches!(err, BatchError::UnterminatedQuote { line: 2 }), "{err:?}");
}

#[test]
fn synthetic_rows_lacking_an_old_feature_are_not_comparable_and_name_it() {
    let old = load(&base());
    let new = load(&export(
        2,
        &[("worstArea", "worst area", 100.0, 2000.0), ("bmi", "bmi", 15.0, 45.0)],
        &BASE_STUMPS,
        BENIGN,
    ));
    let report = diff_synthetic(&old, &new, 500);
    let r = &report.rows;
    assert_eq!((r.rows, r.compared, r.not_comparable), (500, 0, 500));
    assert_eq!(r.not_comparable_by_reason, [ReasonCount { old: Some(NOT_SAMPLED), new: None, rows: 500 }]);
    assert_eq!(r.missing_features.old, ["age"]);
    // The other way round, the old model needs bmi, which base's profile does not describe.
    let back = diff_synthetic(&new, &old, 500);
    assert_eq!((back.rows.compared, back.rows.missing_features.old.as_slice()), (0, &["bmi".to_owned()][..]));
    // A model that needs fewer features than the sample has reads every row.
    let fewer = load(&export(2, &[("worstArea", "worst area", 100.0, 2000.0)], &BASE_STUMPS[..1], BENIGN));
    let report = diff_synthetic(&fewer, &old, 500);
    assert_eq!((report.rows.compared, report.rows.missing_features.old.len()), (500, 0));
}

/// The example exports of models/ (each with a profile).
fn examples() -> Vec<(&'static str, Model)> {
    [
        ("shipped", crate::core::model::EMBEDDED_MODEL),
        ("seven", &include_bytes!("../../../models/testdata/breast-cancer-seven.json")[..]),
        ("clinic", &include_bytes!("../../../models/testdata/clinic-outcomes-gbc.json")[..]),
        ("depth2", &include_bytes!("../../../models/testdata/gbc-depth2.json")[..]),
        ("depth3", &include_bytes!("../../../models/testdata/gbc-depth3.json")[..]),
    ]
    .into_iter()
    .map(|(name, bytes)| (name, Model::from_json_bytes(bytes).unwrap()))
    .collect()
}

#[test]
fn the_synthetic_sample_has_the_training_bins_shares_inside_the_training_range_and_is_deterministic() {
    for (name, model) in examples() {
        let map = FeatureMap::new(&model, &model);
        let n = 10_000;
        let (rows, missing) = synthetic_rows(&model, &model, &map, n).unwrap();
        let rows: Vec<RowPair> = rows.collect();
        assert_eq!((rows.len(), missing), (n, MissingFeatures::default()));
        let values: Vec<Observation> = rows.iter().map(|r| r.new.unwrap()).collect();
        let profile = model.training_profile().unwrap();
        for (f, p) in profile.features.iter().enumerate() {
            let edges = model.bin_edges(f);
            let mut counts = vec![0usize; edges.len() + 1];
            let (min, max) = model.info().ranges[f];
            for v in values.iter().map(|o| o.values()[f]) {
                assert!((min..=max).contains(&v), "{name} feature {f}: {v} outside {min}..{max}");
                counts[bin_of(edges, v)] += 1;
            }
            // Counted by the model's own bins (predict_with_bins), not ours.
            let mut by_model = vec![0usize; edges.len() + 1];
            for o in &values {
                by_model[model.predict_with_bins(o).1[f] as usize] += 1;
            }
            assert_eq!(counts, by_model, "{name} feature {f}");
            assert_eq!(counts, apportion(&p.counts, n), "{name} feature {f}");
        }
        let (again, _) = synthetic_rows(&model, &model, &map, n).unwrap();
        assert!(rows.iter().copied().eq(again), "{name}: the same exports give the same rows");
    }
}

#[test]
fn the_synthetic_features_are_paired_independently() {
    let model = Model::embedded().unwrap();
    let map = FeatureMap::new(&model, &model);
    let (rows, _) = synthetic_rows(&model, &model, &map, 10_000).unwrap();
    let rows: Vec<RowPair> = rows.collect();
    let column = |f: usize| -> Vec<f64> { rows.iter().map(|r| r.new.unwrap().values()[f]).collect() };
    // Rank correlation of every pair of features near 0 (worst radius and
    // worst area are 0.98 correlated in the training rows themselves).
    let ranks = |v: Vec<f64>| -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        for (rank, &i) in order.iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    };
    let n = rows.len() as f64;
    for a in 0..5 {
        for b in a + 1..5 {
            let (x, y) = (ranks(column(a)), ranks(column(b)));
            let mean = (n - 1.0) / 2.0;
            let cov: f64 = x.iter().zip(&y).map(|(x, y)| (x - mean) * (y - mean)).sum::<f64>();
            let var: f64 = x.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
            let rho = cov / var;
            assert!(rho.abs() < 0.05, "features {a} and {b}: rank correlation {rho}");
        }
    }
}

#[test]
fn the_report_serialises_each_change_with_its_kind_whether_it_breaks_and_its_sentence() {
    let old = load(&base());
    let new = load(&export(2, &[("worstArea", "worst area", 100.0, 2000.0)], &BASE_STUMPS[..1], BENIGN));
    let report = diff_synthetic(&new, &old, 100);
    let json = serde_json::to_value(&report).unwrap();
    let added = &json["changes"][0];
    assert_eq!(added["kind"], "featureAdded");
    assert_eq!(added["feature"], "age");
    assert_eq!(added["datasetName"], "age");
    assert_eq!(added["breaking"], true);
    assert!(added["message"].as_str().unwrap().contains("clients must send it"));
    assert_eq!(json["breaking"], true);
    assert_eq!(json["rows"]["source"], "synthetic");
    assert_eq!((&json["rows"]["compared"], &json["rows"]["flips"]["share"]), (&json!(100), &json!(0.0)));
    assert_eq!(json["new"]["features"], json!(["worstArea", "age"]));
    // The other way round, the old model needs age, which the sample lacks.
    let json = serde_json::to_value(diff_synthetic(&old, &new, 100)).unwrap();
    assert_eq!(json["rows"]["notComparableByReason"], json!([{"old": "not_sampled", "new": null, "rows": 100}]));
    assert_eq!(json["rows"]["missingFeatures"], json!({"old": ["age"], "new": []}));
    assert_eq!(json["rows"]["flips"], json!({"rows": 0, "share": null, "zeroToOne": 0, "oneToZero": 0}));
}
