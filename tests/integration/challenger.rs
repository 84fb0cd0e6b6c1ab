//! Champion and challenger (CHALLENGER_MODEL_PATH): answers never change,
//! byte for byte, on any route (HTTP, `scorer score`, S3 outputs, SQS
//! results lines, Distributed Map items), and the summaries' `challenger`
//! objects hold the figures this file computes from sklearn's golden
//! predictions: the shipped model's (tests/golden/dataset.csv, random.csv)
//! and gbc-depth2's (raw scores in tests/golden/explanations-depth2.csv).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::handler::App;
use serde_json::{json, Value};

use crate::helpers::{
    aws_env, function_url_event, moto_endpoint, root, s3_client, s3_event, sample_event, scorer,
    start_lambda_capturing, unique_bucket, FEATURES,
};
use crate::runtime_api::RuntimeApi;

const VARIABLE: &str = "CHALLENGER_MODEL_PATH";

fn depth2_path() -> PathBuf {
    root().join("models/testdata/gbc-depth2.json")
}

fn clinic_path() -> PathBuf {
    root().join("models/testdata/clinic-outcomes-gbc.json")
}

fn shipped_path() -> PathBuf {
    root().join("models/breast-cancer-gbc.json")
}

fn version_of(path: &Path) -> String {
    Model::from_json_bytes(&std::fs::read(path).unwrap()).unwrap().info().version.clone()
}

/// One row both models were run on by sklearn: its values as text, and
/// each model's label and probability of class 1.
struct Row {
    text: Vec<String>,
    champion: (u8, f64),
    challenger: (u8, f64),
}

