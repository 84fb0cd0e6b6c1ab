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

use std::collections::HashSet;
use std::time::SystemTime;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::adapters::function_url::{range_warnings, ErrorItem, PredictionField};
use crate::adapters::s3::{self, FileReport, FileStatus, Location};
use crate::adapters::s3_event::{self, EventBridgeDetail, Notification, Records};
use crate::core::model::Model;
use crate::core::observation::FEATURES;
use crate::core::observation_json::{parse_observation_json, BodyError, Submission};
use crate::handler::{App, Invocation};
use crate::telemetry::Metrics;

/// What a message body is.
#[derive(Debug)]
pub enum Message {
    /// One observation object or an array of them (each parsed or rejected).
    Observations(Vec<Result<Submission, BodyError>>),
    /// An S3 notification (direct, or an EventBridge "Object Created" event).
    Files(Records),
    /// Nothing we can act on: retried, then dead-lettered.
    Unintelligible(&'static str),
}

/// Classifies a message body. The one place that decides what a message is.
pub fn classify(body: &str) -> Message {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Message::Unintelligible("the body is not JSON");
    };
    match value {
        Value::Array(items) if items.is_empty() => Message::Unintelligible("an empty array"),
        // Observations are parsed again from their own text, by the same
        // function as HTTP bodies (a Value tree would hide duplicate keys).
        Value::Array(_) => match serde_json::from_str::<Vec<&RawValue>>(body) {
            Ok(items) => {
                Message::Observations(items.iter().map(|i| parse_observation_json(i.get().as_bytes())).collect())
            }
            Err(_) => Message::Unintelligible("the body is not JSON"),
        },
        Value::Object(ref map) => {
            if map.contains_key("Records") || map.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
                return match serde_json::from_value::<Notification>(value) {
                    Ok(n) => Message::Files(s3_event::records_of(n)),
                    Err(_) => Message::Unintelligible("an S3 notification that cannot be read"),
                };
            }
            if map.get("source").and_then(Value::as_str) == Some("aws.s3") {
                if map.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
                    return Message::Unintelligible("an EventBridge S3 event other than Object Created");
                }
                return match map.get("detail").cloned().map(serde_json::from_value::<EventBridgeDetail>) {
                    Some(Ok(detail)) => Message::Files(vec![Ok(s3_event::eventbridge_object(detail))]),
                    _ => Message::Unintelligible("an EventBridge Object Created event without bucket and key"),
                };
            }
            let looks_like_observation =
                map.contains_key("id") || FEATURES.iter().any(|f| map.contains_key(f.api_name));
            if looks_like_observation {
                Message::Observations(vec![parse_observation_json(body.as_bytes())])
            } else {
                Message::Unintelligible("a JSON object with none of the observation fields")
            }
        }
        _ => Message::Unintelligible("JSON that is neither an object nor an array"),
    }
}

/// One line of a results object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultLine<'a> {
    pub message_id: &'a str,
    /// Position within the message (arrays hold several observations).
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: &'static str,
    pub reason: String,
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
}

/// Scores one parsed item of a message.
pub fn result_line<'a>(
    model: &'a Model,
    message_id: &'a str,
    index: usize,
    item: Result<Submission, BodyError>,
) -> ResultLine<'a> {
    let mut line = ResultLine {
        message_id,
        index,
        id: None,
        status: "400",
        reason: String::new(),
        prediction: PredictionField::Empty,
        probability: None,
        label: None,
        model_version: &model.info().version,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    match item {
        Err(e) => line.reason = e.to_string(),
        Ok(Submission { id, observation }) => {
            line.id = id;
            match observation {
                Ok(obs) => {
                    let p = model.predict(&obs);
                    line.status = "200";
                    line.reason = "OK".into();
                    line.prediction = PredictionField::Label(p.label);
                    line.probability = Some(p.probability);
                    line.label = Some(p.label_name());
                    line.warnings = range_warnings(model, &obs);
                }
                Err(rejection) => {
                    line.reason = rejection.reason();
                    line.errors = rejection.errors().iter().map(ErrorItem::from).collect();
                }
            }
        }
    }
    line
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

/// A notice's deduplication key: the same for every notice announcing the same
/// object with the same content (same output, same source — message id, or
/// input ETag — and same model), different when the object was rewritten with
/// different content.
pub fn notice_id(kind: &str, output: &Location, source: &str, model_version: &str) -> String {
    let mut hash = Sha256::new();
    for part in [kind, &output.bucket, &output.key, source, model_version] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What a notification on RESULT_QUEUE_URL says (locations and counts, no data).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultNotice<'a> {
    pub kind: &'static str,
    /// Deduplication key: see [`notice_id`].
    pub notice_id: String,
    /// The message whose results these are (observations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    pub output: &'a Location,
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    pub model_version: &'a str,
}

/// One observation message's results, and where they went.
struct MessageResults<'a> {
    message_id: &'a str,
    lines: Vec<ResultLine<'a>>,
    output: Option<Location>,
}

