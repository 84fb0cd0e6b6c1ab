//! SQS messages from lab systems. Each body is classified once
//! ([`classify`]); observations go through the same parse and model as HTTP
//! and are written as one JSON Lines results object per message, named by the
//! message id, so a redelivered message (SQS delivers at least once, and a
//! retried message may arrive in another batch) overwrites its object instead
//! of adding a second one. S3 notifications (direct or via EventBridge) run the
//! batch pipeline unchanged, after the batch's observation results are written.
//! The answer lists exactly the messages to retry: transient failures and
//! bodies that cannot be understood (so that, after the queue's
//! maxReceiveCount, they land in the dead-letter queue).

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::SystemTime;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::stream::{self, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::result_queue::{self, Written};
use super::s3_batch::MODEL_VERSION_METADATA;
use super::s3_event::{self, EventBridgeDetail, Notification, Records};
use super::{s3, Context};
use crate::contract::answer::{
    explain_flag_json, Answer, ErrorItem, ExplainFlagError, ExplanationField, PredictionField, EXPLAIN,
};
use crate::contract::file::{BatchSummary, Location};
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::core::columns::feature_by_name;
use crate::core::observation_json::{parse_observation_json, without_json_bom, BodyError, Submission};
use crate::core::scoring::{Scorer, Wants};
use crate::core::status::Status;
use crate::telemetry::{self, Metrics};

/// What a message body is.
#[derive(Debug)]
pub enum Message {
    /// One observation object or an array of them (each parsed or rejected).
    Observations(Vec<Observed>),
    /// An S3 notification (direct, or an EventBridge "Object Created" event).
    Files(Records),
    /// Nothing we can act on: retried, then dead-lettered.
    Unintelligible(&'static str),
}

/// One observation of a message: the object as parsed (or why not), and its
/// `explain` field (`true` adds the explanation HTTP gives).
#[derive(Debug)]
pub struct Observed {
    pub item: Result<Submission, BodyError>,
    pub explain: Result<bool, ExplainFlagError>,
}

impl Observed {
    fn of(raw: &str, value: &Value) -> Self {
        Observed { item: parse_observation_json(raw.as_bytes()), explain: explain_flag_json(value.get(EXPLAIN)) }
    }
}

/// Classifies a message body. The one place that decides what a message is.
pub fn classify(body: &str) -> Message {
    // A byte-order mark before the JSON is ignored, as on HTTP (the one rule).
    // The mark is one whole character: what is left is still a str.
    let body = &body[body.len() - without_json_bom(body.as_bytes()).len()..];
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Message::Unintelligible("the body is not JSON");
    };
    match value {
        Value::Array(items) if items.is_empty() => Message::Unintelligible("an empty array"),
        // Observations are parsed again from their own text, by the same
        // function as HTTP bodies (a Value tree would hide duplicate keys).
        Value::Array(ref values) => match serde_json::from_str::<Vec<&RawValue>>(body) {
            Ok(items) => {
                Message::Observations(items.iter().zip(values).map(|(i, v)| Observed::of(i.get(), v)).collect())
            }
            Err(_) => Message::Unintelligible("the body is not JSON"),
        },
        Value::Object(ref map) => {
            let text = |key: &str| map.get(key).and_then(Value::as_str);
            if map.contains_key("Records") || s3_event::is_test_event(text("Event")) {
                return match serde_json::from_value::<Notification>(value) {
                    Ok(n) => Message::Files(s3_event::records_of(n)),
                    Err(_) => Message::Unintelligible("an S3 notification that cannot be read"),
                };
            }
            let detail = || map.get("detail").and_then(|d| EventBridgeDetail::deserialize(d).ok());
            match s3_event::eventbridge_object(text("source"), text("detail-type"), detail) {
                Some(Ok(object)) => return Message::Files(vec![Ok(object)]),
                Some(Err(why)) => return Message::Unintelligible(why),
                None => {}
            }
            let looks_like_observation = map.contains_key("id") || map.keys().any(|k| feature_by_name(k).is_some());
            if looks_like_observation {
                Message::Observations(vec![Observed::of(body, &value)])
            } else {
                Message::Unintelligible("a JSON object with none of the observation fields")
            }
        }
        _ => Message::Unintelligible("JSON that is neither an object nor an array"),
    }
}

/// One line of a results object: [`Answer`]'s fields after the message id,
/// the position and the observation's `id`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultLine<'a> {
    pub message_id: &'a str,
    /// Position within the message (arrays hold several observations).
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: Status,
    pub reason: Cow<'static, str>,
    pub prediction: PredictionField,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'static str>,
    pub model_version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With `"explain": true` only: the object HTTP answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<ExplanationField>,
}

