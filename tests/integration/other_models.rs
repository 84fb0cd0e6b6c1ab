//! Every path with the two example exports of other contracts (issue 20), no
//! rebuild: `models/testdata/breast-cancer-seven.json` (seven other
//! breast-cancer features, stumps) and `models/testdata/clinic-outcomes-gbc.json`
//! (four features of a synthetic CSV, trees of depth 3, classes "0"/"1"). The
//! real binary loads each through MODEL_PATH; in-process paths through
//! `Model::from_json_bytes`. On ~300 golden rows per export (every set:
//! dataset, random, thresholds) each path must answer as sklearn (labels
//! equal, probabilities within 1e-12) and shap (within 1e-9) did, under the
//! export's own API names, class names and feature list; drift statistics are
//! checked against an independent binning. Under tests/run.sh the exports and
//! goldens are the ones it has just trained (SCORER_TRAINED_DIR).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::handler::App;
use serde_json::{json, Map, Value};
use sha2::Digest as _;

use crate::goldens::{
    assert_drift_features_independently, assert_explanation_like_shap, assert_like_shap, assert_like_sklearn, shown,
    Export, GoldenRow,
};
use crate::helpers::{
    aws_env, function_url_event, keys_under, moto_endpoint, s3_client, s3_event, scorer, sqs_client,
    start_lambda_capturing, start_serve_with, unique_bucket, wait_exit, Running,
};
use crate::runtime_api::RuntimeApi;

const EXAMPLES: [&str; 2] = ["breast-cancer-seven", "clinic-outcomes-gbc"];
/// Golden rows per export and path.
const ROWS: usize = 300;

/// `name-<sha256[:12]>`, the sha256 computed here.
fn model_version(export: &Export) -> String {
    let sha = format!("{:x}", sha2::Sha256::digest(&export.bytes));
    format!("{}-{}", export.name, &sha[..12])
}

fn id(g: &GoldenRow) -> String {
    format!("{}-{}", g.set, g.row)
}

/// The observation as a JSON object under the export's API names, values as
/// the golden file writes them, after `extra` members.
fn body(export: &Export, g: &GoldenRow, extra: &str) -> String {
    let fields: Vec<String> = export.api_names().iter().zip(&g.text).map(|(a, v)| format!("\"{a}\":{v}")).collect();
    format!("{{{extra}{}}}", fields.join(","))
}

/// The API names of the features outside the export's training range.
fn out_of_range(export: &Export, g: &GoldenRow) -> Vec<String> {
    let names = export.api_names();
    export
        .ranges()
        .iter()
        .zip(&g.values)
        .enumerate()
        .filter(|(_, (&(lo, hi), &v))| v < lo || v > hi)
        .map(|(f, _)| names[f].clone())
        .collect()
}

/// `GET /`: the export's name, version, features (API and dataset names,
/// ranges), classes and base value.
fn assert_metadata(what: &str, export: &Export, body: &Value) {
    let model = &body["model"];
    assert_eq!(model["name"], export.name.as_str(), "{what}: {body}");
    assert_eq!(model["version"], model_version(export).as_str(), "{what}");
    assert_eq!(model["sha256"], export.meta()["model_sha256"], "{what}: the export the goldens explain");
    let features: Vec<(String, String, f64, f64)> = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_owned();
            (s("name"), s("datasetName"), f["trainingMin"].as_f64().unwrap(), f["trainingMax"].as_f64().unwrap())
        })
        .collect();
    let expected: Vec<(String, String, f64, f64)> = export
        .api_names()
        .into_iter()
        .zip(export.dataset_names())
        .zip(export.ranges())
        .map(|((a, d), (lo, hi))| (a, d, lo, hi))
        .collect();
    assert_eq!(features, expected, "{what}: the export's features");
    assert_eq!(model["classes"], json!([[0, export.class_name(0)], [1, export.class_name(1)]]), "{what}");
    let base = model["baseValue"].as_f64().unwrap();
    let shap = export.meta()["expected_value"].as_f64().unwrap();
    assert!((base - shap).abs() <= crate::goldens::SHAP_TOLERANCE, "{what}: base value {base} vs shap {shap}");
}

