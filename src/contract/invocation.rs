//! The facts of one invocation, whoever runs it (Lambda, the worker, `serve`,
//! `invoke`), and the entry point logs and metrics name.

use std::time::SystemTime;

/// Per-invocation facts from the runtime (or made up locally).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda will stop the invocation; `None` locally.
    pub deadline: Option<SystemTime>,
    /// The first invocation of this process.
    pub cold_start: bool,
    /// Handled by `scorer worker` rather than Lambda (logs and metrics say so).
    pub from_worker: bool,
}

impl Invocation {
    pub fn local() -> Self {
        Invocation { request_id: new_local_request_id(), deadline: None, cold_start: false, from_worker: false }
    }
}

/// Local request ids (`serve`, `invoke`, the worker): random UUIDs, the shape
/// of Lambda's, so a clinic quotes the same kind of id whoever answered.
pub fn new_local_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The door an event came through: the `entry_point` of every log line and
/// the `EntryPoint` dimension of every metric (docs/operating.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryPoint {
    FunctionUrl,
    /// S3 notifications, and every file scored, whichever route brought it.
    S3,
    Sqs,
    /// `scorer worker`: the SQS path outside Lambda.
    Worker,
    DistributedMap,
    /// Logs only: its files count under [`EntryPoint::S3`].
    S3BatchOperations,
}

impl EntryPoint {
    pub const ALL: [EntryPoint; 6] = [
        EntryPoint::FunctionUrl,
        EntryPoint::S3,
        EntryPoint::Sqs,
        EntryPoint::Worker,
        EntryPoint::DistributedMap,
        EntryPoint::S3BatchOperations,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EntryPoint::FunctionUrl => "function_url",
            EntryPoint::S3 => "s3",
            EntryPoint::Sqs => "sqs",
            EntryPoint::Worker => "worker",
            EntryPoint::DistributedMap => "distributed_map",
            EntryPoint::S3BatchOperations => "s3_batch_operations",
        }
    }

    /// The SQS path's entry point: `worker` when `scorer worker` runs it.
    pub fn sqs(invocation: &Invocation) -> Self {
        if invocation.from_worker {
            EntryPoint::Worker
        } else {
            EntryPoint::Sqs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_are_named_as_the_logs_and_metrics_list_them() {
        let names: Vec<&str> = EntryPoint::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names, ["function_url", "s3", "sqs", "worker", "distributed_map", "s3_batch_operations"]);
        // Every value the alarms and dashboard may filter on is one of ours.
        let listed = include_str!("../../tests/emitted_metrics.txt")
            .lines()
            .find_map(|l| l.strip_prefix("value EntryPoint "))
            .expect("tests/emitted_metrics.txt lists the EntryPoint values");
        for value in listed.trim().split(',') {
            assert!(names.contains(&value), "{value} is listed but no EntryPoint is named so");
        }
    }

    #[test]
    fn the_worker_is_the_sqs_path_under_its_own_name() {
        let mut invocation = Invocation::local();
        assert_eq!(EntryPoint::sqs(&invocation), EntryPoint::Sqs);
        invocation.from_worker = true;
        assert_eq!(EntryPoint::sqs(&invocation), EntryPoint::Worker);
    }
}
