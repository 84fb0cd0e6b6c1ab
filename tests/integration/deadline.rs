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
/// Time each too-big file gets before it is stopped.
const WORK: Duration = Duration::from_secs(3);

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
    // ~45 MB: a debug build scores ~10 MB/s, so it cannot finish in WORK; its
    // output needs several 8 MiB parts, so the stop comes mid multipart upload.
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
        ("GET", _) => {
            fake.calls.lock().unwrap().gets.push(path.clone());
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
            fake.calls.lock().unwrap().summaries.push(serde_json::from_slice(&body).unwrap_or_default());
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