/// One observation's JSON answer (HTTP, an SQS results line) against the goldens.
fn assert_answer(what: &str, export: &Export, answer: &Value, g: &GoldenRow, explained: bool) {
    assert_eq!(answer["status"], "200", "{what}: {answer}");
    let label = answer["prediction"].as_u64().unwrap_or_else(|| panic!("{what}: {answer}")) as u8;
    assert_like_sklearn(what, label, answer["probability"].as_f64().unwrap(), g);
    assert_eq!(answer["label"], json!(export.class_name(label)), "{what}: the export's class name");
    assert_eq!(answer["modelVersion"], model_version(export).as_str(), "{what}");
    // HTTP always has `warnings`; an SQS results line only when there are some.
    let warnings: Vec<&str> = answer
        .get("warnings")
        .map_or(Vec::new(), |w| w.as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect());
    let outside = out_of_range(export, g);
    assert_eq!(warnings.len(), outside.len(), "{what}: {warnings:?} vs {outside:?}");
    for (w, name) in warnings.iter().zip(&outside) {
        assert!(w.starts_with(&format!("'{name}' is outside")), "{what}: {w} names {name}");
    }
    if explained {
        assert_explanation_like_shap(what, &answer["explanation"], &export.api_names(), g);
    }
}

#[test]
fn the_goldens_beside_each_example_export_explain_it_and_the_loaded_model_matches_them_on_every_row() {
    for name in EXAMPLES {
        let export = Export::example(name);
        let meta = export.meta();
        assert_eq!(meta["model"], shown(&export.path).as_str(), "{name}: the goldens name this export");
        assert_eq!(
            meta["model_sha256"],
            format!("{:x}", sha2::Sha256::digest(&export.bytes)).as_str(),
            "{name}: the goldens explain these bytes"
        );
        let model = export.model();
        let api: Vec<&str> = model.features().api_names().collect();
        assert_eq!(api, export.api_names(), "{name}");
        assert_eq!(model.info().version, model_version(&export));
        let rows = export.golden_rows();
        for set in ["dataset", "random", "thresholds"] {
            let n = export.predictions(&format!("{set}.csv")).len();
            assert_eq!(rows.iter().filter(|g| g.set == set).count(), n, "{name}: explanations.csv covers {set}.csv");
        }
        for g in &rows {
            let obs = scorer::core::observation::Observation::from_values(&g.values).unwrap();
            let p = model.predict(&obs);
            assert_like_sklearn(name, p.label, p.probability, g);
            let e = model.explain(&obs).unwrap();
            assert_like_shap(name, e.base_value, &e.contributions, g);
            assert!((e.raw_score() - g.raw_score).abs() <= 1e-12, "{name} {}: E + Σφ vs decision_function", g.what());
        }
        eprintln!("{name}: {} golden rows through Model::predict and Model::explain", rows.len());
    }
}

#[test]
fn serve_with_model_path_answers_like_sklearn_and_shap_under_the_exports_names() {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for name in EXAMPLES {
        let export = Export::example(name);
        let (_server, url) = start_serve_with(&[("MODEL_PATH", export.path.as_os_str())]);
        let text = agent.get(&format!("{url}/")).call().unwrap().body_mut().read_to_string().unwrap();
        assert_metadata(&format!("{name} GET /"), &export, &serde_json::from_str(&text).unwrap());

        let rows = export.sample_rows(ROWS);
        for g in &rows {
            let mut r = agent.post(&format!("{url}/?explain=true")).send(body(&export, g, "").as_str()).unwrap();
            assert_eq!(r.status().as_u16(), 200, "{name} {}", g.what());
            let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            assert!(answer["warnings"].is_array(), "{answer}");
            assert_answer(&format!("{name} serve"), &export, &answer, g, true);
        }

        // A body in the shipped model's contract is not this export's: it names this export's fields.
        let mut r = agent.post(&format!("{url}/")).send(crate::helpers::VALID_BODY).unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let expected = format!("'body' must contain values for: {}", export.api_names().join(", "));
        assert_eq!(answer["reason"], expected.as_str(), "{answer}");
        eprintln!("{name}: {} rows through scorer serve", rows.len());
    }
}

