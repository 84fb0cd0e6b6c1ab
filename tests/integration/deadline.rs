//! The invocation deadline, end to end: the real binary as a Lambda (Runtime
//! API harness, whose events carry a deadline) against moto and against a
//! scripted S3 endpoint. A file that cannot finish is `timed_out`: stopped
//! cleanly (or refused before reading, by its size), a summary written, no
//! multipart upload left open, not retried on any route, and the next
//! invocation of the same process works.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::{aws_env, moto_endpoint, root, s3_client, s3_event, start_lambda, unique_bucket};
use crate::runtime_api::RuntimeApi;

/// The function stops this long before its deadline (`DEADLINE_MARGIN`).
const MARGIN: Duration = Duration::from_secs(5);
/// Time the too-big file gets before it is stopped: a deadline nearly
/// passed. Half a second is far from enough for its ~45 MB whatever the
/// build (the pipeline alone peaks near 320 MB/s on a full core, and the
/// ~55 MB of output go to moto, a single-threaded Python server, as a
/// multipart upload), and far above what the size check refuses (45 ms at
/// 1,000 MB/s): the file starts and is stopped.
const WORK: Duration = Duration::from_millis(500);

const HEADER: &str = "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n";

fn rows(from: usize, bytes: usize) -> String {
    let mut s = String::new();
    let mut i = from;
    while s.len() < bytes {
        s.push_str(&format!("row{i},0.1471,25.38,17.33,2019.0,0.2654\n"));
        i += 1;
    }
    s
}

fn sqs_event(notification: &Value) -> Value {
    json!({"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": notification.to_string(), "attributes": {},
                        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lab"}]})
}

fn batch_operations_event(bucket: &str, key: &str) -> Value {
    json!({"invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"},
           "tasks": [{"taskId": "t-1", "s3Bucket": bucket, "s3Key": key, "s3VersionId": null}]})
}

#[tokio::test]
async fn a_file_too_big_for_the_time_left_times_out_cleanly_and_the_next_invocation_works() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-deadline");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    // ~45 MB: it cannot finish in WORK on any build (see WORK); its output
    // needs several 8 MiB parts, so a stop may come mid multipart upload.
    let huge = format!("{HEADER}{}", rows(0, 45_000_000));
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/huge.csv")
        .body(ByteStream::from(huge.into_bytes()))
        .send()
        .await
        .unwrap();
    let small = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    s3.put_object().bucket(&bucket).key("incoming/small.csv").body(ByteStream::from(small)).send().await.unwrap();

    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let started = Instant::now();
    let answer = api.invoke_with_timeout(&s3_event(&[(&bucket, "incoming/huge.csv")]), MARGIN + WORK).await;
    let answer = answer.response(); // the invocation did not fail: a retry would time out again
    let file = &answer["files"][0];
    assert_eq!(file["status"], "timed_out", "the file finished within the deadline: make it bigger: {answer}");
    assert!(file["reason"].as_str().unwrap().contains("Distributed Map"), "{answer}");
    assert!(started.elapsed() < MARGIN + WORK, "answered before the deadline");

    let summary = s3.get_object().bucket(&bucket).key("scored/huge.csv.summary.json").send().await.expect("a summary");
    let summary: Value = serde_json::from_slice(&summary.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(summary["status"], "timed_out");
    assert!(s3.head_object().bucket(&bucket).key("scored/huge.csv").send().await.is_err(), "no output");
    let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "no multipart upload left open: {:?}", uploads.uploads());

    // The same process scores the next file: nothing left over interferes.
    let next = api.invoke(&s3_event(&[(&bucket, "incoming/small.csv")])).await.response();
    assert_eq!((next["files"][0]["status"].as_str(), next["files"][0]["rows"].as_u64()), (Some("scored"), Some(569)));
    let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty());
}

/// What the scripted S3 endpoint saw.
#[derive(Default, Debug)]
struct Calls {
    gets: Vec<String>,
    creates: usize,
    parts: usize,
    aborts: Vec<String>,
    completes: usize,
    /// PutObject of output objects (keys).
    outputs: Vec<String>,
    summaries: Vec<Value>,
    /// PutObject of drift pages (`.report.html`, keys).
    pages: Vec<String>,
    /// Summaries as written, by path (GetObject reads them back).
    summary_objects: std::collections::HashMap<String, Bytes>,
}

