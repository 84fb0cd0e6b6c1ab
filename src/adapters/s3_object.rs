//! Scores one S3 object: GetObject streamed into the batch pipeline, the
//! output streamed out as a multipart upload (8 MiB parts, a bounded number
//! in flight), completed only when the whole file succeeded; on any failure
//! the upload is aborted, so no partial object ever appears. Memory stays
//! bounded whatever the file size.
//!
//! The pipeline is synchronous (csv crate); it runs on a blocking thread and
//! reads the S3 body through `SyncIoBridge` over a `StreamReader`, and hands
//! output parts to the async uploader over a small bounded channel.
//!
//! Cancellation: one [`CancellationToken`] stops everything this module
//! starts. When the deadline comes (or either side fails) the token is
//! cancelled; the body stream then yields an error (never an EOF, which would
//! look like a complete file), the pipeline ends and is joined, part uploads
//! are aborted and awaited, and a CreateMultipartUpload already sent is still
//! awaited (briefly) so that its upload id, arriving late, is aborted too.
//! Nothing keeps running into the next invocation.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use super::s3_errors::{read_error, ObjectError};
use super::s3_upload::{abort, upload, Lineage, PartWriter};
use crate::adapters::s3_event::ObjectRef;
use crate::config::BatchConfig;
use crate::core::csv_pipeline::{score_csv_shadowed, BatchCounts, BatchError, ScoreOptions};
use crate::core::model::Model;
use crate::core::scoring::Tallies;

/// Stop this long before Lambda's deadline, to abort cleanly and write the
/// summary instead of being killed mid-upload.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);
/// Once stopped, how long the work may take to wind down (the pipeline to
/// notice, a CreateMultipartUpload already sent to answer). Well inside
/// [`DEADLINE_MARGIN`], which must also hold the abort and the summary.
const WIND_DOWN: Duration = Duration::from_secs(3);

/// Below this, the time between the invocation's start and a file's start
/// is not "earlier work" but start-up (an S3 client built, a slow host): a
/// file that had all but this of the whole time had its chance, and a
/// second try would time out again. (Without it, a short whole time on a
/// loaded host deferred a lone file that could never fit: seen in CI.)
const EARLIER_WORK: Duration = Duration::from_millis(500);

/// What a scored file held.
#[derive(Debug, Clone)]
pub struct Scored {
    pub counts: BatchCounts,
    pub input_etag: Option<String>,
    /// The drift statistics of the scored rows (when asked for) and the
    /// challenger's comparison (with one).
    pub tallies: Tallies,
}

/// The time an invocation has for its files: its deadline, and how much of
/// it there was when the work began (the function's whole timeout, give or
/// take the start-up), less [`DEADLINE_MARGIN`]. A file that cannot fit in
/// the whole time is `timed_out` (a retry would time out again); one that
/// could, but was left too little by earlier files of the same invocation,
/// is deferred: `failed`, retried in a fresh invocation.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: SystemTime,
    whole: Duration,
}

impl Budget {
    /// Counts from now; `None` without a deadline (local runs).
    pub fn starting_now(deadline: Option<SystemTime>) -> Option<Budget> {
        deadline.map(|deadline| Budget { deadline, whole: time_left(deadline).unwrap_or_default() })
    }

    /// Time left now, margin deducted.
    fn left(&self) -> Duration {
        time_left(self.deadline).unwrap_or_default()
    }

    /// Why a file given `left` of the whole time did not (or cannot) finish:
    /// [`ObjectError::Deferred`] when earlier work used more than a tenth of
    /// the whole time, and at least [`EARLIER_WORK`] (a fresh invocation
    /// gives the file noticeably more), else [`ObjectError::Deadline`].
    fn out_of_time(&self, left: Duration) -> ObjectError {
        let used = self.whole.saturating_sub(left);
        if used > (self.whole / 10).max(EARLIER_WORK) {
            ObjectError::Deferred { used, whole: self.whole }
        } else {
            ObjectError::Deadline
        }
    }

    /// Before reading: the time this file may take, or why it must not start.
    fn admit(&self, size: Option<u64>, mb_per_s: u64) -> Result<Duration, ObjectError> {
        if let Some(size) = size {
            if let Some(needs) = cannot_finish(size, self.whole, mb_per_s) {
                return Err(ObjectError::TooBig { size, mb_per_s, needs, whole: self.whole });
            }
        }
        let left = self.left();
        let too_little = left.is_zero() || size.is_some_and(|size| cannot_finish(size, left, mb_per_s).is_some());
        if too_little {
            return Err(self.out_of_time(left));
        }
        Ok(left)
    }
}

