//! Drift statistics against an independent computation: the test bins the
//! dataset and the training split itself, with the export's thresholds and the
//! float32 rule written out (tests/integration/goldens.rs), and computes the
//! shares and PSI on its own.

use scorer::core::drift::{html, DriftOptions, DriftReport, DriftStats};
use scorer::core::model::Model;
use scorer::core::observation::Observation;

use crate::goldens::{psi, shares, Export};
use crate::helpers::{FEATURES, FEATURE_COUNT};

use crate::helpers::{dataset_values, read_json};

const WORST_TEXTURE: usize = 2;
const WORST_AREA: usize = 3;

/// The dataset rows `tests/golden/training_rows.csv` lists: as many as the
/// export's training profile counts.
fn training_split() -> Vec<[f64; FEATURE_COUNT]> {
    let split: Vec<[f64; FEATURE_COUNT]> =
        Export::shipped().training_split().iter().map(|r| std::array::from_fn(|f| r[f])).collect();
    let doc = read_json("models/breast-cancer-gbc.json");
    assert_eq!(Some(split.len() as u64), doc["training_profile"]["rows"].as_u64());
    split
}

/// The worst area of every row × 1.35 and its worst texture + 6: a lab whose
/// images came out larger and grainier.
pub fn shifted(rows: &[[f64; FEATURE_COUNT]]) -> Vec<[f64; FEATURE_COUNT]> {
    rows.iter()
        .map(|r| {
            let mut r = *r;
            r[WORST_AREA] *= 1.35;
            r[WORST_TEXTURE] += 6.0;
            r
        })
        .collect()
}

/// The export's bin edges, read from the file (not from the model).
fn export_thresholds() -> Vec<Vec<f64>> {
    let doc = read_json("models/breast-cancer-gbc.json");
    let features = doc["training_profile"]["features"].as_array().unwrap();
    features.iter().map(|f| f["thresholds"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect()).collect()
}

fn vecs(rows: &[[f64; FEATURE_COUNT]]) -> Vec<Vec<f64>> {
    rows.iter().map(|r| r.to_vec()).collect()
}

/// The features whose independent PSI is above the default alert line, in
/// model order: the ones a report of enough rows must name.
pub fn expected_alert_features(psi: &[f64]) -> Vec<&'static str> {
    let line = DriftOptions::default().psi_threshold;
    FEATURES.iter().zip(psi).filter(|(_, &p)| p > line).map(|(f, _)| f.api_name).collect()
}

fn report_of(model: &Model, rows: &[[f64; FEATURE_COUNT]]) -> DriftReport {
    let mut stats = DriftStats::new(model);
    for r in rows {
        let obs = Observation::from_values(*r).unwrap();
        let (p, bins) = model.predict_with_bins(&obs);
        stats.record(&obs, &p, &bins);
    }
    stats.report(model, &DriftOptions::default())
}

/// Checks the report against the independent shares and PSI; returns the PSIs.
fn check_against_independent_psi(name: &str, rows: &[[f64; FEATURE_COUNT]]) -> (DriftReport, Vec<f64>) {
    let model = Model::embedded().unwrap();
    let thresholds = export_thresholds();
    let expected = shares(&vecs(&training_split()), &thresholds);
    let actual = shares(&vecs(rows), &thresholds);
    let report = report_of(&model, rows);
    assert_eq!(report.scored, rows.len() as u64);
    let mut values = Vec::new();
    for (f, feature) in report.features.iter().enumerate() {
        let want = psi(&actual[f], &expected[f]);
        let got = feature.psi.unwrap();
        assert!((got - want).abs() <= 1e-9, "{name} {}: PSI {got} vs {want}", feature.name);
        assert_eq!(feature.bins.edges, thresholds[f]);
        for (label, got, want) in [
            ("shares", feature.bins.shares.as_ref().unwrap(), &actual[f]),
            ("training shares", feature.bins.training_shares.as_ref().unwrap(), &expected[f]),
        ] {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 1e-12, "{name} {} {label}: {g} vs {w}", feature.name);
            }
        }
        let outside = rows.iter().filter(|r| r[f] < feature.training_min || r[f] > feature.training_max).count();
        assert_eq!(feature.out_of_range_rows, outside as u64);
        values.push(want);
    }
    eprintln!(
        "{name}: PSI {}",
        report.features.iter().zip(&values).map(|(f, p)| format!("{} {p:.6}", f.name)).collect::<Vec<_>>().join(", ")
    );
    (report, values)
}

