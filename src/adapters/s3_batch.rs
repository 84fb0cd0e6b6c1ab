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

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use crate::adapters::s3_event::ObjectRef;
use crate::config::BatchConfig;
use crate::core::csv_pipeline::{score_csv_with, BatchCounts, BatchError, ScoreOptions};
use crate::core::drift::DriftStats;
use crate::core::model::Model;

/// Size of each uploaded part (S3's minimum is 5 MiB; the last may be smaller).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once; with the part being filled and one queued, memory
/// for output is at most (PARTS_IN_FLIGHT + 2) * PART_SIZE.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Stop this long before Lambda's deadline, to abort cleanly and write the
/// summary instead of being killed mid-upload.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);
/// Once stopped, how long the work may take to wind down (the pipeline to
/// notice, a CreateMultipartUpload already sent to answer). Well inside
/// [`DEADLINE_MARGIN`], which must also hold the abort and the summary.
const WIND_DOWN: Duration = Duration::from_secs(3);
/// How long a CreateMultipartUpload sent before the stop may still take to
/// answer: S3 may create the upload anyway, and only its id lets us abort it.
const CREATE_GRACE: Duration = Duration::from_secs(2);

/// What a scored file held.
#[derive(Debug, Clone)]
pub struct Scored {
    pub counts: BatchCounts,
    pub input_etag: Option<String>,
    /// The drift statistics of the scored rows, when asked for.
    pub drift: Option<DriftStats>,
}

/// An S3 request the function's role was not allowed to make: a
/// configuration error, never a property of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The IAM action S3 checked (`s3:GetObject`, `s3:GetObjectVersion`, `s3:PutObject`).
    pub action: &'static str,
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Denied { action, bucket, key } = self;
        write!(f, "{action} on {bucket}/{key} was denied (403 AccessDenied): the function's role needs ")?;
        match *action {
            "s3:GetObject" => write!(
                f,
                "s3:GetObject on the input objects (and s3:GetObjectVersion for versioned reads), and \
                 s3:ListBucket on the bucket so that a missing key answers 404 instead of 403"
            ),
            "s3:GetObjectVersion" => write!(
                f,
                "s3:GetObjectVersion (besides s3:GetObject) to read a given version of the input objects, and \
                 s3:ListBucket on the bucket so that a missing version answers 404 instead of 403"
            ),
            _ => write!(f, "{action} on the output location (it also covers multipart uploads)"),
        }
    }
}

/// Why an object was not scored.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The file itself is unusable: retrying cannot help.
    #[error("{}", crate::contract::file::unusable_file_reason(.0, crate::config::GIVE_DELIMITER))]
    BadFile(BatchError),
    /// The object (or the version the event named) no longer exists: nothing to retry.
    #[error("{}", match .version { None => "the object no longer exists".to_owned(), Some(v) => format!("version {v} of the object no longer exists") })]
    Missing { version: Option<String> },
    /// The notified size cannot be read in the time left, even at the
    /// optimistic bound: refused before reading.
    #[error(
        "the object is {size} bytes: even at {mb_per_s} MB/s (MAX_THROUGHPUT_MB_PER_S) it needs {}s, and only {}s \
         are left before the invocation deadline, so it was not read and will not be retried. {ROUTE_HINT}",
        .needs.as_secs(), .left.as_secs()
    )]
    TooBig { size: u64, mb_per_s: u64, needs: Duration, left: Duration },
    /// The deadline came while the file was running: stopped cleanly.
    #[error(
        "the invocation deadline came before this file was finished: it was stopped cleanly (no partial output) \
         and will not be retried. {ROUTE_HINT}"
    )]
    Deadline,
    /// The role lacks a permission (configuration).
    #[error("{0}")]
    Denied(Denied),
    #[error("reading the object failed: {0}")]
    Read(String),
    #[error("writing the output failed: {0}")]
    Write(String),
}

/// Where a file too big for one invocation belongs.
pub const ROUTE_HINT: &str = "Files this large belong on the Step Functions Distributed Map route \
                              (README: Huge files); splitting the file also works";