/// Scores `object` into `out_bucket/out_key`, all or nothing, stopping
/// cleanly [`DEADLINE_MARGIN`] before the budget's deadline.
#[allow(clippy::too_many_arguments)] // each is a separate fact about this one object
pub async fn score_object(
    client: &Client,
    (model, challenger): (Arc<Model>, Option<Arc<Model>>),
    object: &ObjectRef,
    out_bucket: &str,
    out_key: &str,
    budget: Option<&Budget>,
    config: &BatchConfig,
) -> Result<Scored, ObjectError> {
    let left = budget.map(|b| b.admit(object.size, config.max_throughput_mb_per_s)).transpose()?;
    let stops = Stops::new();
    let (deadline, stop) = (&stops.deadline, &stops.any);
    let upload_id = Mutex::new(None::<String>);
    let scoring = Scoring { model, challenger, options: config.score_options() };
    let work = score_and_upload(client, scoring, object, (out_bucket, out_key), &upload_id, &stops);
    tokio::pin!(work);
    let result = match budget.zip(left) {
        None => work.await,
        Some((budget, left)) => tokio::select! {
            result = &mut work => result,
            () = tokio::time::sleep(left) => {
                deadline.cancel();
                // Let everything it started end (tasks aborted and awaited,
                // the pipeline joined, a late upload id recorded). If it
                // finished all the same in that time, the file is scored.
                match tokio::time::timeout(WIND_DOWN, &mut work).await {
                    Ok(Ok(scored)) => Ok(scored),
                    Ok(Err(_)) => Err(budget.out_of_time(left)),
                    Err(_) => {
                        tracing::error!(bucket = %object.bucket, key = %object.key, "the stopped work did not end in time");
                        Err(budget.out_of_time(left))
                    }
                }
            }
        },
    };
    stop.cancel();
    if result.is_err() {
        let id = upload_id.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some(id) = id {
            abort(client, out_bucket, out_key, &id).await;
        }
    }
    result
}

/// `deadline` is cancelled only when the time is up; `any` (its child) also
/// when either side of the work fails: both stop everything, and the cause
/// can still be told apart.
struct Stops {
    deadline: CancellationToken,
    any: CancellationToken,
}

impl Stops {
    fn new() -> Self {
        let deadline = CancellationToken::new();
        Stops { any: deadline.child_token(), deadline }
    }
}

fn time_left(deadline: SystemTime) -> Option<Duration> {
    deadline.duration_since(SystemTime::now()).ok()?.checked_sub(DEADLINE_MARGIN).filter(|d| !d.is_zero())
}

/// The time `size` bytes need at `mb_per_s`, if that is more than `left`:
/// the file certainly cannot finish.
pub fn cannot_finish(size: u64, left: Duration, mb_per_s: u64) -> Option<Duration> {
    let needs = Duration::from_secs_f64(size as f64 / (mb_per_s.max(1) as f64 * 1e6));
    (needs > left).then_some(needs)
}

/// What the pipeline scores a file with.
struct Scoring {
    model: Arc<Model>,
    challenger: Option<Arc<Model>>,
    options: ScoreOptions,
}

