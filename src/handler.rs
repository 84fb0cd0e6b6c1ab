//! One entry for every event the function can receive. The event is read in a
//! single pass into an [`Event`] envelope that keeps only what routing and the
//! adapters need (headers and the rest are skipped without allocating), then
//! handed to its adapter. Used by the Lambda runtime, `invoke` and `serve`
//! alike, so all three behave the same.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use crate::adapters::function_url::{self, HttpRequest, HttpResponse, Outcome};
use crate::adapters::s3::{FileReport, FileStatus};
use crate::adapters::{aws, s3, s3_batch_operations, s3_event, step_functions};
use crate::config::{BatchConfig, Skip};
use crate::core::model::Model;
use crate::telemetry::Metrics;

/// Per-invocation facts from the runtime (or made up locally).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda will stop the invocation; `None` locally.
    pub deadline: Option<SystemTime>,
    /// The first invocation of this process.
    pub cold_start: bool,
    /// Handled by `scorer worker` rather than Lambda (logs and metrics say so).
    pub from_worker: bool,
}

impl Invocation {
    pub fn local() -> Self {
        Invocation { request_id: new_local_request_id(), deadline: None, cold_start: false, from_worker: false }
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

/// The parts of any incoming event that tell what it is. Unknown keys are
/// skipped; every field is optional so one pass serves every event kind.
#[derive(Debug, Default, Deserialize)]
pub struct Event {
    /// Function URL (payload 2.0): `requestContext.http` is its signature.
    #[serde(rename = "requestContext")]
    request_context: Option<RequestContext>,
    #[serde(rename = "rawPath")]
    raw_path: Option<String>,
    body: Option<String>,
    #[serde(rename = "isBase64Encoded")]
    is_base64_encoded: Option<bool>,
    /// S3 notifications (and SQS batches): `Records[].eventSource` tells which.
    #[serde(rename = "Records")]
    records: Option<Box<RawValue>>,
    /// `s3:TestEvent`, sent when a bucket notification is configured.
    #[serde(rename = "Event")]
    s3_test_event: Option<String>,
    /// Step Functions Distributed Map batch (ItemBatcher): rows as objects.
    #[serde(rename = "Items")]
    items: Option<Vec<serde_json::Value>>,
    /// S3 Batch Operations.
    #[serde(rename = "invocationSchemaVersion")]
    invocation_schema_version: Option<String>,
    #[serde(rename = "invocationId")]
    invocation_id: Option<String>,
    tasks: Option<Box<RawValue>>,
    /// EventBridge: `"source": "aws.s3"`, `"detail-type": "Object Created"`.
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    detail: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct SourceProbe {
    #[serde(rename = "eventSource", alias = "EventSource")]
    event_source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RequestContext {
    http: Option<HttpDescription>,
}

#[derive(Debug, Default, Deserialize)]
struct HttpDescription {
    method: Option<String>,
    path: Option<String>,
}

/// What the function answers, shaped for the caller that sent the event.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    FunctionUrl(HttpResponse),
    /// S3 notifications: what happened to each record.
    Files {
        files: Vec<FileReport>,
    },
    /// SQS batches: the messages to retry (`batchItemFailures`).
    Sqs(SqsBatchResponse),
    /// Distributed Map: the items, scored, in order.
    Items(Vec<serde_json::Map<String, serde_json::Value>>),
    /// S3 Batch Operations: a result per task.
    BatchOperations(s3_batch_operations::Response),
}

/// An invocation that failed as a whole (Lambda records it as an error and,
/// for asynchronous sources, retries it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// Something outside our control failed (S3 or SQS unavailable); a retry may succeed.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The function's role lacks a permission: an operator must fix it. The
    /// event is retried all the same, so that after Lambda's retries the
    /// failure destination keeps it for a redrive once the role is fixed.
    #[error("configuration error: {0}")]
    Configuration(String),
}

impl InvocationError {
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Unrecognised(_) => "UnrecognisedEvent",
            InvocationError::Transient(_) => "TransientFailure",
            InvocationError::Configuration(_) => "ConfigurationError",
        }
    }
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// The function's state, built once per process.
pub struct App {
    model: Arc<Model>,
    batch: BatchConfig,
    aws: OnceCell<aws_config::SdkConfig>,
    s3: OnceCell<aws_sdk_s3::Client>,
    sqs: OnceCell<aws_sdk_sqs::Client>,
}

impl App {
    pub fn new(model: Model, batch: BatchConfig) -> Self {
        App { model: Arc::new(model), batch, aws: OnceCell::new(), s3: OnceCell::new(), sqs: OnceCell::new() }
    }

    /// Uses `client` for S3 instead of one built from the environment (tests
    /// give a client whose answers they script).
    pub fn with_s3_client(mut self, client: aws_sdk_s3::Client) -> Self {
        self.s3 = OnceCell::new_with(Some(client));
        self
    }

    pub fn batch_config(&self) -> &BatchConfig {
        &self.batch
    }

    async fn aws_config(&self) -> &aws_config::SdkConfig {
        self.aws.get_or_init(aws::load_config).await
    }