/// The dataset's 569 rows and the first 2000 random ones: every row
/// tests/golden/explanations-depth2.csv has a raw score for.
fn golden_rows() -> Vec<Row> {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.api_name).collect();
    let mut depth2: HashMap<(String, usize), (Vec<String>, f64)> = HashMap::new();
    let mut reader = csv::Reader::from_path(root().join("tests/golden/explanations-depth2.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (set, row, raw) = (at("set"), at("row"), at("raw_score"));
    let columns: Vec<usize> = names.iter().map(|n| at(n)).collect();
    for r in reader.records() {
        let r = r.unwrap();
        let text = columns.iter().map(|&c| r[c].to_owned()).collect();
        depth2.insert((r[set].to_owned(), r[row].parse().unwrap()), (text, r[raw].parse().unwrap()));
    }
    let mut rows = Vec::new();
    for (set, file) in [("dataset", "dataset.csv"), ("random", "random.csv")] {
        let mut reader = csv::Reader::from_path(root().join("tests/golden").join(file)).unwrap();
        let header = reader.headers().unwrap().clone();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (prediction, probability) = (at("prediction"), at("probability"));
        let columns: Vec<usize> = names.iter().map(|n| at(n)).collect();
        for (i, r) in reader.records().enumerate() {
            let Some((text, raw)) = depth2.get(&(set.to_owned(), i)) else { continue };
            let r = r.unwrap();
            let ours: Vec<String> = columns.iter().map(|&c| r[c].to_owned()).collect();
            assert_eq!(&ours, text, "{set} row {i}: the two golden files hold the same values");
            // sklearn: p = expit(raw), label = argmax(1 - p, p).
            let p = 1.0 / (1.0 + (-raw).exp());
            rows.push(Row {
                text: ours,
                champion: (r[prediction].parse().unwrap(), r[probability].parse().unwrap()),
                challenger: (u8::from(p > 0.5), p),
            });
        }
    }
    assert_eq!(rows.len(), 569 + 2000);
    rows
}

/// What a `challenger` object must say about `rows`.
#[derive(Debug)]
struct Expected {
    rows: u64,
    agreement: f64,
    flips: u64,
    mean_abs_delta: f64,
    max_abs_delta: f64,
    predicted_malignant_share: f64,
}

fn expected(rows: &[Row]) -> Expected {
    let n = rows.len() as f64;
    let flips = rows.iter().filter(|r| r.champion.0 != r.challenger.0).count() as u64;
    let deltas: Vec<f64> = rows.iter().map(|r| (r.challenger.1 - r.champion.1).abs()).collect();
    Expected {
        rows: rows.len() as u64,
        agreement: (rows.len() as u64 - flips) as f64 / n,
        flips,
        mean_abs_delta: deltas.iter().sum::<f64>() / n,
        max_abs_delta: deltas.iter().copied().fold(0.0, f64::max),
        predicted_malignant_share: rows.iter().filter(|r| r.challenger.0 == 1).count() as f64 / n,
    }
}

/// `object` is the comparison `want` describes, by the challenger `version`.
fn assert_compares(what: &str, object: &Value, want: &Expected, version: &str) {
    assert_eq!(object["modelVersion"], version, "{what}: {object}");
    assert_eq!(object["rows"], want.rows, "{what}: {object}");
    assert_eq!(object["notComparable"], 0, "{what}: {object}");
    // Ratios of the same counts: exactly equal.
    assert_eq!(object["labelAgreement"].as_f64(), Some(want.agreement), "{what}: {want:?}");
    assert_eq!(object["predictedMalignantShare"].as_f64(), Some(want.predicted_malignant_share), "{what}");
    // Probabilities agree with sklearn's far inside 1e-12 (tests/integration/parity.rs).
    let close = |name: &str, x: f64| {
        let got = object[name].as_f64().unwrap_or_else(|| panic!("{what}: {name} is not a number: {object}"));
        assert!((got - x).abs() < 1e-12, "{what}: {name} {got} against {x}");
    };
    close("meanAbsDelta", want.mean_abs_delta);
    close("maxAbsDelta", want.max_abs_delta);
}

/// The golden rows as a CSV with a few rejected rows among them (which are
/// not compared): `id` then the five API names.
fn golden_csv(rows: &[Row]) -> String {
    let mut text = format!("id,{}\n", FEATURES.map(|f| f.api_name).join(","));
    for (i, r) in rows.iter().enumerate() {
        text.push_str(&format!("R{i},{}\n", r.text.join(",")));
        match i {
            10 => text.push_str("BAD-negative,0.1,-1,20,900,0.1\n"),
            100 => text.push_str("BAD-missing,0.1,,20,900,0.1\n"),
            1000 => text.push_str("BAD-short,0.1,20\n"),
            _ => {}
        }
    }
    text
}

/// One observation object with the row's values as sklearn read them.
fn observation_json(r: &Row, id: &str) -> String {
    let fields: Vec<String> = FEATURES.iter().zip(&r.text).map(|(f, v)| format!("\"{}\":{v}", f.api_name)).collect();
    format!("{{\"id\":\"{id}\",{}}}", fields.join(","))
}

/// `scorer score IN -o - --report R.json [extra]` with CHALLENGER_MODEL_PATH
/// set to `challenger` (unset for `None`): the output bytes and the report.
fn score(input: &Path, challenger: Option<&Path>, extra: &[&str]) -> (Vec<u8>, Value) {
    let report = input.with_extension("report.json");
    let mut cmd = scorer();
    cmd.arg("score").arg(input).args(["-o", "-", "--quiet", "--report"]).arg(&report).args(extra);
    if let Some(path) = challenger {
        cmd.env(VARIABLE, path);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.stdout, serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap())
}

#[test]
fn score_writes_the_same_bytes_with_any_challenger_and_its_report_compares_as_sklearn_says() {
    let rows = golden_rows();
    let want = expected(&rows);
    assert!(want.flips > 50, "gbc-depth2 relabels some golden rows, or this test proves little: {want:?}");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("golden.csv");
    std::fs::write(&input, golden_csv(&rows)).unwrap();

    let (plain, plain_report) = score(&input, None, &[]);
    assert!(plain_report.get("challenger").is_none(), "{plain_report}");
    assert_eq!((plain_report["scored"].as_u64(), plain_report["rejected"].as_u64()), (Some(2569), Some(3)));

    let (out, report) = score(&input, Some(&depth2_path()), &[]);
    assert!(out == plain, "the scored CSV changed with a challenger");
    assert_eq!(report["drift"], plain_report["drift"], "the drift object is the champion's");
    assert_compares("score --report, gbc-depth2", &report["challenger"], &want, &version_of(&depth2_path()));

    // The champion as its own challenger: every label agreed, no delta.
    let (out, report) = score(&input, Some(&shipped_path()), &[]);
    assert!(out == plain);
    let own = &report["challenger"];
    assert_eq!(own["rows"], 2569, "{own}");
    assert_eq!((own["labelAgreement"].as_f64(), own["notComparable"].as_u64()), (Some(1.0), Some(0)));
    assert_eq!((own["meanAbsDelta"].as_f64(), own["maxAbsDelta"].as_f64()), (Some(0.0), Some(0.0)));
    assert_eq!(own["predictedMalignantShare"], report["drift"]["predictedMalignantShare"]);
    let champion_share = rows.iter().filter(|r| r.champion.0 == 1).count() as f64 / rows.len() as f64;
    assert_eq!(own["predictedMalignantShare"].as_f64(), Some(champion_share));

    // No feature in common: every scored row is not comparable, nothing is compared.
    let (out, report) = score(&input, Some(&clinic_path()), &[]);
    assert!(out == plain);
    let clinic = &report["challenger"];
    assert_eq!(clinic["modelVersion"], version_of(&clinic_path()));
    assert_eq!((clinic["rows"].as_u64(), clinic["notComparable"].as_u64()), (Some(0), Some(2569)), "{clinic}");
    for field in ["labelAgreement", "meanAbsDelta", "maxAbsDelta", "predictedMalignantShare"] {
        assert_eq!(clinic[field], Value::Null, "{field} is null (not absent) with no row compared: {clinic}");
    }

    // Drift off, challenger on: the comparison alone. Empty: no challenger.
    let (out, report) = score(&input, Some(&depth2_path()), &["--no-drift"]);
    assert!(out == plain);
    assert!(report.get("drift").is_none());
    assert_compares("score --report --no-drift", &report["challenger"], &want, &version_of(&depth2_path()));
    let (out, report) = score(&input, Some(Path::new("")), &[]);
    assert!(out == plain);
    assert!(report.get("challenger").is_none(), "an empty CHALLENGER_MODEL_PATH is no challenger: {report}");
    // With explanations, the same bytes too.
    let (explained, _) = score(&input, None, &["--explain"]);
    assert!(score(&input, Some(&depth2_path()), &["--explain"]).0 == explained);
}

#[tokio::test]
async fn a_challenger_that_does_not_load_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("challenger.json");
    std::fs::write(&broken, r#"{"format":"scorer-gbdt","format_version":99}"#).unwrap();
    let absent = dir.path().join("absent.json");
    let input = root().join("samples/bad-rows.csv");
    let event = root().join("events/function-url-predict.json");
    for path in [&broken, &absent] {
        let name = path.file_name().unwrap().to_str().unwrap();
        let runs = [
            ("score", scorer().arg("score").arg(&input).args(["-o", "-"]).env(VARIABLE, path).output().unwrap()),
            ("invoke", scorer().arg("invoke").arg(&event).env(VARIABLE, path).output().unwrap()),
        ];
        for (command, out) in runs {
            assert!(!out.status.success(), "{command} started with {name}");
            assert!(out.stdout.is_empty(), "{command} scored nothing");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(VARIABLE) && stderr.contains(name), "{command}: {stderr}");
        }
        // The Lambda runtime: the function does not start.
        let api = RuntimeApi::start().await;
        let out = scorer().envs(api.lambda_env()).env(VARIABLE, path).output().expect("run the function");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(VARIABLE) && stderr.contains(name), "Lambda: {stderr}");
    }
}

