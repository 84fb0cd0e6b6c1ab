//! The drift page a lab person reads, in its three states, through the batch
//! pipeline a file goes through (so the header the file used reaches the
//! page): an alert file, a file too small to assess, a clean file. HTML
//! assertions here; tests/drift_browser.sh renders the same three states in
//! headless Chromium.

use scorer::core::csv_pipeline::{score_csv_with, ScoreOptions};
use scorer::core::drift::{html, DriftOptions, DriftReport};
use scorer::core::model::Model;
use scraper::{Html, Selector};
use serde_json::Value;

use crate::helpers::{dataset_values, FEATURES, FEATURE_COUNT};

const WORST_AREA: usize = 3;

/// The headers a lab's file might use, one per feature in model order: a
/// unit, another case, underscores, the API name itself.
fn lab_headers() -> [String; FEATURE_COUNT] {
    std::array::from_fn(|f| match f {
        0 => "Mean Concave Points".to_owned(),
        1 => FEATURES[1].dataset_name.replace(' ', "_"),
        WORST_AREA => "Worst Area (mm²)".to_owned(),
        _ => FEATURES[f].api_name.to_owned(),
    })
}

/// A CSV of `rows` under [`lab_headers`], with an id column first.
fn csv_of(rows: &[[f64; FEATURE_COUNT]]) -> String {
    let mut text = format!("sample_id,{}\n", lab_headers().join(","));
    for (i, r) in rows.iter().enumerate() {
        let values: Vec<String> = r.iter().map(f64::to_string).collect();
        text.push_str(&format!("LAB-{i:04},{}\n", values.join(",")));
    }
    text
}

/// Worst area in cm² instead of mm² (÷ 100): far below the training range.
fn in_cm2(rows: &[[f64; FEATURE_COUNT]]) -> Vec<[f64; FEATURE_COUNT]> {
    rows.iter()
        .map(|r| {
            let mut r = *r;
            r[WORST_AREA] /= 100.0;
            r
        })
        .collect()
}

/// The report and page `scorer score --report/--html` would give the file.
fn page_of(csv: &str) -> (DriftReport, String) {
    let model = Model::embedded().unwrap();
    let outcome = score_csv_with(&model, csv.as_bytes(), std::io::sink(), &ScoreOptions::default(), |_| {}).unwrap();
    let report = outcome.drift.unwrap().report(&model, &DriftOptions::default());
    let page = html::render(&report, &html::PageContext { source: Some("incoming/lab-7.csv"), model_version: None });
    (report, page)
}

