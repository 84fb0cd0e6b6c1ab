//! Scores one S3 object: GetObject streamed into the batch pipeline, the
//! output streamed out as a multipart upload (8 MiB parts, a bounded number
//! in flight), completed only when the whole file succeeded; on any failure
//! the upload is aborted, so no partial object ever appears. Memory stays
//! bounded whatever the file size.
//!
//! The pipeline is synchronous (csv crate); it runs on a blocking thread and
//! talks to the async download and upload through small bounded channels.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Buf, Bytes};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::adapters::s3_event::ObjectRef;
use crate::core::batch::{score_csv, BatchCounts, BatchError};
use crate::core::model::Model;

/// Size of each uploaded part (S3's minimum is 5 MiB; the last may be smaller).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once; with the part being filled and one queued, memory
/// for output is at most (PARTS_IN_FLIGHT + 2) * PART_SIZE.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Stop this long before Lambda's deadline, to abort cleanly instead of being killed.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Where a scored file went and what it held.
#[derive(Debug, Clone)]
pub struct Scored {
    pub counts: BatchCounts,
    pub input_etag: Option<String>,
    pub parts: usize,
}

/// Why an object was not scored.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The file itself is unusable: retrying cannot help.
    #[error("the file cannot be scored: {0}")]
    BadFile(BatchError),
    /// The object no longer exists (deleted after the event): nothing to retry.
    #[error("the object no longer exists")]
    Missing,
    #[error("reading the object failed: {0}")]
    Read(String),
    #[error("writing the output failed: {0}")]
    Write(String),
    #[error("the invocation deadline is too close to finish this file; it was aborted cleanly. Split large files or use the Step Functions Distributed Map route")]
    Deadline,
}

impl ObjectError {
    /// Transient errors fail the invocation so Lambda retries it.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ObjectError::BadFile(_) | ObjectError::Missing)
    }
}

/// Scores `object` into `out_bucket/out_key`, all or nothing.
pub async fn score_object(
    client: &Client,
    model: Arc<Model>,
    object: &ObjectRef,
    out_bucket: &str,
    out_key: &str,
    deadline: Option<SystemTime>,
) -> Result<Scored, ObjectError> {
    let upload_id = Arc::new(Mutex::new(None::<String>));
    let work = score_and_upload(client, model, object, out_bucket, out_key, Arc::clone(&upload_id));
    let result = match deadline.map(time_left) {
        Some(None) => Err(ObjectError::Deadline),
        Some(Some(left)) => tokio::time::timeout(left, work).await.unwrap_or(Err(ObjectError::Deadline)),
        None => work.await,
    };
    if result.is_err() {
        let id = upload_id.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some(id) = id {
            abort(client, out_bucket, out_key, &id).await;
        }
    }
    result
}

fn time_left(deadline: SystemTime) -> Option<Duration> {
    deadline.duration_since(SystemTime::now()).ok()?.checked_sub(DEADLINE_MARGIN).filter(|d| !d.is_zero())
}

async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let aborted = client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
    match aborted {
        Ok(_) => tracing::info!(bucket, key, "multipart upload aborted; no partial output"),
        // The bucket's lifecycle rule for incomplete uploads cleans up after this.
        Err(e) => {
            tracing::error!(bucket, key, error = %DisplayErrorContext(&e), "aborting the multipart upload failed")
        }
    }
}

