//! S3 ObjectCreated records -> one scored CSV per object (plus a
//! `.summary.json` beside it) -> a report per file. Transient failures are
//! collected so the invocation fails and Lambda retries; a retry rewrites the
//! same keys.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde::Serialize;

use crate::adapters::s3_batch::{millis, score_object, ObjectError};
use crate::adapters::s3_event::{ObjectRef, Records};
use crate::config::{BatchConfig, Skip};
use crate::core::batch::BatchCounts;
use crate::core::model::Model;
use crate::telemetry::Metrics;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub key: String,
}

/// What happened to one record. Also the content of the `.summary.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// `scored`, `rejected` (the file is unusable), `skipped`, or `failed` (transient; retried).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub counts: Option<BatchCounts>,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_etag: Option<String>,
    pub duration_ms: u64,
}

/// Reports for every record, and whether any failed transiently.
pub struct Outcome {
    pub files: Vec<FileReport>,
    pub transient_failures: usize,
}

pub async fn score_records(
    client: &Client,
    model: &Arc<Model>,
    config: &BatchConfig,
    records: Records,
    deadline: Option<SystemTime>,
) -> Outcome {
    let mut files = Vec::with_capacity(records.len());
    let mut transient_failures = 0;
    for record in records {
        let report = match record {
            Err(skip) => skipped(model, None, skip),
            Ok(object) => match config.output_for(&object.bucket, &object.key) {
                Err(skip) => skipped(model, Some(&object), skip),
                Ok((out_bucket, out_key)) => score_one(client, model, &object, out_bucket, out_key, deadline).await,
            },
        };
        transient_failures += usize::from(report.status == "failed");
        files.push(report);
    }
    Outcome { files, transient_failures }
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
        status: "skipped",
        input,
        output: None,
        reason: Some(skip.as_str().to_owned()),
        counts: None,
        model_version: model.info().version.clone(),
        input_etag: None,
        duration_ms: 0,
    }
}

pub async fn score_one(
    client: &Client,
    model: &Arc<Model>,
    object: &ObjectRef,
    out_bucket: String,
    out_key: String,
    deadline: Option<SystemTime>,
) -> FileReport {
    let started = Instant::now();
    let result = score_object(client, Arc::clone(model), object, &out_bucket, &out_key, deadline).await;
    let mut report = FileReport {
        status: "scored",
        input: Some(Location { bucket: object.bucket.clone(), key: object.key.clone() }),
        output: Some(Location { bucket: out_bucket.clone(), key: out_key.clone() }),
        reason: None,
        counts: None,
        model_version: model.info().version.clone(),
        input_etag: object.etag.clone(),
        duration_ms: 0,
    };
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    match result {
        Ok(scored) => {
            report.input_etag = scored.input_etag.or(report.input_etag);
            report.counts = Some(scored.counts);
        }
        Err(e) => {
            report.status = if e.is_transient() { "failed" } else { "rejected" };
            report.reason = Some(e.to_string());
            if matches!(e, ObjectError::Missing) {
                report.output = None;
            }
        }
    }
    report.duration_ms = millis(started);
    let c = report.counts.clone().unwrap_or_default();
    let mut metrics = Metrics::new("s3");
    metrics.count(format!("Files_{}", report.status), 1).millis("FileDuration", report.duration_ms as f64);
    if report.counts.is_some() {
        metrics.count("RowsScored", c.scored).count("RejectedInputs", c.rejected);
        for (code, n) in &c.rejected_by_reason {
            metrics.count(format!("Rejected_{code}"), *n);
        }
    }
    metrics.emit();
    match report.status {
        "scored" => tracing::info!(
            entry_point = "s3", bucket, key, out_bucket = %out_bucket, out_key = %out_key,
            rows = c.rows, scored = c.scored, rejected = c.rejected, duration_ms = report.duration_ms,
            "file scored"
        ),
        "rejected" => {
            tracing::warn!(entry_point = "s3", bucket, key, reason = report.reason.as_deref(), "file rejected")
        }
        _ => tracing::error!(
            entry_point = "s3",
            bucket,
            key,
            error = report.reason.as_deref(),
            "file failed; the invocation will be retried"
        ),
    }
    // The summary goes beside the output, for scored and unusable files alike,
    // so whoever waits for the output learns what happened.
    if report.status != "failed" && report.output.is_some() {
        if let Err(e) = write_summary(client, &out_bucket, &out_key, &report).await {
            tracing::error!(entry_point = "s3", bucket, key, error = %e, "writing the summary failed; retrying the file");
            report.status = "failed";
            report.reason = Some(format!("writing the summary failed: {e}"));
        }
    }
    report
}

async fn write_summary(client: &Client, bucket: &str, out_key: &str, report: &FileReport) -> Result<(), String> {
    let body = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    client
        .put_object()
        .bucket(bucket)
        .key(format!("{out_key}.summary.json"))
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| DisplayErrorContext(&e).to_string())
}
