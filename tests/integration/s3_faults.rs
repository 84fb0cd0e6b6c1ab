//! Fault injection: an S3 endpoint that fails part uploads mid-way, or cuts
//! a download short. The multipart upload must be aborted, nothing completed
//! or put but the summary (`failed`), and the invocation must fail so Lambda
//! retries.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::helpers::{aws_env, s3_event, start_lambda};
use crate::runtime_api::RuntimeApi;

#[derive(Default, Debug)]
struct Calls {
    gets: usize,
    creates: usize,
    parts_ok: usize,
    parts_failed: usize,
    aborts: usize,
    completes: usize,
    /// PutObject of the output itself.
    puts: usize,
    /// PutObject of `<output>.summary.json`, with its body.
    summaries: Vec<serde_json::Value>,
}

/// A ~20 MiB CSV, so the output needs more than two 8 MiB parts.
fn big_csv() -> Bytes {
    let mut s = String::from("id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n");
    let mut i = 0;
    while s.len() < 20 * 1024 * 1024 {
        s.push_str(&format!("row{i},0.1471,25.38,17.33,2019.0,0.2654\n"));
        i += 1;
    }
    Bytes::from(s)
}

async fn fake_s3(
    req: Request<hyper::body::Incoming>,
    calls: Arc<Mutex<Calls>>,
    csv: Bytes,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_owned();
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut c = calls.lock().unwrap();
    let xml = |status: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert("content-type", "application/xml".parse().unwrap());
        r
    };
    let response = match (method.as_str(), query.as_str()) {
        ("GET", _) if path.ends_with("/cut.csv") => {
            c.gets += 1;
            // Announces the whole file, sends 1 MiB of it, then hangs up.
            let head = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(csv.slice(..1024 * 1024)))]);
            let mut r = Response::new(StreamBody::new(head).boxed());
            r.headers_mut().insert("content-length", csv.len().to_string().parse().unwrap());
            r.headers_mut().insert("etag", "\"input-etag\"".parse().unwrap());
            return Ok(r);
        }
        ("GET", _) => {
            c.gets += 1;
            let mut r = Response::new(Full::new(csv.clone()));
            r.headers_mut().insert("etag", "\"input-etag\"".parse().unwrap());
            r.headers_mut().insert("content-type", "text/csv".parse().unwrap());
            r
        }
        ("POST", q) if q.starts_with("uploads") => {
            c.creates += 1;
            xml(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>UPLOAD-1</UploadId></InitiateMultipartUploadResult>".into())
        }
        ("PUT", q) if q.contains("partNumber=1&") || q.ends_with("partNumber=1") => {
            c.parts_ok += 1;
            let mut r = xml(200, String::new());
            r.headers_mut().insert("etag", "\"part-1\"".parse().unwrap());
            r
        }
        ("PUT", q) if q.contains("partNumber=") => {
            c.parts_failed += 1;
            xml(500, "<Error><Code>InternalError</Code><Message>injected failure</Message></Error>".into())
        }
        ("DELETE", q) if q.contains("uploadId=") => {
            c.aborts += 1;
            let mut r = xml(204, String::new());
            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
            r
        }
        ("POST", q) if q.contains("uploadId=") => {
            c.completes += 1;
            xml(200, "<CompleteMultipartUploadResult><ETag>\"x\"</ETag></CompleteMultipartUploadResult>".into())
        }
        ("PUT", _) if path.ends_with(".summary.json") => {
            c.summaries.push(serde_json::from_slice(&body).unwrap_or_default());
            xml(200, String::new())
        }
        ("PUT", _) => {
            c.puts += 1;
            xml(200, String::new())
        }
        _ => xml(400, "<Error><Code>NotImplemented</Code></Error>".into()),
    };
    Ok(response.map(BodyExt::boxed))
}

async fn start_fake() -> (Arc<Mutex<Calls>>, String) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let csv = big_csv();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server_calls = Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (calls, csv) = (Arc::clone(&server_calls), csv.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| fake_s3(req, Arc::clone(&calls), csv.clone()));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });

    (calls, endpoint)
}

#[tokio::test]
async fn s3_failing_in_the_middle_of_the_upload_aborts_it_and_fails_the_invocation() {
    let (calls, endpoint) = start_fake().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let err = api.invoke(&s3_event(&[("lab", "incoming/big.csv")])).await.error();
    assert_eq!(err["errorType"], "TransientFailure", "{err}");

    let c = calls.lock().unwrap();
    assert_eq!(c.creates, 1, "{c:?}");
    assert!(c.parts_failed >= 1, "{c:?}");
    assert_eq!(c.aborts, 1, "the upload is aborted: {c:?}");
    assert_eq!((c.completes, c.puts), (0, 0), "no output becomes visible: {c:?}");
    // Only the summary, saying the file failed (and is retried).
    assert_eq!(c.summaries.len(), 1, "{c:?}");
    assert_eq!(c.summaries[0]["status"], "failed");
    assert!(c.summaries[0]["reason"].as_str().unwrap().starts_with("writing the output failed:"), "{c:?}");
}

#[tokio::test]
async fn a_download_cut_short_is_a_transient_failure_not_a_timeout_nor_a_complete_file() {
    let (calls, endpoint) = start_fake().await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let err = api.invoke(&s3_event(&[("lab", "incoming/cut.csv")])).await.error();
    assert_eq!(err["errorType"], "TransientFailure", "{err}");

    let c = calls.lock().unwrap();
    assert_eq!((c.completes, c.puts), (0, 0), "the first MiB is not taken for the whole file: {c:?}");
    assert_eq!(c.summaries.len(), 1, "{c:?}");
    assert_eq!(c.summaries[0]["status"], "failed", "{c:?}");
    assert!(c.summaries[0]["reason"].as_str().unwrap().starts_with("reading the object failed:"), "{c:?}");
}
