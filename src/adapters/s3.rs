//! S3 ObjectCreated records -> one scored CSV per object (plus a
//! `.summary.json` beside it) -> a report per file. Every record in scope
//! ends with a summary whatever happened to it (scored, rejected, missing,
//! timed out, failed); each route decides from the [`FileStatus`] what to
//! retry. A retry rewrites the same keys.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::s3_batch::{millis, score_object, write_error, Lineage, ObjectError};
use super::s3_event::{ObjectRef, Records};
use super::Context;
use crate::config::{BatchConfig, Scope, Skip};
use crate::contract::file::{FailureKind, FileReport, FileStatus, Location};
use crate::contract::invocation::EntryPoint;
use crate::core::model::Model;
use crate::telemetry::{self, Metrics};

/// Reports for every record.
pub struct Outcome {
    pub files: Vec<FileReport>,
}

impl Outcome {
    /// Files that `failed`: the route must retry them.
    pub fn failed(&self) -> usize {
        self.files.iter().filter(|f| f.status == FileStatus::Failed).count()
    }

    /// Whether a failure is a configuration error (a permission missing).
    pub fn configuration_error(&self) -> bool {
        self.files.iter().any(|f| f.failure == Some(FailureKind::Configuration))
    }
}

/// Scores every record of a notification (direct, through SQS or
/// EventBridge). The S3 client is built only if a record is to be read.
pub async fn score_records(ctx: &Context<'_>, records: Records, deadline: Option<SystemTime>) -> Outcome {
    let mut files = Vec::with_capacity(records.len());
    for record in records {
        let report = match record {
            Err(skip) => skipped(ctx.model, None, skip),
            Ok(object) => match ctx.config.output_for(&object.bucket, &object.key, Scope::InputPrefix) {
                Err(skip @ (Skip::NotCsv | Skip::Folder)) => {
                    let mut report = skipped(ctx.model, Some(&object), skip);
                    if let Some((bucket, key)) = ctx.config.unscored_output(&object.bucket, &object.key) {
                        report.output = Some(Location { bucket, key });
                        summarise(ctx.clients.s3().await, &mut report, &object).await;
                    }
                    report
                }
                Err(skip) => skipped(ctx.model, Some(&object), skip),
                Ok((out_bucket, out_key)) => {
                    let client = ctx.clients.s3().await;
                    score_one(client, ctx.model, ctx.config, &object, out_bucket, out_key, deadline).await
                }
            },
        };
        files.push(report);
    }
    Outcome { files }
}

pub fn skipped(model: &Model, object: Option<&ObjectRef>, skip: Skip) -> FileReport {
    let input = object.map(|o| Location { bucket: o.bucket.clone(), key: o.key.clone() });
    match (&input, skip) {
        (Some(i), Skip::OwnOutput) => {
            tracing::warn!(bucket = %i.bucket, key = %i.key, reason = skip.as_str(), "S3 record refused")
        }
        (Some(i), _) => tracing::info!(bucket = %i.bucket, key = %i.key, reason = skip.as_str(), "S3 record skipped"),
        (None, _) => tracing::info!(reason = skip.as_str(), "S3 record skipped"),
    }
    FileReport {
        status: FileStatus::Skipped,
        failure: None,
        input,
        output: None,
        reason: Some(skip.as_str().to_owned()),
        counts: None,
        model_version: model.info().version.clone(),
        input_etag: None,
        duration_ms: 0,
        drift: None,
    }
}

/// The status a file ends in when it was not scored, and why.
fn status_of(e: &ObjectError) -> (FileStatus, Option<FailureKind>) {
    match e {
        ObjectError::BadFile(_) => (FileStatus::Rejected, None),
        ObjectError::Missing { .. } => (FileStatus::Missing, None),
        ObjectError::TooBig { .. } | ObjectError::Deadline => (FileStatus::TimedOut, None),
        ObjectError::Denied(_) => (FileStatus::Failed, Some(FailureKind::Configuration)),
        ObjectError::Read(_) | ObjectError::Write(_) => (FileStatus::Failed, Some(FailureKind::Transient)),
    }
}

/// Scores one object and writes its summary; never fails, the report says what happened.
pub async fn score_one(
    client: &Client,
    model: &Arc<Model>,
    config: &BatchConfig,
    object: &ObjectRef,
    out_bucket: String,
    out_key: String,
    deadline: Option<SystemTime>,
) -> FileReport {
    let started = Instant::now();
    let result = score_object(client, Arc::clone(model), object, &out_bucket, &out_key, deadline, config).await;
    let mut report = FileReport {
        status: FileStatus::Scored,
        failure: None,
        input: Some(Location { bucket: object.bucket.clone(), key: object.key.clone() }),
        output: Some(Location { bucket: out_bucket.clone(), key: out_key.clone() }),
        reason: None,
        counts: None,
        model_version: model.info().version.clone(),
        input_etag: object.etag.clone(),
        duration_ms: 0,
        drift: None,
    };
    match result {
        Ok(scored) => {
            report.input_etag = scored.input_etag.or(report.input_etag);
            report.counts = Some(scored.counts);
            report.drift = scored.drift.zip(config.drift.as_ref()).map(|(stats, o)| stats.report(model, o));
        }
        Err(e) => {
            (report.status, report.failure) = status_of(&e);
            report.reason = Some(e.to_string());
        }
    }
    report.duration_ms = millis(started);
    // The page first: the summary, written last, says whether all went well.
    if let Err(e) = write_page(client, &out_bucket, &out_key, &report, object).await {
        tracing::error!(entry_point = EntryPoint::S3.as_str(), bucket = %object.bucket, key = %object.key, error = %e, "writing the drift page failed; the file will be retried");
        (report.status, report.failure) = status_of(&e);
        report.reason = Some(format!("writing the drift page failed: {e}"));
    }
    // The summary goes beside the output whatever happened, so whoever waits
    // for the output learns why there is none.
    summarise(client, &mut report, object).await;
    log_and_count(&report, object);
    report
}

