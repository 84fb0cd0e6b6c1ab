//! SQS messages from lab systems. Each body is classified once
//! ([`classify`]); observations go through the same parse and model as HTTP
//! and are written as one JSON Lines results object per message
//! ([`results`]). S3 notifications (direct or via EventBridge) run the batch
//! pipeline unchanged, after the batch's observation results are written.
//! The answer lists exactly the messages to retry: transient failures, files
//! that earlier files of the batch left too little time (deferred), and
//! bodies that cannot be understood (so that, after the queue's
//! maxReceiveCount, they land in the dead-letter queue).

use std::collections::HashSet;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::drift_out::{self, Keep};
use super::s3_event::Records;
use super::s3_object::Budget;
use super::{result_queue, s3_notifications, Context};
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::core::observation_json::BodyError;
use crate::core::scoring::{Scorer, Wants};
use crate::core::status::Status;
use crate::telemetry::Metrics;

pub mod classify;
pub mod results;

pub use classify::{classify, Message, Observed};
pub use results::{batch_summary_key, result_line, results_key, ResultLine};
use results::{write_results, MessageResults};

/// Handles an SQS batch; never fails as a whole, it lists failed messages instead.
pub async fn handle_batch(ctx: &Context<'_>, event: SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
    // The time counts from here: the observations' writes come out of it too.
    let budget = Budget::starting_now(invocation.deadline);
    let request_id = invocation.request_id.as_str();
    let model = ctx.model;
    let mut failed: HashSet<&str> = HashSet::new();
    let mut results: Vec<MessageResults> = Vec::new();
    let mut files: Vec<(&str, Records)> = Vec::new();
    let mut unintelligible = 0usize;
    let wants = Wants { explain: false, drift: ctx.config.drift.is_some() };
    let scorer = Scorer::new(model, wants).unwrap_or_else(|_| unreachable!("no explanation wanted"));
    let mut scorer = scorer.with_challenger(ctx.challenger.map(|c| &**c));
    for message in &event.records {
        let id = message.message_id.as_deref().unwrap_or("");
        match classify(model.features(), message.body.as_deref().unwrap_or("")) {
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
    let entry_point = EntryPoint::sqs(invocation);
    let tallies = scorer.into_tallies();
    let summarised = tallies.drift.is_some() || tallies.challenger.is_some();
    if let (Some(bucket), false) = (ctx.config.output_bucket.as_deref(), results.is_empty()) {
        let key = results::batch_summary_key(&ctx.config.output_prefix, request_id);
        let keep = Keep::BatchSummary { bucket, key: &key, request_id, messages: results.len() };
        if let Err(e) = drift_out::publish(ctx, entry_point, tallies, keep).await {
            // Without it the batch's drift is lost: its observations come again.
            tracing::error!(entry_point = entry_point.as_str(), request_id, key, error = %e, "writing the batch's drift summary failed; its observation messages will be retried");
            failed.extend(results.iter().map(|r| r.message_id));
        }
    } else if summarised && !results.is_empty() {
        // No OUTPUT_BUCKET: the results failed above, and so does the summary.
        failed.extend(results.iter().map(|r| r.message_id));
    }
    for (id, records) in files {
        if score_files_from_queue(ctx, records, budget.as_ref()).await.is_err() {
            failed.insert(id);
        }
    }
    let observations: usize = results.iter().map(|r| r.lines.len()).sum();
    let scored: usize = results.iter().map(|r| r.scored() as usize).sum();
    let written = results.iter().filter(|r| r.output.is_some()).count();
    let entry_point = entry_point.as_str();
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
///   could not finish in a whole invocation and would time out again, so
///   it is not retried).
/// * `failed`, deferred (earlier files of the batch used the time it
///   needed), transient or a permission missing: Err. The queue redelivers
///   the message until its `maxReceiveCount`, then the dead-letter queue
///   keeps it: bounded, and where an operator looks (the DLQ alarm). A
///   denial will not heal by itself, but dropping the message would lose
///   the file; after fixing the role, redrive the DLQ.
async fn score_files_from_queue(ctx: &Context<'_>, records: Records, budget: Option<&Budget>) -> Result<(), ()> {
    let outcome = s3_notifications::score_records(ctx, records, budget).await;
    if outcome.failed() > 0 {
        return Err(());
    }
    result_queue::notify_files(ctx, &outcome.files).await.map_err(|_| ())
}