#[test]
fn function_url_events_through_the_app_answer_like_sklearn_and_shap_under_the_exports_names() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for name in EXAMPLES {
        let export = Export::example(name);
        let app = App::new(export.model(), BatchConfig::from_env().unwrap());
        let call = |event: &Value| -> (u64, Value) {
            let reply = rt.block_on(app.handle_json(&event.to_string(), &Invocation::local())).unwrap();
            let reply = serde_json::to_value(reply).unwrap();
            (reply["statusCode"].as_u64().unwrap(), serde_json::from_str(reply["body"].as_str().unwrap()).unwrap())
        };
        let (status, meta) = call(&function_url_event("GET", "/", None));
        assert_eq!(status, 200);
        assert_metadata(&format!("{name} Function URL GET /"), &export, &meta);
        for g in &export.sample_rows(ROWS) {
            let mut event = function_url_event("POST", "/", Some(&body(&export, g, "")));
            event["rawQueryString"] = json!("explain=true");
            let (status, answer) = call(&event);
            assert_eq!(status, 200, "{answer}");
            assert_answer(&format!("{name} Function URL"), &export, &answer, g, true);
        }
        // Field errors name the export's API names.
        let g = &export.golden_rows()[0];
        let mut fields: Map<String, Value> = serde_json::from_str(&body(&export, g, "")).unwrap();
        let last = export.api_names().pop().unwrap();
        fields[&last] = json!(-1.0);
        let (status, answer) = call(&function_url_event("POST", "/", Some(&Value::Object(fields).to_string())));
        assert_eq!(status, 400);
        assert_eq!(
            answer["errors"],
            json!([{"field": last, "code": "negative", "message": format!("'{last}' must not be negative")}])
        );
    }
}

// ---- files: scorer score, S3, S3 Batch Operations ----------------------------------

/// A CSV of the rows: an `id` column, then the features under their dataset
/// names (the column-name rule finds them), values as the goldens write them.
fn input_csv(export: &Export, rows: &[GoldenRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["id".to_owned()];
    header.extend(export.dataset_names());
    w.write_record(&header).unwrap();
    for g in rows {
        let mut record = vec![id(g)];
        record.extend(g.text.iter().cloned());
        w.write_record(&record).unwrap();
    }
    w.into_inner().unwrap()
}

/// A scored file (`scorer score --explain`, S3 with EXPLAIN=true): the input
/// columns passed through, then sklearn's answers, the export's API names in
/// `warnings` and `contribution_<apiName>` columns with shap's values.
fn assert_scored_csv(what: &str, export: &Export, rows: &[GoldenRow], scored: &[u8]) {
    let mut reader = csv::Reader::from_reader(scored);
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let mut expected = vec!["id".to_owned()];
    expected.extend(export.dataset_names());
    expected.extend(["prediction", "probability", "status", "reason", "warnings", "base_value"].map(String::from));
    expected.extend(export.api_names().iter().map(|a| format!("contribution_{a}")));
    assert_eq!(headers, expected, "{what}");
    let n = export.api_names().len();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len(), "{what}");
    for (r, g) in records.iter().zip(rows) {
        assert_eq!(&r[0], id(g), "{what}: rows in order");
        let at = 1 + n;
        assert_eq!((&r[at + 2], &r[at + 3]), ("200", "OK"), "{what} {}", g.what());
        assert_like_sklearn(what, r[at].parse().unwrap(), r[at + 1].parse().unwrap(), g);
        assert_eq!(&r[at + 4], out_of_range(export, g).join("; "), "{what} {}: warnings", g.what());
        let contributions: Vec<f64> = (0..n).map(|f| r[at + 6 + f].parse().unwrap()).collect();
        assert_like_shap(what, r[at + 5].parse().unwrap(), &contributions, g);
    }
}

/// A file's summary (`score --report`, S3's `.summary.json`).
fn assert_summary(what: &str, export: &Export, rows: &[GoldenRow], summary: &Value) {
    assert_eq!(summary["status"], "scored", "{what}: {summary}");
    assert_eq!(summary["modelVersion"], model_version(export).as_str(), "{what}");
    let labelled_1 = rows.iter().filter(|g| g.label == 1).count() as u64;
    assert_eq!(
        (summary["rows"].as_u64(), summary["scored"].as_u64(), summary["malignant"].as_u64()),
        (Some(rows.len() as u64), Some(rows.len() as u64), Some(labelled_1)),
        "{what}: counts (`malignant` counts label 1 whatever the export calls it)"
    );
    let values: Vec<Vec<f64>> = rows.iter().map(|g| g.values.clone()).collect();
    assert_drift_features_independently(what, &summary["drift"], export, &values);
}

