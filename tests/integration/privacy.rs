//! Medical data never reaches logs or metrics. Every entry point is fed
//! inputs seeded with marker values (ids, feature values, bad cells, garbage
//! bodies) at LOG_LEVEL=debug; its stderr (logs) and stdout (EMF metrics)
//! must not contain a single marker. Logs must still be useful: JSON lines
//! with the request id, and EMF records with counts.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use crate::helpers::{
    aws_env, base64_event, function_url_event, moto_endpoint, s3_client, s3_event, sample_event, scorer, sqs_client,
    start_lambda_capturing, unique_bucket, Running,
};
use crate::runtime_api::RuntimeApi;

const MARKERS: [&str; 6] =
    ["PATIENT-MARKER-ID", "VALUE-MARKER", "1234.5678901", "SAMPLE-MARKER", "GARBAGE-MARKER", "0.01357913"];

fn assert_clean(what: &str, text: &str) {
    for marker in MARKERS {
        if let Some(at) = text.find(marker) {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!("{what} leaked {marker:?} in:\n{}", &text[start..end]);
        }
    }
}

fn observation(id: &str) -> Value {
    json!({"id": id, "meanConcavePoints": 0.01357913, "worstRadius": 15.0, "worstTexture": 20.0,
           "worstArea": 1234.5678901, "worstConcavePoints": 0.1})
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

#[tokio::test]
async fn no_entry_point_logs_or_counts_patient_data() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let bucket = unique_bucket("scorer-privacy");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/marked.csv")
        .body(ByteStream::from_static(CSV.as_bytes()))
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    env.push(("LOG_LEVEL", "debug".into()));

    // Lambda: Function URL, S3 and SQS events.
    let (out, err) = (dir.path().join("lambda.out"), dir.path().join("lambda.err"));
    {
        let api = RuntimeApi::start().await;
        let _f = start_lambda_capturing(&api, &env, &out, &err);
        for body in marked_bodies() {
            api.invoke(&function_url_event("POST", "/", Some(&body))).await.response();
            api.invoke(&base64_event(body.as_bytes())).await.response();
        }
        let scored = api.invoke(&s3_event(&[(&bucket, "incoming/marked.csv")])).await.response();
        assert_eq!(scored["files"][0]["status"], "scored");
        let mut event = sample_event("sqs-garbage.json", &bucket);
        for (record, body) in
            event["Records"].as_array_mut().unwrap().iter_mut().zip(marked_bodies().into_iter().skip(1))
        {
            record["body"] = json!(body);
        }
        event["Records"][2]["body"] = json!(json!([observation("PATIENT-MARKER-ID"), observation("x")]).to_string());
        api.invoke(&event).await.response();
    }
    let (logs, metrics) = (std::fs::read_to_string(&err).unwrap(), std::fs::read_to_string(&out).unwrap());
    assert_clean("Lambda logs", &logs);
    assert_clean("Lambda metrics", &metrics);
    // Useful all the same: JSON lines carrying request ids, and EMF records.
    let lines: Vec<Value> = logs.lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    assert!(lines
        .iter()
        .any(|l| l["message"] == "prediction" && l["request_id"].is_string() && l["cold_start"] == true));
    assert!(lines.iter().any(|l| l["message"] == "file scored" && l["rows"] == 3));
    let emf: Vec<Value> = metrics.lines().map(|l| serde_json::from_str(l).expect("an EMF line")).collect();
    assert!(emf.iter().any(|m| m["EntryPoint"] == "function_url" && m["Predictions"] == 1.0));
    assert!(emf
        .iter()
        .any(|m| m["EntryPoint"] == "s3" && m["RowsScored"] == 1.0 && m["Rejected_wrong_field_count"] == 1.0));
    assert!(emf.iter().any(|m| m["EntryPoint"] == "sqs" && m["BatchItemFailures"].as_f64() > Some(0.0)));

    // Worker.
    let queue = sqs.create_queue().queue_name(unique_bucket("privacy")).send().await.unwrap().queue_url.unwrap();
    for body in marked_bodies() {
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let worker = scorer()
        .args([
            "worker",
            "--queue-url",
            &queue,
            "--wait-seconds",
            "1",
            "--max-empty-receives",
            "1",
            "--visibility-timeout",
            "30",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(worker.status.success());
    assert_clean("worker logs", &String::from_utf8_lossy(&worker.stderr));
    assert_clean("worker metrics", &String::from_utf8_lossy(&worker.stdout));
    assert!(String::from_utf8_lossy(&worker.stdout).contains("\"EntryPoint\":\"worker\""));

    // Local scoring: the summary line and logs.
    let csv = dir.path().join("marked.csv");
    std::fs::write(&csv, CSV).unwrap();
    let scored = scorer()
        .arg("score")
        .arg(&csv)
        .arg("-o")
        .arg(dir.path().join("out.csv"))
        .env("LOG_LEVEL", "debug")
        .output()
        .unwrap();
    assert!(scored.status.success());
    assert_clean("score output", &String::from_utf8_lossy(&scored.stderr));
    assert_clean("score stdout", &String::from_utf8_lossy(&scored.stdout));

    // serve.
    let err = dir.path().join("serve.err");
    let mut child = scorer()
        .args(["serve", "--port", "0"])
        .env("LOG_LEVEL", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let server = Running { child };
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for body in marked_bodies() {
        agent.post(&url).send(body.as_str()).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(server);
    assert_clean("serve logs", &std::fs::read_to_string(&err).unwrap());
}