fn app(challenger: Option<&Path>) -> App {
    let challenger = challenger.map(|p| Model::from_json_bytes(&std::fs::read(p).unwrap()).unwrap());
    App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap()).with_challenger(challenger)
}

/// The reply of each app to `event`, as bytes, under one invocation (one request id).
fn replies(apps: &[App], event: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let invocation = Invocation::local();
    apps.iter()
        .map(|app| serde_json::to_string(&rt.block_on(app.handle_json(event, &invocation)).unwrap()).unwrap())
        .collect()
}

#[test]
fn http_answers_and_distributed_map_items_are_the_same_bytes_with_any_challenger() {
    let rows = golden_rows();
    let apps = [app(None), app(Some(&depth2_path())), app(Some(&clinic_path())), app(Some(&shipped_path()))];
    let mut bodies: Vec<String> =
        rows.iter().step_by(7).enumerate().map(|(i, r)| observation_json(r, &i.to_string())).collect();
    bodies.extend(
        [
            "{}",
            "[]",
            "not json",
            r#"{"meanConcavePoints":"0.1","worstRadius":-1,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#,
            r#"{"meanConcavePoints":0.1,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0}"#,
        ]
        .map(str::to_owned),
    );
    let mut requests = 0;
    for body in &bodies {
        for query in ["", "explain=true", "explain=maybe"] {
            let mut event = function_url_event("POST", "/", Some(body));
            event["rawQueryString"] = json!(query);
            let answers = replies(&apps, &event.to_string());
            assert!(answers.iter().all(|a| *a == answers[0]), "{query} {body}: {answers:#?}");
            requests += 1;
        }
    }
    assert!(requests > 1000);
    let get = replies(&apps, &function_url_event("GET", "/", None).to_string());
    assert!(get.iter().all(|a| *a == get[0]), "GET / describes the model, not the challenger");

    let mut items: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Object(FEATURES.iter().zip(&r.text).map(|(f, v)| (f.dataset_name.to_owned(), json!(v))).collect())
        })
        .collect();
    items.insert(5, json!({"worst area": "-3"}));
    items.insert(9, json!("not an object"));
    for batch_input in [json!({}), json!({"explain": true}), json!({"delimiter": "SEMICOLON"})] {
        let event = json!({"Items": items, "BatchInput": batch_input}).to_string();
        let answers = replies(&apps, &event);
        assert!(answers.iter().all(|a| *a == answers[0]), "Distributed Map items changed, BatchInput {batch_input}");
    }
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn only_key(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> String {
    let listed = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{prefix}: {keys:?}");
    keys[0].to_owned()
}

/// What one function run left: the S3 output, summary and SQS results and
/// batch summary, the Distributed Map answer, and its EMF lines.
struct Run {
    output: Vec<u8>,
    summary: Value,
    sqs_results: Vec<u8>,
    sqs_summary: Value,
    map_answer: Value,
    http_answers: Vec<Value>,
    emf: Vec<Value>,
}

/// The binary as a Lambda function (CHALLENGER_MODEL_PATH = `challenger`),
/// with moto as S3, fed an S3 notification of the golden CSV, an SQS message
/// of the golden rows, a Distributed Map batch of them and `http` requests.
async fn run_function(challenger: Option<&Path>, rows: &[Row], http: &[String]) -> Run {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-challenger");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "incoming/golden.csv";
    let csv = golden_csv(rows).into_bytes();
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(csv)).send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let api = RuntimeApi::start().await;
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    if let Some(path) = challenger {
        env.push((VARIABLE, path.display().to_string()));
    }
    let function = start_lambda_capturing(&api, &env, &out, &err);

    let answer = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    let mut observations: Vec<String> =
        rows.iter().enumerate().map(|(i, r)| observation_json(r, &format!("o{i}"))).collect();
    observations.insert(3, r#"{"id":"bad","worstRadius":-1}"#.to_owned());
    let mut event = sample_event("sqs-observation.json", &bucket);
    event["Records"][0]["body"] = json!(format!("[{}]", observations.join(",")));
    let message_id = event["Records"][0]["messageId"].as_str().unwrap().to_owned();
    let answer = api.invoke(&event).await.response();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let items: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(FEATURES.iter().zip(&r.text).map(|(f, v)| (f.api_name.to_owned(), json!(v))).collect()))
        .collect();
    let map_answer = api.invoke(&json!({"Items": items, "BatchInput": {}})).await.response();
    let mut http_answers = Vec::new();
    for body in http {
        let reply = api.invoke(&function_url_event("POST", "/", Some(body))).await.response();
        let mut answer: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        answer["requestId"] = Value::Null; // each function's runtime API numbers its own requests
        http_answers.push(answer);
    }
    drop(function);

    let summary_key = "scored/golden.csv.summary.json";
    let sqs_summary_key = only_key(&s3, &bucket, "scored/sqs-batches/").await;
    Run {
        output: get(&s3, &bucket, "scored/golden.csv").await,
        summary: serde_json::from_slice(&get(&s3, &bucket, summary_key).await).unwrap(),
        sqs_results: get(&s3, &bucket, &scorer::adapters::sqs::results_key("scored/", &message_id)).await,
        sqs_summary: serde_json::from_slice(&get(&s3, &bucket, &sqs_summary_key).await).unwrap(),
        map_answer,
        http_answers,
        emf: std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
    }
}