#[derive(Default)]
struct Fake {
    calls: Mutex<Calls>,
    /// When the function is due to stop (its deadline minus the margin).
    stop_at: Mutex<Option<tokio::time::Instant>>,
    /// The function dropped the download of `huge.csv` (closed the connection).
    get_dropped: AtomicBool,
    /// Bytes of `huge.csv` handed to the connection.
    sent: std::sync::atomic::AtomicUsize,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("content-type", "application/xml".parse().unwrap());
    r
}

/// `huge.csv`: 26 MiB at once (its output needs four parts), then a row
/// every 20 ms for as long as the function keeps reading: it never ends.
fn endless_csv(fake: Arc<Fake>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    static BURST: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    // Rows with a 2 KB notes column: few rows per MiB, so even a debug build
    // beside other tests fills two output parts within a second or two.
    let burst = BURST
        .get_or_init(|| {
            let notes = "n".repeat(2000);
            let mut s = format!("notes,{HEADER}");
            // 26 MiB: the pipeline hands rows on in blocks of 4096 (8 MiB of
            // these rows), so three full blocks are needed to fill two parts.
            for (i, row) in rows(0, 26 * 1024 * 1024 / 50).lines().enumerate() {
                s.push_str(&format!("{notes}{i},{row}\n"));
            }
            Bytes::from(s)
        })
        .clone();
    tokio::spawn(async move {
        for at in (0..burst.len()).step_by(64 * 1024) {
            let chunk = burst.slice(at..burst.len().min(at + 64 * 1024));
            fake.sent.fetch_add(chunk.len(), Ordering::SeqCst);
            if tx.send(chunk).await.is_err() {
                fake.get_dropped.store(true, Ordering::SeqCst);
                return;
            }
        }
        for i in 1_000_000.. {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if tx.send(Bytes::from(format!("late,{}", rows(i, 1)))).await.is_err() {
                break;
            }
        }
        fake.get_dropped.store(true, Ordering::SeqCst);
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    StreamBody::new(frames).boxed()
}

async fn serve(req: Request<hyper::body::Incoming>, fake: Arc<Fake>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_owned();
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let response = match (method.as_str(), query.as_str()) {
        ("GET", _) if path.ends_with(".summary.json") => {
            let written = fake.calls.lock().unwrap().summary_objects.get(&path).cloned();
            match written {
                Some(body) => full(200, body),
                None => full(404, "<Error><Code>NoSuchKey</Code><Message>no</Message></Error>"),
            }
        }
        ("GET", _) => {
            fake.calls.lock().unwrap().gets.push(path.clone());
            if path.contains("/slow-") {
                // S3 taking its time: the one thing that makes time pass in
                // the multi-file tests, whatever the build's speed.
                tokio::time::sleep(SLOW_GET).await;
            }
            let mut r = if path.ends_with("/huge.csv") {
                Response::new(endless_csv(Arc::clone(&fake)))
            } else {
                let small = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
                Response::new(Full::new(Bytes::from(small)).boxed())
            };
            r.headers_mut().insert("etag", "\"input-etag\"".parse().unwrap());
            r.headers_mut().insert("content-type", "text/csv".parse().unwrap());
            r
        }
        ("POST", q) if q.starts_with("uploads") => {
            fake.calls.lock().unwrap().creates += 1;
            // S3 creates the upload, but its answer arrives only after the
            // function has stopped: the id must still be aborted.
            let stop_at = fake.stop_at.lock().unwrap().expect("the test sets stop_at");
            tokio::time::sleep_until(stop_at + Duration::from_millis(300)).await;
            full(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult><Bucket>lab</Bucket><Key>k</Key><UploadId>UPLOAD-LATE</UploadId></InitiateMultipartUploadResult>")
        }
        ("PUT", q) if q.contains("partNumber=") => {
            fake.calls.lock().unwrap().parts += 1;
            let mut r = full(200, "");
            r.headers_mut().insert("etag", "\"part\"".parse().unwrap());
            r
        }
        ("DELETE", q) if q.contains("uploadId=") => {
            let id = q.split('&').find_map(|p| p.strip_prefix("uploadId=")).unwrap_or("").to_owned();
            fake.calls.lock().unwrap().aborts.push(id);
            full(204, "")
        }
        ("POST", q) if q.contains("uploadId=") => {
            fake.calls.lock().unwrap().completes += 1;
            full(200, "<CompleteMultipartUploadResult><ETag>\"x\"</ETag></CompleteMultipartUploadResult>")
        }
        ("PUT", _) if path.ends_with(".report.html") => {
            fake.calls.lock().unwrap().pages.push(path);
            full(200, "")
        }
        ("PUT", _) if path.ends_with(".summary.json") => {
            let mut calls = fake.calls.lock().unwrap();
            calls.summaries.push(serde_json::from_slice(&body).unwrap_or_default());
            calls.summary_objects.insert(path, body);
            full(200, "")
        }
        ("PUT", _) => {
            fake.calls.lock().unwrap().outputs.push(path);
            full(200, "")
        }
        _ => full(400, "<Error><Code>NotImplemented</Code></Error>"),
    };
    Ok(response)
}

async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = Arc::clone(&fake);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let fake = Arc::clone(&server);
            tokio::spawn(async move {
                let service = service_fn(move |req| serve(req, Arc::clone(&fake)));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (fake, endpoint)
}

/// Time before the stop in the scripted runs: enough for a debug build to
/// score the 9.5 MiB of input whose output fills two parts (about 1 s alone,
/// longer beside other tests), so CreateMultipartUpload is out when it comes.
const SCRIPTED_WORK: Duration = Duration::from_secs(5);

/// Invokes with SCRIPTED_WORK before the stop, telling the fake when the stop comes.
async fn invoke_too_big(api: &RuntimeApi, fake: &Fake, event: &Value) -> Value {
    *fake.stop_at.lock().unwrap() = Some(tokio::time::Instant::now() + SCRIPTED_WORK);
    fake.get_dropped.store(false, Ordering::SeqCst);
    api.invoke_with_timeout(event, MARGIN + SCRIPTED_WORK).await.response()
}

/// Whether the function closed the `huge.csv` download (the endpoint notices
/// at its next write, within a few tens of milliseconds; allow a second).
async fn download_closed(fake: &Fake) -> bool {
    for _ in 0..50 {
        if fake.get_dropped.load(Ordering::SeqCst) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_created_after_the_stop_is_still_aborted_on_every_route() {
    let (fake, endpoint) = start_fake().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let notification = s3_event(&[("lab", "incoming/huge.csv")]);

    let direct = invoke_too_big(&api, &fake, &notification).await;
    assert_eq!(direct["files"][0]["status"], "timed_out", "{direct}");
    assert!(download_closed(&fake).await, "the download was stopped, not left running");
    let sqs = invoke_too_big(&api, &fake, &sqs_event(&notification)).await;
    assert_eq!(sqs["batchItemFailures"], json!([]), "a timed-out file is not retried");
    assert!(download_closed(&fake).await);
    let batch = invoke_too_big(&api, &fake, &batch_operations_event("lab", "incoming/huge.csv")).await;
    assert_eq!(batch["results"][0]["resultCode"], "PermanentFailure", "{batch}");
    assert!(batch["results"][0]["resultString"].as_str().unwrap().contains("Distributed Map"), "{batch}");
    assert!(download_closed(&fake).await);

    {
        let c = fake.calls.lock().unwrap();
        let sent = fake.sent.load(Ordering::SeqCst);
        assert_eq!(c.creates, 3, "each run got as far as CreateMultipartUpload ({sent} bytes sent): {c:?}");
        assert_eq!(c.aborts, ["UPLOAD-LATE", "UPLOAD-LATE", "UPLOAD-LATE"], "the late upload id is aborted: {c:?}");
        assert_eq!((c.parts, c.completes, c.outputs.len()), (0, 0, 0), "nothing uploaded after the stop: {c:?}");
        let statuses: Vec<&str> = c.summaries.iter().map(|s| s["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["timed_out", "timed_out", "timed_out"], "{c:?}");
    }

    // The same process scores the next file: no leftover download or pipeline.
    let next = api.invoke(&s3_event(&[("lab", "incoming/small.csv")])).await.response();
    assert_eq!(next["files"][0]["status"], "scored", "{next}");
    let c = fake.calls.lock().unwrap();
    assert_eq!(c.gets.iter().filter(|p| p.ends_with("/huge.csv")).count(), 3, "{c:?}");
    assert_eq!(c.outputs, ["/lab/scored/small.csv"], "{c:?}");
    assert_eq!(c.pages, ["/lab/scored/small.csv.report.html"], "a drift page for the scored file only: {c:?}");
}

#[tokio::test]
async fn a_file_whose_size_cannot_be_read_in_the_time_left_is_refused_before_reading_on_every_route() {
    let (fake, endpoint) = start_fake().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    // 1 TB announced, a minute left: even at 1,000 MB/s it needs 1,000 s.
    let mut notification = s3_event(&[("lab", "incoming/huge.csv")]);
    notification["Records"][0]["s3"]["object"]["size"] = json!(1_000_000_000_000u64);
    let timeout = Duration::from_secs(60);

    let direct = api.invoke_with_timeout(&notification, timeout).await.response();
    let reason = direct["files"][0]["reason"].as_str().unwrap().to_owned();
    assert_eq!(direct["files"][0]["status"], "timed_out", "{direct}");
    assert!(reason.starts_with("the object is 1000000000000 bytes: even at 1000 MB/s"), "{reason}");
    assert!(reason.contains("it was not read and will not be retried") && reason.contains("Distributed Map"));
    let sqs = api.invoke_with_timeout(&sqs_event(&notification), timeout).await.response();
    assert_eq!(sqs["batchItemFailures"], json!([]));

    let c = fake.calls.lock().unwrap();
    assert!(c.gets.is_empty(), "never read: {c:?}");
    assert_eq!(c.summaries.len(), 2, "{c:?}");
    assert!(c.summaries.iter().all(|s| s["status"] == "timed_out" && s["reason"] == reason.as_str()), "{c:?}");
}

/// How long the scripted S3 takes to answer a GetObject of a `slow-*.csv`
/// (a small file, scored in milliseconds): the multi-file tests below give
/// the invocation room for a whole number of these, so what fits is decided
/// by the deadline the harness sends, not by how fast the build scores.
const SLOW_GET: Duration = Duration::from_millis(1000);

/// A notification for `lab/incoming/<key>`, whose ETag is the one the
/// scripted S3 answers GetObject with.
fn slow_notification(keys: &[&str]) -> Value {
    let records: Vec<(&str, &str)> = keys.iter().map(|k| ("lab", *k)).collect();
    let mut n = s3_event(&records);
    for r in n["Records"].as_array_mut().unwrap() {
        r["s3"]["object"]["eTag"] = json!("input-etag");
    }
    n
}

/// An SQS batch as Lambda sends it: one message per (id, body).
fn sqs_batch(messages: &[(String, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lab"})
        })
        .collect();
    json!({ "Records": records })
}

/// Status and reason of the last summary written for `key`.
fn last_summary(fake: &Fake, key: &str) -> (String, String) {
    let c = fake.calls.lock().unwrap();
    let s = c.summaries.iter().rev().find(|s| s["input"]["key"] == key).unwrap_or_else(|| panic!("{key}: {c:?}"));
    (s["status"].as_str().unwrap().to_owned(), s["reason"].as_str().unwrap_or("").to_owned())
}

fn gets_of(fake: &Fake, key: &str) -> usize {
    fake.calls.lock().unwrap().gets.iter().filter(|p| p.ends_with(key)).count()
}

/// Issue 19: an SQS batch of four file notifications with a deadline that
/// has room for two. The two reached are scored; the two that earlier files
/// left without time are retried (batchItemFailures), not deleted as
/// `timed_out`. Followed through the queue (moto, maxReceiveCount 2) to
/// where each ends: a redelivery with room for one scores the third; the
/// fourth, deferred again, reaches the dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_an_sqs_batch_left_without_time_by_earlier_files_are_retried_until_scored_or_dead_lettered() {
    let (fake, s3_endpoint) = start_fake().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&s3_endpoint));
    let moto = moto_endpoint();
    let sqs = crate::helpers::sqs_client(&moto);
    let dlq = sqs.create_queue().queue_name(crate::helpers::unique_bucket("deadline-dlq")).send().await.unwrap();
    let dlq = dlq.queue_url.unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(crate::helpers::unique_bucket("deadline-files"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let keys = ["incoming/slow-1.csv", "incoming/slow-2.csv", "incoming/slow-3.csv", "incoming/slow-4.csv"];
    for key in keys {
        let body = slow_notification(&[key]).to_string();
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }

    // Lambda's event source mapping, played by the test: receive, invoke,
    // delete what succeeded; a failure becomes visible again when its
    // visibility timeout ends (here at once), and counts one more receive.
    let deliver = |room: f64| {
        let (sqs, queue, api) = (sqs.clone(), queue.clone(), &api);
        async move {
            let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
            let mut messages: Vec<_> = got.messages().to_vec();
            // In the order of the files, so that the test knows which come first.
            messages.sort_by_key(|m| m.body().unwrap().to_owned());
            let batch: Vec<(String, String)> =
                messages.iter().map(|m| (m.message_id().unwrap().to_owned(), m.body().unwrap().to_owned())).collect();
            if batch.is_empty() {
                return (0, Vec::new());
            }
            let timeout = MARGIN + SLOW_GET.mul_f64(room);
            let answer = api.invoke_with_timeout(&sqs_batch(&batch), timeout).await.response();
            let failed: Vec<String> = answer["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
                .collect();
            let mut retried = Vec::new();
            for m in &messages {
                let handle = m.receipt_handle().unwrap();
                if failed.iter().any(|f| f == m.message_id().unwrap()) {
                    let key = serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["Records"][0]["s3"]["object"]
                        ["key"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    retried.push(key);
                    sqs.change_message_visibility()
                        .queue_url(&queue)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap();
                } else {
                    sqs.delete_message().queue_url(&queue).receipt_handle(handle).send().await.unwrap();
                }
            }
            (batch.len(), retried)
        }
    };

    // Room for two files and more than half: the third starts with about half a GET's time
    // left and is stopped, the fourth is not started.
    let (n, retried) = deliver(2.7).await;
    assert_eq!((n, retried), (4, vec!["incoming/slow-3.csv".to_owned(), "incoming/slow-4.csv".to_owned()]));
    for key in &keys[..2] {
        assert_eq!(last_summary(&fake, key).0, "scored", "{key}");
    }
    for key in &keys[2..] {
        let (status, reason) = last_summary(&fake, key);
        assert_eq!(status, "failed", "{key}: {reason}");
        assert!(reason.contains("will be retried in a fresh invocation"), "{key}: {reason}");
        assert!(!reason.contains("Distributed Map"), "{key}: {reason}");
    }
    assert_eq!(gets_of(&fake, "slow-4.csv"), 0, "the fourth was never read");

    // Redelivered (second receive) with room for one and a half: the third
    // is scored, the fourth deferred again.
    let (n, retried) = deliver(1.5).await;
    assert_eq!((n, retried), (2, vec!["incoming/slow-4.csv".to_owned()]));
    assert_eq!(last_summary(&fake, "incoming/slow-3.csv").0, "scored");
    assert_eq!(last_summary(&fake, "incoming/slow-4.csv").0, "failed");

    // A third receive exceeds maxReceiveCount: SQS moves it to the DLQ.
    let (n, _) = deliver(1.5).await;
    assert_eq!(n, 0, "nothing left in the queue");
    let dead = sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).send().await.unwrap();
    let dead: Vec<Value> = dead.messages().iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["Records"][0]["s3"]["object"]["key"], "incoming/slow-4.csv");
    let c = fake.calls.lock().unwrap();
    assert!(c.summaries.iter().all(|s| s["status"] != "timed_out"), "{c:?}");
    assert_eq!(c.aborts.len(), 0, "small files: single PutObjects, nothing to abort: {c:?}");
}

/// The same for several records of one S3 event delivered directly
/// (asynchronous invocation): the invocation fails (TransientFailure), so
/// Lambda retries the event; the retry skips the files already scored (their
/// summary says so, same ETag, same model) and scores the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_one_s3_event_left_without_time_fail_the_invocation_and_its_retry_skips_the_scored_ones() {
    let (fake, endpoint) = start_fake().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let keys = ["incoming/slow-1.csv", "incoming/slow-2.csv", "incoming/slow-3.csv", "incoming/slow-4.csv"];
    let event = slow_notification(&keys);

    let error = api.invoke_with_timeout(&event, MARGIN + SLOW_GET.mul_f64(2.7)).await.error();
    assert_eq!(error["errorType"], "TransientFailure", "{error}");
    let statuses: Vec<String> = keys.iter().map(|k| last_summary(&fake, k).0).collect();
    assert_eq!(statuses, ["scored", "scored", "failed", "failed"]);

    // Lambda's retry of the same event, with the same room: the first two
    // are not read again, the last two are scored.
    let answer = api.invoke_with_timeout(&event, MARGIN + SLOW_GET.mul_f64(2.7)).await.response();
    let statuses: Vec<&str> =
        answer["files"].as_array().unwrap().iter().map(|f| f["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["scored"; 4], "{answer}");
    let gets: Vec<usize> = keys.iter().map(|k| gets_of(&fake, k)).collect();
    // The third was started (and stopped) in the first invocation unless a
    // loaded machine left it no time at all: not counted here.
    assert_eq!((gets[0], gets[1], gets[3]), (1, 1, 1), "scored files are not read twice: {gets:?}");
    assert!(keys.iter().all(|k| last_summary(&fake, k).0 == "scored"));
}
