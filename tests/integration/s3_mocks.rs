//! What real S3 answers and moto cannot: 403 AccessDenied (moto enforces no
//! IAM), NoSuchVersion, 503 SlowDown, a denied PutObject or
//! CreateMultipartUpload. S3's answers are scripted with aws-smithy-mocks
//! (raw HTTP status and XML error body, as S3 sends them) and each case is
//! run through the handler on every route that reads S3 files: the S3
//! notification, the same notification in an SQS message, and an S3 Batch
//! Operations task. Each test asserts the status, the reason and the retry
//! decision of each route.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::handler::App;
use serde_json::{json, Value};

const CSV: &str = "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n\
                   a,0.1471,25.38,17.33,2019.0,0.2654\n";

/// S3's XML error body for `code`.
fn s3_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>4442587FB7D0A2F9</RequestId><HostId>EXAMPLE</HostId></Error>"
    )
}

fn get_answers(status: u16, code: &str, message: &str) -> Rule {
    mock!(Client::get_object).sequence().http_status(status, Some(s3_error(code, message))).repeatedly().build()
}

fn get_returns(body: &'static [u8]) -> Rule {
    mock!(Client::get_object).then_output(move || {
        GetObjectOutput::builder().body(ByteStream::from_static(body)).e_tag("\"input-etag\"").build()
    })
}

/// Objects written (key, body), for the test to read.
type Written = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// PutObject succeeds; each object written is kept for the test to read.
fn put_recorded(written: &Written) -> Rule {
    let written = Arc::clone(written);
    mock!(Client::put_object).then_compute_output(move |req| {
        let body = req.body().bytes().map(<[u8]>::to_vec).unwrap_or_default();
        written.lock().unwrap().push((req.key().unwrap_or_default().to_owned(), body));
        PutObjectOutput::builder().build()
    })
}

fn client(rules: &[Rule]) -> Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    // No SDK retries: one scripted answer per request (on AWS the SDK retries
    // 503s itself, three attempts in all, before the file is `failed`).
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Client::from_conf(config)
}

fn app(rules: &[Rule]) -> App {
    let config = BatchConfig::new("incoming/".into(), "scored/".into(), None, None).unwrap();
    App::new(Model::embedded().unwrap(), config).with_s3_client(client(rules))
}

fn notification(key: &str, version: Option<&str>) -> Value {
    let mut object = json!({"key": key, "size": CSV.len(), "eTag": "input-etag"});
    if let Some(v) = version {
        object["versionId"] = json!(v);
    }
    json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "lab"}, "object": object}}]})
}

