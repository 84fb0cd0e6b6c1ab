//! The output of one scored object, uploaded as it is produced: parts of at
//! least [`PART_SIZE`] cut by a [`PartWriter`] on the pipeline's thread, a
//! single PutObject for a small output, else a multipart upload (a bounded
//! number of parts in flight) completed only once the pipeline succeeded and
//! aborted otherwise. Every object the function writes carries its
//! [`Lineage`] through [`put_object`].

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::s3_errors::{is_denied, write_error, ObjectError};

/// Size of each uploaded part (S3's minimum is 5 MiB; the last may be smaller).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once; with the part being filled and one queued, memory
/// for output is at most (PARTS_IN_FLIGHT + 2) * PART_SIZE.
pub const PARTS_IN_FLIGHT: usize = 2;
/// How long a CreateMultipartUpload sent before the stop may still take to
/// answer: S3 may create the upload anyway, and only its id lets us abort it.
const CREATE_GRACE: Duration = Duration::from_secs(2);

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
    /// Of no source object (SQS results, summaries): the model version only.
    pub fn of_model(model_version: &str) -> Lineage<'_> {
        Lineage { model_version, source_etag: None }
    }

    /// As `x-amz-meta-*` metadata (empty values left out).
    pub fn metadata(&self) -> HashMap<String, String> {
        [(MODEL_VERSION_METADATA, Some(self.model_version)), ("source-etag", self.source_etag)]
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k.to_owned(), v.to_owned())))
            .collect()
    }
}

/// Writes one whole object with its lineage: the one PutObject of every
/// object the function writes (scored CSVs, summaries, drift pages, SQS
/// results and batch summaries).
pub async fn put_object(
    client: &Client,
    (bucket, key): (&str, &str),
    content_type: &str,
    lineage: &Lineage<'_>,
    body: impl Into<ByteStream>,
) -> Result<(), ObjectError> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .set_metadata(Some(lineage.metadata()))
        .body(body.into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| write_error(e, bucket, key))
}

/// Output waiting for the pipeline's verdict before it becomes visible.
pub enum Pending {
    /// Small output: one PutObject.
    Single(Bytes),
    Multipart {
        upload_id: String,
        parts: Vec<CompletedPart>,
    },
}

impl Pending {
    pub async fn finish(
        self,
        client: &Client,
        bucket: &str,
        key: &str,
        upload_id_slot: &Mutex<Option<String>>,
        meta: &Lineage<'_>,
    ) -> Result<(), ObjectError> {
        match self {
            Pending::Single(bytes) => put_object(client, (bucket, key), OUTPUT_CONTENT_TYPE, meta, bytes).await?,
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
pub async fn upload(
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

    let create = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type(OUTPUT_CONTENT_TYPE)
        .set_metadata(Some(meta.metadata()));
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

/// `Write` that cuts the output into parts of at least PART_SIZE bytes and
/// hands them to the uploader. Used on the pipeline's (blocking) thread.
/// The last, possibly short, part goes only through [`PartWriter::finish`],
/// once the file succeeded; dropping the writer does no I/O.
pub struct PartWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl PartWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> Self {
        PartWriter { tx, buf: Vec::with_capacity(PART_SIZE + 512 * 1024) }
    }

    fn send(&mut self) -> io::Result<()> {
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE + 512 * 1024));
        self.tx
            .blocking_send(Bytes::from(part))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Sends the last part: the output is complete. Blocks until the
    /// uploader takes it, so call it where the pipeline runs, never on a
    /// runtime thread.
    pub fn finish(mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
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
    /// No I/O: a writer dropped without [`PartWriter::finish`] belongs to a
    /// file that failed or was stopped. Its last part is discarded; the
    /// uploader never completes an upload the pipeline did not finish.
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            tracing::debug!(bytes = self.buf.len(), "an unfinished output's last part discarded");
        }
    }
}

/// Aborts a multipart upload (after a failure or a stop): no partial output.
pub async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writer_dropped_on_a_runtime_thread_does_no_io_and_does_not_panic() {
        // Before: Drop sent the last part with `blocking_send`, which panics
        // on a runtime thread ("Cannot block the current thread").
        let (tx, mut rx) = mpsc::channel::<Bytes>(1);
        let mut writer = PartWriter::new(tx);
        writer.write_all(b"a short last part").unwrap();
        drop(writer);
        assert!(rx.recv().await.is_none(), "nothing sent: the channel just closes");
    }

    #[test]
    fn only_finish_sends_the_last_part() {
        let (tx, mut rx) = mpsc::channel::<Bytes>(1);
        let mut writer = PartWriter::new(tx);
        writer.write_all(b"last").unwrap();
        writer.finish().unwrap();
        assert_eq!(rx.blocking_recv().as_deref(), Some(&b"last"[..]));
        assert!(rx.blocking_recv().is_none());
    }
}
