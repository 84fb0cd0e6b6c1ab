//! S3 Batch Operations ("Invoke AWS Lambda function"): one invocation per
//! manifest object, `{"invocationSchemaVersion": "2.0" | "1.0", "invocationId",
//! "job", "tasks": [...]}`. Each object is scored with the batch pipeline
//! unchanged; the answer gives each task a result code that tells the job
//! whether to retry, and a result string with counts (never data).
//!
//! The event and the answer are our own small types, not
//! `aws_lambda_events::s3::batch_job` (built with our `s3` feature), because
//! in aws_lambda_events 1.2.1:
//!
//! * `S3BatchJobTask` has no `s3Bucket`, the field schema 2.0 names the
//!   bucket with (1.0's `s3BucketArn` only): read with it, every 2.0 task
//!   names no bucket (the test `the_crates_task_type_loses_the_bucket_of_schema_2`
//!   pins this, and fails once a release adds the field);
//! * `S3BatchJobResult.result_code` is an `Option<String>`: our
//!   [`ResultCode`] makes an unknown code impossible to answer. Tests check
//!   that our answer deserializes as the crate's `S3BatchJobResponse`, as the
//!   Function URL answer does with the crate's `HttpResponse`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::s3_event::{decode_key, ObjectRef};
use super::s3_object::Budget;
use super::s3_routing::{output_for, Scope, Skip};
use super::{s3_notifications, Context};
use crate::contract::file::{FailureKind, FileReport, FileStatus};
use crate::contract::invocation::{EntryPoint, Invocation};

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

/// Handles one invocation: every task scored in turn, one result each.
pub async fn handle(
    ctx: &Context<'_>,
    invocation_schema_version: String,
    invocation_id: String,
    tasks: Vec<Task>,
    invocation: &Invocation,
) -> Response {
    let results = run_tasks(ctx, tasks, invocation.deadline).await;
    let failed = results.iter().filter(|r| r.result_code != ResultCode::Succeeded).count();
    tracing::info!(entry_point = EntryPoint::S3BatchOperations.as_str(), request_id = %invocation.request_id, tasks = results.len(), failed, "S3 Batch Operations tasks handled");
    Response { invocation_schema_version, treat_missing_keys_as: ResultCode::PermanentFailure, invocation_id, results }
}

async fn run_tasks(ctx: &Context<'_>, tasks: Vec<Task>, deadline: Option<SystemTime>) -> Vec<TaskResult> {
    let budget = Budget::starting_now(deadline);
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let failure = |result_string: String| TaskResult {
            task_id: task.task_id.clone(),
            result_code: ResultCode::PermanentFailure,
            result_string,
        };
        let result = match task.object() {
            None => failure("the task names no bucket".into()),
            // Any key of the manifest is accepted (an operator chose them).
            Some(object) => match output_for(ctx.config, &object.bucket, &object.key, Scope::Manifest) {
                Err(Skip::OwnOutput) => failure("the object is one of the function's outputs".into()),
                Err(skip) => failure(skip.as_str().into()),
                Ok((out_bucket, out_key)) => {
                    let client = ctx.clients.s3().await;
                    let out = (out_bucket, out_key);
                    let report = s3_notifications::score_one(client, ctx, &object, out, budget.as_ref()).await;
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
            "rows={} scored={} rejected={} output=s3://{}/{}{}",
            c.rows,
            c.scored,
            c.rejected,
            out.bucket,
            out.key,
            drift_word(report.drift.as_ref())
        ),
        _ => report.reason.clone().unwrap_or_default(),
    };
    TaskResult { task_id, result_code, result_string }
}

/// The drift report in a word for the completion report (a CSV cell, one per
/// task): ` drift=alert:worstTexture,worstArea`, ` drift=ok` or
/// ` drift=not_assessed`. The whole report is in `<output>.summary.json`;
/// an 8 KB JSON object per task would swamp the completion report.
fn drift_word(drift: Option<&crate::core::drift::DriftReport>) -> String {
    match drift {
        None => String::new(),
        Some(d) if d.alert => format!(" drift=alert:{}", d.alert_features.join(",")),
        Some(d) if d.alert_assessed => " drift=ok".to_owned(),
        Some(_) => " drift=not_assessed".to_owned(),
    }
}

/// How the job treats each file status.
fn result_code(report: &FileReport) -> ResultCode {
    match (report.status, report.failure) {
        (FileStatus::Scored, _) => ResultCode::Succeeded,
        // Transient (S3 unavailable, throttled): the job redrives the task.
        // Deferred (earlier tasks of the invocation used the time): the same.
        (FileStatus::Failed, Some(FailureKind::Transient | FailureKind::Deferred) | None) => {
            ResultCode::TemporaryFailure
        }
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

    const RESPONSE: &str = r#"{"invocationSchemaVersion":"2.0","treatMissingKeysAs":"PermanentFailure","invocationId":"i","results":[{"taskId":"t1","resultCode":"Succeeded","resultString":"rows=1 scored=1 rejected=0 output=s3://b/scored/a.csv"},{"taskId":"t2","resultCode":"TemporaryFailure","resultString":"slow down"}]}"#;

    #[test]
    fn the_answer_is_what_batch_operations_reads() {
        let result = |task_id: &str, result_code, result_string: &str| TaskResult {
            task_id: task_id.into(),
            result_code,
            result_string: result_string.into(),
        };
        let response = Response {
            invocation_schema_version: "2.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "i".into(),
            results: vec![
                result("t1", ResultCode::Succeeded, "rows=1 scored=1 rejected=0 output=s3://b/scored/a.csv"),
                result("t2", ResultCode::TemporaryFailure, "slow down"),
            ],
        };
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(json, RESPONSE);
        let theirs: aws_lambda_events::event::s3::batch_job::S3BatchJobResponse = serde_json::from_str(&json).unwrap();
        assert_eq!(theirs.treat_missing_keys_as.as_deref(), Some("PermanentFailure"));
        let codes: Vec<Option<&str>> = theirs.results.iter().map(|r| r.result_code.as_deref()).collect();
        assert_eq!(codes, [Some("Succeeded"), Some("TemporaryFailure")]);
    }

    #[test]
    fn the_crates_task_type_loses_the_bucket_of_schema_2() {
        let event = include_str!("../../events/s3-batch-operations.json");
        let theirs: aws_lambda_events::event::s3::batch_job::S3BatchJobEvent = serde_json::from_str(event).unwrap();
        assert_eq!(theirs.invocation_schema_version.as_deref(), Some("2.0"));
        let task = serde_json::to_value(&theirs.tasks[0]).unwrap();
        assert!(task.get("s3Bucket").is_none(), "aws_lambda_events reads s3Bucket now: use its types");
        assert_eq!(theirs.tasks[0].s3_bucket_arn, None);
        // Ours reads both schemas.
        let ours: Vec<Task> =
            serde_json::from_value(serde_json::from_str::<serde_json::Value>(event).unwrap()["tasks"].clone()).unwrap();
        assert_eq!(ours[0].object().unwrap().bucket, "scorer-demo");
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