/// Scores one parsed item of a message with the batch's scorer (which counts
/// it, scored or rejected, into the batch's drift statistics).
pub fn result_line<'a>(
    scorer: &mut Scorer<'a>,
    message_id: &'a str,
    index: usize,
    observed: Observed,
) -> ResultLine<'a> {
    let model = scorer.model();
    let (id, answer) = match (observed.item, observed.explain) {
        (Ok(Submission { id, observation }), Ok(explain)) => match scorer.set_explain(explain) {
            Ok(()) => (id, Answer::scored_by(scorer, observation)),
            Err(e) => {
                scorer.reject(e.code());
                (id, Answer::not_explainable(e))
            }
        },
        (Ok(Submission { id, .. }), Err(e)) => {
            scorer.reject(ExplainFlagError::CODE);
            (id, Answer::bad_explain_flag(&e))
        }
        // Not an observation object: nothing was scored; an invalid `id` is named as on HTTP.
        (Err(e), _) => {
            scorer.reject(e.code());
            (None, Answer::of_body_error(&e))
        }
    };
    ResultLine {
        message_id,
        index,
        id,
        status: answer.status,
        reason: answer.reason,
        prediction: answer.prediction,
        probability: answer.probability,
        label: answer.label,
        model_version: &model.info().version,
        errors: answer.errors,
        warnings: answer.warnings,
        explanation: answer.explanation,
    }
}

/// Characters of a message id kept as they are in its results key (SQS ids
/// are UUIDs); anything else is percent-encoded, so distinct ids never share a key.
const KEY_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Results objects (and their notices) written at the same time, per batch.
/// A batch may hold up to 10,000 messages (with a batching window).
const WRITES_IN_FLIGHT: usize = 16;

/// Where one message's results go: `OUTPUT_PREFIX` + `sqs/<messageId>.jsonl`.
/// The same message always gets the same key, so a redelivery overwrites it.
pub fn results_key(output_prefix: &str, message_id: &str) -> String {
    format!("{output_prefix}sqs/{}.jsonl", utf8_percent_encode(message_id, KEY_SAFE))
}

/// Where a batch's drift summary goes, beside its results objects but not
/// among them (a consumer reads everything under `sqs/` as result lines):
/// `OUTPUT_PREFIX` + `sqs-batches/<requestId>.summary.json`. One per delivery
/// of a batch (a redelivered message counts again in the batch that brings it).
pub fn batch_summary_key(output_prefix: &str, request_id: &str) -> String {
    format!("{output_prefix}sqs-batches/{}.summary.json", utf8_percent_encode(request_id, KEY_SAFE))
}

/// One observation message's results, and where they went.
struct MessageResults<'a> {
    message_id: &'a str,
    lines: Vec<ResultLine<'a>>,
    output: Option<Location>,
}

impl MessageResults<'_> {
    fn scored(&self) -> u64 {
        self.lines.iter().filter(|l| l.status == Status::Ok).count() as u64
    }
}