#[test]
fn psi_on_the_dataset_matches_an_independent_computation_and_raises_no_alert() {
    let (report, psi) = check_against_independent_psi("dataset", &dataset_values());
    assert!(report.alert_assessed);
    assert!(!report.alert, "{:?}", report.alert_features);
    assert!(psi.iter().all(|&p| p < 0.1), "{psi:?}");
}

#[test]
fn psi_on_a_shifted_copy_matches_an_independent_computation_and_names_the_shifted_features() {
    let (report, psi) = check_against_independent_psi("shifted", &shifted(&dataset_values()));
    // The alert names the features over the line by the independent PSI;
    // there are some, and only shifted ones.
    let expected = expected_alert_features(&psi);
    assert!(report.alert && report.alert_assessed);
    assert_eq!(report.alert_features, expected);
    assert!(!expected.is_empty(), "{psi:?}");
    assert!(expected.iter().all(|f| ["worstTexture", "worstArea"].contains(f)), "{expected:?}");
    // The unshifted features look exactly as in the dataset.
    let (_, unshifted) = check_against_independent_psi("dataset", &dataset_values());
    for f in [0, 1, 4] {
        assert_eq!(psi[f], unshifted[f]);
    }
}

#[test]
fn the_training_split_has_psi_zero_and_the_profiles_shares() {
    let model = Model::embedded().unwrap();
    let rows = training_split();
    let (report, psi) = check_against_independent_psi("training split", &rows);
    assert!(psi.iter().all(|&p| p == 0.0), "{psi:?}");
    assert!(report.features.iter().all(|f| f.psi == Some(0.0)));
    let profile = model.training_profile().unwrap();
    for (f, feature) in report.features.iter().enumerate() {
        assert_eq!(feature.bins.counts, profile.features[f].counts, "{}", feature.name);
        assert_eq!(feature.bins.shares, feature.bins.training_shares);
        let mean = rows.iter().map(|r| r[f]).sum::<f64>() / rows.len() as f64;
        assert!((feature.mean.unwrap() - mean).abs() <= 1e-12 * mean);
        assert_eq!(feature.training_mean, Some(profile.features[f].mean));
    }
    assert_eq!(report.predicted_malignant, profile.predicted_malignant);
    assert_eq!(report.predicted_malignant_share, report.training_predicted_malignant_share);
    assert_eq!(report.out_of_range_share, Some(0.0), "the training split is inside its own range");
}

#[test]
fn the_report_json_is_camel_case_and_complete() {
    let report = report_of(&Model::embedded().unwrap(), &shifted(&dataset_values()));
    let v = serde_json::to_value(&report).unwrap();
    for key in [
        "rows",
        "scored",
        "rejected",
        "rejectedShare",
        "rejectedByReason",
        "predictedMalignantShare",
        "trainingPredictedMalignantShare",
        "outOfRangeShare",
        "alert",
        "alertAssessed",
        "alertFeatures",
        "psiThreshold",
        "psiFloor",
        "psiConvention",
        "minRowsForAlert",
        "minRowsForExtremes",
        "trainingRows",
    ] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
    assert_eq!(v["psiFloor"], 1e-4);
    assert_eq!(v["psiThreshold"], 0.25);
    let area = &v["features"][WORST_AREA];
    assert_eq!(area["name"], "worstArea");
    for key in ["psi", "outOfRangeShare", "outOfRangeRows", "min", "max", "mean", "trainingMin", "trainingMax"] {
        assert!(area[key].is_number(), "{key}");
    }
    for key in ["edges", "counts", "shares", "trainingShares"] {
        assert!(area["bins"][key].is_array(), "bins.{key}");
    }
}

