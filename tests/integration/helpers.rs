#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

pub const VALID_BODY: &str = r#"{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scorer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scorer"));
    // Tests must not inherit a developer's Lambda or model settings.
    for v in ["AWS_LAMBDA_RUNTIME_API", "MODEL_PATH", "CHALLENGER_MODEL_PATH", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"] {
        c.env_remove(v);
    }
    c
}

/// One feature of the shipped model, as the tests of its contract name it.
pub struct ShippedFeature {
    pub api_name: &'static str,
    pub dataset_name: &'static str,
}

/// The shipped export's features (models/breast-cancer-gbc.json): the tests
/// that speak the shipped contract name them. The binary has no list of its
/// own; `the_shipped_feature_list_of_the_tests_is_the_embedded_models` keeps
/// this one equal to the export's.
pub const FEATURE_COUNT: usize = 5;
pub const FEATURES: [ShippedFeature; FEATURE_COUNT] = [
    ShippedFeature { api_name: "meanConcavePoints", dataset_name: "mean concave points" },
    ShippedFeature { api_name: "worstRadius", dataset_name: "worst radius" },
    ShippedFeature { api_name: "worstTexture", dataset_name: "worst texture" },
    ShippedFeature { api_name: "worstArea", dataset_name: "worst area" },
    ShippedFeature { api_name: "worstConcavePoints", dataset_name: "worst concave points" },
];

#[test]
fn the_shipped_feature_list_of_the_tests_is_the_embedded_models() {
    let model = scorer::core::model::Model::embedded().unwrap();
    let features: Vec<(&str, &str)> =
        model.features().iter().map(|f| (f.api_name.as_str(), f.dataset_name.as_str())).collect();
    let ours: Vec<(&str, &str)> = FEATURES.iter().map(|f| (f.api_name, f.dataset_name)).collect();
    assert_eq!(features, ours);
}

/// The feature values of the 569 dataset rows (`tests/golden/dataset.csv`,
/// written by sklearn's training script), in model order.
pub fn dataset_values() -> Vec<[f64; FEATURE_COUNT]> {
    let mut reader = csv::Reader::from_path(root().join("tests/golden/dataset.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().take(FEATURE_COUNT).collect::<Vec<_>>(), FEATURES.map(|f| f.api_name));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            std::array::from_fn(|i| r[i].parse().unwrap())
        })
        .collect()
}

pub fn read_json(path: impl AsRef<Path>) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A Function URL event (payload 2.0), like `events/function-url-*.json`.
pub fn function_url_event(method: &str, path: &str, body: Option<&str>) -> Value {
    let mut e = read_json("events/function-url-predict.json");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["body"] = body.map_or(Value::Null, |b| json!(b));
    e["isBase64Encoded"] = json!(false);
    e
}

pub fn base64_event(body: &[u8]) -> Value {
    let mut e = function_url_event("POST", "/", None);
    e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    e["isBase64Encoded"] = json!(true);
    e
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
pub struct Running {
    pub child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a worker (or any child) to exit by itself, failing the test
/// after `limit`.
pub async fn wait_exit(worker: &mut Running, limit: std::time::Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "the worker did not stop within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The keys under `prefix` in `bucket` (one listing page: tests write few).
pub async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

/// Starts `scorer serve --port 0` and returns it with its base URL.
pub fn start_serve() -> (Running, String) {
    start_serve_with(&[])
}

/// [`start_serve`] with extra environment (e.g. `MODEL_PATH`).
pub fn start_serve_with(env: &[(&str, &std::ffi::OsStr)]) -> (Running, String) {
    let mut child = scorer()
        .args(["serve", "--port", "0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scorer serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
    let url = line.trim().strip_prefix("listening on ").expect("scorer serve prints its address").to_owned();
    (Running { child }, url)
}

/// moto server's address, started by tests/run.sh. S3/SQS tests fail (never
/// skip) without it.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run the tests with `bash tests/run.sh`, which starts moto server")
}

/// Environment for the binary to use moto (or any endpoint) as AWS.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A bucket name unique to this test run.
pub fn unique_bucket(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An S3 ObjectCreated notification as Lambda receives it (key URL-encoded).
pub fn s3_event(records: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(bucket, key)| {
            let encoded: String = url_encode_key(key);
            json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T14:00:00.000Z", "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "198.51.100.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {"s3SchemaVersion": "1.0", "configurationId": "csv-upload",
                       "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
                       "object": {"key": encoded, "size": 1, "eTag": "0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}}
            })
        })
        .collect();
    json!({ "Records": records })
}

/// How S3 encodes keys in notifications: form encoding, space as `+`.
pub fn url_encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Like [`start_lambda`], with stdout and stderr written to files.
pub fn start_lambda_capturing(
    api: &crate::runtime_api::RuntimeApi,
    env: &[(&str, String)],
    stdout: &Path,
    stderr: &Path,
) -> Running {
    let mut cmd = scorer();
    cmd.envs(api.lambda_env())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(std::fs::File::create(stderr).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running { child: cmd.spawn().expect("start the function") }
}

/// The real binary as a Lambda function against `api`, with extra environment.
pub fn start_lambda(api: &crate::runtime_api::RuntimeApi, env: &[(&str, String)]) -> Running {
    let mut cmd = scorer();
    cmd.envs(api.lambda_env()).stdout(Stdio::null()).stderr(if std::env::var_os("TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running { child: cmd.spawn().expect("start the function") }
}

/// `scorer score FILE -o -`: the local pipeline's output bytes.
pub fn score_locally(path: &Path) -> Vec<u8> {
    let out = scorer().arg("score").arg(path).args(["-o", "-", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Reads a sample event, pointing its bucket names at `bucket`.
pub fn sample_event(name: &str, bucket: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(name)).unwrap();
    serde_json::from_str(&text.replace("scorer-demo", bucket)).unwrap()
}

/// Records an HTTP answer for `tests/openapi_check.py --answers` when
/// SCORER_CONTRACT_ANSWERS names a file (tests/run.sh sets it): every answer
/// the contract tests receive is then validated against openapi.yaml.
pub fn record_answer(method: &str, path: &str, status: u16, headers: &[(String, String)], body: &str) {
    use std::io::Write as _;
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let Some(file) = std::env::var_os("SCORER_CONTRACT_ANSWERS") else { return };
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::from(v.as_str()))).collect();
    let line = json!({"method": method, "path": path, "status": status, "headers": headers, "body": body});
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).expect("open the answers file");
    writeln!(f, "{line}").expect("record an answer");
}

/// Records a Function URL reply (the handler's JSON answer) for the event that produced it.
pub fn record_reply(event: &Value, reply: &Value) {
    let method = event["requestContext"]["http"]["method"].as_str().unwrap_or("");
    let path = event["rawPath"].as_str().unwrap_or("/");
    let headers: Vec<(String, String)> = reply["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default();
    let status = reply["statusCode"].as_u64().unwrap_or(0) as u16;
    record_answer(method, path, status, &headers, reply["body"].as_str().unwrap_or(""));
}

/// Records a response `scorer serve` gave, and returns its status, headers and body.
pub fn record_ureq(
    method: &str,
    path: &str,
    mut r: ureq::http::Response<ureq::Body>,
) -> (u16, Vec<(String, String)>, String) {
    let status = r.status().as_u16();
    let headers: Vec<(String, String)> =
        r.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let body = r.body_mut().read_to_string().unwrap();
    record_answer(method, path, status, &headers, &body);
    (status, headers, body)
}