/// The EMF records of `entry` that carry `ChallengerRows`.
fn challenger_records<'a>(emf: &'a [Value], entry: &str) -> Vec<&'a Value> {
    emf.iter().filter(|m| m["EntryPoint"] == entry && m.get("ChallengerRows").is_some()).collect()
}

fn metric_names(record: &Value) -> Vec<(String, String)> {
    record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Name"].as_str().unwrap().starts_with("Challenger"))
        .map(|m| (m["Name"].as_str().unwrap().to_owned(), m["Unit"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn s3_sqs_and_map_runs_give_the_same_answers_and_their_summaries_and_emf_compare_the_challenger() {
    let rows = golden_rows();
    let want = expected(&rows);
    let version = version_of(&depth2_path());
    // One request each way: a row gbc-depth2 relabels, and one it does not.
    let flip = rows.iter().position(|r| r.champion.0 != r.challenger.0).unwrap();
    let same = rows.iter().position(|r| r.champion.0 == r.challenger.0).unwrap();
    let http = [observation_json(&rows[flip], "flip"), observation_json(&rows[same], "same")];

    let with = run_function(Some(&depth2_path()), &rows, &http).await;
    let without = run_function(None, &rows, &http).await;

    // Answers: not one byte changed.
    assert!(with.output == without.output, "the scored S3 object changed with a challenger");
    assert!(with.sqs_results == without.sqs_results, "the SQS results object changed with a challenger");
    assert_eq!(with.map_answer, without.map_answer, "the Distributed Map items changed");
    assert_eq!(with.http_answers, without.http_answers);
    assert_eq!(with.map_answer.as_array().map(Vec::len), Some(rows.len()));

    // Summaries: the file's and the SQS batch's compare as sklearn's predictions say.
    assert_compares("S3 summary", &with.summary["challenger"], &want, &version);
    assert_compares("SQS batch summary", &with.sqs_summary["challenger"], &want, &version);
    assert_eq!(with.summary["drift"], without.summary["drift"]);
    assert_eq!(with.sqs_summary["drift"], without.sqs_summary["drift"]);
    assert!(without.summary.get("challenger").is_none() && without.sqs_summary.get("challenger").is_none());
    // The S3 summary's object is the one `score --report` writes for the same file.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("golden.csv");
    std::fs::write(&input, golden_csv(&rows)).unwrap();
    let (local_out, local) = score(&input, Some(&depth2_path()), &[]);
    assert_eq!(with.summary["challenger"], local["challenger"]);
    assert!(local_out == with.output);

    // EMF: one record per file and per batch, under Service/EntryPoint, with the summary's figures.
    let batch_metrics = [
        ("ChallengerRows", "Count", "rows"),
        ("ChallengerNotComparable", "Count", "notComparable"),
        ("ChallengerLabelAgreement", "None", "labelAgreement"),
        ("ChallengerMeanAbsDelta", "None", "meanAbsDelta"),
        ("ChallengerMaxAbsDelta", "None", "maxAbsDelta"),
        ("ChallengerPredictedMalignantShare", "None", "predictedMalignantShare"),
    ];
    for (entry, summary) in [("s3", &with.summary), ("sqs", &with.sqs_summary), ("distributed_map", &with.summary)] {
        let records = challenger_records(&with.emf, entry);
        assert_eq!(records.len(), 1, "{entry}: one record per file or batch: {records:?}");
        let record = records[0];
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Scorer");
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service", "EntryPoint"]]));
        let names: Vec<(String, String)> =
            batch_metrics.iter().map(|(n, u, _)| (n.to_string(), u.to_string())).collect();
        assert_eq!(metric_names(record), names, "{entry}");
        for (name, _, field) in batch_metrics {
            let got = record[name].as_f64().unwrap();
            let summarised = summary["challenger"][field].as_f64().unwrap();
            // The map batch is the same rows without the three rejected ones: the same figures.
            assert!((got - summarised).abs() < 1e-12, "{entry} {name}: {got} against the summary's {summarised}");
        }
    }
    // HTTP: per-request counters only, no value metric.
    let http_records = challenger_records(&with.emf, "function_url");
    assert_eq!(http_records.len(), 2, "{http_records:?}");
    let counters: Vec<(String, String)> = ["ChallengerRows", "ChallengerLabelDisagreements", "ChallengerNotComparable"]
        .map(|n| (n.to_owned(), "Count".to_owned()))
        .to_vec();
    for (record, disagreed) in http_records.iter().zip([1.0, 0.0]) {
        assert_eq!(metric_names(record), counters);
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service", "EntryPoint"]]));
        assert_eq!(
            (&record["ChallengerRows"], &record["ChallengerLabelDisagreements"], &record["ChallengerNotComparable"]),
            (&json!(1.0), &json!(disagreed), &json!(0.0))
        );
    }
    // Without a challenger: no Challenger metric anywhere.
    assert!(!without.emf.is_empty());
    for record in &without.emf {
        assert!(metric_names(record).is_empty(), "{record}");
        assert!(!record.to_string().contains("Challenger"), "{record}");
    }
}
