//! `scorer worker --queue-url URL`: the SQS handler outside Lambda (ECS,
//! Kubernetes, a laptop). Long-polls the queue, hands each batch to the same
//! handler as an SQS event (exactly what Lambda would send), deletes only the
//! messages that succeeded, and leaves failures to become visible again (and
//! reach the dead-letter queue after maxReceiveCount). While a batch runs, its
//! messages' visibility is extended by a task that stops with the batch on every
//! path, a panic included (a guard, not a call at the end): a batch that dies
//! leaves its messages to become visible again. SIGTERM or Ctrl-C: stop
//! receiving, finish what is in flight, exit 0.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use crate::contract::invocation::{EntryPoint, Invocation};
use crate::handler::App;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The queue to poll (lab messages, or S3 notifications sent to SQS).
    #[arg(long, env = "QUEUE_URL")]
    pub queue_url: String,
    /// Batches handled at the same time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Messages per receive (SQS allows 1 to 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    pub max_messages: i32,
    /// Long-poll wait per receive, seconds (0 to 20).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
    pub wait_seconds: i32,
    /// Visibility timeout kept on messages while their batch runs, seconds; extended every half of it.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i32).range(1..=43_200))]
    pub visibility_timeout: i32,
    /// Exit after this many receives in a row came back empty (default: run until stopped).
    #[arg(long)]
    pub max_empty_receives: Option<u32>,
}

/// What the worker hands each batch to: the SQS event Lambda would send in,
/// the ids of the messages to retry out (`None`: retry them all). [`App`] is
/// the one used in production; the seam lets a test pass a handler that fails
/// in ways the real one must not.
pub trait BatchHandler: Send + Sync + 'static {
    fn handle_batch(
        &self,
        event: SqsEvent,
        invocation: &Invocation,
    ) -> impl Future<Output = Option<Vec<String>>> + Send;
}

impl BatchHandler for App {
    /// The route a Lambda invocation's SQS batch takes, given the typed event.
    async fn handle_batch(&self, event: SqsEvent, invocation: &Invocation) -> Option<Vec<String>> {
        let response = self.handle_sqs(event, invocation).await;
        Some(response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect())
    }
}

/// The entry point of everything the worker logs itself.
const WORKER: &str = EntryPoint::Worker.as_str();

/// After the last batch, tasks still running (none, unless a blocking task
/// ignores its cancellation) are given this long before the process exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::telemetry::enable_metrics(Box::new(std::io::stdout()));
    let app = Arc::new(super::load_app()?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let sqs = app.clients().sqs().await.clone();
        work(app, sqs, args, super::shutdown_signal()).await;
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    Ok(ExitCode::SUCCESS)
}

/// Polls `args.queue_url` and hands each batch to `handler` until `shutdown`
/// resolves (or `max_empty_receives`), then finishes the batches in flight.
/// Every task it started has ended, or been aborted, when it returns.
pub async fn work<H: BatchHandler>(
    handler: Arc<H>,
    sqs: aws_sdk_sqs::Client,
    args: Args,
    shutdown: impl Future<Output = ()>,
) {
    let region = sqs.config().region().map_or("us-east-1".to_owned(), |r| r.to_string());
    let source_arn = queue_arn(&args.queue_url, &region);
    tracing::info!(entry_point = WORKER, concurrency = args.concurrency, "worker started");
    let slots = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    // Dropped (so aborted) with this function, whatever way it ends.
    let mut batches = JoinSet::new();
    tokio::pin!(shutdown);
    let mut empty_receives = 0u32;
    loop {
        // Take a slot first: never hold messages that cannot be worked on yet.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
            () = &mut shutdown => break,
        };
        let receive = sqs
            .receive_message()
            .queue_url(&args.queue_url)
            .max_number_of_messages(args.max_messages)
            .wait_time_seconds(args.wait_seconds)
            .visibility_timeout(args.visibility_timeout)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send();
        let received = tokio::select! {
            r = receive => r,
            // Messages a cancelled receive may have taken become visible again.
            () = &mut shutdown => break,
        };
        while let Some(done) = batches.try_join_next() {
            log_task_end(done);
        }
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::error!(entry_point = WORKER, error = %DisplayErrorContext(&e), "receiving failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            empty_receives += 1;
            if args.max_empty_receives.is_some_and(|max| empty_receives >= max) {
                break;
            }
            continue;
        }
        empty_receives = 0;
        let (handler, sqs, args, arn) = (Arc::clone(&handler), sqs.clone(), args.clone(), source_arn.clone());
        batches.spawn(async move {
            // The slot is freed when this task ends, a panic included.
            let _slot = slot;
            handle_batch(&*handler, &sqs, &args, &arn, &region_of(&arn), messages).await;
        });
    }
    tracing::info!(entry_point = WORKER, in_flight = batches.len(), "stopping: finishing the batches in flight");
    while let Some(done) = batches.join_next().await {
        log_task_end(done);
    }
    tracing::info!(entry_point = WORKER, "worker stopped");
}

