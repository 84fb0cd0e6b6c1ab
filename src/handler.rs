//! One entry for every event the function can receive. The event is read in a
//! single pass into an [`Event`] envelope that keeps only what routing and the
//! adapters need (headers and the rest are skipped without allocating), then
//! handed to its adapter. Used by the Lambda runtime, `invoke` and `serve`
//! alike, so all three behave the same. [`App`] is the function's state; the
//! adapters get what they need of it, never the `App` itself.

use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::adapters::aws::Clients;
use crate::adapters::function_url::{self, HttpRequest, HttpResponse};
use crate::adapters::s3_object::Budget;
use crate::adapters::s3_routing::Skip;
use crate::adapters::step_functions::{self, Cells};
use crate::adapters::{result_queue, s3_batch_operations, s3_event, s3_notifications, sqs, Context};
use crate::config::BatchConfig;
use crate::contract::answer::{explain_flag_json, EXPLAIN};
use crate::contract::file::{FileReport, FileStatus};
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::contract::openapi::LazyDocument;
use crate::core::model::Model;
use crate::telemetry::Metrics;

/// The parts of any incoming event that tell what it is. Unknown keys are
/// skipped; every field is optional so one pass serves every event kind.
#[derive(Debug, Default, Deserialize)]
pub struct Event {
    /// Function URL (payload 2.0): `requestContext.http` is its signature.
    #[serde(rename = "requestContext")]
    request_context: Option<RequestContext>,
    #[serde(rename = "rawPath")]
    raw_path: Option<String>,
    #[serde(rename = "rawQueryString")]
    raw_query_string: Option<String>,
    body: Option<String>,
    #[serde(rename = "isBase64Encoded")]
    is_base64_encoded: Option<bool>,
    /// Function URL headers: only the one the Open Inference Protocol's
    /// binary extension needs is kept.
    headers: Option<EventHeaders>,
    /// S3 notifications (and SQS batches): `Records[].eventSource` tells which.
    #[serde(rename = "Records")]
    records: Option<Box<RawValue>>,
    /// `s3:TestEvent`, sent when a bucket notification is configured.
    #[serde(rename = "Event")]
    s3_test_event: Option<String>,
    /// Step Functions Distributed Map batch (ItemBatcher): rows as objects.
    #[serde(rename = "Items")]
    items: Option<Vec<serde_json::Value>>,
    /// Its `BatchInput` (the map's ItemBatcher.BatchInput): `explain`.
    #[serde(rename = "BatchInput")]
    batch_input: Option<serde_json::Map<String, serde_json::Value>>,
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

#[derive(Debug, Default, Deserialize)]
struct EventHeaders {
    /// Function URLs lower-case header names.
    #[serde(rename = "inference-header-content-length")]
    inference_header_length: Option<String>,
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
    /// Scores every observation in shadow (CHALLENGER_MODEL_PATH).
    challenger: Option<Arc<Model>>,
    batch: BatchConfig,
    clients: Clients,
    /// The model's OpenAPI document, built on the first `GET /openapi.json`.
    openapi: LazyDocument,
}

impl App {
    pub fn new(model: Model, batch: BatchConfig) -> Self {
        App {
            model: Arc::new(model),
            challenger: None,
            batch,
            clients: Clients::default(),
            openapi: LazyDocument::default(),
        }
    }

    /// Every route also scores each observation with `challenger` (none:
    /// none does), in shadow: answers stay the model's.
    pub fn with_challenger(mut self, challenger: Option<Model>) -> Self {
        self.challenger = challenger.map(Arc::new);
        self
    }

    /// Uses `client` for S3 instead of one built from the environment (tests
    /// give a client whose answers they script).
    pub fn with_s3_client(mut self, client: aws_sdk_s3::Client) -> Self {
        self.clients = self.clients.with_s3_client(client);
        self
    }

