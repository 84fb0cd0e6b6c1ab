//! S3 Batch Operations ("Invoke AWS Lambda function"): one invocation per
//! manifest object, `{"invocationSchemaVersion": "2.0" | "1.0", "invocationId",
//! "job", "tasks": [...]}`. Each object is scored with the batch pipeline
//! unchanged; the answer gives each task a result code that tells the job
//! whether to retry, and a result string with counts (never data).
//!
//! The event is read with its own small types rather than
//! `aws_lambda_events::s3::batch_job`: that module is behind a feature we do
//! not build, and one `Task` type reads schema 1.0 (bucket ARN) and 2.0
//! (bucket name) alike.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::adapters::s3::{self, FailureKind, FileReport, FileStatus};
use crate::adapters::s3_event::{decode_key, ObjectRef};
use crate::config::BatchConfig;
use crate::core::model::Model;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_id: String,
    /// Schema 2.0.
    pub s3_bucket: Option<String>,
    /// Schema 1.0: `arn:aws:s3:::bucket`.
    pub s3_bucket_arn: Option<String>,
    /// URL-encoded, as S3 sends it (see [`decode_key`]).
    pub s3_key: String,
    pub s3_version_id: Option<String>,
}

/// What the job does with a task: `TemporaryFailure` is redriven before the
/// job completes; `PermanentFailure` goes to the completion report as failed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum ResultCode {
    Succeeded,
    TemporaryFailure,
    PermanentFailure,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    pub result_code: ResultCode,
    pub result_string: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub invocation_schema_version: String,
    pub treat_missing_keys_as: ResultCode,
    pub invocation_id: String,
    pub results: Vec<TaskResult>,
}

impl Task {
    fn object(&self) -> Option<ObjectRef> {
        let bucket = match (&self.s3_bucket, &self.s3_bucket_arn) {
            (Some(b), _) => b.clone(),
            (None, Some(arn)) => arn.rsplit(":::").next()?.to_owned(),
            (None, None) => return None,
        };
        Some(ObjectRef {
            bucket,
            key: decode_key(&self.s3_key),
            size: None,
            etag: None,
            version_id: self.s3_version_id.clone().filter(|v| !v.is_empty()),
        })
    }
}

/// Where a manifest object's output goes: like the S3 trigger (the input
/// prefix replaced by the output prefix), but any key of the manifest is
/// accepted; our own outputs are still refused.
fn output_for(config: &BatchConfig, object: &ObjectRef) -> Result<(String, String), String> {
    let bucket = config.output_bucket.clone().unwrap_or_else(|| object.bucket.clone());
    if bucket == object.bucket && !config.output_prefix.is_empty() && object.key.starts_with(&config.output_prefix) {
        return Err("the object is one of the function's outputs".into());
    }
    let rest = object.key.strip_prefix(&config.input_prefix).unwrap_or(&object.key);
    Ok((bucket, format!("{}{}", config.output_prefix, rest)))
}

pub async fn run_tasks(
    client: &aws_sdk_s3::Client,
    model: &Arc<Model>,
    config: &BatchConfig,
    tasks: Vec<Task>,
    deadline: Option<SystemTime>,
) -> Vec<TaskResult> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let result = match task.object() {
            None => TaskResult {
                task_id: task.task_id,
                result_code: ResultCode::PermanentFailure,
                result_string: "the task names no bucket".into(),
            },
            Some(object) => match output_for(config, &object) {
                Err(why) => {
                    TaskResult { task_id: task.task_id, result_code: ResultCode::PermanentFailure, result_string: why }
                }
                Ok((out_bucket, out_key)) => {
                    let report = s3::score_one(client, model, config, &object, out_bucket, out_key, deadline).await;
                    task_result(task.task_id, &report)
                }
            },
        };
        results.push(result);
    }
    results
}

fn task_result(task_id: String, report: &FileReport) -> TaskResult {
    let result_code = result_code(report);
    let result_string = match (&report.counts, &report.output) {
        (Some(c), Some(out)) if report.status == FileStatus::Scored => format!(
            "rows={} scored={} rejected={} output=s3://{}/{}",
            c.rows, c.scored, c.rejected, out.bucket, out.key
        ),
        _ => report.reason.clone().unwrap_or_default(),
    };
    TaskResult { task_id, result_code, result_string }
}

/// How the job treats each file status.
fn result_code(report: &FileReport) -> ResultCode {
    match (report.status, report.failure) {
        (FileStatus::Scored, _) => ResultCode::Succeeded,
        // Transient (S3 unavailable, throttled): the job redrives the task.
        (FileStatus::Failed, Some(FailureKind::Transient) | None) => ResultCode::TemporaryFailure,
        // A permission the role lacks will not appear during the job: failing
        // the task permanently puts the reason (naming the permission) in the
        // completion report at once, and the job's own failure threshold
        // stops a misconfigured job early instead of redriving every task.
        // Fix the role, then rerun the failed tasks from the report.
        (FileStatus::Failed, Some(FailureKind::Configuration)) => ResultCode::PermanentFailure,
        // Unusable, missing, or too big for one invocation (a retry would
        // time out again; the reason points to the Distributed Map route).
        (FileStatus::Rejected | FileStatus::Missing | FileStatus::TimedOut | FileStatus::Skipped, _) => {
            ResultCode::PermanentFailure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str) -> Task {
        Task {
            task_id: "t".into(),
            s3_bucket: Some("lab".into()),
            s3_bucket_arn: None,
            s3_key: key.into(),
            s3_version_id: Some(String::new()),
        }
    }

    #[test]
    fn batch_operations_keys_decode_plus_as_space_like_s3_events() {
        // An S3 Inventory manifest writes `lab 7/run+1 ü.csv` this way.
        let object = task("incoming/lab+7/run%2B1+%C3%BC.csv").object().unwrap();
        assert_eq!(object.key, "incoming/lab 7/run+1 ü.csv");
        assert_eq!(object.key, crate::adapters::s3_event::decode_key("incoming/lab+7/run%2B1+%C3%BC.csv"));
        assert_eq!(object.version_id, None, "an empty version id is no version");
        let v1 = Task { s3_bucket: None, s3_bucket_arn: Some("arn:aws:s3:::lab".into()), ..task("a%20b.csv") };
        assert_eq!(v1.object().unwrap(), ObjectRef { bucket: "lab".into(), key: "a b.csv".into(), ..object.clone() });
    }
}
