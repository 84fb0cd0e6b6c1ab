//! The results of observation messages: one JSON Lines object per message,
//! named by the message id ([`results_key`]), so a redelivered message (SQS
//! delivers at least once, and a retried message may arrive in another
//! batch) overwrites its object instead of adding a second one.

use std::borrow::Cow;

use futures_util::stream::{self, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use super::classify::Observed;
use crate::adapters::result_queue::{self, Written};
use crate::adapters::s3_upload::{put_object, Lineage};
use crate::adapters::Context;
use crate::contract::answer::{Answer, ErrorItem, ExplainFlagError, ExplanationField, PredictionField};
use crate::contract::file::Location;
use crate::contract::invocation::EntryPoint;
use crate::core::observation_json::Submission;
use crate::core::scoring::Scorer;
use crate::core::status::Status;

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
    pub label: Option<&'a str>,
    pub model_version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With `"explain": true` only: the object HTTP answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<ExplanationField<'a>>,
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
pub struct MessageResults<'a> {
    pub message_id: &'a str,
    pub lines: Vec<ResultLine<'a>>,
    pub output: Option<Location>,
}

impl MessageResults<'_> {
    pub fn scored(&self) -> u64 {
        self.lines.iter().filter(|l| l.status == Status::Ok).count() as u64
    }
}

/// Writes each message's results object (up to [`WRITES_IN_FLIGHT`] at a
/// time), then announces the written ones on RESULT_QUEUE_URL. Returns the
/// messages whose object or notice failed: exactly those are retried.
pub async fn write_results<'a>(
    ctx: &Context<'_>,
    results: &mut [MessageResults<'a>],
    request_id: &str,
) -> Vec<&'a str> {
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
            let lineage = Lineage::of_model(model_version);
            let put = put_object(s3, (bucket, &key), "application/x-ndjson", &lineage, body).await;
            (i, put.map(|()| Location { bucket: bucket.to_owned(), key }).map_err(|e| e.to_string()))
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
