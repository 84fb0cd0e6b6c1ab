//! SQS delivers at least once. What must hold: a redelivered message never
//! gives a consumer a second result to count; a batch's observation results are
//! written before any of its files is read; a failed results write or notice
//! retries exactly its message; a worker batch that panics leaves its messages
//! to come back (and so, in the end, to the dead-letter queue).
//!
//! Where moto cannot fail one request among others, a recording fake endpoint
//! stands in for S3 and SQS (`FakeAws`).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use scorer::adapters::sqs::results_key;
use scorer::cli::worker::{work, Args, BatchHandler};
use scorer::contract::invocation::Invocation;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::helpers::{aws_env, moto_endpoint, s3_client, s3_event, sqs_client, start_lambda, unique_bucket};
use crate::runtime_api::RuntimeApi;

fn observation(id: &str) -> Value {
    json!({"id": id, "meanConcavePoints": 0.05, "worstRadius": 15.0, "worstTexture": 20.0, "worstArea": 700.0,
           "worstConcavePoints": 0.1})
}

/// One SQS record as Lambda's event source mapping sends it.
fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id, "receiptHandle": format!("handle-{message_id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795615391000"},
        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lab", "awsRegion": "us-east-1"
    })
}

fn batch(records: &[Value]) -> Value {
    json!({ "Records": records })
}

