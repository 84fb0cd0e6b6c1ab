//! Medical data never reaches logs or metrics, at any log level. Every entry
//! point (Lambda: Function URL, S3, SQS, Distributed Map, Batch Operations;
//! worker; serve; score) is fed inputs seeded with marker values (ids, feature
//! values, bad cells, garbage bodies, events of the wrong shape) at every
//! level the template allows; its stderr (logs) and stdout (EMF metrics) must
//! not contain a single marker. Logs must still be useful at each level: JSON
//! lines, with the request id and counts where the level shows them.
//!
//! The levels run in a loop inside each test (one bucket, one queue, one
//! binary start per level) to keep the suite's time down.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use crate::helpers::{
    aws_env, base64_event, function_url_event, moto_endpoint, s3_client, s3_event, sample_event, scorer, sqs_client,
    start_lambda_capturing, unique_bucket, Running,
};
use crate::runtime_api::RuntimeApi;

/// The template's `LogLevel` AllowedValues, most verbose first.
const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

const MARKERS: [&str; 6] =
    ["PATIENT-MARKER-ID", "VALUE-MARKER", "1234.5678901", "SAMPLE-MARKER", "GARBAGE-MARKER", "0.01357913"];

fn assert_clean(what: &str, text: &str) {
    for marker in MARKERS {
        if let Some(at) = text.find(marker) {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            let line = &text[start..end];
            let shown: String = line.chars().take(600).collect();
            panic!("{what} leaked {marker:?} in:\n{shown}");
        }
    }
}

/// Every line is a JSON log record; returns them.
fn json_lines(what: &str, text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("{what}: not a JSON log line: {l}")))
        .collect()
}

fn has(lines: &[Value], test: impl Fn(&Value) -> bool) -> bool {
    lines.iter().any(test)
}

/// With `"explain": true`: explanations are on wherever a path offers them
/// (HTTP ignores the key; its requests ask with `?explain=true` too).
fn observation(id: &str) -> Value {
    json!({"id": id, "meanConcavePoints": 0.01357913, "worstRadius": 15.0, "worstTexture": 20.0,
           "worstArea": 1234.5678901, "worstConcavePoints": 0.1, "explain": true})
}

fn marked_bodies() -> Vec<String> {
    vec![
        observation("PATIENT-MARKER-ID").to_string(),
        json!({"id": "PATIENT-MARKER-ID", "meanConcavePoints": "VALUE-MARKER", "worstRadius": -1234.5678901})
            .to_string(),
        format!("{{\"id\": \"PATIENT-MARKER-ID\", \"worstArea\": 1234.5678901, GARBAGE-MARKER"),
        "[\"GARBAGE-MARKER\", 1234.5678901]".into(),
        "GARBAGE-MARKER".into(),
    ]
}

const CSV: &str = "sample_id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n\
                   SAMPLE-MARKER,0.01357913,15,20,1234.5678901,0.1\n\
                   SAMPLE-MARKER,VALUE-MARKER,15,20,-1234.5678901,0.1\n\
                   SAMPLE-MARKER,0.01357913\n";

