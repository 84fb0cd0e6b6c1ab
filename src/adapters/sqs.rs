//! SQS messages from lab systems. Each body is classified once
//! ([`classify`]); observations go through the same parse and model as HTTP
//! and are written, for the whole batch, as one JSON Lines results object;
//! S3 notifications (direct or via EventBridge) run the batch pipeline
//! unchanged. The answer lists exactly the messages to retry: transient
//! failures and bodies that cannot be understood (so that, after the queue's
//! maxReceiveCount, they land in the dead-letter queue).

use std::time::SystemTime;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
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

/// Results key: derived from the batch's message ids, so a retry of the same
/// batch overwrites its object instead of adding another.
pub fn results_key(output_prefix: &str, message_ids: &[&str]) -> String {
    let digest = Sha256::digest(message_ids.join("\n").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{output_prefix}sqs/{hex}.jsonl")
}

/// What a notification on RESULT_QUEUE_URL says (locations and counts, no data).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultNotice<'a> {
    pub kind: &'static str,
    pub output: &'a Location,
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    pub model_version: &'a str,
}

impl App {
    /// Handles an SQS batch; never fails as a whole, it lists failed messages instead.
    pub async fn handle_sqs(&self, event: SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
        let request_id = invocation.request_id.as_str();
        let model = self.model();
        let mut failed: Vec<String> = Vec::new();
        let mut lines: Vec<ResultLine> = Vec::new();
        let mut observation_messages: Vec<&str> = Vec::new();
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
                    failed.push(id.to_owned());
                }
                Message::Observations(items) => {
                    observation_messages.push(id);
                    lines.extend(items.into_iter().enumerate().map(|(i, item)| result_line(model, id, i, item)));
                }
                Message::Files(records) => {
                    if self.score_files_from_queue(records, invocation.deadline).await.is_err() {
                        failed.push(id.to_owned());
                    }
                }
            }
        }
        if !lines.is_empty() {
            if let Err(e) = self.write_results(&observation_messages, &lines).await {
                tracing::error!(entry_point = "sqs", request_id, error = %e, "writing the results failed; the observation messages will be retried");
                failed.extend(observation_messages.iter().map(|m| (*m).to_owned()));
            }
        }
        let scored = lines.iter().filter(|l| l.status == "200").count();
        let entry_point = if invocation.from_worker { "worker" } else { "sqs" };
        tracing::info!(
            entry_point,
            request_id,
            cold_start = invocation.cold_start,
            messages = event.records.len(),
            observations = lines.len(),
            scored,
            rejected = lines.len() - scored,
            unintelligible,
            batch_item_failures = failed.len(),
            "SQS batch handled"
        );
        let mut metrics = Metrics::new(entry_point);
        metrics
            .count("Messages", event.records.len() as u64)
            .count("Predictions", scored as u64)
            .count("RejectedInputs", (lines.len() - scored) as u64)
            .count("UnintelligibleMessages", unintelligible as u64)
            .count("BatchItemFailures", failed.len() as u64);
        let mut by_code: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for line in lines.iter().filter(|l| l.status != "200") {
            *by_code.entry(line.errors.first().map_or("not_an_object", |e| e.code)).or_default() += 1;
        }
        for (code, n) in by_code {
            metrics.count(format!("Rejected_{code}"), n);
        }
        if invocation.cold_start {
            metrics.count("ColdStart", 1);
        }
        metrics.emit();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
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

    /// Writes the batch's observation results as one JSON Lines object.
    async fn write_results(&self, message_ids: &[&str], lines: &[ResultLine<'_>]) -> Result<(), String> {
        let bucket = self
            .batch_config()
            .output_bucket
            .clone()
            .ok_or("OUTPUT_BUCKET is not set: queue results have nowhere to go")?;
        let key = results_key(&self.batch_config().output_prefix, message_ids);
        let mut body = Vec::with_capacity(lines.len() * 256);
        for line in lines {
            serde_json::to_writer(&mut body, line).map_err(|e| e.to_string())?;
            body.push(b'\n');
        }
        self.s3()
            .await
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .metadata("model-version", &self.model().info().version)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let scored = lines.iter().filter(|l| l.status == "200").count() as u64;
        let output = Location { bucket, key };
        tracing::info!(entry_point = "sqs", bucket = %output.bucket, key = %output.key, rows = lines.len(), scored, "results written");
        let notice = ResultNotice {
            kind: "observations",
            output: &output,
            rows: lines.len() as u64,
            scored,
            rejected: lines.len() as u64 - scored,
            model_version: &self.model().info().version,
        };
        self.notify(&notice).await
    }

    /// Announces scored files on RESULT_QUEUE_URL, if set.
    pub async fn notify_files(&self, files: &[FileReport]) -> Result<(), String> {
        for f in files.iter().filter(|f| f.status == FileStatus::Scored) {
            let (Some(output), Some(counts)) = (&f.output, &f.counts) else { continue };
            let notice = ResultNotice {
                kind: "file",
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
    fn results_keys_are_deterministic_per_batch() {
        assert_eq!(results_key("scored/", &["a", "b"]), results_key("scored/", &["a", "b"]));
        assert_ne!(results_key("scored/", &["a", "b"]), results_key("scored/", &["a"]));
        assert!(results_key("scored/", &["a"]).starts_with("scored/sqs/"));
    }
}