    pub fn model_arc(&self) -> &Arc<Model> {
        &self.model
    }

    /// The SQS client, created on first use.
    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| async { aws::sqs_client(self.aws_config().await) }).await
    }

    /// The S3 client, created on first use.
    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| async { aws::s3_client(self.aws_config().await) }).await
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Parses event JSON (from a file or a local server) and handles it.
    /// Parse errors carry only a position: serde's messages can quote input.
    pub async fn handle_json(&self, json: &str, invocation: &Invocation) -> Result<Reply, InvocationError> {
        let event: Event = serde_json::from_str(json).map_err(|e| {
            InvocationError::Unrecognised(format!(
                "the event is not a JSON object of a known shape (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        self.handle(event, invocation).await
    }

    /// Routes one event to its adapter. The S3 and SQS paths are boxed: their
    /// futures are large, and the Function URL path must not pay to move them.
    pub async fn handle(&self, event: Event, invocation: &Invocation) -> Result<Reply, InvocationError> {
        if let Some(http) = event.request_context.and_then(|c| c.http) {
            let request = HttpRequest {
                method: http.method.as_deref().unwrap_or(""),
                path: event.raw_path.as_deref().or(http.path.as_deref()).unwrap_or("/"),
                body: event.body.as_deref(),
                is_base64_encoded: event.is_base64_encoded.unwrap_or(false),
            };
            return Ok(Reply::FunctionUrl(self.handle_function_url(&request, invocation)));
        }
        if let Some(records) = &event.records {
            let sources: Vec<SourceProbe> = serde_json::from_str(records.get())
                .map_err(|_| InvocationError::Unrecognised("'Records' is not an array of event records".into()))?;
            return match sources.first().and_then(|p| p.event_source.as_deref()) {
                Some("aws:s3") | None => {
                    let parsed = s3_event::parse_records(records.get())
                        .map_err(|e| InvocationError::Unrecognised(e.to_string()))?;
                    Box::pin(self.handle_s3_records(parsed, invocation)).await
                }
                Some("aws:sqs") => {
                    let mut sqs_event = SqsEvent::default();
                    sqs_event.records = serde_json::from_str::<Vec<SqsMessage>>(records.get()).map_err(|_| {
                        InvocationError::Unrecognised("SQS records that do not match their schema".into())
                    })?;
                    Ok(Reply::Sqs(Box::pin(self.handle_sqs(sqs_event, invocation)).await))
                }
                Some(other) => Err(InvocationError::Unrecognised(format!("records from {other:?} are not handled"))),
            };
        }
        if event.source.as_deref() == Some("aws.s3") {
            let detail = match (event.detail_type.as_deref(), &event.detail) {
                (Some("Object Created"), Some(detail)) => {
                    serde_json::from_str::<s3_event::EventBridgeDetail>(detail.get()).map_err(|_| {
                        InvocationError::Unrecognised(
                            "an EventBridge Object Created event without bucket and key".into(),
                        )
                    })?
                }
                _ => {
                    return Err(InvocationError::Unrecognised(
                        "an EventBridge S3 event other than Object Created".into(),
                    ))
                }
            };
            return Box::pin(self.handle_s3_records(vec![Ok(s3_event::eventbridge_object(detail))], invocation)).await;
        }
        if let Some(items) = event.items {
            return Ok(Reply::Items(self.handle_items(items, invocation)));
        }
        if let (Some(version), Some(tasks)) = (event.invocation_schema_version, &event.tasks) {
            let tasks: Vec<s3_batch_operations::Task> = serde_json::from_str(tasks.get()).map_err(|_| {
                InvocationError::Unrecognised("S3 Batch Operations tasks that do not match the schema".into())
            })?;
            let results = Box::pin(async {
                s3_batch_operations::run_tasks(self.s3().await, &self.model, &self.batch, tasks, invocation.deadline)
                    .await
            })
            .await;
            let failed = results.iter().filter(|r| r.result_code != s3_batch_operations::ResultCode::Succeeded).count();
            tracing::info!(entry_point = "s3_batch_operations", request_id = %invocation.request_id, tasks = results.len(), failed, "S3 Batch Operations tasks handled");
            return Ok(Reply::BatchOperations(s3_batch_operations::Response {
                invocation_schema_version: version,
                treat_missing_keys_as: s3_batch_operations::ResultCode::PermanentFailure,
                invocation_id: event.invocation_id.unwrap_or_default(),
                results,
            }));
        }
        if event.s3_test_event.as_deref() == Some("s3:TestEvent") {
            return Box::pin(self.handle_s3_records(vec![Err(Skip::TestEvent)], invocation)).await;
        }
        Err(InvocationError::Unrecognised(
            "expected a Function URL request (requestContext.http), an S3 notification or an SQS batch (Records)"
                .into(),
        ))
    }

    /// Scores every ObjectCreated record. What each file status does here
    /// (an S3 notification invokes the function asynchronously):
    ///
    /// * `scored`, `rejected`, `missing`, `timed_out`, `skipped`: the
    ///   invocation succeeds; the summary says what happened. A timed-out file
    ///   is not retried: a retry would time out again.
    /// * `failed`, transient: the invocation fails so Lambda retries the event
    ///   (twice, with backoff); after the last retry the OnFailure destination
    ///   (an SQS queue) keeps the event.
    /// * `failed`, a permission missing: the invocation fails the same way,
    ///   as a `ConfigurationError`. Retrying a denial is pointless but bounded
    ///   (Lambda's two retries), and it is what lands the event in the
    ///   OnFailure destination, where an operator sees it and redrives it once
    ///   the role is fixed; succeeding instead would drop the event.
    pub async fn handle_s3_records(
        &self,
        records: s3_event::Records,
        invocation: &Invocation,
    ) -> Result<Reply, InvocationError> {
        let needs_s3 = records.iter().any(Result::is_ok);
        let outcome = if needs_s3 {
            s3::score_records(self.s3().await, &self.model, &self.batch, records, invocation.deadline).await
        } else {
            // Nothing to read: do not even build a client.
            let files =
                records.into_iter().filter_map(Result::err).map(|skip| s3::skipped(&self.model, None, skip)).collect();
            s3::Outcome { files }
        };
        let (request_id, cold_start) = (invocation.request_id.as_str(), invocation.cold_start);
        let failed = outcome.failed();
        tracing::info!(
            entry_point = "s3",
            request_id,
            cold_start,
            files = outcome.files.len(),
            failed,
            "S3 event handled"
        );
        if cold_start {
            Metrics::new("s3").count("ColdStart", 1).emit();
        }
        if failed > 0 {
            let reasons: Vec<&str> = outcome
                .files
                .iter()
                .filter(|f| f.status == FileStatus::Failed)
                .filter_map(|f| f.reason.as_deref())
                .collect();
            let message =
                format!("{failed} of {} files failed and will be retried: {}", outcome.files.len(), reasons.join("; "));
            return Err(if outcome.configuration_error() {
                InvocationError::Configuration(message)
            } else {
                InvocationError::Transient(message)
            });
        }
        self.notify_files(&outcome.files).await.map_err(InvocationError::Transient)?;
        Ok(Reply::Files { files: outcome.files })
    }

    /// Scores a Distributed Map batch. Items that are not objects come back as
    /// 400 items; the batch itself never fails.
    pub fn handle_items(
        &self,
        items: Vec<serde_json::Value>,
        invocation: &Invocation,
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let started = Instant::now();
        let positions: Vec<bool> = items.iter().map(serde_json::Value::is_object).collect();
        let objects = items.into_iter().filter_map(|v| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        });
        let (scored, counts) = step_functions::score_items(&self.model, objects.collect());
        let mut scored = scored.into_iter();
        let out: Vec<_> = positions
            .into_iter()
            .map(|is_object| {
                if is_object {
                    scored.next().unwrap_or_default()
                } else {
                    let mut m = serde_json::Map::new();
                    m.insert("prediction".into(), "".into());
                    m.insert("probability".into(), "".into());
                    m.insert("status".into(), "400".into());
                    m.insert("reason".into(), "the item is not an object of column values".into());
                    m
                }
            })
            .collect();
        let rejected = out.iter().filter(|m| m["status"] != "200").count() as u64;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(entry_point = "distributed_map", request_id = %invocation.request_id, cold_start = invocation.cold_start, rows = out.len(), scored = counts.scored, rejected, "items scored");
        let mut metrics = Metrics::new("distributed_map");
        metrics.count("RowsScored", counts.scored).count("RejectedInputs", rejected).millis("HandlerDuration", ms);
        if invocation.cold_start {
            metrics.count("ColdStart", 1);
        }
        metrics.emit();
        out
    }

    /// Handles one Function URL request; logs and counts its outcome (never its content).
    pub fn handle_function_url(&self, request: &HttpRequest<'_>, invocation: &Invocation) -> HttpResponse {
        let started = Instant::now();
        let (response, outcome) = function_url::handle(&self.model, request);
        let micros = started.elapsed().as_micros() as u64;
        let status = response.status_code;
        let (request_id, cold_start) = (invocation.request_id.as_str(), invocation.cold_start);
        let mut metrics = Metrics::new("function_url");
        match outcome {
            Outcome::Predicted { label, out_of_range } => {
                tracing::debug!(
                    entry_point = "function_url",
                    request_id,
                    cold_start,
                    status,
                    label,
                    out_of_range,
                    micros,
                    "prediction"
                );
                metrics.count("Predictions", 1).count("OutOfRangeInputs", u64::from(out_of_range));
            }
            Outcome::Rejected(code) => {
                tracing::info!(
                    entry_point = "function_url",
                    request_id,
                    cold_start,
                    status,
                    code,
                    micros,
                    "rejected input"
                );
                metrics.count("RejectedInputs", 1).count(format!("Rejected_{code}"), 1);
            }
            other => {
                tracing::info!(entry_point = "function_url", request_id, cold_start, status, outcome = ?other, micros, "request");
                metrics.count("OtherRequests", 1);
            }
        }
        if cold_start {
            metrics.count("ColdStart", 1);
        }
        metrics.millis("HandlerDuration", micros as f64 / 1000.0).emit();
        response
    }
}