/// Scores `object` into `out_bucket/out_key`, all or nothing, stopping
/// cleanly [`DEADLINE_MARGIN`] before `deadline`.
#[allow(clippy::too_many_arguments)] // each is a separate fact about this one object
pub async fn score_object(
    client: &Client,
    model: Arc<Model>,
    object: &ObjectRef,
    out_bucket: &str,
    out_key: &str,
    deadline: Option<SystemTime>,
    config: &BatchConfig,
) -> Result<Scored, ObjectError> {
    let max_mb_per_s = config.max_throughput_mb_per_s;
    let left = match deadline {
        None => None,
        Some(d) => Some(time_left(d).ok_or(ObjectError::Deadline)?),
    };
    if let (Some(left), Some(size)) = (left, object.size) {
        if let Some(needs) = cannot_finish(size, left, max_mb_per_s) {
            return Err(ObjectError::TooBig { size, mb_per_s: max_mb_per_s, needs, left });
        }
    }
    let stops = Stops::new();
    let (deadline, stop) = (&stops.deadline, &stops.any);
    let upload_id = Mutex::new(None::<String>);
    let scoring = Scoring { model, options: config.score_options() };
    let work = score_and_upload(client, scoring, object, (out_bucket, out_key), &upload_id, &stops);
    tokio::pin!(work);
    let result = match left {
        None => work.await,
        Some(left) => tokio::select! {
            result = &mut work => result,
            () = tokio::time::sleep(left) => {
                deadline.cancel();
                // Let everything it started end (tasks aborted and awaited,
                // the pipeline joined, a late upload id recorded). If it
                // finished all the same in that time, the file is scored.
                match tokio::time::timeout(WIND_DOWN, &mut work).await {
                    Ok(Ok(scored)) => Ok(scored),
                    Ok(Err(_)) => Err(ObjectError::Deadline),
                    Err(_) => {
                        tracing::error!(bucket = %object.bucket, key = %object.key, "the stopped work did not end in time");
                        Err(ObjectError::Deadline)
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

async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let aborted = client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
    match aborted {
        Ok(_) => tracing::info!(bucket, key, "multipart upload aborted; no partial output"),
        // The bucket's lifecycle rule for incomplete uploads cleans up after this.
        Err(e) if is_denied(&e) => tracing::error!(
            bucket,
            key,
            "aborting the multipart upload was denied: the function's role needs s3:AbortMultipartUpload on the \
             output location; the bucket's lifecycle rule removes the upload later"
        ),
        Err(e) => {
            tracing::error!(bucket, key, error = %DisplayErrorContext(&e), "aborting the multipart upload failed")
        }
    }
}

fn is_denied<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("AccessDenied") || e.raw_response().is_some_and(|r| r.status().as_u16() == 403)
}

/// What a failed GetObject means for the file.
fn read_error<E>(e: SdkError<E>, object: &ObjectRef) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e.code() {
        // The object (or the version the event named) is gone: nothing to retry.
        // A missing bucket (NoSuchBucket) is a configuration problem: retried.
        Some("NoSuchKey" | "NoSuchVersion") => ObjectError::Missing { version: object.version_id.clone() },
        _ if is_denied(&e) => ObjectError::Denied(Denied {
            // A versioned read is authorized as s3:GetObjectVersion.
            action: if object.version_id.is_some() { "s3:GetObjectVersion" } else { "s3:GetObject" },
            bucket: object.bucket.clone(),
            key: object.key.clone(),
        }),
        _ => ObjectError::Read(DisplayErrorContext(&e).to_string()),
    }
}

/// What a failed PutObject / multipart request means. CreateMultipartUpload,
/// UploadPart and CompleteMultipartUpload are all authorized as s3:PutObject.
pub fn write_error<E>(e: SdkError<E>, bucket: &str, key: &str) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if is_denied(&e) {
        ObjectError::Denied(Denied { action: "s3:PutObject", bucket: bucket.to_owned(), key: key.to_owned() })
    } else {
        ObjectError::Write(DisplayErrorContext(&e).to_string())
    }
}

/// What the pipeline scores a file with.
struct Scoring {
    model: Arc<Model>,
    options: ScoreOptions,
}

async fn score_and_upload(
    client: &Client,
    Scoring { model, options }: Scoring,
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
        let writer = PartWriter { tx: out_tx, buf: Vec::with_capacity(PART_SIZE + 512 * 1024) };
        score_csv_with(&model, reader, writer, &options, |_| {})
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
    Ok(Scored { counts: outcome.counts, input_etag, drift: outcome.drift })
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

/// The content type of every scored CSV, single PutObject or multipart.
const OUTPUT_CONTENT_TYPE: &str = "text/csv; charset=utf-8";
/// The metadata key (`x-amz-meta-model-version`) naming the model on every
/// object the function writes: scored CSVs and SQS results objects.
pub const MODEL_VERSION_METADATA: &str = "model-version";

/// Metadata every output object carries, single PutObject or multipart (and
/// the drift page beside it).
pub struct Lineage<'a> {
    pub model_version: &'a str,
    pub source_etag: Option<&'a str>,
}

impl Lineage<'_> {
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [(MODEL_VERSION_METADATA, Some(self.model_version)), ("source-etag", self.source_etag)]
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    }
}

