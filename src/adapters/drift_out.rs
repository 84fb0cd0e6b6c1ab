//! What every batch route does with its drift statistics, in one place:
//! the report (none when drift is off or no row was scored), written where
//! the route keeps it, then its metrics — emitted only once the report is
//! kept, so a write that fails (and is retried) is not counted twice.
//!
//! Where each route keeps it: a scored S3 file, as the page beside its
//! output (the report itself goes into the file's summary, written last by
//! the caller); an SQS batch's observation messages, as the batch summary;
//! a Distributed Map batch, nowhere (the answer is the items): metrics only.

use aws_sdk_s3::Client;

use super::s3_errors::ObjectError;
use super::s3_upload::{put_object, Lineage};
use super::Context;
use crate::contract::file::BatchSummary;
use crate::contract::invocation::EntryPoint;
use crate::core::drift::html::{self, PageContext};
use crate::core::drift::{DriftReport, DriftStats};
use crate::telemetry;

/// Where a route keeps its drift report.
pub enum Keep<'a> {
    /// Metrics only.
    Nowhere,
    /// A scored file's page, `<output key>.report.html`, with the output's lineage.
    Page { client: &'a Client, bucket: &'a str, out_key: &'a str, source_key: &'a str, lineage: Lineage<'a> },
    /// An SQS batch's observation messages: `key` (the batch summary).
    BatchSummary { bucket: &'a str, key: &'a str, request_id: &'a str, messages: usize },
}

/// Reports `stats` (if any row was scored), keeps the report as `keep`
/// says, then emits its metrics under `entry_point`. Err when it could not
/// be kept (nothing was emitted).
pub async fn publish(
    ctx: &Context<'_>,
    entry_point: EntryPoint,
    stats: Option<DriftStats>,
    keep: Keep<'_>,
) -> Result<Option<DriftReport>, ObjectError> {
    let Some((stats, options)) = stats.zip(ctx.config.drift.as_ref()) else { return Ok(None) };
    if stats.scored() == 0 && matches!(keep, Keep::Nowhere) {
        return Ok(None);
    }
    let model = ctx.model;
    let report = stats.report(model, options);
    let model_version = &model.info().version;
    match keep {
        Keep::Nowhere => {}
        Keep::Page { client, bucket, out_key, source_key, lineage } => {
            let page =
                html::render(&report, &PageContext { source: Some(source_key), model_version: Some(model_version) });
            let key = format!("{out_key}.report.html");
            put_object(client, (bucket, &key), "text/html; charset=utf-8", &lineage, page.into_bytes()).await?;
        }
        Keep::BatchSummary { bucket, key, request_id, messages } => {
            let summary = BatchSummary { request_id, messages, model_version, drift: &report };
            let body = summary.summary_json().map_err(|e| ObjectError::Write(e.to_string()))?;
            let client = ctx.clients.s3().await;
            put_object(client, (bucket, key), "application/json", &Lineage::of_model(model_version), body).await?;
        }
    }
    telemetry::emit_drift(entry_point.as_str(), &report.metric_values());
    Ok(Some(report))
}