    pub fn batch_config(&self) -> &BatchConfig {
        &self.batch
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Whether a `GET /openapi.json` has built the model's OpenAPI document:
    /// never at start-up (a cold start does not pay for it).
    pub fn openapi_document_built(&self) -> bool {
        self.openapi.is_built()
    }

    pub fn challenger(&self) -> Option<&Model> {
        self.challenger.as_deref()
    }

    /// The AWS clients, each built on first use.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// What the batch adapters need.
    fn context(&self) -> Context<'_> {
        Context {
            model: &self.model,
            challenger: self.challenger.as_ref(),
            config: &self.batch,
            clients: &self.clients,
        }
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

    /// Routes one event to its adapter. The batch paths (S3, SQS, Distributed
    /// Map, Batch Operations) are boxed: their futures are large, and the
    /// Function URL path must not pay to move them (a test checks the size).
    pub async fn handle(&self, event: Event, invocation: &Invocation) -> Result<Reply, InvocationError> {
        if let Some(http) = event.request_context.and_then(|c| c.http) {
            let request = HttpRequest {
                method: http.method.as_deref().unwrap_or(""),
                path: event.raw_path.as_deref().or(http.path.as_deref()).unwrap_or("/"),
                query: event.raw_query_string.as_deref().unwrap_or(""),
                body: event.body.as_deref(),
                is_base64_encoded: event.is_base64_encoded.unwrap_or(false),
                inference_header_length: event.headers.as_ref().and_then(|h| h.inference_header_length.as_deref()),
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
                    Ok(Reply::Sqs(self.handle_sqs(sqs_event, invocation).await))
                }
                Some(other) => Err(InvocationError::Unrecognised(format!("records from {other:?} are not handled"))),
            };
        }
        let detail = || event.detail.as_ref().and_then(|d| serde_json::from_str(d.get()).ok());
        if let Some(object) =
            s3_event::eventbridge_object(event.source.as_deref(), event.detail_type.as_deref(), detail)
        {
            let object = object.map_err(|why| InvocationError::Unrecognised(why.into()))?;
            return Box::pin(self.handle_s3_records(vec![Ok(object)], invocation)).await;
        }
        if let Some(items) = event.items {
            let batch_input = |key| event.batch_input.as_ref().and_then(|b| b.get(key));
            let explain = explain_flag_json(batch_input(EXPLAIN))
                .map_err(|e| InvocationError::Unrecognised(format!("BatchInput: {e}")))?;
            let cells = Cells::from_batch_input(batch_input(step_functions::DELIMITER))
                .map_err(|e| InvocationError::Unrecognised(format!("BatchInput: {e}")))?;
            let ctx = self.context();
            let handled = step_functions::handle(&ctx, items, explain, cells, invocation);
            return Ok(Reply::Items(Box::pin(handled).await));
        }
        if let (Some(version), Some(tasks)) = (event.invocation_schema_version, &event.tasks) {
            let tasks: Vec<s3_batch_operations::Task> = serde_json::from_str(tasks.get()).map_err(|_| {
                InvocationError::Unrecognised("S3 Batch Operations tasks that do not match the schema".into())
            })?;
            let invocation_id = event.invocation_id.unwrap_or_default();
            let ctx = self.context();
            let handled = s3_batch_operations::handle(&ctx, version, invocation_id, tasks, invocation);
            return Ok(Reply::BatchOperations(Box::pin(handled).await));
        }
        if s3_event::is_test_event(event.s3_test_event.as_deref()) {
            return Box::pin(self.handle_s3_records(vec![Err(Skip::TestEvent)], invocation)).await;
        }
        Err(InvocationError::Unrecognised(
            "expected a Function URL request (requestContext.http), an S3 notification or an SQS batch (Records)"
                .into(),
        ))
    }

    /// An SQS batch already typed (the worker's): the route [`App::handle`]
    /// takes for `aws:sqs` records, without a JSON round trip.
    pub async fn handle_sqs(&self, event: SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
        let ctx = self.context();
        Box::pin(sqs::handle_batch(&ctx, event, invocation)).await
    }

    /// A Function URL request already typed (`serve`'s): read as
    /// [`App::handle`] reads the event's JSON, without a JSON round trip.
    pub fn handle_function_url_event(&self, event: &LambdaFunctionUrlRequest, invocation: &Invocation) -> HttpResponse {
        let http = &event.request_context.http;
        let request = HttpRequest {
            method: http.method.as_deref().unwrap_or(""),
            path: event.raw_path.as_deref().or(http.path.as_deref()).unwrap_or("/"),
            query: event.raw_query_string.as_deref().unwrap_or(""),
            body: event.body.as_deref(),
            is_base64_encoded: event.is_base64_encoded,
            inference_header_length: event.headers.get("inference-header-content-length").and_then(|v| v.to_str().ok()),
        };
        self.handle_function_url(&request, invocation)
    }

    /// Scores every ObjectCreated record. What each file status does here
    /// (an S3 notification invokes the function asynchronously):
    ///
    /// * `scored`, `rejected`, `missing`, `timed_out`, `skipped`: the
    ///   invocation succeeds; the summary says what happened. A timed-out file
    ///   could not finish in a whole invocation: a retry would time out again.
    /// * `failed`, deferred (several records, and earlier ones used the time
    ///   this one needed): the invocation fails so Lambda retries the whole
    ///   event; the retry skips the files already scored (their summary says
    ///   so) and so reaches the rest. After the last retry, the OnFailure
    ///   destination keeps the event.
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
        let ctx = self.context();
        let budget = Budget::starting_now(invocation.deadline);
        let outcome = s3_notifications::score_records(&ctx, records, budget.as_ref()).await;
        let (request_id, cold_start) = (invocation.request_id.as_str(), invocation.cold_start);
        let failed = outcome.failed();
        tracing::info!(
            entry_point = EntryPoint::S3.as_str(),
            request_id,
            cold_start,
            files = outcome.files.len(),
            failed,
            "S3 event handled"
        );
        if cold_start {
            Metrics::new(EntryPoint::S3.as_str()).count("ColdStart", 1).emit();
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
        result_queue::notify_files(&ctx, &outcome.files).await.map_err(InvocationError::Transient)?;
        Ok(Reply::Files { files: outcome.files })
    }

    /// Handles one Function URL request (the adapter logs and counts it).
    pub fn handle_function_url(&self, request: &HttpRequest<'_>, invocation: &Invocation) -> HttpResponse {
        function_url::handle_request(&self.model, self.challenger(), &self.openapi, request, invocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every invocation's future is moved whole (`block_on`, the Lambda
    /// runtime), so a route's state kept inline in it would be copied on
    /// every Function URL request too: the batch routes are boxed.
    #[test]
    fn the_future_of_an_invocation_stays_small_whatever_route_it_takes() {
        let app = App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap());
        let invocation = Invocation::local();
        let size = std::mem::size_of_val(&app.handle(Event::default(), &invocation));
        assert!(size <= 1024, "App::handle's future is {size} bytes");
    }
}
