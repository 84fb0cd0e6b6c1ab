//! One entry for every event the function can receive: classify the event by
//! its shape, hand it to its adapter, return the adapter's answer. Used by the
//! Lambda runtime, `invoke` and `serve` alike, so all three behave the same.

use std::time::{Instant, SystemTime};

use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::adapters::function_url::{self, Outcome};
use crate::core::model::Model;

/// Per-invocation facts from the runtime (or made up locally).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda will stop the invocation; `None` locally.
    pub deadline: Option<SystemTime>,
}

impl Invocation {
    pub fn local() -> Self {
        Invocation { request_id: new_local_request_id(), deadline: None }
    }
}

/// Local request ids: unique enough to follow one request through the logs.
pub fn new_local_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    format!("local-{t:x}-{n}")
}

/// What the function answers, shaped for the caller that sent the event.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    FunctionUrl(LambdaFunctionUrlResponse),
}

/// An invocation that failed as a whole (Lambda records it as an error and,
/// for asynchronous sources, retries it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
}

impl InvocationError {
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Unrecognised(_) => "UnrecognisedEvent",
        }
    }
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// Just enough of an event to tell which kind it is.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "requestContext")]
    request_context: Option<ProbeRequestContext>,
}

#[derive(Deserialize)]
struct ProbeRequestContext {
    http: Option<IgnoredAny>,
}

/// The function's state, built once per process.
pub struct App {
    model: Model,
}

impl App {
    pub fn new(model: Model) -> Self {
        App { model }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Handles any event, given as raw JSON.
    pub async fn handle_event(&self, event: &RawValue, invocation: &Invocation) -> Result<Reply, InvocationError> {
        let probe: Probe = serde_json::from_str(event.get())
            .map_err(|_| InvocationError::Unrecognised("the event is not a JSON object".into()))?;
        if probe.request_context.is_some_and(|c| c.http.is_some()) {
            let request: LambdaFunctionUrlRequest = serde_json::from_str(event.get()).map_err(|e| {
                // Position only: serde's message may quote the request.
                InvocationError::Unrecognised(format!(
                    "a Function URL event that does not match its schema (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            return Ok(Reply::FunctionUrl(self.handle_function_url(&request, invocation)));
        }
        Err(InvocationError::Unrecognised("expected a Function URL request (requestContext.http)".into()))
    }

    /// Handles one Function URL request and logs its outcome (never its content).
    pub fn handle_function_url(
        &self,
        request: &LambdaFunctionUrlRequest,
        invocation: &Invocation,
    ) -> LambdaFunctionUrlResponse {
        let started = Instant::now();
        let (response, outcome) = function_url::handle(&self.model, request);
        let micros = started.elapsed().as_micros() as u64;
        let status = response.status_code;
        let request_id = invocation.request_id.as_str();
        match outcome {
            Outcome::Predicted { label, out_of_range } => {
                tracing::info!(
                    entry_point = "function_url",
                    request_id,
                    status,
                    label,
                    out_of_range,
                    micros,
                    "prediction"
                )
            }
            Outcome::Rejected(code) => {
                tracing::info!(entry_point = "function_url", request_id, status, code, micros, "rejected input")
            }
            other => {
                tracing::info!(entry_point = "function_url", request_id, status, outcome = ?other, micros, "request")
            }
        }
        response
    }
}
