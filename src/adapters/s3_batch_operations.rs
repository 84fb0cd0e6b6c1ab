//! S3 Batch Operations ("Invoke AWS Lambda function"): one invocation per
//! manifest object, `{"invocationSchemaVersion": "2.0" | "1.0", "invocationId",
//! "job", "tasks": [...]}`. Each object is scored with the batch pipeline
//! unchanged; the answer gives each task a result code that tells the job
//! whether to retry, and a result string with counts (never data).

use std::sync::Arc;
use std::time::SystemTime;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::adapters::s3::{self, FileReport};
use crate::adapters::s3_event::ObjectRef;
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
    /// URL-encoded, as S3 sends it.
    pub s3_key: String,
    pub s3_version_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    pub result_code: &'static str,
    pub result_string: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub invocation_schema_version: String,
    pub treat_missing_keys_as: &'static str,
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
            key: percent_decode_str(&self.s3_key).decode_utf8_lossy().into_owned(),
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
                result_code: "PermanentFailure",
                result_string: "the task names no bucket".into(),
            },
            Some(object) => match output_for(config, &object) {
                Err(why) => TaskResult { task_id: task.task_id, result_code: "PermanentFailure", result_string: why },
                Ok((out_bucket, out_key)) => {
                    let report = s3::score_one(client, model, &object, out_bucket, out_key, deadline).await;
                    task_result(task.task_id, &report)
                }
            },
        };
        results.push(result);
    }
    results
}

fn task_result(task_id: String, report: &FileReport) -> TaskResult {
    let result_code = match report.status {
        "scored" => "Succeeded",
        "failed" => "TemporaryFailure",
        _ => "PermanentFailure",
    };
    let result_string = match (&report.counts, &report.output) {
        (Some(c), Some(out)) if report.status == "scored" => format!(
            "rows={} scored={} rejected={} output=s3://{}/{}",
            c.rows, c.scored, c.rejected, out.bucket, out.key
        ),
        _ => report.reason.clone().unwrap_or_default(),
    };
    TaskResult { task_id, result_code, result_string }
}
