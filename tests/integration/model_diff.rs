//! `scorer model diff`, run as a user runs it: the real binary on the
//! repository's exports. Expected figures come from the golden files that
//! sklearn and shap wrote (train.py), never from the crate's own code.

use std::process::Output;

use serde_json::Value;

use crate::helpers::{root, scorer};

const SHIPPED: &str = "models/breast-cancer-gbc.json";
const SEVEN: &str = "models/testdata/breast-cancer-seven.json";
const DEPTH2: &str = "models/testdata/gbc-depth2.json";
const CLINIC: &str = "models/testdata/clinic-outcomes-gbc.json";

fn diff(args: &[&str]) -> Output {
    let mut c = scorer();
    c.current_dir(root()).args(["model", "diff"]).args(args);
    c.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

/// The changes of a JSON report of one kind, by their `feature`.
fn features_of(report: &Value, kind: &str) -> Vec<String> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| c["feature"].as_str().unwrap().to_owned())
        .collect()
}

fn api_names(path: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap();
    doc["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn shipped_against_seven_other_features_breaks_clients_names_the_features_and_exits_non_zero() {
    let out = diff(&[SHIPPED, SEVEN]);
    assert_eq!(out.status.code(), Some(3), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let (shipped, seven) = (api_names(SHIPPED), api_names(SEVEN));
    assert_eq!((shipped.len(), seven.len()), (5, 7));
    for name in &seven {
        assert!(text.contains(&format!("! feature added: {name} (")), "{name} not added in:\n{text}");
    }
    for name in &shipped {
        assert!(text.contains(&format!("- feature removed: {name} (")), "{name} not removed in:\n{text}");
    }
    assert!(text.contains("clients must send it") && text.contains("clients still sending it are fine"), "{text}");
    assert!(text.contains("Result: 7 change(s) break clients (exit 3"), "{text}");
    // The synthetic rows come from the new profile, which has none of the old features.
    assert!(text.contains("NOT the training rows"), "{text}");

    let report = json(&diff(&[SHIPPED, SEVEN, "--json"]));
    assert_eq!(features_of(&report, "featureAdded"), seven);
    assert_eq!(features_of(&report, "featureRemoved"), shipped);
    assert_eq!((&report["breaking"], &report["exitCode"]), (&Value::Bool(true), &Value::from(3)));
    let rows = &report["rows"];
    assert_eq!((&rows["source"], &rows["rows"], &rows["compared"]), (&"synthetic".into(), &10_000.into(), &0.into()));
    assert_eq!(rows["notComparableByReason"][0]["old"], "not_sampled");
    assert_eq!(rows["missingFeatures"]["old"], serde_json::json!(shipped));
}

#[test]
fn allow_breaking_exits_zero_and_still_prints_the_changes() {
    let out = diff(&[SHIPPED, SEVEN, "--allow-breaking"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("! feature added: meanRadius"), "{text}");
    assert!(text.contains("allowed by --allow-breaking (exit 0)"), "{text}");
    let report = json(&diff(&[SHIPPED, SEVEN, "--allow-breaking", "--json"]));
    assert_eq!((&report["breaking"], &report["exitCode"]), (&Value::Bool(true), &Value::from(0)));
}

#[test]
fn the_shipped_export_against_itself_has_no_change_no_flip_and_no_difference() {
    for rows in [None, Some("tests/golden/dataset.csv")] {
        let mut args = vec![SHIPPED, SHIPPED, "--json"];
        args.extend(rows.map(|r| ["--rows", r]).into_iter().flatten());
        let out = diff(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report = json(&out);
        assert_eq!(report["changes"], serde_json::json!([]));
        let r = &report["rows"];
        let expected_rows = if rows.is_some() { 569 } else { 10_000 };
        assert_eq!((&r["rows"], &r["compared"]), (&expected_rows.into(), &expected_rows.into()), "{r}");
        assert_eq!(r["flips"]["rows"], 0);
        assert_eq!((&r["absDeltaP"]["max"], &r["absDeltaP"]["mean"]), (&0.0.into(), &0.0.into()));
        assert_eq!(r["positiveShare"]["old"], r["positiveShare"]["new"]);
    }
    // On the dataset, the share labelled malignant is sklearn's.
    let golden = csv_rows("tests/golden/dataset.csv");
    let malignant = golden.iter().filter(|r| r["prediction"] == "1").count() as f64 / golden.len() as f64;
    let report = json(&diff(&[SHIPPED, SHIPPED, "--rows", "tests/golden/dataset.csv", "--json"]));
    assert_eq!(report["rows"]["positiveShare"]["new"].as_f64(), Some(malignant));
    let text = stdout(&diff(&[SHIPPED, SHIPPED]));
    assert!(text.contains("Changes: none") && text.contains("no change breaks clients (exit 0)"), "{text}");
}

/// A CSV file's records as maps from its header.
fn csv_rows(path: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(root().join(path)).unwrap();
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| header.iter().map(str::to_owned).zip(r.unwrap().iter().map(str::to_owned)).collect())
        .collect()
}

/// sklearn's label and probability of class 1 from a raw score (the golden
/// explanations carry `decision_function`): expit, then argmax.
fn from_raw(raw: f64) -> (u8, f64) {
    let p = 1.0 / (1.0 + (-raw).exp());
    (u8::from(p > 1.0 - p), p)
}

/// What the goldens say comparing the shipped model with gbc-depth2 on the
/// rows of `set` in explanations-depth2.csv: (flips 0->1, flips 1->0, mean |dp|,
/// max |dp|, share labelled 1 by the shipped model, by depth2). The shipped
/// model's labels and probabilities are sklearn's from `shipped_golden`, whose
/// rows are the same, in the same order.
fn expected_from_goldens(set: &str, shipped_golden: &str) -> (u64, u64, f64, f64, f64, f64) {
    let depth2: Vec<_> =
        csv_rows("tests/golden/explanations-depth2.csv").into_iter().filter(|r| r["set"] == set).collect();
    let shipped = csv_rows(shipped_golden);
    let (mut up, mut down, mut sum, mut max, mut old_1, mut new_1) = (0, 0, 0.0, 0.0f64, 0, 0);
    for (i, d) in depth2.iter().enumerate() {
        let s = &shipped[d["row"].parse::<usize>().unwrap()];
        assert_eq!(s["worstArea"], d["worstArea"], "row {i}: the two goldens list the same rows");
        let (old_label, old_p) = (s["prediction"].parse::<u8>().unwrap(), s["probability"].parse::<f64>().unwrap());
        let (new_label, new_p) = from_raw(d["raw_score"].parse().unwrap());
        match (old_label, new_label) {
            (0, 1) => up += 1,
            (1, 0) => down += 1,
            _ => {}
        }
        old_1 += u64::from(old_label);
        new_1 += u64::from(new_label);
        sum += (new_p - old_p).abs();
        max = max.max((new_p - old_p).abs());
    }
    let n = depth2.len() as f64;
    (up, down, sum / n, max, old_1 as f64 / n, new_1 as f64 / n)
}

fn assert_figures(report: &Value, rows: u64, expected: (u64, u64, f64, f64, f64, f64)) {
    let r = &report["rows"];
    let (up, down, mean, max, old_share, new_share) = expected;
    assert_eq!((r["rows"].as_u64(), r["compared"].as_u64()), (Some(rows), Some(rows)), "{r}");
    assert_eq!(r["flips"]["rows"].as_u64(), Some(up + down), "{r}");
    assert_eq!((r["flips"]["zeroToOne"].as_u64(), r["flips"]["oneToZero"].as_u64()), (Some(up), Some(down)), "{r}");
    assert_eq!(r["flips"]["share"].as_f64(), Some((up + down) as f64 / rows as f64));
    // Probabilities agree with sklearn's within 1e-12 (docs/model.md); so do their means.
    assert!((r["absDeltaP"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{r} vs {mean}");
    assert!((r["absDeltaP"]["max"].as_f64().unwrap() - max).abs() < 1e-12, "{r} vs {max}");
    assert_eq!(r["positiveShare"]["old"].as_f64(), Some(old_share));
    assert_eq!(r["positiveShare"]["new"].as_f64(), Some(new_share));
}

#[test]
fn shipped_against_depth2_on_the_dataset_rows_keeps_the_contract_and_counts_what_the_goldens_say() {
    let out = diff(&[SHIPPED, DEPTH2, "--rows", "tests/golden/dataset.csv", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["breaking"], false);
    let kinds: Vec<&str> = report["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for kind in kinds.iter() {
        assert!(
            [
                "nameChanged",
                "modelVersionChanged",
                "treesChanged",
                "maxDepthChanged",
                "parameterChanged",
                "metricChanged"
            ]
            .contains(kind),
            "{kind}: the contract is the same"
        );
    }
    assert_eq!(report["rows"]["source"], "file");
    assert_figures(&report, 569, expected_from_goldens("dataset", "tests/golden/dataset.csv"));
}

#[test]
fn shipped_against_depth2_on_two_thousand_random_rows_counts_the_flips_the_goldens_give() {
    // explanations-depth2.csv's random rows are random.csv's first 2,000
    // (checked row by row below): a file of them, with random.csv's own
    // prediction and probability columns passing through unread.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("random-2000.csv");
    let text = std::fs::read_to_string(root().join("tests/golden/random.csv")).unwrap();
    let lines: Vec<&str> = text.lines().take(2001).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let expected = expected_from_goldens("random", "tests/golden/random.csv");
    assert!(expected.0 + expected.1 > 50, "a set with flips to count: {expected:?}");
    let out = diff(&[SHIPPED, DEPTH2, "--rows", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_figures(&json(&out), 2000, expected);
    // The text gives the same counts.
    let out = diff(&[SHIPPED, DEPTH2, "--rows", file.to_str().unwrap()]);
    let text = stdout(&out);
    let flips = format!("label flips           {} (", expected.0 + expected.1);
    let directions = format!("0 -> 1 {}, 1 -> 0 {}", expected.0, expected.1);
    assert!(text.contains(&flips) && text.contains(&directions), "{text}");
}

#[test]
fn a_file_only_one_model_can_read_counts_every_row_as_not_comparable_and_names_the_columns() {
    let report = json(&diff(&[CLINIC, SHIPPED, "--rows", "tests/golden/dataset.csv", "--json", "--allow-breaking"]));
    let r = &report["rows"];
    assert_eq!(
        (r["rows"].as_u64(), r["compared"].as_u64(), r["notComparable"].as_u64()),
        (Some(569), Some(0), Some(569))
    );
    assert_eq!(r["notComparableByReason"], serde_json::json!([{"old": "no_column", "new": null, "rows": 569}]));
    assert_eq!(r["missingFeatures"]["old"], serde_json::json!(api_names(CLINIC)));
    assert_eq!(r["flips"]["share"], Value::Null);
    // Class names "0"/"1" instead of benign/malignant break clients reading `label`.
    assert!(report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "classNamesChanged" && c["breaking"] == true));
}

#[test]
fn rejected_rows_are_counted_by_each_models_reason_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.csv");
    std::fs::write(
        &file,
        "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n\
         Patient-A,0.1471,25.38,17.33,2019.0,0.2654\n\
         Patient-B,0.1471,-25.38,17.33,2019.0,0.2654\n\
         Patient-C,0.1471,25.38,17.33\n\
         Patient-D,0.1471,25.38,17.33,secret-7,0.2654\n",
    )
    .unwrap();
    let out = diff(&[SHIPPED, DEPTH2, "--rows", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  compared              1\n") && text.contains("  not comparable        3\n"), "{text}");
    for reason in [
        "both models: rejected: negative",
        "both models: the row's field count is not the header's",
        "both models: rejected: not_a_number",
    ] {
        assert!(text.contains(reason), "{reason} in:\n{text}");
    }
    let all = text + &stderr(&out);
    for secret in ["Patient", "secret-7", "25.38", "2019"] {
        assert!(!all.contains(secret), "{secret} echoed:\n{all}");
    }
}

#[test]
fn a_model_file_that_does_not_load_exits_one_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"format":"scorer-gbdt","format_version":3,"name":"x"}"#).unwrap();
    let broken = broken.to_str().unwrap();
    for (args, which) in [([SHIPPED, broken], "new"), ([broken, SHIPPED], "old")] {
        let out = diff(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(&format!("the {which} model {broken} cannot be used: not a valid model export")), "{err}");
        assert!(stdout(&out).is_empty());
    }
    let out = diff(&[SHIPPED, "/nonexistent/new.json", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read the new model /nonexistent/new.json"), "{}", stderr(&out));
    // A rows file that is no file of measurements: exit 1, naming it.
    let rows = dir.path().join("rows.csv");
    std::fs::write(&rows, "a|b\n1|2\n").unwrap();
    let out = diff(&[SHIPPED, DEPTH2, "--rows", rows.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("rows.csv") && err.contains("--delimiter"), "{err}");
    // A command line clap cannot parse is 2, never mistaken for a breaking change.
    assert_eq!(diff(&[SHIPPED]).status.code(), Some(2));
    assert_eq!(diff(&[SHIPPED, DEPTH2, "--samples", "0"]).status.code(), Some(2));
}

#[test]
fn shipped_against_seven_on_all_thirty_columns_compares_every_row_with_the_flips_of_both_goldens() {
    // samples/wdbc.csv holds the 569 rows with all 30 dataset columns: each
    // model finds its own. Both goldens list the same 569 rows in its order,
    // with sklearn's prediction and probability.
    let (shipped, seven) =
        (csv_rows("tests/golden/dataset.csv"), csv_rows("tests/golden/breast-cancer-seven/dataset.csv"));
    let wdbc = csv_rows("samples/wdbc.csv");
    assert_eq!((shipped.len(), seven.len(), wdbc.len()), (569, 569, 569));
    let (mut up, mut down, mut sum, mut max) = (0u64, 0u64, 0.0, 0.0f64);
    for ((s, n), w) in shipped.iter().zip(&seven).zip(&wdbc) {
        assert_eq!((&s["worstArea"], &n["meanRadius"]), (&w["worst area"], &w["mean radius"]), "the same rows");
        match (s["prediction"].as_str(), n["prediction"].as_str()) {
            ("0", "1") => up += 1,
            ("1", "0") => down += 1,
            _ => {}
        }
        let dp = (n["probability"].parse::<f64>().unwrap() - s["probability"].parse::<f64>().unwrap()).abs();
        sum += dp;
        max = max.max(dp);
    }
    assert!(up > 0 && down > 0, "flips both ways to count: {up} {down}");
    let out = diff(&[SHIPPED, SEVEN, "--rows", "samples/wdbc.csv", "--json"]);
    assert_eq!(out.status.code(), Some(3), "the contract still breaks clients");
    let r = &json(&out)["rows"];
    assert_eq!((r["compared"].as_u64(), r["notComparable"].as_u64()), (Some(569), Some(0)), "{r}");
    assert_eq!((r["flips"]["zeroToOne"].as_u64(), r["flips"]["oneToZero"].as_u64()), (Some(up), Some(down)), "{r}");
    assert!((r["absDeltaP"]["mean"].as_f64().unwrap() - sum / 569.0).abs() < 1e-12, "{r}");
    assert!((r["absDeltaP"]["max"].as_f64().unwrap() - max).abs() < 1e-12, "{r}");
}
