//! The drift report where it goes: the S3 summary and page, `scorer score
//! --report/--html`, the SQS batch summary, the Distributed Map and S3 Batch
//! Operations results, and the EMF lines — through the real binary (Runtime
//! API harness) with moto as S3.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use crate::goldens::{independent_psi, Export};
use crate::helpers::{
    aws_env, keys_under, moto_endpoint, root, s3_client, s3_event, sample_event, scorer, start_lambda_capturing,
    unique_bucket,
};
use crate::helpers::{FEATURES, FEATURE_COUNT};
use crate::runtime_api::RuntimeApi;

/// How the lab's header names two columns (the rest keep the dataset's
/// names): the reports must name them so, the API name beside.
const LAB_HEADERS: [(&str, &str); 2] = [("worst area", "Worst Area (mm²)"), ("worst texture", "Worst_Texture")];

/// The header the shifted copy gives a dataset column.
fn lab_header(dataset_name: &str) -> &str {
    LAB_HEADERS.iter().find(|(d, _)| *d == dataset_name).map_or(dataset_name, |(_, lab)| lab)
}

/// The dataset with every worst area × 1.35 and worst texture + 6 (the copy
/// tests/integration/drift.rs computes PSI for independently), two columns
/// named as a lab might ([`LAB_HEADERS`]).
fn shifted_csv() -> String {
    let mut reader = csv::Reader::from_path(root().join("samples/wdbc.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let area = headers.iter().position(|h| h == "worst area").unwrap();
    let texture = headers.iter().position(|h| h == "worst texture").unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(headers.iter().map(lab_header)).unwrap();
    for record in reader.records() {
        let mut row: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        row[area] = (row[area].parse::<f64>().unwrap() * 1.35).to_string();
        row[texture] = (row[texture].parse::<f64>().unwrap() + 6.0).to_string();
        writer.write_record(&row).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

/// `scorer score IN -o OUT --report R.json --html R.html [extra]`: the report and the page.
fn score_with_report(input: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Value, Option<String>) {
    let dir = input.parent().unwrap();
    let (report, page) = (dir.join("report.json"), dir.join("report.html"));
    let _ = std::fs::remove_file(&page);
    let mut cmd = scorer();
    cmd.arg("score").arg(input).arg("-o").arg(dir.join("out.csv")).arg("--quiet").arg("--report").arg(&report);
    if !extra.contains(&"--no-drift") {
        cmd.arg("--html").arg(&page);
    }
    let out = cmd.args(extra).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (json, std::fs::read_to_string(&page).ok())
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

fn emf_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The page is one self-contained document that leads with the alert, names
/// the features as the file's header did (the API name beside) and says in
/// a sentence which way each alerting feature moved.
fn assert_alerting_page(what: &str, page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"), "{what}");
    assert!(page.contains("banner bad"), "{what}: the alert banner");
    assert!(page.contains("worstTexture") && page.contains("worstArea"), "{what}");
    for (_, lab) in LAB_HEADERS {
        let sentence = format!("The values of {lab} are mostly higher than in training");
        assert!(page.contains(&format!("<span class=\"col\">{lab}</span>")), "{what}: the header {lab}");
        assert!(page.contains(&sentence), "{what}: {sentence}");
    }
    assert!(!page.contains("<script") && !page.contains("src=\"http") && !page.contains("url("), "{what}");
}

/// The shifted copy's feature values, in model order (read back from its text).
fn shifted_values(shifted: &str) -> Vec<Vec<f64>> {
    let mut reader = csv::Reader::from_reader(shifted.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let columns: Vec<usize> =
        FEATURES.iter().map(|f| headers.iter().position(|h| h == lab_header(f.dataset_name)).unwrap()).collect();
    reader.records().map(|r| columns.iter().map(|&c| r.as_ref().unwrap()[c].parse().unwrap()).collect()).collect()
}

/// What the reports of the shifted copy must say, computed independently
/// (tests/integration/goldens.rs): each feature's PSI, and the features over
/// the alert line.
struct Expected {
    rows: usize,
    psi: Vec<f64>,
    alert_features: Vec<&'static str>,
}

fn expected(shifted: &str) -> Expected {
    let rows = shifted_values(shifted);
    let psi = independent_psi(&Export::shipped(), &rows);
    let alert_features = crate::drift::expected_alert_features(&psi);
    assert!(!alert_features.is_empty(), "the shift must alert: {psi:?}");
    Expected { rows: rows.len(), psi, alert_features }
}

fn assert_alerts_on_the_shifted_features(what: &str, drift: &Value, expected: &Expected) {
    assert_eq!(drift["alert"], true, "{what}: {drift}");
    for f in drift["features"].as_array().unwrap() {
        let major = expected.alert_features.contains(&f["name"].as_str().unwrap());
        assert_eq!(f["shift"] == "major", major, "{what}: {f}");
        assert_eq!(f["note"].is_string(), major, "{what}: {f}");
    }
    assert_eq!(drift["alertFeatures"], json!(expected.alert_features), "{what}");
    assert_eq!(drift["scored"], expected.rows, "{what}");
}

#[tokio::test]
async fn a_shifted_file_alerts_on_every_path_and_s3_writes_the_drift_object_score_report_writes() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-drift");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let shifted = shifted_csv();
    let expected = expected(&shifted);
    let key = "incoming/lab-7/wdbc-shifted.csv";
    for k in [key, "incoming/wdbc.csv"] {
        s3.put_object()
            .bucket(&bucket)
            .key(k)
            .body(ByteStream::from(shifted.clone().into_bytes()))
            .send()
            .await
            .unwrap();
    }

    // Locally.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wdbc-shifted.csv");
    std::fs::write(&input, &shifted).unwrap();
    let (local, local_page) = score_with_report(&input, &[], &[]);
    assert_eq!(local["status"], "scored");
    assert_alerts_on_the_shifted_features("score --report", &local["drift"], &expected);
    // Each feature as the file's header named it (the S3 summary below is the same object).
    let columns: Vec<&str> =
        local["drift"]["features"].as_array().unwrap().iter().map(|f| f["column"].as_str().unwrap()).collect();
    assert_eq!(columns, FEATURES.map(|f| lab_header(f.dataset_name)));
    let psi: Vec<f64> =
        local["drift"]["features"].as_array().unwrap().iter().map(|f| f["psi"].as_f64().unwrap()).collect();
    for (f, (ours, want)) in psi.iter().zip(&expected.psi).enumerate() {
        assert!((ours - want).abs() <= 1e-9, "{}: PSI {ours} vs {want}", FEATURES[f].api_name);
    }
    assert_alerting_page("score --html", &local_page.unwrap());
    // The alert line is configurable; and the statistics can be turned off.
    let (lenient, _) = score_with_report(&input, &[], &[("DRIFT_PSI_THRESHOLD", "2")]);
    assert_eq!(
        (lenient["drift"]["alert"].clone(), lenient["drift"]["psiThreshold"].clone()),
        (json!(false), json!(2.0))
    );
    let (off, _) = score_with_report(&input, &["--no-drift"], &[]);
    assert!(off.get("drift").is_none() && off["scored"] == expected.rows, "{off}");

    // On Lambda: S3 notification, S3 Batch Operations, SQS, Distributed Map.
    let api = RuntimeApi::start().await;
    let (out, err) = (dir.path().join("lambda.out"), dir.path().join("lambda.err"));
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    let function = start_lambda_capturing(&api, &env, &out, &err);

    let answer = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    let summary: Value =
        serde_json::from_slice(&get(&s3, &bucket, "scored/lab-7/wdbc-shifted.csv.summary.json").await).unwrap();
    assert_eq!(summary["drift"], local["drift"], "the S3 summary's drift object is the one `score --report` writes");
    for field in ["status", "rows", "scored", "rejected", "malignant", "rejectedByReason", "modelVersion"] {
        assert_eq!(summary[field], local[field], "{field}");
    }
    let page_key = "scored/lab-7/wdbc-shifted.csv.report.html";
    let head = s3.head_object().bucket(&bucket).key(page_key).send().await.expect("the drift page beside the summary");
    assert_eq!(head.content_type(), Some("text/html; charset=utf-8"));
    let meta = head.metadata().expect("lineage metadata on the page");
    assert_eq!(meta.get("model-version").map(String::as_str), summary["modelVersion"].as_str());
    assert_eq!(meta.get("source-etag").map(String::as_str), summary["inputEtag"].as_str());
    let page = String::from_utf8(get(&s3, &bucket, page_key).await).unwrap();
    assert_alerting_page("S3 page", &page);
    assert!(page.contains(key), "the page names its input");

    let answer = api.invoke(&sample_event("s3-batch-operations.json", &bucket)).await.response();
    let result = answer["results"][0]["resultString"].as_str().unwrap();
    let alert = format!("/scored/wdbc.csv drift=alert:{}", expected.alert_features.join(","));
    assert!(result.ends_with(&alert), "{result}");

    // One SQS message holding the whole copy as an array of observations.
    let mut reader = csv::Reader::from_reader(shifted.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let observations: Vec<Value> = rows
        .iter()
        .map(|r| {
            let fields = FEATURES
                .iter()
                .map(|f| (f.api_name.to_owned(), json!(r[column(lab_header(f.dataset_name))].parse::<f64>().unwrap())));
            Value::Object(fields.collect())
        })
        .collect();
    let mut event = sample_event("sqs-observation.json", &bucket);
    event["Records"][0]["body"] = json!(Value::Array(observations).to_string());
    let answer = api.invoke(&event).await.response();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let summaries = keys_under(&s3, &bucket, "scored/sqs-batches/").await;
    assert_eq!(summaries.len(), 1, "one summary for the batch: {summaries:?}");
    assert!(summaries[0].ends_with(".summary.json"));
    let batch: Value = serde_json::from_slice(&get(&s3, &bucket, &summaries[0]).await).unwrap();
    assert_eq!(batch["messages"], 1);
    assert_alerts_on_the_shifted_features("SQS batch summary", &batch["drift"], &expected);
    assert!(batch["drift"]["features"].as_array().unwrap().iter().all(|f| f["column"].is_null()), "no header");
    // The same rows, the same statistics: only the names differ (no header in a message).
    let statistics = |drift: &Value| {
        let mut features = drift["features"].clone();
        for f in features.as_array_mut().unwrap() {
            f.as_object_mut().unwrap().retain(|k, _| k != "column" && k != "note");
        }
        features
    };
    assert_eq!(statistics(&batch["drift"]), statistics(&local["drift"]), "the same rows, the same statistics");

    // A Distributed Map batch of the whole copy: the answer stays the items.
    let items: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), json!(v))).collect()))
        .collect();
    let answer = api.invoke(&json!({"Items": items, "BatchInput": {}})).await.response();
    assert_eq!(answer.as_array().map(Vec::len), Some(expected.rows));
    drop(function);

    let emf = emf_lines(&out);
    for entry in ["s3", "sqs", "distributed_map"] {
        let file = emf
            .iter()
            .find(|m| m["EntryPoint"] == entry && m.get("DriftAlert").is_some())
            .unwrap_or_else(|| panic!("{entry}: no DriftAlert in {emf:?}"));
        assert_eq!(file["DriftAlert"], 1.0, "{entry}");
        assert_eq!(file["PredictedMalignantShare"], local["drift"]["predictedMalignantShare"], "{entry}");
        assert_eq!(file["OutOfRangeShare"], local["drift"]["outOfRangeShare"], "{entry}");
        let texture = emf
            .iter()
            .find(|m| m["EntryPoint"] == entry && m["Feature"] == "worstTexture")
            .unwrap_or_else(|| panic!("{entry}: no worstTexture record"));
        assert_eq!(texture["DriftPSI"], local["drift"]["features"][2]["psi"], "{entry}");
        assert_eq!(
            texture["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Service", "EntryPoint", "Feature"]])
        );
        // Per file or batch, never per row: one file record and one record per feature.
        let records = emf.iter().filter(|m| m["EntryPoint"] == entry && m.get("OutOfRangeShare").is_some()).count();
        let times = if entry == "s3" { 2 } else { 1 }; // the S3 file and the Batch Operations task
        assert_eq!(records, (1 + FEATURE_COUNT) * times, "{entry}");
    }
}