/// Output waiting for the pipeline's verdict before it becomes visible.
enum Pending {
    /// Small output: one PutObject.
    Single(Bytes),
    Multipart {
        upload_id: String,
        parts: Vec<CompletedPart>,
    },
}

impl Pending {
    async fn finish(
        self,
        client: &Client,
        bucket: &str,
        key: &str,
        upload_id_slot: &Mutex<Option<String>>,
        meta: &Lineage<'_>,
    ) -> Result<(), ObjectError> {
        match self {
            Pending::Single(bytes) => {
                let mut put = client.put_object().bucket(bucket).key(key).content_type(OUTPUT_CONTENT_TYPE);
                for (k, v) in meta.pairs() {
                    put = put.metadata(k, v);
                }
                put.body(ByteStream::from(bytes)).send().await.map_err(|e| write_error(e, bucket, key))?;
            }
            Pending::Multipart { upload_id, mut parts } => {
                parts.sort_by_key(|p| p.part_number);
                client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| write_error(e, bucket, key))?;
                // Completed: nothing left to abort.
                if let Ok(mut slot) = upload_id_slot.lock() {
                    *slot = None;
                }
            }
        }
        Ok(())
    }
}

/// Receives parts from the pipeline. One part in total becomes a PutObject
/// later; more start a multipart upload whose parts go up as they come.
/// Stops at once when `stop` is cancelled; the upload id, once known, is in
/// `upload_id_slot` for the caller to abort.
async fn upload(
    client: &Client,
    bucket: &str,
    key: &str,
    mut parts: mpsc::Receiver<Bytes>,
    upload_id_slot: &Mutex<Option<String>>,
    meta: &Lineage<'_>,
    stop: &CancellationToken,
) -> Result<Pending, ObjectError> {
    let Some(first) = stop.run_until_cancelled(parts.recv()).await.ok_or(ObjectError::Deadline)? else {
        return Ok(Pending::Single(Bytes::new()));
    };
    let Some(second) = stop.run_until_cancelled(parts.recv()).await.ok_or(ObjectError::Deadline)? else {
        return Ok(Pending::Single(first));
    };

    let mut create = client.create_multipart_upload().bucket(bucket).key(key).content_type(OUTPUT_CONTENT_TYPE);
    for (k, v) in meta.pairs() {
        create = create.metadata(k, v);
    }
    let upload_id = create_upload(create, bucket, key, upload_id_slot, stop).await?;

    let mut in_flight: JoinSet<Result<CompletedPart, ObjectError>> = JoinSet::new();
    let result = async {
        let mut done = Vec::new();
        let mut number = 0i32;
        let mut next = Some(first);
        let mut queued = Some(second);
        loop {
            let part = match next.take().or_else(|| queued.take()) {
                Some(p) => p,
                None => match stop.run_until_cancelled(parts.recv()).await.ok_or(ObjectError::Deadline)? {
                    Some(p) => p,
                    None => break,
                },
            };
            number += 1;
            let request = client.upload_part().bucket(bucket).key(key).upload_id(&upload_id).part_number(number);
            let (b, k) = (bucket.to_owned(), key.to_owned());
            in_flight.spawn(async move {
                let sent = request.body(ByteStream::from(part)).send().await.map_err(|e| write_error(e, &b, &k))?;
                Ok(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag).build())
            });
            while in_flight.len() >= PARTS_IN_FLIGHT {
                done.push(joined(stop.run_until_cancelled(in_flight.join_next()).await)?);
            }
        }
        while !in_flight.is_empty() {
            done.push(joined(stop.run_until_cancelled(in_flight.join_next()).await)?);
        }
        Ok(done)
    }
    .await;
    // On any way out, no part upload is left running.
    in_flight.shutdown().await;
    Ok(Pending::Multipart { upload_id, parts: result? })
}