/// A bucket holding `incoming/marked.csv`, and the environment pointing at it.
async fn marked_bucket(prefix: &str) -> (String, Vec<(&'static str, String)>) {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket(prefix);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/marked.csv")
        .body(ByteStream::from_static(CSV.as_bytes()))
        .send()
        .await
        .unwrap();
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    (bucket, env)
}

/// Events of every kind the function takes, seeded with markers.
fn marked_events(bucket: &str) -> Vec<(&'static str, Value)> {
    let mut events = Vec::new();
    for body in marked_bodies() {
        events.push(("function_url", function_url_event("POST", "/", Some(&body))));
        let mut explained = function_url_event("POST", "/", Some(&body));
        explained["rawQueryString"] = json!("explain=true");
        events.push(("function_url", explained));
        events.push(("function_url", base64_event(body.as_bytes())));
    }
    // The Open Inference Protocol's infer (issue 23): JSON, binary tensors, bad values, garbage.
    let infer = "/v2/models/breast-cancer-gbc/infer";
    let tensor = |data: Value| {
        json!({"id": "PATIENT-MARKER-ID", "inputs": [{"name": "input-0", "shape": [1, 5], "datatype": "FP64", "data": data}],
               "outputs": [{"name": "predict"}, {"name": "explanation"}]})
        .to_string()
    };
    for body in [
        tensor(json!([0.01357913, 15.0, 20.0, 1234.5678901, 0.1])),
        tensor(json!([0.01357913, "VALUE-MARKER", 20.0, -1234.5678901, 0.1])),
        "{\"inputs\": [GARBAGE-MARKER".into(),
    ] {
        events.push(("function_url", function_url_event("POST", infer, Some(&body))));
    }
    let values: Vec<u8> = [0.01357913f64, 15.0, 20.0, 1234.5678901, 0.1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = json!({"id": "PATIENT-MARKER-ID", "inputs": [{"name": "input-0", "shape": [1, 5], "datatype": "FP64",
        "parameters": {"binary_data_size": 40}}], "parameters": {"binary_data_output": true}})
    .to_string();
    let mut binary = base64_event(&[header.as_bytes(), &values].concat());
    binary["rawPath"] = json!(infer);
    binary["requestContext"]["http"]["path"] = json!(infer);
    binary["headers"]["inference-header-content-length"] = json!(header.len().to_string());
    events.push(("function_url", binary));
    events.push(("s3", s3_event(&[(bucket, "incoming/marked.csv")])));
    let mut sqs = sample_event("sqs-garbage.json", bucket);
    for (record, body) in sqs["Records"].as_array_mut().unwrap().iter_mut().zip(marked_bodies().into_iter().skip(1)) {
        record["body"] = json!(body);
    }
    sqs["Records"][2]["body"] = json!(json!([observation("PATIENT-MARKER-ID"), observation("x")]).to_string());
    events.push(("sqs", sqs));
    let mut map = sample_event("stepfunctions-distributed-map.json", bucket);
    map["Items"] = json!([
        {"sample_id": "SAMPLE-MARKER", "mean concave points": "0.01357913", "worst radius": "15",
         "worst texture": "20", "worst area": "1234.5678901", "worst concave points": "0.1"},
        {"sample_id": "SAMPLE-MARKER", "mean concave points": "VALUE-MARKER", "worst radius": "15",
         "worst texture": "20", "worst area": "-1234.5678901", "worst concave points": "0.1"},
        "GARBAGE-MARKER",
        {"sample_id": "SAMPLE-MARKER", "worst area": 1234.5678901}
    ]);
    map["BatchInput"] = json!({"explain": true});
    events.push(("distributed_map", map));
    let mut batch = sample_event("s3-batch-operations.json", bucket);
    batch["tasks"][0]["s3Key"] = json!("incoming/marked.csv");
    batch["job"]["userArguments"]["note"] = json!("GARBAGE-MARKER");
    events.push(("s3_batch_operations", batch));
    events
}

/// Events whose shape is wrong where a marker sits: deserializers quote what
/// they could not read, and the runtime logs such errors at every level.
fn misshapen_events() -> Vec<Value> {
    let mut url = function_url_event("POST", "/", None);
    url["body"] = json!(1234.5678901);
    vec![url, json!({"Items": "VALUE-MARKER"}), json!({"Records": "GARBAGE-MARKER"})]
}

#[tokio::test]
async fn the_lambda_function_logs_no_patient_data_at_any_log_level() {
    let (bucket, base_env) = marked_bucket("scorer-privacy-lambda").await;
    let dir = tempfile::tempdir().unwrap();
    // Lambda's own setting (advanced logging controls) is upper case.
    let runs = LEVELS.iter().map(|l| ("LOG_LEVEL", l.to_string())).chain([("AWS_LAMBDA_LOG_LEVEL", "TRACE".into())]);
    for (variable, level) in runs {
        let what = format!("Lambda at {variable}={level}");
        let mut env = base_env.clone();
        env.push((variable, level.clone()));
        env.push(("EXPLAIN", "true".into()));
        // A challenger in shadow: its figures are aggregates, never a value.
        let challenger = crate::helpers::root().join("models/testdata/gbc-depth2.json");
        env.push(("CHALLENGER_MODEL_PATH", challenger.display().to_string()));
        let (out, err) = (dir.path().join(format!("{level}.out")), dir.path().join(format!("{level}.err")));
        {
            let api = RuntimeApi::start().await;
            let _f = start_lambda_capturing(&api, &env, &out, &err);
            for (kind, event) in marked_events(&bucket) {
                let answer = api.invoke(&event).await.response();
                match kind {
                    "s3" => assert_eq!(answer["files"][0]["status"], "scored", "{what}"),
                    "distributed_map" => assert_eq!(answer.as_array().map(Vec::len), Some(4), "{what}"),
                    "s3_batch_operations" => assert_eq!(answer["results"][0]["resultCode"], "Succeeded", "{what}"),
                    _ => {}
                }
            }
            for event in misshapen_events() {
                let error = api.invoke(&event).await.error();
                assert_clean(&format!("{what}: the error answer"), &error.to_string());
            }
        }
        let (logs, metrics) = (std::fs::read_to_string(&err).unwrap(), std::fs::read_to_string(&out).unwrap());
        assert_clean(&format!("{what}: logs"), &logs);
        assert_clean(&format!("{what}: metrics"), &metrics);

        // Useful all the same, at the level asked for.
        let lines = json_lines(&what, &logs);
        let verbose = matches!(level.as_str(), "trace" | "TRACE" | "debug");
        let informative = verbose || level == "info";
        assert_eq!(
            verbose,
            has(&lines, |l| l["message"] == "prediction" && l["request_id"].is_string() && l["cold_start"] == true),
            "{what}: the per-request line shows at debug and below only"
        );
        assert_eq!(informative, has(&lines, |l| l["message"] == "file scored" && l["rows"] == 3), "{what}");
        assert_eq!(informative, has(&lines, |l| l["message"] == "items scored" && l["rows"] == 4), "{what}");
        assert_eq!(informative, has(&lines, |l| l["message"] == "SQS batch handled"), "{what}");
        assert_eq!(level != "error", has(&lines, |l| l["level"] == "WARN"), "{what}: the unintelligible messages");
        assert!(has(&lines, |l| l["level"] == "ERROR"), "{what}: the misshapen events are logged as errors");

        // Metrics do not depend on the log level.
        let emf = json_lines(&format!("{what}: metrics"), &metrics);
        assert!(emf.iter().any(|m| m["EntryPoint"] == "function_url" && m["Predictions"] == 1.0), "{what}");
        assert!(
            emf.iter()
                .any(|m| m["EntryPoint"] == "s3" && m["RowsScored"] == 1.0 && m["Rejected_wrong_field_count"] == 1.0),
            "{what}"
        );
        assert!(emf.iter().any(|m| m["EntryPoint"] == "sqs" && m["BatchItemFailures"].as_f64() > Some(0.0)), "{what}");
        assert!(emf.iter().any(|m| m["EntryPoint"] == "distributed_map" && m["RowsScored"] == 1.0), "{what}");
        for entry in ["function_url", "s3", "sqs", "distributed_map"] {
            assert!(
                emf.iter().any(|m| m["EntryPoint"] == entry && m["ChallengerRows"].as_f64() >= Some(1.0)),
                "{what}: {entry}"
            );
        }
    }
}

#[tokio::test]
async fn the_worker_logs_no_patient_data_at_any_log_level() {
    let (bucket, base_env) = marked_bucket("scorer-privacy-worker").await;
    let sqs = sqs_client(&moto_endpoint());
    let queue = sqs.create_queue().queue_name(unique_bucket("privacy")).send().await.unwrap().queue_url.unwrap();
    let file = s3_event(&[(&bucket, "incoming/marked.csv")]).to_string();
    for level in LEVELS {
        let what = format!("worker at LOG_LEVEL={level}");
        // Failed (unintelligible) messages stay hidden for the visibility
        // timeout, so each level's worker sees its own messages.
        for body in marked_bodies().iter().chain([&file]) {
            sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
        }
        let mut env = base_env.clone();
        env.push(("LOG_LEVEL", level.into()));
        let worker = scorer()
            .args(["worker", "--queue-url", &queue, "--wait-seconds", "1", "--max-empty-receives", "1"])
            .args(["--visibility-timeout", "60"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(worker.status.success(), "{what}");
        let (logs, metrics) = (String::from_utf8_lossy(&worker.stderr), String::from_utf8_lossy(&worker.stdout));
        assert_clean(&format!("{what}: logs"), &logs);
        assert_clean(&format!("{what}: metrics"), &metrics);
        let lines = json_lines(&what, &logs);
        let informative = matches!(level, "trace" | "debug" | "info");
        assert_eq!(informative, has(&lines, |l| l["message"] == "batch done"), "{what}");
        assert_eq!(informative, has(&lines, |l| l["message"] == "file scored" && l["rows"] == 3), "{what}");
        assert_eq!(level != "error", has(&lines, |l| l["level"] == "WARN"), "{what}: the unintelligible messages");
        assert!(metrics.contains("\"EntryPoint\":\"worker\""), "{what}");
    }
}

#[tokio::test]
async fn score_and_serve_log_no_patient_data_at_any_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("marked.csv");
    std::fs::write(&csv, CSV).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for level in LEVELS {
        // Local scoring: the summary line and logs.
        let scored = scorer()
            .arg("score")
            .arg(&csv)
            .arg("-o")
            .arg(dir.path().join("out.csv"))
            .arg("--explain")
            .env("LOG_LEVEL", level)
            .output()
            .unwrap();
        assert!(scored.status.success(), "score at {level}");
        assert_clean(&format!("score at {level}: stderr"), &String::from_utf8_lossy(&scored.stderr));
        assert_clean(&format!("score at {level}: stdout"), &String::from_utf8_lossy(&scored.stdout));

        // serve.
        let err = dir.path().join(format!("serve-{level}.err"));
        let mut child = scorer()
            .args(["serve", "--port", "0"])
            .env("LOG_LEVEL", level)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let server = Running { child };
        let url = line.trim().trim_start_matches("listening on ").to_owned();
        let mut request_ids = Vec::new();
        for body in marked_bodies() {
            for target in [url.clone(), format!("{url}?explain=true")] {
                let answer = agent.post(&target).send(body.as_str()).unwrap();
                request_ids.push(answer.headers()["x-request-id"].to_str().unwrap().to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(server);
        let logs = std::fs::read_to_string(&err).unwrap();
        assert_clean(&format!("serve at {level}: logs"), &logs);
        if matches!(level, "trace" | "debug") {
            assert!(logs.contains("prediction"), "serve at {level} logs its requests:\n{logs}");
            // Each request's log lines carry the id its answer gave (X-Request-Id).
            for id in &request_ids {
                assert!(logs.contains(id.as_str()), "serve at {level}: no log line names request {id}:\n{logs}");
            }
        }
    }
}