#[tokio::test]
async fn reports_of_a_few_rows_show_no_value_and_no_id_on_s3_or_locally() {
    // 19 rows: one below the line from which min, max and mean are shown.
    let mut text =
        String::from("sample_id,mean concave points,worst radius,worst texture,worst area,worst concave points\n");
    for i in 0..19 {
        text.push_str(&format!("PATIENT-MARKER-{i},0.0{i}357913,1{i}.2468013,2{i}.97531,1234.5678{i}01,0.1{i}9753\n"));
    }
    let markers = ["PATIENT-MARKER", "357913", "2468013", "97531", "5678", "9753"];
    let clean = |what: &str, text: &str| {
        for m in markers {
            assert!(!text.contains(m), "{what} shows {m:?}");
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("few.csv");
    std::fs::write(&input, &text).unwrap();
    let (local, page) = score_with_report(&input, &[], &[]);
    clean("score --report", &local.to_string());
    clean("score --html", &page.unwrap());

    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-drift-few");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/few.csv")
        .body(ByteStream::from(text.into_bytes()))
        .send()
        .await
        .unwrap();
    let api = RuntimeApi::start().await;
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let function = start_lambda_capturing(&api, &aws_env(&endpoint), &out, &err);
    let answer = api.invoke(&s3_event(&[(&bucket, "incoming/few.csv")])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    drop(function);
    let summary: Value = serde_json::from_slice(&get(&s3, &bucket, "scored/few.csv.summary.json").await).unwrap();
    let page = String::from_utf8(get(&s3, &bucket, "scored/few.csv.report.html").await).unwrap();
    clean("S3 summary", &summary.to_string());
    clean("S3 page", &page);
    clean("EMF", &std::fs::read_to_string(&out).unwrap());
    assert_eq!(summary["drift"], local["drift"]);
    for drift in [&summary["drift"], &local["drift"]] {
        assert_eq!(drift["scored"], 19);
        assert_eq!(drift["alertAssessed"], false, "19 rows cannot tell");
        for f in drift["features"].as_array().unwrap() {
            assert!(f["min"].is_null() && f["max"].is_null() && f["mean"].is_null(), "{f}");
        }
    }

    // From 20 rows on, they are shown: the line is where the test says it is.
    std::fs::write(
        &input,
        format!("{}PATIENT-MARKER-X,0.05,15,20,900,0.1\n", std::fs::read_to_string(&input).unwrap()),
    )
    .unwrap();
    let (twenty, _) = score_with_report(&input, &[], &[]);
    assert_eq!(twenty["drift"]["scored"], 20);
    assert!(twenty["drift"]["features"][0]["min"].is_number());
}

#[tokio::test]
async fn with_drift_off_a_file_gets_no_drift_object_no_page_and_no_drift_metrics() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-drift-off");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let wdbc = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    s3.put_object().bucket(&bucket).key("incoming/wdbc.csv").body(ByteStream::from(wdbc)).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let api = RuntimeApi::start().await;
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut env = aws_env(&endpoint);
    env.push(("DRIFT", "off".into()));
    let function = start_lambda_capturing(&api, &env, &out, &err);
    let answer = api.invoke(&s3_event(&[(&bucket, "incoming/wdbc.csv")])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    drop(function);
    let summary: Value = serde_json::from_slice(&get(&s3, &bucket, "scored/wdbc.csv.summary.json").await).unwrap();
    assert!(summary.get("drift").is_none(), "{summary}");
    assert_eq!(summary["scored"], 569);
    assert_eq!(keys_under(&s3, &bucket, "scored/").await, ["scored/wdbc.csv", "scored/wdbc.csv.summary.json"]);
    let emf = emf_lines(&out);
    assert!(emf.iter().any(|m| m["RowsScored"] == 569.0));
    assert!(emf.iter().all(|m| m.get("DriftAlert").is_none() && m.get("OutOfRangeShare").is_none()), "{emf:?}");
}

#[test]
fn score_report_of_an_unusable_file_says_why_as_the_s3_summary_does_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("no-columns.csv");
    std::fs::write(&input, "id,worst area\n1,2\n").unwrap();
    let report = dir.path().join("report.json");
    let out = scorer()
        .arg("score")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out.csv"))
        .args(["--quiet", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let summary: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(summary["status"], "rejected");
    let reason = summary["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the file cannot be scored: the header has no column for: meanConcavePoints"),
        "{reason}"
    );
    assert!(summary.get("drift").is_none() && summary.get("rows").is_none(), "{summary}");
    assert!(!dir.path().join("out.csv").exists());
}