impl MessageResults<'_> {
    fn scored(&self) -> u64 {
        self.lines.iter().filter(|l| l.status == "200").count() as u64
    }
}

impl App {
    /// Handles an SQS batch; never fails as a whole, it lists failed messages instead.
    pub async fn handle_sqs(&self, event: SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
        let request_id = invocation.request_id.as_str();
        let model = self.model();
        let mut failed: HashSet<&str> = HashSet::new();
        let mut results: Vec<MessageResults> = Vec::new();
        let mut files: Vec<(&str, Records)> = Vec::new();
        let mut unintelligible = 0usize;
        for message in &event.records {
            let id = message.message_id.as_deref().unwrap_or("");
            match classify(message.body.as_deref().unwrap_or("")) {
                Message::Unintelligible(why) => {
                    unintelligible += 1;
                    tracing::warn!(
                        entry_point = "sqs",
                        request_id,
                        message_id = id,
                        reason = why,
                        "message not understood; it will be retried and then dead-lettered"
                    );
                    failed.insert(id);
                }
                Message::Observations(_) if id.is_empty() => {
                    // Its results could not be named, nor the message retried alone.
                    tracing::warn!(entry_point = "sqs", request_id, "a message without a messageId; retried");
                    failed.insert(id);
                }
                Message::Observations(items) => results.push(MessageResults {
                    message_id: id,
                    lines: items.into_iter().enumerate().map(|(i, item)| result_line(model, id, i, item)).collect(),
                    output: None,
                }),
                Message::Files(records) => files.push((id, records)),
            }
        }
        // Observations first: their writes are cheap and must not wait behind
        // a long file (and its deadline).
        if !results.is_empty() {
            failed.extend(self.write_results(&mut results, request_id).await);
        }
        for (id, records) in files {
            if self.score_files_from_queue(records, invocation.deadline).await.is_err() {
                failed.insert(id);
            }
        }
        let observations: usize = results.iter().map(|r| r.lines.len()).sum();
        let scored: usize = results.iter().map(|r| r.scored() as usize).sum();
        let written = results.iter().filter(|r| r.output.is_some()).count();
        let entry_point = if invocation.from_worker { "worker" } else { "sqs" };
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
        for line in results.iter().flat_map(|r| &r.lines).filter(|l| l.status != "200") {
            *by_code.entry(line.errors.first().map_or("not_an_object", |e| e.code)).or_default() += 1;
        }
        for (code, n) in by_code {
            metrics.count(format!("Rejected_{code}"), n);
        }
        if invocation.cold_start {
            metrics.count("ColdStart", 1);
        }
        metrics.emit();
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
    async fn score_files_from_queue(&self, records: Records, deadline: Option<SystemTime>) -> Result<(), ()> {
        if records.iter().all(Result::is_err) {
            for skip in records.into_iter().filter_map(Result::err) {
                s3::skipped(self.model(), None, skip);
            }
            return Ok(());
        }
        let outcome =
            s3::score_records(self.s3().await, self.model_arc(), self.batch_config(), records, deadline).await;
        if outcome.failed() > 0 {
            return Err(());
        }
        self.notify_files(&outcome.files).await.map_err(|_| ())
    }

    /// Writes each message's results object (up to [`WRITES_IN_FLIGHT`] at a
    /// time), then announces the written ones on RESULT_QUEUE_URL. Returns the
    /// messages whose object or notice failed: exactly those are retried.
    async fn write_results<'a>(&self, results: &mut [MessageResults<'a>], request_id: &str) -> Vec<&'a str> {
        let Some(bucket) = self.batch_config().output_bucket.as_deref() else {
            tracing::error!(
                entry_point = "sqs",
                request_id,
                "OUTPUT_BUCKET is not set: queue results have nowhere to go; the observation messages will be retried"
            );
            return results.iter().map(|r| r.message_id).collect();
        };
        let s3 = self.s3().await;
        let prefix = &self.batch_config().output_prefix;
        let model_version = &self.model().info().version;
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
                    .metadata("model-version", model_version)
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
                    tracing::debug!(entry_point = "sqs", request_id, message_id = r.message_id, bucket = %output.bucket, key = %output.key, rows = r.lines.len(), "results written");
                    r.output = Some(output);
                }
                Err(error) => {
                    tracing::error!(
                        entry_point = "sqs",
                        request_id,
                        message_id = r.message_id,
                        error,
                        "writing the message's results failed; it will be retried"
                    );
                    failed.push(r.message_id);
                }
            }
        }
        let written: Vec<&MessageResults> = results.iter().filter(|r| r.output.is_some()).collect();
        failed.extend(self.notify_observations(&written, request_id).await);
        failed
    }

    /// One notice per written results object, sent 10 to a request. Returns
    /// the messages whose notice was not accepted.
    async fn notify_observations<'a>(&self, written: &[&MessageResults<'a>], request_id: &str) -> Vec<&'a str> {
        let Some(queue_url) = self.batch_config().result_queue_url.as_deref() else { return Vec::new() };
        let sqs = self.sqs().await;
        let model_version = &self.model().info().version;
        let sends: Vec<_> = written
            .chunks(10)
            .map(|chunk| async move {
                let entries: Vec<SendMessageBatchRequestEntry> = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| {
                        let output = r.output.as_ref()?;
                        let scored = r.scored();
                        let notice = ResultNotice {
                            kind: "observations",
                            notice_id: notice_id("observations", output, r.message_id, model_version),
                            message_id: Some(r.message_id),
                            output,
                            rows: r.lines.len() as u64,
                            scored,
                            rejected: r.lines.len() as u64 - scored,
                            model_version,
                        };
                        let body = serde_json::to_string(&notice).ok()?;
                        SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().ok()
                    })
                    .collect();
                match sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
                    Ok(out) => out
                        .failed
                        .iter()
                        .filter_map(|f| chunk.get(f.id.parse::<usize>().ok()?).map(|r| r.message_id))
                        .collect(),
                    Err(e) => {
                        tracing::error!(entry_point = "sqs", request_id, error = %DisplayErrorContext(&e), "sending result notifications failed; their messages will be retried");
                        chunk.iter().map(|r| r.message_id).collect::<Vec<&'a str>>()
                    }
                }
            })
            .collect();
        let sent: Vec<Vec<&'a str>> = stream::iter(sends).buffer_unordered(WRITES_IN_FLIGHT).collect().await;
        let failed: Vec<&'a str> = sent.into_iter().flatten().collect();
        if !failed.is_empty() {
            tracing::error!(
                entry_point = "sqs",
                request_id,
                failed = failed.len(),
                "result notifications refused; their messages will be retried"
            );
        }
        failed
    }

    /// Announces scored files on RESULT_QUEUE_URL, if set.
    pub async fn notify_files(&self, files: &[FileReport]) -> Result<(), String> {
        for f in files.iter().filter(|f| f.status == FileStatus::Scored) {
            let (Some(output), Some(counts)) = (&f.output, &f.counts) else { continue };
            let notice = ResultNotice {
                kind: "file",
                notice_id: notice_id("file", output, f.input_etag.as_deref().unwrap_or(""), &f.model_version),
                message_id: None,
                output,
                rows: counts.rows,
                scored: counts.scored,
                rejected: counts.rejected,
                model_version: &f.model_version,
            };
            self.notify(&notice).await?;
        }
        Ok(())
    }

    async fn notify(&self, notice: &ResultNotice<'_>) -> Result<(), String> {
        let Some(queue_url) = self.batch_config().result_queue_url.clone() else { return Ok(()) };
        let body = serde_json::to_string(notice).map_err(|e| e.to_string())?;
        self.sqs()
            .await
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("sending the result notification failed: {}", DisplayErrorContext(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let lines: Vec<ResultLine> =
            items.into_iter().enumerate().map(|(i, it)| result_line(&model, "m1", i, it)).collect();
        let status: Vec<&str> = lines.iter().map(|l| l.status).collect();
        assert_eq!(status, ["200", "400", "400"]);
        assert_eq!(lines[1].reason, "'body' must be a JSON object, not a number");
        assert_eq!(lines[2].id.as_deref(), Some("b"));
    }

    #[test]
    fn duplicate_keys_are_rejected_as_on_http() {
        let dup = OBS.replace('}', r#","worstArea":-5}"#);
        for body in [dup.clone(), format!("[{dup}]")] {
            let Message::Observations(items) = classify(&body) else { panic!("{body}") };
            let rejection = items.into_iter().next().unwrap().unwrap().observation.unwrap_err();
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
    }

    #[test]
    fn notice_ids_change_exactly_when_the_announced_content_can() {
        let out = |key: &str| Location { bucket: "b".into(), key: key.into() };
        let id = notice_id("observations", &out("scored/sqs/m1.jsonl"), "m1", "model-1");
        assert_eq!(id, notice_id("observations", &out("scored/sqs/m1.jsonl"), "m1", "model-1"));
        assert_eq!(id.len(), 32);
        for other in [
            notice_id("observations", &out("scored/sqs/m2.jsonl"), "m2", "model-1"),
            notice_id("observations", &out("scored/sqs/m1.jsonl"), "m1", "model-2"),
            notice_id("file", &out("scored/sqs/m1.jsonl"), "m1", "model-1"),
        ] {
            assert_ne!(id, other);
        }
        // A new upload of the same input key (another ETag) is a new result.
        assert_ne!(
            notice_id("file", &out("scored/a.csv"), "etag-1", "model-1"),
            notice_id("file", &out("scored/a.csv"), "etag-2", "model-1")
        );
    }
}