fn sqs_event(body: &Value) -> Value {
    json!({"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": body.to_string(), "attributes": {},
                        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lab"}]})
}

fn batch_operations_event(key: &str, version: Option<&str>) -> Value {
    json!({"invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"},
           "tasks": [{"taskId": "t-1", "s3Bucket": "lab", "s3Key": key, "s3VersionId": version}]})
}

/// What each route answered for one file.
struct Routes {
    /// The S3 notification: the answer, or the invocation error (errorType, message).
    direct: Result<Value, (String, String)>,
    /// The SQS message ids listed for retry.
    sqs_retried: Vec<String>,
    /// The Batch Operations task: (resultCode, resultString).
    batch: (String, String),
    /// Summaries written, one per route, in route order.
    summaries: Vec<Value>,
}

async fn run(key: &str, version: Option<&str>, rules: impl Fn(&Written) -> Vec<Rule>) -> Routes {
    let written = Arc::new(Mutex::new(Vec::new()));
    let handle = |event: Value| {
        let app = app(&rules(&written));
        async move { app.handle_json(&event.to_string(), &Invocation::local()).await }
    };
    let reply = |r: scorer::handler::Reply| serde_json::to_value(r).unwrap();

    let direct =
        handle(notification(key, version)).await.map(reply).map_err(|e| (e.error_type().to_owned(), e.to_string()));
    let sqs = reply(handle(sqs_event(&notification(key, version))).await.expect("an SQS batch never fails whole"));
    let sqs_retried = sqs["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    let batch = reply(handle(batch_operations_event(key, version)).await.expect("Batch Operations never fails whole"));
    let task = &batch["results"][0];
    let batch = (task["resultCode"].as_str().unwrap().to_owned(), task["resultString"].as_str().unwrap().to_owned());
    let summaries = written
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with(".summary.json"))
        .map(|(_, body)| serde_json::from_slice(body).unwrap())
        .collect();
    Routes { direct, sqs_retried, batch, summaries }
}

#[tokio::test]
async fn get_object_denied_is_a_configuration_failure_that_names_the_permission_on_every_route() {
    let routes =
        run("incoming/a.csv", None, |w| vec![get_answers(403, "AccessDenied", "Access Denied"), put_recorded(w)]).await;
    let reason = "s3:GetObject on lab/incoming/a.csv was denied (403 AccessDenied): the function's role needs \
                  s3:GetObject on the input objects (and s3:GetObjectVersion for versioned reads), and s3:ListBucket \
                  on the bucket so that a missing key answers 404 instead of 403";

    // Direct: the invocation fails (Lambda retries twice, then the OnFailure destination keeps the event).
    let (error_type, message) = routes.direct.unwrap_err();
    assert_eq!(error_type, "ConfigurationError");
    assert!(message.contains(reason), "{message}");
    // SQS: the message is retried (then dead-lettered after maxReceiveCount).
    assert_eq!(routes.sqs_retried, ["m-1"]);
    // Batch Operations: failed permanently, the reason in the completion report.
    assert_eq!(routes.batch, ("PermanentFailure".into(), reason.into()));
    // A summary on every route says so.
    assert_eq!(routes.summaries.len(), 3);
    for s in &routes.summaries {
        assert_eq!((s["status"].as_str(), s["reason"].as_str()), (Some("failed"), Some(reason)), "{s}");
    }
}

#[tokio::test]
async fn a_versioned_read_denied_names_s3_get_object_version() {
    let routes =
        run("incoming/a.csv", Some("v7"), |w| vec![get_answers(403, "AccessDenied", "Access Denied"), put_recorded(w)])
            .await;
    let (error_type, message) = routes.direct.unwrap_err();
    assert_eq!(error_type, "ConfigurationError");
    assert!(message.contains("s3:GetObjectVersion on lab/incoming/a.csv was denied"), "{message}");
    assert!(message.contains("needs s3:GetObjectVersion (besides s3:GetObject)"), "{message}");
    assert_eq!(routes.sqs_retried, ["m-1"]);
    assert_eq!(routes.batch.0, "PermanentFailure");
    assert!(routes.batch.1.starts_with("s3:GetObjectVersion on lab/incoming/a.csv was denied"));
}

#[tokio::test]
async fn no_such_key_is_missing_with_a_summary_and_no_retry_on_every_route() {
    let routes = run("incoming/gone.csv", None, |w| {
        vec![get_answers(404, "NoSuchKey", "The specified key does not exist."), put_recorded(w)]
    })
    .await;
    let direct = routes.direct.expect("a missing object does not fail the invocation");
    assert_eq!(direct["files"][0]["status"], "missing");
    assert_eq!(direct["files"][0]["reason"], "the object no longer exists");
    assert!(routes.sqs_retried.is_empty());
    assert_eq!(routes.batch, ("PermanentFailure".into(), "the object no longer exists".into()));
    assert_eq!(routes.summaries.len(), 3);
    for s in &routes.summaries {
        assert_eq!(s["status"], "missing", "{s}");
        assert_eq!(s["input"]["key"], "incoming/gone.csv");
    }
}

#[tokio::test]
async fn no_such_version_is_missing_with_a_summary_and_no_retry_on_every_route() {
    let routes = run("incoming/a.csv", Some("v7"), |w| {
        vec![get_answers(404, "NoSuchVersion", "The specified version does not exist."), put_recorded(w)]
    })
    .await;
    let direct = routes.direct.expect("a missing version does not fail the invocation");
    assert_eq!(direct["files"][0]["status"], "missing");
    assert_eq!(direct["files"][0]["reason"], "version v7 of the object no longer exists");
    assert!(routes.sqs_retried.is_empty());
    assert_eq!(routes.batch.0, "PermanentFailure");
    assert_eq!(routes.summaries.iter().filter(|s| s["status"] == "missing").count(), 3);
}

#[tokio::test]
async fn a_slow_down_is_a_transient_failure_with_a_summary_and_a_retry_on_every_route() {
    let routes = run("incoming/a.csv", None, |w| {
        vec![get_answers(503, "SlowDown", "Please reduce your request rate."), put_recorded(w)]
    })
    .await;
    let (error_type, message) = routes.direct.unwrap_err();
    assert_eq!(error_type, "TransientFailure");
    assert!(message.contains("SlowDown"), "{message}");
    assert_eq!(routes.sqs_retried, ["m-1"]);
    assert_eq!(routes.batch.0, "TemporaryFailure");
    assert_eq!(routes.summaries.len(), 3);
    for s in &routes.summaries {
        assert_eq!(s["status"], "failed", "{s}");
        assert!(s["reason"].as_str().unwrap().starts_with("reading the object failed:"), "{s}");
    }
}

#[tokio::test]
async fn put_object_denied_is_a_configuration_failure_that_names_s3_put_object() {
    let routes = run("incoming/a.csv", None, |_| {
        vec![
            get_returns(CSV.as_bytes()),
            mock!(Client::put_object)
                .sequence()
                .http_status(403, Some(s3_error("AccessDenied", "Access Denied")))
                .repeatedly()
                .build(),
        ]
    })
    .await;
    let reason = "s3:PutObject on lab/scored/a.csv was denied (403 AccessDenied): the function's role needs \
                  s3:PutObject on the output location (it also covers multipart uploads)";
    let (error_type, message) = routes.direct.unwrap_err();
    assert_eq!(error_type, "ConfigurationError");
    assert!(message.contains(reason), "{message}");
    assert_eq!(routes.sqs_retried, ["m-1"]);
    assert_eq!(routes.batch, ("PermanentFailure".into(), reason.into()));
    assert!(routes.summaries.is_empty(), "the summary is denied too: the reason travels in the answer and the log");
}

/// A CSV whose output needs more than one 8 MiB part (so a multipart upload).
fn big_csv() -> &'static [u8] {
    static CSV: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    CSV.get_or_init(|| {
        let mut s = String::from("id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n");
        let mut i = 0;
        while s.len() < 14 * 1024 * 1024 {
            s.push_str(&format!("row{i},0.1471,25.38,17.33,2019.0,0.2654\n"));
            i += 1;
        }
        s.into_bytes()
    })
}

