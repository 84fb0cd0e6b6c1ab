use super::*;
use crate::core::model::Model;

/// The shipped model's five features.
const FEATURE_COUNT: usize = 5;

fn api_names(m: &Model) -> Vec<String> {
    m.features().api_names().map(str::to_owned).collect()
}

/// Five features' bins as the inline array the model gives.
fn bins_of(five: [u32; FEATURE_COUNT]) -> Bins {
    let mut bins = [0; MAX_FEATURES];
    bins[..FEATURE_COUNT].copy_from_slice(&five);
    bins
}

fn model() -> Model {
    Model::embedded().unwrap()
}

/// A few rows near the training data, and one far outside it.
const ROWS: [[f64; FEATURE_COUNT]; 6] = [
    [0.1471, 25.38, 17.33, 2019.0, 0.2654],
    [0.07017, 24.99, 23.41, 1956.0, 0.186],
    [0.04781, 15.11, 26.5, 711.2, 0.07431],
    [0.0, 9.0, 20.0, 250.0, 0.0],
    [0.02, 13.0, 30.0, 515.0, 0.05],
    [0.5, 60.0, 80.0, 9000.0, 0.9],
];

fn record_all(stats: &mut DriftStats, model: &Model, rows: &[[f64; FEATURE_COUNT]]) {
    for values in rows {
        let obs = Observation::from_values(*values).unwrap();
        let (p, bins) = model.predict_with_bins(&obs);
        stats.record(&obs, &p, &bins);
    }
}

fn json(report: &DriftReport) -> String {
    serde_json::to_string(report).unwrap()
}

#[test]
fn a_file_without_scored_rows_gives_nulls_and_no_alert_never_nan() {
    let m = model();
    let mut stats = DriftStats::new(&m);
    let empty = stats.report(&m, &DriftOptions::default());
    assert_eq!((empty.rows, empty.scored, empty.rejected), (0, 0, 0));
    assert!(!empty.alert && !empty.alert_assessed && empty.alert_features.is_empty());
    assert_eq!(empty.rejected_share, None);
    let text = json(&empty);
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for f in v["features"].as_array().unwrap() {
        for key in ["psi", "outOfRangeShare", "min", "max", "mean"] {
            assert!(f[key].is_null(), "{key} of {}", f["name"]);
        }
        assert!(f["bins"]["shares"].is_null());
        assert!(f["bins"]["trainingShares"].is_array());
    }
    assert!(v["predictedMalignantShare"].is_null());

    // Only rejected rows: still no PSI, and the rejections are all there.
    stats.record_rejected("missing");
    stats.record_rejected("negative");
    stats.record_rejected("missing");
    let r = stats.report(&m, &DriftOptions::default());
    assert_eq!((r.rows, r.scored, r.rejected, r.rejected_share), (3, 0, 3, Some(1.0)));
    assert_eq!(r.rejected_by_reason["missing"], ReasonCount { rows: 2, share: 2.0 / 3.0 });
    assert_eq!(r.rejected_by_reason["negative"].rows, 1);
    assert!(r.features.iter().all(|f| f.psi.is_none()));
    assert!(!json(&r).contains("NaN"));
}

#[test]
fn counts_bins_ranges_and_labels_of_scored_rows() {
    let m = model();
    let mut stats = DriftStats::new(&m);
    record_all(&mut stats, &m, &ROWS);
    stats.record_rejected("not_a_number");
    let options = DriftOptions { min_rows_for_extremes: 1, ..DriftOptions::default() };
    let r = stats.report(&m, &options);
    assert_eq!((r.rows, r.scored, r.rejected), (7, 6, 1));
    let malignant = ROWS.iter().filter(|v| m.predict(&Observation::from_values(**v).unwrap()).label == 1).count();
    assert_eq!(r.predicted_malignant, malignant as u64);
    assert_eq!(r.predicted_malignant_share, Some(malignant as f64 / 6.0));
    // Only the last row is outside the training range, on every feature.
    assert_eq!(r.rows_out_of_range, 1);
    for (f, feature) in r.features.iter().enumerate() {
        assert_eq!(feature.name, m.features().api_name(f));
        assert_eq!(feature.out_of_range_rows, 1, "{}", feature.name);
        assert_eq!(feature.bins.counts.iter().sum::<u64>(), 6);
        assert_eq!(feature.bins.counts.len(), m.bin_edges(f).len() + 1);
        assert_eq!(feature.bins.edges, m.bin_edges(f));
        assert_eq!(feature.min, Some(ROWS.iter().map(|v| v[f]).fold(f64::INFINITY, f64::min)));
        assert_eq!(feature.max, Some(ROWS.iter().map(|v| v[f]).fold(0.0, f64::max)));
        let mean = ROWS.iter().map(|v| v[f]).sum::<f64>() / 6.0;
        assert!((feature.mean.unwrap() - mean).abs() <= 1e-12 * mean);
        // The last row lands in the last bin of every feature.
        assert!(*feature.bins.counts.last().unwrap() >= 1);
    }
    // The export's own training profile, read from the file here (not through the model).
    let doc: serde_json::Value = serde_json::from_slice(crate::core::model::EMBEDDED_MODEL).unwrap();
    let (rows, positive) = (&doc["training_profile"]["rows"], &doc["training_profile"]["predicted_malignant"]);
    let (rows, positive) = (rows.as_u64().unwrap(), positive.as_u64().unwrap());
    assert_eq!(r.training_predicted_malignant_share, Some(positive as f64 / rows as f64));
    assert_eq!(r.training_rows, Some(rows));
}

