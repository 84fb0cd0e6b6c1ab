//! A Lambda Runtime API for tests and benchmarks: the real `scorer` binary
//! runs against it exactly as it runs on AWS Lambda (`AWS_LAMBDA_RUNTIME_API`).
//!
//! It serves `GET /2018-06-01/runtime/invocation/next` (handing out queued
//! events with the Lambda headers) and takes `.../{id}/response`,
//! `.../{id}/error` and `/runtime/init/error` posts. Listens on 127.0.0.1 only.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// POST .../response: the handler's JSON answer.
    Response(serde_json::Value),
    /// POST .../error: the Diagnostic (errorType, errorMessage).
    Error(serde_json::Value),
}

impl Outcome {
    pub fn response(self) -> serde_json::Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!("the invocation failed: {e}"),
        }
    }
    pub fn error(self) -> serde_json::Value {
        match self {
            Outcome::Error(e) => e,
            Outcome::Response(v) => panic!("the invocation succeeded unexpectedly: {v}"),
        }
    }
}

struct Pending {
    id: String,
    event: Bytes,
    deadline_ms: u64,
}

#[derive(Default)]
struct Shared {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<serde_json::Value>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<Pending>,
    shared: Arc<Mutex<Shared>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    /// Starts the API on a free port of 127.0.0.1 (call inside a tokio runtime).
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the Runtime API");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel::<Pending>();
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = (Arc::clone(&queue), Arc::clone(&shared));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (queue, shared) = (Arc::clone(&state.0), Arc::clone(&state.1));
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(req, Arc::clone(&queue), Arc::clone(&shared)));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        RuntimeApi { addr, events: tx, shared, next_id: Default::default() }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Environment a Lambda function sees, pointing at this API.
    pub fn lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.endpoint()),
            ("AWS_LAMBDA_FUNCTION_NAME", "scorer".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/scorer".into()),
        ]
    }

    /// Queues one event and waits for the function's answer.
    pub async fn invoke(&self, event: &serde_json::Value) -> Outcome {
        self.invoke_with_timeout(event, Duration::from_secs(60)).await
    }

    pub async fn invoke_with_timeout(&self, event: &serde_json::Value, timeout: Duration) -> Outcome {
        let n = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        self.shared.lock().unwrap().waiting.insert(id.clone(), tx);
        let deadline_ms = (SystemTime::now() + timeout).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let event = Bytes::from(serde_json::to_vec(event).unwrap());
        self.events.send(Pending { id, event, deadline_ms }).expect("runtime API is running");
        tokio::time::timeout(timeout + Duration::from_secs(5), rx)
            .await
            .expect("the function did not answer in time")
            .expect("answer channel closed")
    }

    /// The body of a POST /runtime/init/error, if the function sent one.
    pub fn init_error(&self) -> Option<serde_json::Value> {
        self.shared.lock().unwrap().init_error.clone()
    }
}

type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>;

async fn route(
    req: Request<Incoming>,
    queue: Queue,
    shared: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json = || serde_json::from_slice::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let reply = |status: StatusCode| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
        *r.status_mut() = status;
        r
    };
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
            let next = queue.lock().await.recv().await;
            let Some(p) = next else { return Ok(reply(StatusCode::GONE)) };
            let mut r = Response::new(Full::new(p.event));
            let h = r.headers_mut();
            h.insert("lambda-runtime-aws-request-id", p.id.parse().unwrap());
            h.insert("lambda-runtime-deadline-ms", p.deadline_ms.to_string().parse().unwrap());
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:scorer".parse().unwrap(),
            );
            h.insert("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".parse().unwrap());
            h.insert("content-type", "application/json".parse().unwrap());
            Ok(r)
        }
        ("POST", ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => {
            let outcome = if *kind == "response" { Outcome::Response(json()) } else { Outcome::Error(json()) };
            if let Some(tx) = shared.lock().unwrap().waiting.remove(*id) {
                let _ = tx.send(outcome);
            }
            Ok(reply(StatusCode::ACCEPTED))
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
            shared.lock().unwrap().init_error = Some(json());
            Ok(reply(StatusCode::ACCEPTED))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND)),
    }
}