#[test]
fn score_with_model_path_writes_sklearn_answers_shap_columns_and_the_exports_drift_report() {
    let dir = tempfile::tempdir().unwrap();
    for name in EXAMPLES {
        let export = Export::example(name);
        let rows = export.sample_rows(ROWS);
        let (input, output, report) =
            (dir.path().join(format!("{name}.csv")), dir.path().join("out.csv"), dir.path().join("report.json"));
        std::fs::write(&input, input_csv(&export, &rows)).unwrap();
        let run = scorer()
            .arg("score")
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .args(["--explain", "--quiet", "--report"])
            .arg(&report)
            .env("MODEL_PATH", &export.path)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        assert_scored_csv(&format!("{name} score"), &export, &rows, &std::fs::read(&output).unwrap());
        let summary: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_summary(&format!("{name} score --report"), &export, &rows, &summary);
    }
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

fn json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Each EMF drift record group of `entry`: its `Feature` dimension values,
/// which must be the export's API names (in model order), `times` times.
fn assert_emf_features(what: &str, emf: &[Value], entry: &str, export: &Export, times: usize) {
    let features: Vec<&str> = emf
        .iter()
        .filter(|m| m["EntryPoint"] == entry && m.get("Feature").is_some())
        .map(|m| {
            assert_eq!(m["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service", "EntryPoint", "Feature"]]));
            m["Feature"].as_str().unwrap()
        })
        .collect();
    let expected: Vec<String> = (0..times).flat_map(|_| export.api_names()).collect();
    assert_eq!(features, expected, "{what}: EMF Feature dimensions of {entry}");
}

#[tokio::test]
async fn on_lambda_s3_files_batch_operations_and_distributed_map_answer_like_sklearn_and_shap_under_the_exports_names()
{
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    for name in EXAMPLES {
        let export = Export::example(name);
        let rows = export.sample_rows(ROWS);
        let bucket = unique_bucket("scorer-other-models");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let (key, batch_key) = (format!("incoming/{name}.csv"), format!("incoming/batch/{name}.csv"));
        for k in [&key, &batch_key] {
            let body = ByteStream::from(input_csv(&export, &rows));
            s3.put_object().bucket(&bucket).key(k).body(body).send().await.unwrap();
        }

        let api = RuntimeApi::start().await;
        let (out, err) = (dir.path().join(format!("{name}.out")), dir.path().join(format!("{name}.err")));
        let mut env = aws_env(&endpoint);
        env.push(("MODEL_PATH", export.path.display().to_string()));
        env.push(("EXPLAIN", "true".into()));
        let function = start_lambda_capturing(&api, &env, &out, &err);

        // An S3 notification: the scored file, its summary and page.
        let answer = api.invoke(&s3_event(&[(&bucket, &key)])).await.response();
        assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
        let scored_key = format!("scored/{name}.csv");
        assert_scored_csv(&format!("{name} S3"), &export, &rows, &get(&s3, &bucket, &scored_key).await);
        let summary: Value =
            serde_json::from_slice(&get(&s3, &bucket, &format!("{scored_key}.summary.json")).await).unwrap();
        assert_summary(&format!("{name} S3 summary"), &export, &rows, &summary);
        let page = String::from_utf8(get(&s3, &bucket, &format!("{scored_key}.report.html")).await).unwrap();
        for api_name in export.api_names() {
            assert!(page.contains(&format!(">{api_name}<")), "{name}: the page shows {api_name}");
        }

        // An S3 Batch Operations task on the same content.
        let task = json!({"taskId": "t1", "s3Bucket": bucket, "s3Key": batch_key, "s3VersionId": null});
        let event =
            json!({"invocationSchemaVersion": "2.0", "invocationId": "i1", "job": {"id": "j1"}, "tasks": [task]});
        let answer = api.invoke(&event).await.response();
        assert_eq!(answer["results"][0]["resultCode"], "Succeeded", "{answer}");
        let scored_batch = get(&s3, &bucket, &format!("scored/batch/{name}.csv")).await;
        assert_scored_csv(&format!("{name} S3 Batch Operations"), &export, &rows, &scored_batch);

        // A Distributed Map batch: items keyed by dataset name, values as text (an ItemReader's CSV rows).
        let items: Vec<Value> = rows
            .iter()
            .map(|g| {
                let mut item = Map::new();
                item.insert("sample_id".into(), json!(id(g)));
                for (d, v) in export.dataset_names().into_iter().zip(&g.text) {
                    item.insert(d, json!(v));
                }
                Value::Object(item)
            })
            .collect();
        let answer = api.invoke(&json!({"Items": items, "BatchInput": {"explain": true}})).await.response();
        let answered = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
        assert_eq!(answered.len(), rows.len());
        for ((item, g), sent) in answered.iter().zip(&rows).zip(&items) {
            let what = format!("{name} Distributed Map");
            assert_eq!(item["sample_id"], id(g).as_str(), "{what}: in order");
            for d in export.dataset_names() {
                assert_eq!(item[&d], sent[&d], "{what}: original fields untouched");
            }
            assert_eq!(item["status"], "200", "{what}: {item}");
            assert_like_sklearn(
                &what,
                item["prediction"].as_u64().unwrap() as u8,
                item["probability"].as_f64().unwrap(),
                g,
            );
            assert_eq!(item["warnings"], out_of_range(&export, g).join("; ").as_str(), "{what}");
            assert_explanation_like_shap(&what, &item["explanation"], &export.api_names(), g);
        }
        drop(function);

        let emf = json_lines(&out);
        assert_emf_features(name, &emf, "s3", &export, 2);
        assert_emf_features(name, &emf, "distributed_map", &export, 1);
        eprintln!("{name}: {} rows through S3, S3 Batch Operations and the Distributed Map", rows.len());
    }
}

