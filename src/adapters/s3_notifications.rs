//! S3 ObjectCreated records -> one scored CSV per object (plus a
//! `.summary.json` beside it) -> a report per file. Every record in scope
//! ends with a summary whatever happened to it (scored, rejected, missing,
//! timed out, failed); each route decides from the [`FileStatus`] what to
//! retry. A retry rewrites the same keys.
//!
//! Files are scored one after another, under one [`Budget`]: a file that
//! earlier files of the invocation left too little time is `failed`
//! (deferred) and retried, never `timed_out`. Not concurrently: the
//! pipeline already keeps two cores busy (reading and scoring), so files
//! side by side would each finish later, and a deadline would stop several
//! half-done files instead of leaving whole ones untouched for the retry.
//! A redelivered event with several records skips the files an earlier
//! delivery already scored (their summary says so, same ETag and model).

use std::time::Instant;

use aws_sdk_s3::Client;
use serde::Deserialize;

use super::drift_out::{self, Keep};
use super::s3_errors::ObjectError;
use super::s3_event::{ObjectRef, Records};
use super::s3_object::{millis, score_object, Budget};
use super::s3_routing::{output_for, unscored_output, Scope, Skip};
use super::s3_upload::{put_object, Lineage};
use super::Context;
use crate::contract::file::{FailureKind, FileReport, FileStatus, Location};
use crate::contract::invocation::EntryPoint;
use crate::core::csv_pipeline::BatchCounts;
use crate::core::model::Model;
use crate::telemetry::Metrics;

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
/// EventBridge) within `budget`. The S3 client is built only if a record is
/// to be read.
pub async fn score_records(ctx: &Context<'_>, records: Records, budget: Option<&Budget>) -> Outcome {
    let several = records.iter().filter(|r| r.is_ok()).count() > 1;
    let mut files = Vec::with_capacity(records.len());
    for record in records {
        let report = match record {
            Err(skip) => skipped(ctx.model, None, skip),
            Ok(object) => match output_for(ctx.config, &object.bucket, &object.key, Scope::InputPrefix) {
                Err(skip @ (Skip::NotCsv | Skip::Folder)) => {
                    let mut report = skipped(ctx.model, Some(&object), skip);
                    if let Some((bucket, key)) = unscored_output(ctx.config, &object.bucket, &object.key) {
                        report.output = Some(Location { bucket, key });
                        summarise(ctx.clients.s3().await, &mut report, &object).await;
                    }
                    report
                }
                Err(skip) => skipped(ctx.model, Some(&object), skip),
                Ok(out) => {
                    let client = ctx.clients.s3().await;
                    let done = if several { scored_before(client, ctx.model, &object, &out).await } else { None };
                    match done {
                        Some(report) => report,
                        None => score_one(client, ctx, &object, out, budget).await,
                    }
                }
            },
        };
        files.push(report);
    }
    Outcome { files }
}

/// What a summary says, as far as [`scored_before`] needs it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Written {
    status: String,
    input_etag: Option<String>,
    model_version: String,
    #[serde(flatten)]
    counts: WrittenCounts,
}

#[derive(Deserialize)]
struct WrittenCounts {
    rows: u64,
    scored: u64,
    rejected: u64,
    malignant: u64,
}

/// The report of a file an earlier delivery of this event already scored
/// (its summary says `scored`, for this ETag and this model), or `None`.
/// A multi-record event fails as a whole when a record is not reached, and
/// Lambda's retry brings every record again: the scored ones are not
/// scored twice. Anything unreadable means "not scored".
async fn scored_before(
    client: &Client,
    model: &Model,
    object: &ObjectRef,
    out: &(String, String),
) -> Option<FileReport> {
    let etag = object.etag.as_deref().map(|t| t.trim_matches('"')).filter(|t| !t.is_empty())?;
    let key = format!("{}.summary.json", out.1);
    let got = client.get_object().bucket(&out.0).key(&key).send().await.ok()?;
    let bytes = got.body.collect().await.ok()?.into_bytes();
    let written: Written = serde_json::from_slice(&bytes).ok()?;
    let same = written.status == FileStatus::Scored.as_str()
        && written.input_etag.as_deref() == Some(etag)
        && written.model_version == model.info().version;
    if !same {
        return None;
    }
    tracing::info!(entry_point = EntryPoint::S3.as_str(), bucket = %object.bucket, key = %object.key, "already scored by an earlier delivery of this event; not scored again");
    let WrittenCounts { rows, scored, rejected, malignant } = written.counts;
    Some(FileReport {
        status: FileStatus::Scored,
        failure: None,
        input: Some(Location { bucket: object.bucket.clone(), key: object.key.clone() }),
        output: Some(Location { bucket: out.0.clone(), key: out.1.clone() }),
        reason: None,
        counts: Some(BatchCounts { rows, scored, rejected, malignant, ..BatchCounts::default() }),
        model_version: written.model_version,
        input_etag: Some(etag.to_owned()),
        duration_ms: 0,
        drift: None,
        challenger: None,
    })
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
        challenger: None,
    }
}

