//! Announcements on RESULT_QUEUE_URL, when it is set: one [`ResultNotice`]
//! per results object an SQS message got and per file scored (through S3
//! notifications or the queue), so consumers learn of results without
//! listing buckets. A notice that is not accepted makes its message or event
//! retried; the notice id lets consumers drop the repeats.

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};

use super::Context;
use crate::contract::file::{FileReport, FileStatus, Location};
use crate::contract::invocation::EntryPoint;
use crate::contract::notice::{NoticeKind, ResultNotice};

/// Requests of 10 notices sent at the same time.
const SENDS_IN_FLIGHT: usize = 16;

/// A results object one message got.
pub struct Written<'a, 'o> {
    pub message_id: &'a str,
    pub output: &'o Location,
    pub rows: u64,
    pub scored: u64,
}

/// One notice per written results object, sent 10 to a request. Returns
/// the messages whose notice was not accepted.
pub async fn notify_observations<'a>(ctx: &Context<'_>, written: &[Written<'a, '_>], request_id: &str) -> Vec<&'a str> {
    let Some(queue_url) = ctx.config.result_queue_url.as_deref() else { return Vec::new() };
    let entry_point = EntryPoint::Sqs.as_str();
    let sqs = ctx.clients.sqs().await;
    let model_version = &ctx.model.info().version;
    let sends: Vec<_> = written
        .chunks(10)
        .map(|chunk| async move {
            let entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, w)| {
                    let notice = ResultNotice::new(
                        NoticeKind::Observations,
                        w.output,
                        w.message_id,
                        Some(w.message_id),
                        (w.rows, w.scored),
                        model_version,
                    );
                    let body = serde_json::to_string(&notice).ok()?;
                    SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().ok()
                })
                .collect();
            match sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
                Ok(out) => out
                    .failed
                    .iter()
                    .filter_map(|f| chunk.get(f.id.parse::<usize>().ok()?).map(|w| w.message_id))
                    .collect(),
                Err(e) => {
                    tracing::error!(entry_point, request_id, error = %DisplayErrorContext(&e), "sending result notifications failed; their messages will be retried");
                    chunk.iter().map(|w| w.message_id).collect::<Vec<&'a str>>()
                }
            }
        })
        .collect();
    let sent: Vec<Vec<&'a str>> = stream::iter(sends).buffer_unordered(SENDS_IN_FLIGHT).collect().await;
    let failed: Vec<&'a str> = sent.into_iter().flatten().collect();
    if !failed.is_empty() {
        tracing::error!(
            entry_point,
            request_id,
            failed = failed.len(),
            "result notifications refused; their messages will be retried"
        );
    }
    failed
}

/// Announces each scored file, one notice at a time.
pub async fn notify_files(ctx: &Context<'_>, files: &[FileReport]) -> Result<(), String> {
    let Some(queue_url) = ctx.config.result_queue_url.as_deref() else { return Ok(()) };
    for f in files.iter().filter(|f| f.status == FileStatus::Scored) {
        let (Some(output), Some(counts)) = (&f.output, &f.counts) else { continue };
        let source = f.input_etag.as_deref().unwrap_or("");
        let notice =
            ResultNotice::new(NoticeKind::File, output, source, None, (counts.rows, counts.scored), &f.model_version);
        let body = serde_json::to_string(&notice).map_err(|e| e.to_string())?;
        ctx.clients
            .sqs()
            .await
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| format!("sending the result notification failed: {}", DisplayErrorContext(&e)))?;
    }
    Ok(())
}