#[test]
fn blocks_merged_in_any_split_give_the_single_pass_report() {
    let m = model();
    let rows: Vec<[f64; FEATURE_COUNT]> =
        (0..40).map(|i| ROWS[i % ROWS.len()].map(|v| v * (1.0 + i as f64 / 97.0))).collect();
    let options = DriftOptions { min_rows_for_extremes: 1, min_rows_for_alert: 1, ..DriftOptions::default() };
    let mut whole = DriftStats::new(&m);
    record_all(&mut whole, &m, &rows);
    for (i, code) in ["missing", "negative", "missing", "wrong_field_count"].iter().enumerate() {
        if i % 2 == 0 {
            whole.record_rejected(code);
        }
    }
    let expected = whole.report(&m, &options);
    for cut in [0, 1, 17, 39, 40] {
        let (mut a, mut b) = (DriftStats::new(&m), DriftStats::new(&m));
        record_all(&mut a, &m, &rows[..cut]);
        record_all(&mut b, &m, &rows[cut..]);
        a.record_rejected("missing");
        b.record_rejected("missing");
        a.merge(&b);
        let mut got = a.report(&m, &options);
        // Sums in another order may differ in the last bits of the mean.
        for (g, e) in got.features.iter_mut().zip(&expected.features) {
            let (gm, em) = (g.mean.unwrap(), e.mean.unwrap());
            assert!((gm - em).abs() <= 1e-12 * em, "{gm} vs {em}");
            g.mean = e.mean;
        }
        assert_eq!(got, expected, "split at {cut}");
    }
}

#[test]
#[should_panic(expected = "different models")]
fn statistics_of_different_models_refuse_to_merge() {
    let m = model();
    let other_text = String::from_utf8(crate::core::model::EMBEDDED_MODEL.to_vec()).unwrap().replacen(
        "\"name\":\"breast-cancer-gbc\"",
        "\"name\":\"other\"",
        1,
    );
    let other = Model::from_json_bytes(other_text.as_bytes()).unwrap();
    assert_ne!(other.info().sha256, m.info().sha256);
    let mut a = DriftStats::new(&m);
    a.merge(&DriftStats::new(&other));
}

#[test]
fn bins_of_another_model_are_left_out_and_counted_never_written_elsewhere() {
    let m = model();
    let other = Model::from_json_bytes(include_bytes!("../../../models/testdata/gbc-depth3.json")).unwrap();
    let o = Observation::from_values([0.5, 60.0, 80.0, 9000.0, 0.9]).unwrap();
    let (p, other_bins) = other.predict_with_bins(&o);
    let width = |f: usize| m.bin_edges(f).len() as u32 + 1;
    assert!((0..FEATURE_COUNT).any(|f| other_bins[f] >= width(f)), "the test needs a bin this model lacks");
    let mut stats = DriftStats::new(&m);
    let empty = stats.clone();
    // One past feature 0's last bin is feature 1's first in the flat counts; u32::MAX is past the end.
    for bins in [other_bins, bins_of([width(0), 0, 0, 0, 0]), bins_of([0, 0, 0, 0, width(4)]), bins_of([u32::MAX; 5])] {
        stats.record(&o, &p, &bins);
    }
    assert_eq!(stats.foreign_rows(), 4);
    stats.foreign_rows = 0;
    assert_eq!(stats, empty, "a foreign row changed the statistics");
    // The last bin of each feature is still this model's.
    let last = bins_of(std::array::from_fn(|f| width(f) - 1));
    stats.record(&o, &p, &last);
    assert_eq!((stats.scored(), stats.foreign_rows()), (1, 0));
}