/// Handles an SQS batch; never fails as a whole, it lists failed messages instead.
pub async fn handle_batch(ctx: &Context<'_>, event: SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
    let request_id = invocation.request_id.as_str();
    let model = ctx.model;
    let mut failed: HashSet<&str> = HashSet::new();
    let mut results: Vec<MessageResults> = Vec::new();
    let mut files: Vec<(&str, Records)> = Vec::new();
    let mut unintelligible = 0usize;
    let wants = Wants { explain: false, drift: ctx.config.drift.is_some() };
    let mut scorer = Scorer::new(model, wants).unwrap_or_else(|_| unreachable!("no explanation wanted"));
    for message in &event.records {
        let id = message.message_id.as_deref().unwrap_or("");
        match classify(message.body.as_deref().unwrap_or("")) {
            Message::Unintelligible(why) => {
                unintelligible += 1;
                tracing::warn!(
                    entry_point = EntryPoint::Sqs.as_str(),
                    request_id,
                    message_id = id,
                    reason = why,
                    "message not understood; it will be retried and then dead-lettered"
                );
                failed.insert(id);
            }
            Message::Observations(_) if id.is_empty() => {
                // Its results could not be named, nor the message retried alone.
                tracing::warn!(
                    entry_point = EntryPoint::Sqs.as_str(),
                    request_id,
                    "a message without a messageId; retried"
                );
                failed.insert(id);
            }
            Message::Observations(items) => results.push(MessageResults {
                message_id: id,
                lines: items.into_iter().enumerate().map(|(i, item)| result_line(&mut scorer, id, i, item)).collect(),
                output: None,
            }),
            Message::Files(records) => files.push((id, records)),
        }
    }
    // Observations first: their writes are cheap and must not wait behind
    // a long file (and its deadline).
    if !results.is_empty() {
        failed.extend(write_results(ctx, &mut results, request_id).await);
    }
    let drift = scorer.into_drift().zip(ctx.config.drift.as_ref()).map(|(stats, options)| stats.report(model, options));
    if let Some(drift) = drift.as_ref().filter(|_| !results.is_empty()) {
        if write_batch_summary(ctx, request_id, results.len(), drift).await.is_err() {
            // Without it the batch's drift is lost: its observations come again.
            failed.extend(results.iter().map(|r| r.message_id));
        }
    }
    for (id, records) in files {
        if score_files_from_queue(ctx, records, invocation.deadline).await.is_err() {
            failed.insert(id);
        }
    }
    let observations: usize = results.iter().map(|r| r.lines.len()).sum();
    let scored: usize = results.iter().map(|r| r.scored() as usize).sum();
    let written = results.iter().filter(|r| r.output.is_some()).count();
    let entry_point = EntryPoint::sqs(invocation).as_str();
    tracing::info!(
        entry_point,
        request_id,
        cold_start = invocation.cold_start,
        messages = event.records.len(),
        observations,
        scored,
        rejected = observations - scored,
        results_objects = written,
        unintelligible,
        batch_item_failures = failed.len(),
        "SQS batch handled"
    );
    let mut metrics = Metrics::new(entry_point);
    metrics
        .count("Messages", event.records.len() as u64)
        .count("Predictions", scored as u64)
        .count("RejectedInputs", (observations - scored) as u64)
        .count("UnintelligibleMessages", unintelligible as u64)
        .count("BatchItemFailures", failed.len() as u64);
    let mut by_code: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for line in results.iter().flat_map(|r| &r.lines).filter(|l| l.status != Status::Ok) {
        // A line without field errors is a body that is not an observation object.
        *by_code.entry(line.errors.first().map_or(BodyError::NOT_AN_OBJECT, |e| e.code)).or_default() += 1;
    }
    for (code, n) in by_code {
        metrics.count(format!("Rejected_{code}"), n);
    }
    if invocation.cold_start {
        metrics.count("ColdStart", 1);
    }
    metrics.emit();
    if let Some(drift) = drift.as_ref().filter(|_| !results.is_empty()) {
        telemetry::emit_drift(entry_point, &drift.metric_values());
    }
    // In the batch's order, each message once.
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = event
        .records
        .iter()
        .map(|m| m.message_id.as_deref().unwrap_or(""))
        .filter(|id| failed.remove(id))
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id.to_owned();
            f
        })
        .collect();
    response
}

/// Runs the batch pipeline for a notification that came through the queue.
/// Err means the message must be retried (listed in `batchItemFailures`):
///
/// * `scored`, `rejected`, `missing`, `timed_out`, `skipped`: Ok, the
///   message is deleted; the summary says what happened (a timed-out file
///   would time out again, so it is not retried).
/// * `failed`, transient or a permission missing: Err. The queue redelivers
///   the message until its `maxReceiveCount`, then the dead-letter queue
///   keeps it: bounded, and where an operator looks (the DLQ alarm). A
///   denial will not heal by itself, but dropping the message would lose
///   the file; after fixing the role, redrive the DLQ.
async fn score_files_from_queue(ctx: &Context<'_>, records: Records, deadline: Option<SystemTime>) -> Result<(), ()> {
    let outcome = s3::score_records(ctx, records, deadline).await;
    if outcome.failed() > 0 {
        return Err(());
    }
    result_queue::notify_files(ctx, &outcome.files).await.map_err(|_| ())
}