/// Starts the multipart upload and records its id. If `stop` comes while the
/// request is out, S3 may still create the upload: the answer is awaited (up
/// to [`CREATE_GRACE`]) so that its id is recorded and aborted by the caller.
async fn create_upload(
    create: aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder,
    bucket: &str,
    key: &str,
    upload_id_slot: &Mutex<Option<String>>,
    stop: &CancellationToken,
) -> Result<String, ObjectError> {
    let mut request = tokio::spawn(create.send());
    let (answer, stopped) = match stop.run_until_cancelled(&mut request).await {
        Some(answer) => (Some(answer), false),
        None => match tokio::time::timeout(CREATE_GRACE, &mut request).await {
            Ok(answer) => (Some(answer), true),
            Err(_) => {
                request.abort();
                let _ = request.await;
                tracing::warn!(
                    "CreateMultipartUpload did not answer after the stop; if S3 created the upload, the bucket's \
                     lifecycle rule removes it"
                );
                (None, true)
            }
        },
    };
    let created = match answer {
        None => return Err(ObjectError::Deadline),
        Some(Err(join)) => return Err(ObjectError::Write(format!("the CreateMultipartUpload task failed: {join}"))),
        Some(Ok(created)) => created.map_err(|e| write_error(e, bucket, key))?,
    };
    let id = created.upload_id.ok_or_else(|| ObjectError::Write("S3 returned no upload id".into()))?;
    if let Ok(mut slot) = upload_id_slot.lock() {
        *slot = Some(id.clone());
    }
    if stopped {
        // Recorded: the caller aborts it.
        return Err(ObjectError::Deadline);
    }
    Ok(id)
}

fn joined(
    r: Option<Option<Result<Result<CompletedPart, ObjectError>, tokio::task::JoinError>>>,
) -> Result<CompletedPart, ObjectError> {
    match r {
        None => Err(ObjectError::Deadline),
        Some(Some(Ok(part))) => part,
        Some(Some(Err(e))) => Err(ObjectError::Write(format!("a part upload task failed: {e}"))),
        Some(None) => Err(ObjectError::Write("no part upload was running".into())),
    }
}

/// `Write` that cuts the output into parts of at least PART_SIZE bytes.
struct PartWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl PartWriter {
    fn send(&mut self) -> io::Result<()> {
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE + 512 * 1024));
        self.tx
            .blocking_send(Bytes::from(part))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PART_SIZE {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PartWriter {
    /// The last (possibly short) part. After a failure it goes nowhere visible:
    /// the uploader only completes once the pipeline has succeeded.
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.send();
        }
    }
}

/// Elapsed milliseconds, for reports.
pub fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn a_denial_names_the_permission_the_role_needs() {
        let d = |action| Denied { action, bucket: "lab".into(), key: "incoming/a.csv".into() }.to_string();
        let get = d("s3:GetObject");
        assert!(get.starts_with("s3:GetObject on lab/incoming/a.csv was denied"), "{get}");
        assert!(get.contains("s3:GetObjectVersion for versioned reads") && get.contains("s3:ListBucket"), "{get}");
        assert!(d("s3:GetObjectVersion").contains("needs s3:GetObjectVersion (besides s3:GetObject)"));
        assert!(d("s3:PutObject").contains("needs s3:PutObject on the output location"));
    }
}