/// Everything the page refers to must be inside it.
fn assert_self_contained(page: &str) {
    let doc = scraper::Html::parse_document(page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let all = scraper::Selector::parse("*").unwrap();
    for element in doc.select(&all) {
        let name = element.value().name();
        assert!(!["script", "iframe", "object", "embed", "link", "img", "base"].contains(&name), "<{name}>");
        for (attr, value) in element.value().attrs() {
            assert!(!attr.starts_with("on"), "event handler {attr}");
            let v = value.to_ascii_lowercase();
            assert!(!["href", "src", "xlink:href", "srcset", "action"].contains(&attr), "{attr}={value}");
            assert!(!v.contains("http:") && !v.contains("https:") && !v.contains("url("), "{attr}={value}");
        }
    }
    let lower = page.to_ascii_lowercase();
    for forbidden in ["<script", "http://", "https://", "@import", "url(", "@font-face", "javascript:"] {
        assert!(!lower.contains(forbidden), "the page contains {forbidden:?}");
    }
}

fn text_of(page: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(page);
    let s = scraper::Selector::parse(selector).unwrap();
    doc.select(&s).map(|e| e.text().collect::<String>()).collect()
}

#[test]
fn the_html_page_is_self_contained_and_shows_the_alert_and_every_feature() {
    let model = Model::embedded().unwrap();
    let report = report_of(&model, &shifted(&dataset_values()));
    let (_, psi) = check_against_independent_psi("shifted", &shifted(&dataset_values()));
    let alerting = expected_alert_features(&psi);
    // A hostile file name is shown as text, never as markup.
    let source = "incoming/<script>alert(1)</script> \"lab\" & 'co'.csv";
    let context = html::PageContext { source: Some(source), model_version: Some(&model.info().version) };
    let page = html::render(&report, &context);
    assert_self_contained(&page);

    let banner = text_of(&page, "section.banner.bad");
    assert_eq!(banner.len(), 1, "one alert banner");
    assert!(banner[0].contains("Drift alert"));
    assert!(alerting.iter().all(|f| banner[0].contains(f)), "{alerting:?}: {}", banner[0]);
    // It is the first thing after the title line.
    let body = text_of(&page, "main")[0].clone();
    assert!(body.find("Drift alert").unwrap() < body.find("Predicted malignant").unwrap());
    let headings = text_of(&page, "article h2");
    let mut names: Vec<&str> = headings.iter().map(String::as_str).collect();
    names.sort();
    let mut expected = FEATURES.map(|f| f.api_name);
    expected.sort();
    assert_eq!(names, expected, "one card per feature");
    // Largest PSI first.
    let largest = (0..FEATURE_COUNT).max_by(|&a, &b| psi[a].total_cmp(&psi[b])).unwrap();
    assert_eq!(headings[0], FEATURES[largest].api_name, "{headings:?}");
    let bins: usize = Export::shipped().split_thresholds().iter().map(|t| t.len() + 1).sum();
    assert!(text_of(&page, "article svg g rect").len() >= 2 * bins, "two bars per bin");
    assert!(text_of(&page, "p.meta")[0].contains(source), "the file name as text");
    assert!(text_of(&page, "p.meta")[0].contains(&model.info().version));

    // The calm page says so, and is as self-contained.
    let calm = html::render(&report_of(&model, &dataset_values()), &html::PageContext::default());
    assert_self_contained(&calm);
    assert!(text_of(&calm, "section.banner.ok")[0].contains("No drift alert"));
    // And so is the page of a file without scored rows.
    let empty = DriftStats::new(&model).report(&model, &DriftOptions::default());
    let page = html::render(&empty, &html::PageContext::default());
    assert_self_contained(&page);
    assert!(text_of(&page, "section.banner.na")[0].contains("Drift not assessed"));
}

#[test]
fn the_self_containment_check_catches_what_it_looks_for() {
    let page = html::render(
        &DriftStats::new(&Model::embedded().unwrap()).report(&Model::embedded().unwrap(), &DriftOptions::default()),
        &html::PageContext::default(),
    );
    for injected in [
        "<script>1</script>",
        "<link rel=\"stylesheet\" href=\"https://cdn.example/x.css\">",
        "<style>@import 'x.css';</style>",
        "<div style=\"background:url(x.png)\"></div>",
        "<svg><image xlink:href=\"x.png\"/></svg>",
        "<p onclick=\"x()\">p</p>",
    ] {
        let hostile = page.replace("</main>", &format!("{injected}</main>"));
        let caught = std::panic::catch_unwind(|| assert_self_contained(&hostile)).is_err();
        assert!(caught, "{injected} went unnoticed");
    }
}