// ---- SQS: the worker against moto's queue ----------------------------------------

#[tokio::test]
async fn the_worker_scores_sqs_observations_from_moto_like_sklearn_and_shap_under_the_exports_names() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let dir = tempfile::tempdir().unwrap();
    for name in EXAMPLES {
        let export = Export::example(name);
        let rows = export.sample_rows(ROWS);
        let bucket = unique_bucket("scorer-other-sqs");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let queue = sqs.create_queue().queue_name(unique_bucket("other-models")).send().await.unwrap();
        let queue = queue.queue_url.unwrap();
        // Messages of 50 observations each, every one asking for its explanation.
        for chunk in rows.chunks(50) {
            let observations: Vec<String> =
                chunk.iter().map(|g| body(&export, g, &format!("\"id\":\"{}\",\"explain\":true,", id(g)))).collect();
            let message = format!("[{}]", observations.join(","));
            sqs.send_message().queue_url(&queue).message_body(message).send().await.unwrap();
        }

        let out = dir.path().join(format!("{name}.worker.out"));
        let mut env = aws_env(&endpoint);
        env.push(("OUTPUT_BUCKET", bucket.clone()));
        env.push(("MODEL_PATH", export.path.display().to_string()));
        let mut cmd = scorer();
        cmd.args(["worker", "--queue-url", &queue, "--wait-seconds", "1", "--max-empty-receives", "2"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut worker = Running { child: cmd.spawn().expect("start the worker") };
        assert!(wait_exit(&mut worker, Duration::from_secs(60)).await.success());

        let mut lines: BTreeMap<String, Value> = BTreeMap::new();
        for key in keys_under(&s3, &bucket, "scored/sqs/").await {
            for line in String::from_utf8(get(&s3, &bucket, &key).await).unwrap().lines() {
                let line: Value = serde_json::from_str(line).unwrap();
                let line_id = line["id"].as_str().unwrap().to_owned();
                assert!(lines.insert(line_id, line).is_none(), "{name}: one result per observation");
            }
        }
        assert_eq!(lines.len(), rows.len(), "{name}: every observation has its result");
        for g in &rows {
            assert_answer(&format!("{name} SQS"), &export, &lines[&id(g)], g, true);
        }

        // The batches' drift summaries: the export's names, and together every row's bins.
        let mut scored = 0;
        let mut counts: Vec<Vec<u64>> = Vec::new();
        let batches = keys_under(&s3, &bucket, "scored/sqs-batches/").await;
        assert!(!batches.is_empty(), "{name}: batch summaries");
        for key in &batches {
            let summary: Value = serde_json::from_slice(&get(&s3, &bucket, key).await).unwrap();
            let features = summary["drift"]["features"].as_array().unwrap();
            let names: Vec<&str> = features.iter().map(|f| f["name"].as_str().unwrap()).collect();
            assert_eq!(names, export.api_names(), "{name} {key}");
            scored += summary["drift"]["scored"].as_u64().unwrap();
            for (f, feature) in features.iter().enumerate() {
                let c: Vec<u64> =
                    feature["bins"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
                if counts.len() <= f {
                    counts.push(vec![0; c.len()]);
                }
                counts[f].iter_mut().zip(&c).for_each(|(a, b)| *a += b);
            }
        }
        assert_eq!(scored, rows.len() as u64, "{name}: the batch summaries count every observation");
        let values: Vec<Vec<f64>> = rows.iter().map(|g| g.values.clone()).collect();
        assert_eq!(counts, crate::goldens::bin_counts(&values, &export.split_thresholds()), "{name}: bins");

        // One group of drift metrics per batch, under the worker's entry point.
        assert_emf_features(name, &json_lines(&out), "worker", &export, batches.len());
        eprintln!("{name}: {} observations through moto's SQS and the worker", rows.len());
    }
}