fn failures(answer: &Value) -> Vec<&str> {
    answer["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap()).collect()
}

// --- A fake S3 + SQS endpoint that records every request in order ---------

/// Fails a PutObject whose key contains `WRITE-FAILS`, and a notice whose
/// message id contains `NOTICE-FAILS`; records the rest.
#[derive(Default)]
struct FakeAws {
    requests: Mutex<Vec<String>>,
}

const CSV: &str =
    "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\nr1,0.1,25,17,2019,0.26\n";

async fn fake_aws(
    req: Request<hyper::body::Incoming>,
    fake: Arc<FakeAws>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let target = req.headers().get("x-amz-target").and_then(|t| t.to_str().ok()).map(str::to_owned);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let respond = |status: u16, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert("content-type", content_type.parse().unwrap());
        r.headers_mut().insert("etag", "\"fake-etag\"".parse().unwrap());
        r
    };
    let mut log = fake.requests.lock().unwrap();
    let response = match (method.as_str(), target.as_deref()) {
        ("POST", Some("AmazonSQS.SendMessageBatch")) => {
            let input: Value = serde_json::from_slice(&body).unwrap();
            let (mut ok, mut failed) = (Vec::new(), Vec::new());
            for entry in input["Entries"].as_array().unwrap() {
                let notice: Value = serde_json::from_str(entry["MessageBody"].as_str().unwrap()).unwrap();
                let message_id = notice["messageId"].as_str().unwrap_or("").to_owned();
                log.push(format!("NOTICE {message_id}"));
                if message_id.contains("NOTICE-FAILS") {
                    failed.push(json!({"Id": entry["Id"], "SenderFault": false, "Code": "InternalError"}));
                } else {
                    ok.push(json!({"Id": entry["Id"], "MessageId": "n", "MD5OfMessageBody": "0"}));
                }
            }
            let out = json!({"Successful": ok, "Failed": failed}).to_string();
            respond(200, "application/x-amz-json-1.0", out)
        }
        ("POST", Some(other)) => {
            log.push(format!("SQS {other}"));
            respond(400, "application/x-amz-json-1.0", r#"{"__type":"UnsupportedOperation"}"#.into())
        }
        ("PUT", _) if path.contains("WRITE-FAILS") => {
            log.push(format!("PUT {path} (refused)"));
            let denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
            respond(403, "application/xml", denied.into())
        }
        ("GET", _) if path.ends_with(".csv") => {
            log.push(format!("GET {path}"));
            respond(200, "text/csv", CSV.into())
        }
        _ => {
            log.push(format!("{method} {path}"));
            if method == "PUT" {
                respond(200, "application/xml", String::new())
            } else {
                respond(404, "application/xml", "<Error><Code>NoSuchKey</Code></Error>".into())
            }
        }
    };
    Ok(response)
}

/// Starts the fake; returns it and its endpoint.
async fn start_fake_aws() -> (Arc<FakeAws>, String) {
    let fake = Arc::new(FakeAws::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::clone(&fake);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let fake = Arc::clone(&served);
            tokio::spawn(async move {
                let service = service_fn(move |req| fake_aws(req, Arc::clone(&fake)));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (fake, endpoint)
}

fn fake_env(endpoint: &str) -> Vec<(&'static str, String)> {
    let mut env = aws_env(endpoint);
    env.push(("OUTPUT_BUCKET", "lab".into()));
    env.push(("RESULT_QUEUE_URL", format!("{endpoint}/123456789012/results")));
    env
}

#[tokio::test]
async fn a_mixed_batch_writes_its_observation_results_before_reading_any_file() {
    let (fake, endpoint) = start_fake_aws().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &fake_env(&endpoint));
    // The file comes first in the batch: it must still wait for the observations.
    let event = batch(&[
        record("file-1", &s3_event(&[("lab", "incoming/x.csv")]).to_string()),
        record("obs-1", &observation("a").to_string()),
        record("obs-2", &json!([observation("b"), observation("c")]).to_string()),
    ]);
    api.invoke(&event).await.response();

    let log = fake.requests.lock().unwrap().clone();
    let at = |needle: &str| log.iter().position(|r| r.contains(needle));
    let file = at("/incoming/x.csv").unwrap_or_else(|| panic!("the file was read: {log:#?}"));
    for results in ["PUT /lab/scored/sqs/obs-1.jsonl", "PUT /lab/scored/sqs/obs-2.jsonl", "NOTICE obs-2"] {
        let written = at(results).unwrap_or_else(|| panic!("{results}: {log:#?}"));
        assert!(written < file, "{results} must come before the file is read: {log:#?}");
    }
}

#[tokio::test]
async fn a_failed_results_write_or_notice_retries_exactly_that_message() {
    let (fake, endpoint) = start_fake_aws().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &fake_env(&endpoint));
    let ids = ["ok-1", "WRITE-FAILS-2", "ok-3", "NOTICE-FAILS-4", "garbage-5"];
    let mut records: Vec<Value> = ids[..4].iter().map(|id| record(id, &observation(id).to_string())).collect();
    records.push(record(ids[4], "not a lab message"));
    let answer = api.invoke(&batch(&records)).await.response();
    assert_eq!(failures(&answer), ["WRITE-FAILS-2", "NOTICE-FAILS-4", "garbage-5"]);

    let log = fake.requests.lock().unwrap().clone();
    for id in &ids[..4] {
        assert!(log.iter().any(|r| r.starts_with("PUT /lab/scored/sqs/") && r.contains(id)), "{id}: {log:#?}");
    }
    let noticed: BTreeSet<&str> = log.iter().filter_map(|r| r.strip_prefix("NOTICE ")).collect();
    assert_eq!(noticed, BTreeSet::from(["ok-1", "ok-3", "NOTICE-FAILS-4"]), "no notice for an object not written");
}

// --- Redelivery, against moto ---------------------------------------------

#[tokio::test]
async fn a_redelivered_message_overwrites_its_results_and_repeats_its_notice() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let bucket = unique_bucket("scorer-redelivery");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let notices = sqs.create_queue().queue_name(unique_bucket("notices")).send().await.unwrap().queue_url.unwrap();
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    env.push(("RESULT_QUEUE_URL", notices.clone()));
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &env);

    let twice = json!([observation("p1"), observation("p2")]).to_string();
    // The same message (same id and body) in two batches: at-least-once
    // delivery, or a retry of a partial failure grouped with other messages.
    for event in [
        batch(&[record("m-1", &twice), record("m-2", &observation("p3").to_string())]),
        batch(&[record("m-3", &observation("p4").to_string()), record("m-1", &twice)]),
    ] {
        assert!(failures(&api.invoke(&event).await.response()).is_empty());
    }

    // What a consumer reading every results object sees.
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("scored/sqs/").send().await.unwrap();
    let keys: BTreeSet<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let mut lines: BTreeMap<(String, u64), String> = BTreeMap::new();
    for &key in &keys {
        let got = s3.get_object().bucket(&bucket).key(key).send().await.unwrap();
        let text = String::from_utf8(got.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let at = (v["messageId"].as_str().unwrap().to_owned(), v["index"].as_u64().unwrap());
            assert!(lines.insert(at.clone(), v["id"].as_str().unwrap().to_owned()).is_none(), "{at:?} twice");
        }
    }
    let ids: Vec<&str> = lines.values().map(String::as_str).collect();
    assert_eq!(ids, ["p1", "p2", "p3", "p4"], "each observation counted once");
    let expected: BTreeSet<String> = ["m-1", "m-2", "m-3"].iter().map(|id| results_key("scored/", id)).collect();
    assert_eq!(keys, expected.iter().map(String::as_str).collect(), "one results object per message");

    // The notice is sent again, under the same noticeId.
    let mut by_message: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    loop {
        let got = sqs.receive_message().queue_url(&notices).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let notice: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            by_message.entry(notice["messageId"].as_str().unwrap().to_owned()).or_default().push(notice);
            sqs.delete_message().queue_url(&notices).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    let counts: Vec<(&str, usize)> = by_message.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(counts, [("m-1", 2), ("m-2", 1), ("m-3", 1)]);
    let m1 = &by_message["m-1"];
    assert_eq!(m1[0], m1[1], "a redelivery's notice is the same notice");
    let distinct: BTreeSet<&str> = by_message.values().flatten().map(|n| n["noticeId"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 3);
}

// --- The worker's visibility keep-alive -------------------------------------

/// Panics on its first batch (a bug in a handler), succeeds afterwards.
#[derive(Default)]
struct PanicsOnce {
    batches: Mutex<Vec<Vec<String>>>,
    handled_again: Notify,
}

impl BatchHandler for PanicsOnce {
    async fn handle_batch(&self, event: SqsEvent, _: &Invocation) -> Option<Vec<String>> {
        let ids: Vec<String> = event.records.iter().filter_map(|r| r.message_id.clone()).collect();
        let first = {
            let mut batches = self.batches.lock().unwrap();
            batches.push(ids);
            batches.len() == 1
        };
        if first {
            panic!("a handler bug");
        }
        self.handled_again.notify_one();
        Some(Vec::new())
    }
}

#[tokio::test]
async fn a_worker_batch_that_panics_leaves_its_messages_to_come_back() {
    let sqs = sqs_client(&moto_endpoint());
    let queue = sqs
        .create_queue()
        .queue_name(unique_bucket("panics"))
        .attributes(QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for id in ["a", "b"] {
        sqs.send_message().queue_url(&queue).message_body(observation(id).to_string()).send().await.unwrap();
    }
    let handler = Arc::new(PanicsOnce::default());
    let args = Args {
        queue_url: queue.clone(),
        concurrency: 1,
        max_messages: 10,
        wait_seconds: 1,
        // Extended every second while a batch runs: a keep-alive that outlived
        // the panicking batch would hide its messages for good.
        visibility_timeout: 2,
        max_empty_receives: None,
    };
    let stop = Arc::clone(&handler);
    let worked = tokio::time::timeout(
        Duration::from_secs(20),
        work(Arc::clone(&handler), sqs.clone(), args, async move { stop.handled_again.notified().await }),
    )
    .await;
    let batches = handler.batches.lock().unwrap().clone();
    assert!(worked.is_ok(), "the panicked batch's messages never came back: {batches:?}");
    assert_eq!(batches.len(), 2, "{batches:?}");
    let sorted = |b: &Vec<String>| b.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(sorted(&batches[0]), sorted(&batches[1]), "the same messages, received again");
    assert_eq!(batches[0].len(), 2);

    // Handled the second time: deleted.
    let attrs =
        sqs.get_queue_attributes().queue_url(&queue).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let a = attrs.attributes.unwrap();
    let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(99);
    assert_eq!(
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        ),
        (0, 0)
    );
}
