//! What every batch route does with its drift statistics and its
//! challenger's comparison, in one place: the reports (no drift report when
//! drift is off or no row was scored; no challenger report without a
//! challenger, or, kept nowhere, with no row), written where the route keeps
//! them, then their metrics — emitted only once the reports are kept, so a
//! write that fails (and is retried) is not counted twice.
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
use crate::core::challenger::ChallengerReport;
use crate::core::drift::html::{self, PageContext};
use crate::core::drift::DriftReport;
use crate::core::scoring::Tallies;
use crate::telemetry;

/// Where a route keeps its reports.
pub enum Keep<'a> {
    /// Metrics only.
    Nowhere,
    /// A scored file's drift page, `<output key>.report.html`, with the
    /// output's lineage (the reports themselves go into the file's summary).
    Page { client: &'a Client, bucket: &'a str, out_key: &'a str, source_key: &'a str, lineage: Lineage<'a> },
    /// An SQS batch's observation messages: `key` (the batch summary).
    BatchSummary { bucket: &'a str, key: &'a str, request_id: &'a str, messages: usize },
}

/// A file's or a batch's reports, for its summary.
#[derive(Debug, Default)]
pub struct Reports {
    pub drift: Option<DriftReport>,
    pub challenger: Option<ChallengerReport>,
}

/// Reports what `tallies` gathered, keeps the reports as `keep` says, then
/// emits their metrics under `entry_point`. Err when they could not be kept
/// (nothing was emitted).
pub async fn publish(
    ctx: &Context<'_>,
    entry_point: EntryPoint,
    tallies: Tallies,
    keep: Keep<'_>,
) -> Result<Reports, ObjectError> {
    let nowhere = matches!(keep, Keep::Nowhere);
    let model = ctx.model;
    let drift = tallies
        .drift
        .zip(ctx.config.drift.as_ref())
        .filter(|(stats, _)| stats.scored() > 0 || !nowhere)
        .map(|(stats, options)| stats.report(model, options));
    let challenger = tallies
        .challenger
        .zip(ctx.challenger)
        .map(|(stats, challenger)| stats.report(challenger))
        .filter(|report| !(report.is_empty() && nowhere));
    let model_version = &model.info().version;
    match keep {
        Keep::Nowhere => {}
        Keep::Page { client, bucket, out_key, source_key, lineage } => {
            if let Some(report) = &drift {
                let context = PageContext { source: Some(source_key), model_version: Some(model_version) };
                let page = html::render(report, &context);
                let key = format!("{out_key}.report.html");
                put_object(client, (bucket, &key), "text/html; charset=utf-8", &lineage, page.into_bytes()).await?;
            }
        }
        Keep::BatchSummary { bucket, key, request_id, messages } => {
            if drift.is_some() || challenger.is_some() {
                let (drift, challenger) = (drift.as_ref(), challenger.as_ref());
                let summary = BatchSummary { request_id, messages, model_version, drift, challenger };
                let body = summary.summary_json().map_err(|e| ObjectError::Write(e.to_string()))?;
                let client = ctx.clients.s3().await;
                put_object(client, (bucket, key), "application/json", &Lineage::of_model(model_version), body).await?;
            }
        }
    }
    if let Some(report) = &drift {
        telemetry::emit_drift(entry_point.as_str(), &report.metric_values());
    }
    if let Some(report) = &challenger {
        telemetry::emit_challenger(entry_point.as_str(), report);
    }
    Ok(Reports { drift, challenger })
}
