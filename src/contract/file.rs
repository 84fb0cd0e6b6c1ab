//! What happened to one file: the `.summary.json` written beside its output,
//! the S3 notification's answer, and what SQS and Batch Operations decide
//! their retries from. Every route that scores files (S3 notifications, SQS,
//! S3 Batch Operations) reports with these.

use serde::Serialize;

use crate::core::challenger::ChallengerReport;
use crate::core::csv_pipeline::{BatchCounts, BatchError};
use crate::core::drift::html::{self, PageContext};
use crate::core::drift::DriftReport;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub key: String,
}

/// What happened to one record (`status` in the answer and the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Scored: the output and its summary are written.
    Scored,
    /// The file is unusable as a whole (not CSV, a column missing, ...).
    Rejected,
    /// No such key or version (deleted after the event).
    Missing,
    /// Could not finish before the invocation deadline: stopped cleanly (or
    /// refused before reading, by its size) and not retried.
    TimedOut,
    /// A failure outside the file (S3 unavailable, a permission missing):
    /// the route retries it.
    Failed,
    /// Not scored. Under the input prefix (not a .csv/.tsv/.txt key, a folder
    /// marker): a summary says why. Not ours (outside the input prefix, our
    /// own output, a test event): logged, no summary.
    Skipped,
}

impl FileStatus {
    pub const ALL: [FileStatus; 6] = [
        FileStatus::Scored,
        FileStatus::Rejected,
        FileStatus::Missing,
        FileStatus::TimedOut,
        FileStatus::Failed,
        FileStatus::Skipped,
    ];

    /// As the summary spells it (the `Files_<status>` metric too).
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Scored => "scored",
            FileStatus::Rejected => "rejected",
            FileStatus::Missing => "missing",
            FileStatus::TimedOut => "timed_out",
            FileStatus::Failed => "failed",
            FileStatus::Skipped => "skipped",
        }
    }
}

impl Serialize for FileStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a file `failed`: each route retries both, but says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// S3 unavailable, throttled, a network error: a retry may succeed.
    Transient,
    /// The function's role lacks a permission (403 AccessDenied): an operator
    /// must fix the role; the reason names the permission.
    Configuration,
    /// Earlier files of the same invocation used the time this one needed
    /// (it would fit alone): retried in a fresh invocation.
    Deferred,
}

/// What happened to one record. Also the content of the `.summary.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    pub status: FileStatus,
    /// For `failed` files: transient or a configuration error. Not serialized.
    #[serde(skip)]
    pub failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Location>,
    /// Where the output goes; the summary is `<output key>.summary.json`.
    /// Only a `scored` file has an object there.
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
    /// The drift report of the scored rows (a scored file, drift on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    /// How the challenger compared (a scored file, a challenger set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger: Option<ChallengerReport>,
}

impl FileReport {
    /// The summary's bytes: `<output>.summary.json` on S3 and
    /// `scorer score --report` locally. The one serialisation of a summary.
    pub fn summary_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }

    /// The drift report as a page (`<output>.report.html` on S3, `scorer
    /// score --html` locally), when there is one. `source` names the input
    /// (an object key, a file name).
    pub fn drift_page(&self, source: Option<&str>) -> Option<String> {
        let context = PageContext { source, model_version: Some(&self.model_version) };
        self.drift.as_ref().map(|d| html::render(d, &context))
    }
}

/// The reason a `rejected` file's summary gives, on S3 and in `score --report`.
/// `give_delimiter` says how the route's user gives the delimiter (a flag, a
/// setting of the function): the core names neither.
pub fn unusable_file_reason(e: &BatchError, give_delimiter: &str) -> String {
    format!("the file cannot be scored: {}", file_error_text(e, give_delimiter))
}

/// `e`'s text, and `give_delimiter` after it when the header suggests the
/// file is separated by another character ([`BatchError::suggests_delimiter`]).
pub fn file_error_text(e: &BatchError, give_delimiter: &str) -> String {
    if e.suggests_delimiter() {
        format!("{e} {give_delimiter}")
    } else {
        e.to_string()
    }
}

/// The drift of one SQS batch's observation messages (and how the
/// challenger compared, with one): the summary object beside their results
/// objects (`sqs-batches/<requestId>.summary.json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSummary<'a> {
    pub request_id: &'a str,
    /// Observation messages in the batch (each has its results object).
    pub messages: usize,
    pub model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<&'a DriftReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger: Option<&'a ChallengerReport>,
}

impl BatchSummary<'_> {
    /// Serialised as a file's summary is.
    pub fn summary_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_as_the_contract_spells_them() {
        for s in FileStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(FileStatus::TimedOut.as_str(), "timed_out");
    }

    #[test]
    fn the_route_words_how_to_give_the_delimiter_and_only_when_the_header_suggests_it() {
        let model = crate::core::model::Model::embedded().unwrap();
        let score =
            |input: &[u8]| crate::core::csv_pipeline::score_csv(&model, input, std::io::sink(), |_| {}).unwrap_err();
        let one_column = score(b"id|worst area|worst radius\n1|2|3\n");
        let reason = unusable_file_reason(&one_column, "Use --x.");
        assert!(reason.starts_with("the file cannot be scored: the header has no column for:"), "{reason}");
        assert!(reason.ends_with("is the file separated by another character? Use --x."), "{reason}");
        let no_feature = score(b"id,x\n1,2\n");
        assert!(!unusable_file_reason(&no_feature, "Use --x.").contains("--x"));
    }
}