#[test]
fn the_alert_names_the_features_over_the_threshold_and_only_with_enough_rows() {
    let m = model();
    // 400 rows all far above the training maximum: every feature lands in its last bin.
    let rows = vec![[0.5, 60.0, 80.0, 9000.0, 0.9]; 400];
    let mut stats = DriftStats::new(&m);
    record_all(&mut stats, &m, &rows);
    let r = stats.report(&m, &DriftOptions::default());
    assert!(r.alert && r.alert_assessed);
    assert_eq!(r.alert_features, api_names(&m));
    assert!(r.features.iter().all(|f| f.out_of_range_share == Some(1.0)));

    // A threshold above every PSI: assessed, no alert.
    let high = r.features.iter().filter_map(|f| f.psi).fold(0.0, f64::max) + 1.0;
    let calm = stats.report(&m, &DriftOptions { psi_threshold: high, ..DriftOptions::default() });
    assert!(!calm.alert && calm.alert_assessed && calm.alert_features.is_empty());

    // Too few rows: PSI is reported, but nothing is claimed either way.
    let few = stats.report(&m, &DriftOptions { min_rows_for_alert: 401, ..DriftOptions::default() });
    assert!(!few.alert && !few.alert_assessed && few.alert_features.is_empty());
    assert!(few.features.iter().all(|f| f.psi.is_some()));
    let metrics = few.metric_values();
    assert_eq!(metrics.alert, None);
    assert!(metrics.features.iter().all(|f| f.psi.is_none() && f.out_of_range_share == Some(1.0)));

    // The default minimum: one row short of it is not assessed.
    let mut stats = DriftStats::new(&m);
    record_all(&mut stats, &m, &rows[..DEFAULT_MIN_ROWS_FOR_ALERT as usize - 1]);
    assert!(!stats.report(&m, &DriftOptions::default()).alert_assessed);
    record_all(&mut stats, &m, &rows[..1]);
    assert!(stats.report(&m, &DriftOptions::default()).alert);

    let metrics = r.metric_values();
    assert_eq!(metrics.alert, Some(1.0));
    assert_eq!(metrics.predicted_malignant_share, r.predicted_malignant_share);
    let names: Vec<String> = metrics.features.iter().map(|f| f.feature.clone()).collect();
    assert_eq!(names, api_names(&m));
    assert!(metrics.features.iter().zip(&r.features).all(|(m, f)| m.psi == f.psi));
}

#[test]
fn a_small_batch_never_shows_a_rows_values() {
    let m = model();
    // Values no bin edge, range or training mean could spell.
    let marker = [0.0987654, 23.456789, 31.234567, 1234.5678, 0.1876543];
    let options = DriftOptions::default();
    let mut stats = DriftStats::new(&m);
    for n in 1..options.min_rows_for_extremes {
        record_all(&mut stats, &m, &[marker]);
        let r = stats.report(&m, &options);
        assert_eq!(r.scored, n);
        let text = json(&r);
        for v in marker {
            for shown in [v.to_string(), format!("{v:.3}"), format!("{v:e}")] {
                assert!(!text.contains(&shown), "{shown} in {text}");
            }
        }
        assert!(r.features.iter().all(|f| f.min.is_none() && f.max.is_none() && f.mean.is_none()));
        let page = html::render(&r, &html::PageContext::default());
        assert!(!page.contains("23.46") && !page.contains("1,235") && !page.contains("31.23"), "a value on the page");
    }
    record_all(&mut stats, &m, &[marker]);
    let r = stats.report(&m, &options);
    assert_eq!(r.features[1].max, Some(marker[1]), "from min_rows_for_extremes rows on, extremes are shown");
}

#[test]
fn a_version_1_export_counts_bins_but_claims_no_drift() {
    let m = model();
    let mut doc: serde_json::Value = serde_json::from_slice(crate::core::model::EMBEDDED_MODEL).unwrap();
    let o = doc.as_object_mut().unwrap();
    o.remove("training_profile");
    o.insert("format_version".into(), 1.into());
    for tree in o["trees"].as_array_mut().unwrap() {
        tree.as_object_mut().unwrap().remove("cover");
    }
    let v1 = Model::from_json_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let rows = vec![[0.5, 60.0, 80.0, 9000.0, 0.9]; 400];
    let mut stats = DriftStats::new(&v1);
    record_all(&mut stats, &v1, &rows);
    let r = stats.report(&v1, &DriftOptions::default());
    assert!(!r.alert && !r.alert_assessed);
    assert_eq!((r.training_rows, r.training_predicted_malignant_share), (None, None));
    assert!(r.features.iter().all(|f| f.psi.is_none() && f.bins.training_shares.is_none()));
    assert_eq!(r.features[3].bins.counts.iter().sum::<u64>(), 400);
    assert!(!json(&r).contains("NaN"));
    // Same bins as the version 2 model.
    assert_eq!(r.features[3].bins.edges, m.bin_edges(3));
}

#[test]
fn psi_floors_both_shares_before_the_formula() {
    // An empty file bin against a training share of 0.5, and the other way round.
    let got = psi(&[0.0, 1.0], &[0.5, 0.5]);
    let want = (1e-4 - 0.5) * (1e-4f64 / 0.5).ln() + 0.5 * 2f64.ln();
    assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    assert_eq!(psi(&[0.2, 0.8], &[0.2, 0.8]), 0.0);
    assert!(psi(&[0.0, 0.0], &[0.0, 0.0]) == 0.0);
}

#[test]
fn reasons_beyond_the_inline_list_are_still_counted() {
    let m = model();
    let mut stats = DriftStats::new(&m);
    const CODES: [&str; 20] =
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t"];
    for code in CODES {
        stats.record_rejected(code);
        stats.record_rejected(code);
    }
    let r = stats.report(&m, &DriftOptions::default());
    assert_eq!(r.rejected_by_reason.len(), 20);
    assert!(r.rejected_by_reason.values().all(|c| c.rows == 2 && c.share == 0.05));
}