/// A batch task's end. A panic's message is not logged: it could quote input.
fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    match done {
        Ok(()) => {}
        Err(e) if e.is_panic() => tracing::error!(
            entry_point = WORKER,
            "a batch panicked; its messages become visible again after the visibility timeout"
        ),
        Err(_) => tracing::error!(entry_point = WORKER, "a batch task was cancelled"),
    }
}

fn region_of(arn: &str) -> String {
    arn.split(':').nth(3).unwrap_or("us-east-1").to_owned()
}

/// `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` -> `arn:aws:sqs:REGION:ACCOUNT:NAME`.
fn queue_arn(url: &str, region: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or("queue");
    let account = parts.next().unwrap_or("000000000000");
    format!("arn:aws:sqs:{region}:{account}:{name}")
}

async fn handle_batch(
    handler: &impl BatchHandler,
    sqs: &aws_sdk_sqs::Client,
    args: &Args,
    arn: &str,
    region: &str,
    messages: Vec<Message>,
) {
    let started = Instant::now();
    let handles: Vec<(String, String)> =
        messages.iter().filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?))).collect();
    // Stops when dropped: below once the handler is done, or by unwinding if it panics.
    let keep_alive = AbortOnDropHandle::new(tokio::spawn(extend_visibility(
        sqs.clone(),
        args.queue_url.clone(),
        handles.clone(),
        args.visibility_timeout,
    )));

    let mut event = SqsEvent::default();
    event.records = messages.into_iter().map(|m| to_lambda_message(m, arn, region)).collect();
    let mut invocation = Invocation::local();
    invocation.from_worker = true;
    invocation.cold_start = crate::telemetry::take_cold_start();
    let failed = handler.handle_batch(event, &invocation).await;
    drop(keep_alive);

    // Delete exactly the messages that succeeded; failures reappear after the
    // visibility timeout (and are dead-lettered after maxReceiveCount).
    let failed = failed.unwrap_or_else(|| handles.iter().map(|(id, _)| id.clone()).collect());
    let done: Vec<&(String, String)> = handles.iter().filter(|(id, _)| !failed.contains(id)).collect();
    let mut deleted = 0;
    for chunk in done.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
            })
            .collect();
        match sqs.delete_message_batch().queue_url(&args.queue_url).set_entries(Some(entries)).send().await {
            Ok(out) => {
                deleted += out.successful.len();
                if !out.failed.is_empty() {
                    tracing::warn!(
                        entry_point = WORKER,
                        failed = out.failed.len(),
                        "some deletes failed; those messages will be handled again"
                    );
                }
            }
            Err(e) => {
                tracing::error!(entry_point = WORKER, error = %DisplayErrorContext(&e), "deleting handled messages failed; they will be handled again")
            }
        }
    }
    tracing::info!(
        entry_point = WORKER, request_id = %invocation.request_id, messages = handles.len(), deleted,
        left_for_retry = failed.len(), duration_ms = started.elapsed().as_millis() as u64, "batch done"
    );
}

/// Keeps the batch invisible to other consumers while it runs.
async fn extend_visibility(sqs: aws_sdk_sqs::Client, queue_url: String, handles: Vec<(String, String)>, seconds: i32) {
    let period = Duration::from_millis(u64::from(seconds.max(1) as u32) * 500);
    loop {
        tokio::time::sleep(period).await;
        for chunk in handles.chunks(10) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(seconds)
                        .build()
                        .ok()
                })
                .collect();
            let sent =
                sqs.change_message_visibility_batch().queue_url(&queue_url).set_entries(Some(entries)).send().await;
            if let Err(e) = sent {
                tracing::warn!(entry_point = WORKER, error = %DisplayErrorContext(&e), "extending visibility failed");
            }
        }
    }
}

/// The SQS record Lambda's event source mapping would build for this message.
fn to_lambda_message(m: Message, arn: &str, region: &str) -> SqsMessage {
    let mut out = SqsMessage::default();
    out.message_id = m.message_id;
    out.receipt_handle = m.receipt_handle;
    out.body = m.body;
    out.md5_of_body = m.md5_of_body;
    out.attributes = m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    out.event_source = Some("aws:sqs".into());
    out.event_source_arn = Some(arn.to_owned());
    out.aws_region = Some(region.to_owned());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_urls_become_arns() {
        assert_eq!(
            super::queue_arn("https://sqs.eu-west-1.amazonaws.com/123456789012/lab-messages", "eu-west-1"),
            "arn:aws:sqs:eu-west-1:123456789012:lab-messages"
        );
        assert_eq!(
            super::queue_arn("http://127.0.0.1:5000/123456789012/q", "us-east-1"),
            "arn:aws:sqs:us-east-1:123456789012:q"
        );
    }
}