async fn score_and_upload(
    client: &Client,
    Scoring { model, challenger, options }: Scoring,
    object: &ObjectRef,
    (out_bucket, out_key): (&str, &str),
    upload_id: &Mutex<Option<String>>,
    stops: &Stops,
) -> Result<Scored, ObjectError> {
    let (deadline, stop) = (&stops.deadline, &stops.any);
    let get = client.get_object().bucket(&object.bucket).key(&object.key).set_version_id(object.version_id.clone());
    let got = match stop.run_until_cancelled(get.send()).await {
        None => return Err(ObjectError::Deadline),
        Some(got) => got.map_err(|e| read_error(e, object))?,
    };
    // S3 quotes ETags; the summary and the output's metadata carry the bare value.
    let input_etag = got.e_tag.as_deref().map(|t| t.trim_matches('"').to_owned());

    // The body as a `Read` for the pipeline: no task of its own, so nothing to
    // outlive the file; dropping the reader closes the download.
    let reader = SyncIoBridge::new(StreamReader::new(body_chunks(got.body, stop.clone())));
    let version = model.info().version.clone();
    // Pipeline: on a blocking thread; parts -> bounded channel -> uploader.
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(1);
    let pipeline = tokio::task::spawn_blocking(move || {
        let mut writer = PartWriter::new(out_tx);
        let outcome = score_csv_shadowed(&model, challenger.as_deref(), reader, &mut writer, &options, |_| {})?;
        // Only a finished file sends its last part; the uploader completes
        // nothing else.
        writer.finish().map_err(BatchError::Write)?;
        Ok::<_, BatchError>(outcome)
    });
    // Whichever side fails first stops the other at once.
    let pipeline = async {
        let scored = pipeline.await;
        if !matches!(scored, Ok(Ok(_))) {
            stop.cancel();
        }
        scored
    };
    let meta = Lineage { model_version: &version, source_etag: input_etag.as_deref() };
    let uploading = async {
        let uploaded = upload(client, out_bucket, out_key, out_rx, upload_id, &meta, stop).await;
        if uploaded.is_err() {
            stop.cancel();
        }
        uploaded
    };
    let (uploaded, scored) = tokio::join!(uploading, pipeline);

    let outcome = match scored {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(bad)) if bad.is_bad_input() => return Err(ObjectError::BadFile(bad)),
        // The uploader failed first (its error is the real one), the deadline
        // stopped the read, or the read itself failed.
        Ok(Err(e)) => {
            return Err(match uploaded {
                Err(up) if !matches!(up, ObjectError::Deadline) => up,
                _ if deadline.is_cancelled() => ObjectError::Deadline,
                _ => ObjectError::Read(e.to_string()),
            })
        }
        Err(join) => return Err(ObjectError::Write(format!("the scoring task failed: {join}"))),
    };
    let pending = uploaded?;
    pending.finish(client, out_bucket, out_key, upload_id, &meta).await?;
    let tallies = Tallies { drift: outcome.drift, challenger: outcome.challenger };
    Ok(Scored { counts: outcome.counts, input_etag, tallies })
}

/// The S3 body as a stream of chunks that ends in an error, not an EOF, when
/// `stop` is cancelled (an EOF would look like the end of the file).
fn body_chunks(
    body: ByteStream,
    stop: CancellationToken,
) -> std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<Bytes>> + Send>> {
    Box::pin(futures_util::stream::unfold(Some((body, stop)), |state| async move {
        let (mut body, stop) = state?;
        match stop.run_until_cancelled(body.next()).await {
            None => Some((Err(io::Error::new(io::ErrorKind::Interrupted, "reading was stopped")), None)),
            Some(None) => None,
            Some(Some(Ok(chunk))) => Some((Ok(chunk), Some((body, stop)))),
            Some(Some(Err(e))) => Some((Err(io::Error::other(DisplayErrorContext(&e).to_string())), None)),
        }
    }))
}

/// Elapsed milliseconds, for reports.
pub fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_time_used_by_earlier_work_defers_a_file() {
        let budget = |whole_ms| Budget { deadline: SystemTime::now(), whole: Duration::from_millis(whole_ms) };
        let deferred =
            |b: &Budget, left_ms| matches!(b.out_of_time(Duration::from_millis(left_ms)), ObjectError::Deferred { .. });
        // A lone file on a short budget, started late by a slow host: it had its chance.
        assert!(!deferred(&budget(500), 300));
        // Earlier files used half of ten seconds, or more than a tenth of 15 minutes: retried.
        assert!(deferred(&budget(10_000), 5_000));
        assert!(deferred(&budget(895_000), 700_000));
        // Under a tenth of 15 minutes: the file had (nearly) the whole time.
        assert!(!deferred(&budget(895_000), 880_000));
    }

    use super::*;

    #[test]
    fn only_files_that_certainly_cannot_finish_are_refused_by_size() {
        let minute = Duration::from_secs(60);
        // 1,000 MB/s for 60 s is 60 GB.
        assert_eq!(cannot_finish(59_000_000_000, minute, 1000), None);
        assert_eq!(cannot_finish(60_000_000_000, minute, 1000), None);
        assert_eq!(cannot_finish(61_000_000_000, minute, 1000), Some(Duration::from_secs(61)));
        assert!(cannot_finish(1, Duration::ZERO, 1000).is_some());
        assert_eq!(cannot_finish(0, Duration::ZERO, 1000), None);
    }
}