/// Writes the drift summary of the batch's observation messages
/// ([`batch_summary_key`]). Err when it could not be written.
async fn write_batch_summary(
    ctx: &Context<'_>,
    request_id: &str,
    messages: usize,
    drift: &crate::core::drift::DriftReport,
) -> Result<(), ()> {
    let entry_point = EntryPoint::Sqs.as_str();
    let Some(bucket) = ctx.config.output_bucket.as_deref() else { return Err(()) };
    let model_version = &ctx.model.info().version;
    let summary = BatchSummary { request_id, messages, model_version, drift };
    let key = batch_summary_key(&ctx.config.output_prefix, request_id);
    let body = summary.summary_json().map_err(|_| ())?;
    let put = ctx
        .clients
        .s3()
        .await
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .metadata(MODEL_VERSION_METADATA, model_version)
        .body(ByteStream::from(body))
        .send()
        .await;
    put.map(|_| ()).map_err(|e| {
        tracing::error!(entry_point, request_id, key, error = %DisplayErrorContext(&e), "writing the batch's drift summary failed; its observation messages will be retried");
    })
}

/// Writes each message's results object (up to [`WRITES_IN_FLIGHT`] at a
/// time), then announces the written ones on RESULT_QUEUE_URL. Returns the
/// messages whose object or notice failed: exactly those are retried.
async fn write_results<'a>(ctx: &Context<'_>, results: &mut [MessageResults<'a>], request_id: &str) -> Vec<&'a str> {
    let entry_point = EntryPoint::Sqs.as_str();
    let Some(bucket) = ctx.config.output_bucket.as_deref() else {
        tracing::error!(
            entry_point,
            request_id,
            "OUTPUT_BUCKET is not set: queue results have nowhere to go; the observation messages will be retried"
        );
        return results.iter().map(|r| r.message_id).collect();
    };
    let s3 = ctx.clients.s3().await;
    let prefix = &ctx.config.output_prefix;
    let model_version = &ctx.model.info().version;
    // The futures are built first, then run: with a `map` on the stream
    // instead, rustc cannot prove the spawned callers Send ("implementation
    // of Send is not general enough").
    let writes: Vec<_> = results
        .iter()
        .enumerate()
        .map(|(i, r)| async move {
            let key = results_key(prefix, r.message_id);
            let mut body = Vec::with_capacity(r.lines.len() * 256);
            for line in &r.lines {
                // Serializing our own struct cannot fail.
                let _ = serde_json::to_writer(&mut body, line);
                body.push(b'\n');
            }
            let put = s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .content_type("application/x-ndjson")
                .metadata(MODEL_VERSION_METADATA, model_version)
                .body(ByteStream::from(body))
                .send()
                .await;
            (
                i,
                put.map(|_| Location { bucket: bucket.to_owned(), key })
                    .map_err(|e| DisplayErrorContext(&e).to_string()),
            )
        })
        .collect();
    let outcomes: Vec<(usize, Result<Location, String>)> =
        stream::iter(writes).buffer_unordered(WRITES_IN_FLIGHT).collect().await;
    let mut failed = Vec::new();
    for (i, outcome) in outcomes {
        let r = &mut results[i];
        match outcome {
            Ok(output) => {
                tracing::debug!(entry_point, request_id, message_id = r.message_id, bucket = %output.bucket, key = %output.key, rows = r.lines.len(), "results written");
                r.output = Some(output);
            }
            Err(error) => {
                tracing::error!(
                    entry_point,
                    request_id,
                    message_id = r.message_id,
                    error,
                    "writing the message's results failed; it will be retried"
                );
                failed.push(r.message_id);
            }
        }
    }
    let written: Vec<Written> = results
        .iter()
        .filter_map(|r| {
            let output = r.output.as_ref()?;
            Some(Written { message_id: r.message_id, output, rows: r.lines.len() as u64, scored: r.scored() })
        })
        .collect();
    failed.extend(result_queue::notify_observations(ctx, &written, request_id).await);
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Model;

    const OBS: &str = r#"{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#;

    fn kind(body: &str) -> &'static str {
        match classify(body) {
            Message::Observations(_) => "observations",
            Message::Files(_) => "files",
            Message::Unintelligible(_) => "unintelligible",
        }
    }

    #[test]
    fn every_message_kind_is_recognised() {
        assert_eq!(kind(OBS), "observations");
        assert_eq!(kind(&format!("[{OBS},{OBS}]")), "observations");
        assert_eq!(kind(r#"{"id":"x","worstArea":"bad"}"#), "observations");
        assert_eq!(
            kind(
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#
            ),
            "files"
        );
        assert_eq!(kind(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#), "files");
        assert_eq!(
            kind(
                r#"{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"incoming/a.csv"}}}"#
            ),
            "files"
        );
        for garbage in [
            "",
            "hello",
            "[]",
            "42",
            "null",
            r#"{"foo":1}"#,
            r#"{"Records":5}"#,
            r#"{"source":"aws.s3","detail-type":"Object Deleted"}"#,
        ] {
            assert_eq!(kind(garbage), "unintelligible", "{garbage:?}");
        }
    }

    #[test]
    fn array_items_are_scored_or_rejected_one_by_one() {
        let model = Model::embedded().unwrap();
        let Message::Observations(items) = classify(&format!(r#"[{OBS},7,{{"id":"b","worstArea":-1}}]"#)) else {
            panic!()
        };
        let lines: Vec<ResultLine> = {
            let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
            items.into_iter().enumerate().map(|(i, it)| result_line(&mut scorer, "m1", i, it)).collect()
        };
        let status: Vec<Status> = lines.iter().map(|l| l.status).collect();
        assert_eq!(status, [Status::Ok, Status::BadRequest, Status::BadRequest]);
        assert_eq!(lines[1].reason, "'body' must be a JSON object, not a number");
        assert_eq!(lines[2].id.as_deref(), Some("b"));
    }

    #[test]
    fn observations_in_any_key_style_or_after_a_bom_are_observations() {
        let pascal = OBS.replace("\"mean", "\"Mean").replace("\"worst", "\"Worst");
        let snake = r#"{"mean_concave_points":0.1471,"worst_radius":25.38,"worst_texture":17.33,"worst_area":2019.0,"worst_concave_points":0.2654}"#;
        for body in [pascal.clone(), snake.to_owned(), format!("\u{feff}{OBS}"), format!("\u{feff}[{pascal}]")] {
            let Message::Observations(items) = classify(&body) else { panic!("{body}") };
            assert!(items[0].item.as_ref().unwrap().observation.is_ok(), "{body}");
        }
    }

    #[test]
    fn duplicate_keys_are_rejected_as_on_http() {
        let dup = OBS.replace('}', r#","worstArea":-5}"#);
        for body in [dup.clone(), format!("[{dup}]")] {
            let Message::Observations(items) = classify(&body) else { panic!("{body}") };
            let rejection = items.into_iter().next().unwrap().item.unwrap().observation.unwrap_err();
            assert_eq!(rejection.errors()[0].problem, crate::core::observation::Problem::Duplicate);
        }
    }

    #[test]
    fn results_keys_are_the_message_id_and_never_shared() {
        let id = "0b1c2d3e-0000-4000-8000-000000000001";
        assert_eq!(results_key("scored/", id), format!("scored/sqs/{id}.jsonl"));
        // Not an SQS id, but still one key per id, inside sqs/.
        assert_eq!(results_key("scored/", "../a b/c"), "scored/sqs/%2E%2E%2Fa%20b%2Fc.jsonl");
        assert_ne!(results_key("scored/", "a/b"), results_key("scored/", "a%2Fb"));
        let request = "c0ffee00-0000-4000-8000-000000000002";
        assert_eq!(batch_summary_key("scored/", request), format!("scored/sqs-batches/{request}.summary.json"));
        assert_ne!(batch_summary_key("scored/", id), results_key("scored/", id));
    }
}