async fn score_and_upload(
    client: &Client,
    model: Arc<Model>,
    object: &ObjectRef,
    out_bucket: &str,
    out_key: &str,
    upload_id: Arc<Mutex<Option<String>>>,
) -> Result<Scored, ObjectError> {
    let got = client
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await
        .map_err(|e| {
            // The object (or the version the event named) is gone: nothing to retry.
            // A missing bucket is a configuration problem: retried, then dead-lettered.
            let not_found =
                e.as_service_error().is_some_and(|s| s.is_no_such_key() || s.code() == Some("NoSuchVersion"));
            if not_found {
                ObjectError::Missing
            } else {
                ObjectError::Read(DisplayErrorContext(&e).to_string())
            }
        })?;
    // S3 quotes ETags; the summary carries the bare value.
    let input_etag = got.e_tag.as_deref().map(|t| t.trim_matches('"').to_owned());
    let mut body = got.body;

    // Download: S3 body chunks -> bounded channel -> the pipeline's Read.
    let (in_tx, in_rx) = mpsc::channel::<io::Result<Bytes>>(16);
    let download = tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| io::Error::other(DisplayErrorContext(&e).to_string()));
            let failed = chunk.is_err();
            if in_tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let version = model.info().version.clone();
    // Pipeline: on a blocking thread; parts -> bounded channel -> uploader.
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(1);
    let pipeline = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader { rx: in_rx, current: Bytes::new() };
        let writer = PartWriter { tx: out_tx, buf: Vec::with_capacity(PART_SIZE + 512 * 1024) };
        score_csv(&model, reader, writer, |_| {})
    });
    let meta = [("model-version", version.as_str()), ("source-etag", input_etag.as_deref().unwrap_or(""))];
    let (uploaded, scored) = tokio::join!(upload(client, out_bucket, out_key, out_rx, &upload_id, &meta), pipeline);
    download.abort();

    let counts = match scored {
        Ok(Ok(counts)) => counts,
        Ok(Err(BatchError::Read(e))) => return Err(ObjectError::Read(e.to_string())),
        Ok(Err(BatchError::Write(e))) => {
            // The uploader stopped first; its error is the real one.
            return Err(uploaded.err().unwrap_or(ObjectError::Write(e.to_string())));
        }
        Ok(Err(bad)) => return Err(ObjectError::BadFile(bad)),
        Err(join) => return Err(ObjectError::Write(format!("the scoring task failed: {join}"))),
    };
    let pending = uploaded?;
    let parts = pending.finish(client, out_bucket, out_key, &upload_id).await?;
    Ok(Scored { counts, input_etag, parts })
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
    ) -> Result<usize, ObjectError> {
        match self {
            Pending::Single(bytes) => {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("text/csv; charset=utf-8")
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| ObjectError::Write(DisplayErrorContext(&e).to_string()))?;
                Ok(1)
            }
            Pending::Multipart { upload_id, mut parts } => {
                parts.sort_by_key(|p| p.part_number);
                let n = parts.len();
                client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| ObjectError::Write(DisplayErrorContext(&e).to_string()))?;
                // Completed: nothing left to abort.
                if let Ok(mut slot) = upload_id_slot.lock() {
                    *slot = None;
                }
                Ok(n)
            }
        }
    }
}

/// Receives parts from the pipeline. One part in total becomes a PutObject
/// later; more start a multipart upload whose parts go up as they come.
async fn upload(
    client: &Client,
    bucket: &str,
    key: &str,
    mut parts: mpsc::Receiver<Bytes>,
    upload_id_slot: &Mutex<Option<String>>,
    meta: &[(&str, &str)],
) -> Result<Pending, ObjectError> {
    let write_err = |e: String| ObjectError::Write(e);
    let Some(first) = parts.recv().await else { return Ok(Pending::Single(Bytes::new())) };
    let Some(second) = parts.recv().await else { return Ok(Pending::Single(first)) };

    let mut create = client.create_multipart_upload().bucket(bucket).key(key).content_type("text/csv; charset=utf-8");
    for (k, v) in meta.iter().filter(|(_, v)| !v.is_empty()) {
        create = create.metadata(*k, *v);
    }
    let created = create.send().await.map_err(|e| write_err(DisplayErrorContext(&e).to_string()))?;
    let upload_id = created.upload_id.ok_or_else(|| write_err("S3 returned no upload id".into()))?;
    if let Ok(mut slot) = upload_id_slot.lock() {
        *slot = Some(upload_id.clone());
    }

    let mut in_flight: JoinSet<Result<CompletedPart, String>> = JoinSet::new();
    let mut done = Vec::new();
    let mut number = 0i32;
    let mut next = Some(first);
    let mut queued = Some(second);
    loop {
        let part = match next.take() {
            Some(p) => p,
            None => match queued.take() {
                Some(p) => p,
                None => match parts.recv().await {
                    Some(p) => p,
                    None => break,
                },
            },
        };
        number += 1;
        let request = client.upload_part().bucket(bucket).key(key).upload_id(&upload_id).part_number(number);
        in_flight.spawn(async move {
            let sent =
                request.body(ByteStream::from(part)).send().await.map_err(|e| DisplayErrorContext(&e).to_string())?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag).build())
        });
        while in_flight.len() >= PARTS_IN_FLIGHT {
            done.push(joined(in_flight.join_next().await)?);
        }
    }
    while let Some(result) = in_flight.join_next().await {
        done.push(joined(Some(result))?);
    }
    Ok(Pending::Multipart { upload_id, parts: done })
}

fn joined(
    r: Option<Result<Result<CompletedPart, String>, tokio::task::JoinError>>,
) -> Result<CompletedPart, ObjectError> {
    match r {
        Some(Ok(Ok(part))) => Ok(part),
        Some(Ok(Err(e))) => Err(ObjectError::Write(e)),
        Some(Err(e)) => Err(ObjectError::Write(format!("a part upload task failed: {e}"))),
        None => Err(ObjectError::Write("no part upload was running".into())),
    }
}

/// `Read` over chunks arriving on a channel (blocking thread side).
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
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