/// Writes the report as the summary at its output location; a failure to
/// write it fails the file (retried), as the summary is its answer.
async fn summarise(client: &Client, report: &mut FileReport, object: &ObjectRef) {
    let Some(out) = report.output.clone() else { return };
    if let Err(e) = write_summary(client, &out.bucket, &out.key, report).await {
        let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
        let summary_status = status_of(&e);
        tracing::error!(entry_point = EntryPoint::S3.as_str(), bucket, key, error = %e, "writing the summary failed; the file will be retried");
        if report.status != FileStatus::Failed {
            (report.status, report.failure) = summary_status;
            report.reason = Some(format!("writing the summary failed: {e}"));
        }
    }
}

fn log_and_count(report: &FileReport, object: &ObjectRef) {
    let c = report.counts.clone().unwrap_or_default();
    let entry_point = EntryPoint::S3.as_str();
    let mut metrics = Metrics::new(entry_point);
    metrics.count(format!("Files_{}", report.status.as_str()), 1).millis("FileDuration", report.duration_ms as f64);
    if report.counts.is_some() {
        metrics.count("RowsScored", c.scored).count("RejectedInputs", c.rejected);
        for (code, n) in &c.rejected_by_reason {
            metrics.count(format!("Rejected_{code}"), *n);
        }
    }
    metrics.emit();
    // Per file, never per row; only a scored file's rows say anything.
    if let (FileStatus::Scored, Some(drift)) = (report.status, &report.drift) {
        telemetry::emit_drift(entry_point, &drift.metric_values());
    }
    let (bucket, key, reason) = (object.bucket.as_str(), object.key.as_str(), report.reason.as_deref());
    let out_key = report.output.as_ref().map(|o| o.key.as_str());
    match (report.status, report.failure) {
        (FileStatus::Scored, _) => tracing::info!(
            entry_point,
            bucket,
            key,
            out_key,
            rows = c.rows,
            scored = c.scored,
            rejected = c.rejected,
            duration_ms = report.duration_ms,
            "file scored"
        ),
        (FileStatus::Rejected, _) => tracing::warn!(entry_point, bucket, key, reason, "file rejected"),
        (FileStatus::Missing, _) => {
            tracing::warn!(entry_point, bucket, key, reason, "object missing; nothing to score")
        }
        (FileStatus::TimedOut, _) => tracing::error!(
            entry_point,
            bucket,
            key,
            reason,
            duration_ms = report.duration_ms,
            "file timed out; it is not retried: use the Distributed Map route for files this large"
        ),
        (FileStatus::Failed, Some(FailureKind::Configuration)) => tracing::error!(
            entry_point,
            bucket,
            key,
            error = reason,
            "S3 denied the function's role a permission it needs (configuration): fix the role; the event is \
             retried, then kept by the failure destination"
        ),
        (FileStatus::Failed, _) => {
            tracing::error!(entry_point, bucket, key, error = reason, "file failed; it will be retried")
        }
        (FileStatus::Skipped, _) => {}
    }
}

/// `<output key>.report.html`: the drift report of a scored file as a page,
/// with the output's lineage metadata. Nothing for other files.
async fn write_page(
    client: &Client,
    bucket: &str,
    out_key: &str,
    report: &FileReport,
    object: &ObjectRef,
) -> Result<(), ObjectError> {
    if report.status != FileStatus::Scored {
        return Ok(());
    }
    let Some(page) = report.drift_page(Some(&object.key)) else { return Ok(()) };
    let key = format!("{out_key}.report.html");
    let lineage = Lineage { model_version: &report.model_version, source_etag: report.input_etag.as_deref() };
    let mut put = client.put_object().bucket(bucket).key(&key).content_type("text/html; charset=utf-8");
    for (k, v) in lineage.pairs() {
        put = put.metadata(k, v);
    }
    put.body(ByteStream::from(page.into_bytes())).send().await.map(|_| ()).map_err(|e| write_error(e, bucket, &key))
}

async fn write_summary(client: &Client, bucket: &str, out_key: &str, report: &FileReport) -> Result<(), ObjectError> {
    let key = format!("{out_key}.summary.json");
    let body = report.summary_json().map_err(|e| ObjectError::Write(e.to_string()))?;
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| write_error(e, bucket, &key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::aws::Clients;

    #[tokio::test]
    async fn records_that_are_all_skipped_are_reported_without_building_an_s3_client() {
        let model = Arc::new(Model::embedded().unwrap());
        let config = BatchConfig::new("incoming/".into(), "scored/".into(), None, None).unwrap();
        let clients = Clients::default();
        let ctx = Context { model: &model, config: &config, clients: &clients };
        let object =
            |key: &str| ObjectRef { bucket: "b".into(), key: key.into(), size: None, etag: None, version_id: None };
        let records = vec![Err(Skip::TestEvent), Ok(object("scored/a.csv")), Ok(object("other/a.csv"))];
        let outcome = score_records(&ctx, records, None).await;
        let reasons: Vec<Option<&str>> = outcome.files.iter().map(|f| f.reason.as_deref()).collect();
        assert_eq!(
            reasons,
            [Some(Skip::TestEvent.as_str()), Some(Skip::OwnOutput.as_str()), Some(Skip::OutsideInputPrefix.as_str())]
        );
        assert!(outcome.files.iter().all(|f| f.status == FileStatus::Skipped));
        assert!(!clients.s3_built());
    }
}