fn texts(page: &str, selector: &str) -> Vec<String> {
    let doc = Html::parse_document(page);
    let s = Selector::parse(selector).unwrap();
    // Text nodes joined by a space, white space collapsed: as a reader sees the words.
    doc.select(&s)
        .map(|e| e.text().collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Every card is headed by the file's header with the API name beside, and
/// the overview table names them so too.
fn assert_named_as_the_file_named_them(page: &str) {
    let headings = texts(page, "article h2");
    assert_eq!(headings.len(), FEATURE_COUNT);
    for (f, header) in lab_headers().iter().enumerate() {
        let api = FEATURES[f].api_name;
        let expected = if header == api { api.to_owned() } else { format!("{header} API {api}") };
        assert!(headings.contains(&expected), "{expected:?} in {headings:?}");
        assert!(texts(page, "table td").contains(&expected), "{expected:?} in the table");
    }
}

fn assert_reads_how_to_read(page: &str) {
    let footer = texts(page, "footer").join(" ");
    assert!(texts(page, "footer h2") == ["How to read this"], "{footer}");
    for term in ["Bins and bars", "PSI", "Too few rows", "Outside the training range", "When a feature is flagged"] {
        assert!(texts(page, "footer dt").iter().any(|t| t == term), "{term}: {footer}");
    }
}

#[test]
fn an_alert_file_names_the_feature_as_the_file_did_and_says_what_to_check() {
    let (report, page) = page_of(&csv_of(&in_cm2(&dataset_values())));
    assert!(report.alert_assessed && report.alert);
    assert_eq!(report.alert_features, [FEATURES[WORST_AREA].api_name]);
    let sentence = "The values of Worst Area (mm²) are far below anything seen in training: check the units.";
    assert_eq!(report.features[WORST_AREA].note.as_deref(), Some(sentence));
    assert!(report.features.iter().enumerate().all(|(f, d)| d.note.is_some() == (f == WORST_AREA)));

    let banner = texts(&page, "section.banner.bad");
    assert_eq!(banner.len(), 1);
    assert!(banner[0].starts_with("Drift alert: Worst Area (mm²) (PSI "), "{}", banner[0]);
    assert_eq!(texts(&page, "section.banner li"), [sentence], "one sentence per alert");
    assert_eq!(texts(&page, "article.alerting p.note"), [sentence]);
    assert_eq!(texts(&page, "article.alerting h2"), ["Worst Area (mm²) API worstArea"]);
    assert_eq!(texts(&page, "span.badge.bad").len(), 2, "its badge in the table and on its card");
    assert_eq!(texts(&page, "span.badge.na").len(), 0);
    assert_eq!(texts(&page, "table td svg").len(), FEATURE_COUNT, "a PSI bar per feature");
    assert_named_as_the_file_named_them(&page);
    assert_reads_how_to_read(&page);
}

#[test]
fn a_file_too_small_to_assess_shows_its_counts_grey_and_no_psi_grade() {
    // The file: 40 training-like rows, whose PSI (noise) is over 1.
    let (report, page) = page_of(&csv_of(&dataset_values()[..40]));
    assert!(!report.alert_assessed && !report.alert && report.alert_features.is_empty());
    assert!(report.features.iter().all(|f| f.psi.is_some_and(|p| p > report.psi_threshold)), "noise over the line");
    let json = serde_json::to_value(&report).unwrap();
    for f in json["features"].as_array().unwrap() {
        assert_eq!(f["shift"], "not_assessed", "the JSON grades nothing either: {f}");
        assert!(f["note"].is_null(), "{f}");
    }

    let banner = texts(&page, "section.banner.na");
    assert_eq!(banner.len(), 1);
    assert!(banner[0].starts_with("Drift not assessed Only 40 rows were scored"), "{}", banner[0]);
    assert!(banner[0].contains("from 300 scored rows on"), "why: {}", banner[0]);
    assert!(texts(&page, "section.banner.bad, section.banner.ok").is_empty());
    // No PSI badge, no PSI bar, no red card anywhere: grey "not assessed" only.
    for graded in ["span.badge.bad", "span.badge.warn", "span.badge.ok", "article.alerting", "table td svg", ".note"] {
        assert!(texts(&page, graded).is_empty(), "{graded} on a page not assessed");
    }
    assert_eq!(texts(&page, "span.badge.na"), vec!["not assessed"; 2 * FEATURE_COUNT]);
    assert!(!texts(&page, "main")[0].contains("PSI 1") && !texts(&page, "main")[0].contains("PSI 2"));
    let tiles = texts(&page, "div.tile");
    assert!(tiles.contains(&"Features over the PSI threshold not assessed needs 300 scored rows, has 40".to_owned()));
    // The counts are still shown: a bar per bin, training and file.
    assert!(texts(&page, "article svg g rect").len() >= 2 * 2 * FEATURE_COUNT);
    assert_named_as_the_file_named_them(&page);
    assert_reads_how_to_read(&page);
}

#[test]
fn a_small_file_in_other_units_says_so_though_it_is_not_assessed() {
    // Values outside the whole training range are a fact, not sampling noise.
    let (report, page) = page_of(&csv_of(&in_cm2(&dataset_values()[..40])));
    assert!(!report.alert_assessed);
    let sentence = "The values of Worst Area (mm²) are far below anything seen in training: check the units.";
    assert_eq!(texts(&page, "section.banner.na li"), [sentence]);
    assert_eq!(texts(&page, "article p.note"), [sentence]);
    assert!(texts(&page, "span.badge.bad").is_empty() && texts(&page, "article.alerting").is_empty());
}

#[test]
fn a_clean_file_says_so_with_no_sentence_and_no_red() {
    let (report, page) = page_of(&csv_of(&dataset_values()));
    assert!(report.alert_assessed && !report.alert);
    let json: Value = serde_json::to_value(&report).unwrap();
    assert!(json["features"].as_array().unwrap().iter().all(|f| f["shift"] == "stable" && f["note"].is_null()));
    assert_eq!(texts(&page, "section.banner.ok").len(), 1);
    assert!(texts(&page, "section.banner.ok")[0].starts_with("No drift alert"));
    assert!(texts(&page, "section.banner li, .note, span.badge.bad, span.badge.na, article.alerting").is_empty());
    assert_eq!(texts(&page, "span.badge.ok").len(), 2 * FEATURE_COUNT);
    assert_named_as_the_file_named_them(&page);
    assert_reads_how_to_read(&page);
}

#[test]
fn a_header_is_shown_as_text_and_cut_when_long() {
    let mut headers = lab_headers();
    headers[WORST_AREA] = format!("worst area (<b>{}</b>)", "x".repeat(200));
    let mut csv = format!("{}\n", headers.join(","));
    for r in &dataset_values()[..30] {
        csv.push_str(&format!("{}\n", r.map(|v| v.to_string()).join(",")));
    }
    let (report, page) = page_of(&csv);
    let shown = report.features[WORST_AREA].column.as_deref().unwrap();
    assert!(shown.starts_with("worst area (<b>xxx") && shown.ends_with('…') && shown.chars().count() == 61);
    assert!(!page.contains("<b>x") && page.contains("worst area (&lt;b&gt;xxx"), "escaped");
}