#[tokio::test]
async fn create_multipart_upload_denied_is_a_configuration_failure_and_nothing_is_left_to_abort() {
    let aborts = Arc::new(Mutex::new(0usize));
    let routes = run("incoming/big.csv", None, |w| {
        let aborts = Arc::clone(&aborts);
        vec![
            get_returns(big_csv()),
            mock!(Client::create_multipart_upload)
                .sequence()
                .http_status(403, Some(s3_error("AccessDenied", "Access Denied")))
                .repeatedly()
                .build(),
            mock!(Client::abort_multipart_upload).then_compute_output(move |_| {
                *aborts.lock().unwrap() += 1;
                aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput::builder().build()
            }),
            put_recorded(w),
        ]
    })
    .await;
    let (error_type, message) = routes.direct.unwrap_err();
    assert_eq!(error_type, "ConfigurationError");
    assert!(message.contains("s3:PutObject on lab/scored/big.csv was denied"), "{message}");
    assert_eq!(routes.sqs_retried, ["m-1"]);
    assert_eq!(routes.batch.0, "PermanentFailure");
    assert_eq!(routes.summaries.iter().filter(|s| s["status"] == "failed").count(), 3);
    assert_eq!(*aborts.lock().unwrap(), 0, "no upload was created, so none is aborted");
}

#[tokio::test]
async fn a_multipart_upload_whose_completion_fails_is_aborted_and_retried() {
    let aborts = Arc::new(Mutex::new(Vec::<String>::new()));
    let routes = run("incoming/big.csv", None, |w| {
        let aborts = Arc::clone(&aborts);
        vec![
            get_returns(big_csv()),
            mock!(Client::create_multipart_upload)
                .then_output(|| CreateMultipartUploadOutput::builder().upload_id("UPLOAD-1").build()),
            mock!(Client::upload_part).then_output(|| {
                aws_sdk_s3::operation::upload_part::UploadPartOutput::builder().e_tag("\"part\"").build()
            }),
            mock!(Client::complete_multipart_upload)
                .sequence()
                .http_status(500, Some(s3_error("InternalError", "We encountered an internal error.")))
                .repeatedly()
                .build(),
            abort_recorded(aborts),
            put_recorded(w),
        ]
    })
    .await;
    assert_eq!(routes.direct.unwrap_err().0, "TransientFailure");
    assert_eq!(routes.sqs_retried, ["m-1"]);
    assert_eq!(routes.batch.0, "TemporaryFailure");
    assert_eq!(*aborts.lock().unwrap(), ["UPLOAD-1", "UPLOAD-1", "UPLOAD-1"], "aborted once per route");
}

/// An upload abandoned mid-way (its parts refused after it was created) is
/// aborted, never completed: the last part is sent only by the writer's
/// explicit finish, and nothing is sent from a destructor.
#[tokio::test]
async fn a_multipart_upload_abandoned_mid_way_is_aborted_and_never_completed() {
    let aborts = Arc::new(Mutex::new(Vec::<String>::new()));
    let completes = Arc::new(Mutex::new(0usize));
    let routes = run("incoming/big.csv", None, |w| {
        let (aborts, completes) = (Arc::clone(&aborts), Arc::clone(&completes));
        vec![
            get_returns(big_csv()),
            mock!(Client::create_multipart_upload)
                .then_output(|| CreateMultipartUploadOutput::builder().upload_id("UPLOAD-2").build()),
            mock!(Client::upload_part)
                .sequence()
                .http_status(503, Some(s3_error("SlowDown", "Please reduce your request rate.")))
                .repeatedly()
                .build(),
            mock!(Client::complete_multipart_upload).then_compute_output(move |_| {
                *completes.lock().unwrap() += 1;
                aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput::builder().build()
            }),
            abort_recorded(aborts),
            put_recorded(w),
        ]
    })
    .await;
    assert_eq!(routes.direct.unwrap_err().0, "TransientFailure");
    assert_eq!(routes.sqs_retried, ["m-1"]);
    assert_eq!(*aborts.lock().unwrap(), ["UPLOAD-2", "UPLOAD-2", "UPLOAD-2"], "aborted once per route");
    assert_eq!(*completes.lock().unwrap(), 0, "never completed");
}

/// AbortMultipartUpload, recording each aborted upload's id.
fn abort_recorded(aborts: Arc<Mutex<Vec<String>>>) -> aws_smithy_mocks::Rule {
    mock!(Client::abort_multipart_upload).then_compute_output(move |req| {
        aborts.lock().unwrap().push(req.upload_id().unwrap_or_default().to_owned());
        aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput::builder().build()
    })
}