/// The status a file ends in when it was not scored, and why.
fn status_of(e: &ObjectError) -> (FileStatus, Option<FailureKind>) {
    match e {
        ObjectError::BadFile(_) => (FileStatus::Rejected, None),
        ObjectError::Missing { .. } => (FileStatus::Missing, None),
        ObjectError::TooBig { .. } | ObjectError::Deadline => (FileStatus::TimedOut, None),
        ObjectError::Deferred { .. } => (FileStatus::Failed, Some(FailureKind::Deferred)),
        ObjectError::Denied(_) => (FileStatus::Failed, Some(FailureKind::Configuration)),
        ObjectError::Read(_) | ObjectError::Write(_) => (FileStatus::Failed, Some(FailureKind::Transient)),
    }
}

/// Scores one object into `out` (bucket, key) and writes its summary; never
/// fails, the report says what happened.
pub async fn score_one(
    client: &Client,
    ctx: &Context<'_>,
    object: &ObjectRef,
    (out_bucket, out_key): (String, String),
    budget: Option<&Budget>,
) -> FileReport {
    let (model, config) = (ctx.model, ctx.config);
    let started = Instant::now();
    let models = (std::sync::Arc::clone(model), ctx.challenger.cloned());
    let result = score_object(client, models, object, &out_bucket, &out_key, budget, config).await;
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
        challenger: None,
    };
    match result {
        Ok(scored) => {
            report.input_etag = scored.input_etag.or(report.input_etag);
            report.counts = Some(scored.counts);
            // The page first: the summary, written last, says whether all went well.
            let lineage = Lineage { model_version: &report.model_version, source_etag: report.input_etag.as_deref() };
            let keep = Keep::Page { client, bucket: &out_bucket, out_key: &out_key, source_key: &object.key, lineage };
            match drift_out::publish(ctx, EntryPoint::S3, scored.tallies, keep).await {
                Ok(reports) => (report.drift, report.challenger) = (reports.drift, reports.challenger),
                Err(e) => {
                    tracing::error!(entry_point = EntryPoint::S3.as_str(), bucket = %object.bucket, key = %object.key, error = %e, "writing the drift page failed; the file will be retried");
                    (report.status, report.failure) = status_of(&e);
                    report.reason = Some(format!("writing the drift page failed: {e}"));
                }
            }
        }
        Err(e) => {
            (report.status, report.failure) = status_of(&e);
            report.reason = Some(e.to_string());
        }
    }
    report.duration_ms = millis(started);
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
    // A deferred file (earlier work of the invocation used the time) is a
    // normal retry, not a failure: it has its own metric, so the
    // Files_failed alarm does not fire on it.
    let status = match (report.status, report.failure) {
        (FileStatus::Failed, Some(FailureKind::Deferred)) => "deferred",
        (status, _) => status.as_str(),
    };
    metrics.count(format!("Files_{status}"), 1).millis("FileDuration", report.duration_ms as f64);
    if report.counts.is_some() {
        metrics.count("RowsScored", c.scored).count("RejectedInputs", c.rejected);
        for (code, n) in &c.rejected_by_reason {
            metrics.count(format!("Rejected_{code}"), *n);
        }
    }
    metrics.emit();
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
        (FileStatus::Failed, Some(FailureKind::Deferred)) => tracing::warn!(
            entry_point,
            bucket,
            key,
            reason,
            "earlier files of the invocation used the time this file needed; it will be retried"
        ),
        (FileStatus::Failed, _) => {
            tracing::error!(entry_point, bucket, key, error = reason, "file failed; it will be retried")
        }
        (FileStatus::Skipped, _) => {}
    }
}

async fn write_summary(client: &Client, bucket: &str, out_key: &str, report: &FileReport) -> Result<(), ObjectError> {
    let key = format!("{out_key}.summary.json");
    let body = report.summary_json().map_err(|e| ObjectError::Write(e.to_string()))?;
    let lineage = Lineage { model_version: &report.model_version, source_etag: report.input_etag.as_deref() };
    put_object(client, (bucket, &key), "application/json", &lineage, body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::adapters::aws::Clients;
    use crate::config::BatchConfig;

    #[tokio::test]
    async fn records_that_are_all_skipped_are_reported_without_building_an_s3_client() {
        let model = Arc::new(Model::embedded().unwrap());
        let config = BatchConfig::new("incoming/".into(), "scored/".into(), None, None).unwrap();
        let clients = Clients::default();
        let ctx = Context { model: &model, challenger: None, config: &config, clients: &clients };
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
