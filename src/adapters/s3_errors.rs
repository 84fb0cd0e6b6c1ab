//! Why an S3 object was not scored, told from what S3 answered: a missing
//! object, a permission the function's role lacks (with the IAM advice that
//! names it), a transient failure, a file too big or too late for the time.

use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::adapters::s3_event::ObjectRef;
use crate::core::csv_pipeline::BatchError;

/// An S3 request the function's role was not allowed to make: a
/// configuration error, never a property of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The IAM action S3 checked (`s3:GetObject`, `s3:GetObjectVersion`, `s3:PutObject`).
    pub action: &'static str,
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Denied { action, bucket, key } = self;
        write!(f, "{action} on {bucket}/{key} was denied (403 AccessDenied): the function's role needs ")?;
        match *action {
            "s3:GetObject" => write!(
                f,
                "s3:GetObject on the input objects (and s3:GetObjectVersion for versioned reads), and \
                 s3:ListBucket on the bucket so that a missing key answers 404 instead of 403"
            ),
            "s3:GetObjectVersion" => write!(
                f,
                "s3:GetObjectVersion (besides s3:GetObject) to read a given version of the input objects, and \
                 s3:ListBucket on the bucket so that a missing version answers 404 instead of 403"
            ),
            _ => write!(f, "{action} on the output location (it also covers multipart uploads)"),
        }
    }
}

/// Why an object was not scored.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The file itself is unusable: retrying cannot help.
    #[error("{}", crate::contract::file::unusable_file_reason(.0, crate::config::GIVE_DELIMITER))]
    BadFile(BatchError),
    /// The object (or the version the event named) no longer exists: nothing to retry.
    #[error("{}", match .version { None => "the object no longer exists".to_owned(), Some(v) => format!("version {v} of the object no longer exists") })]
    Missing { version: Option<String> },
    /// The notified size cannot be read in the whole time of an invocation,
    /// even at the optimistic bound: refused before reading.
    #[error(
        "the object is {size} bytes: even at {mb_per_s} MB/s (MAX_THROUGHPUT_MB_PER_S) it needs {}s, more than the \
         {}s one invocation has for it, so it was not read and will not be retried. {ROUTE_HINT}",
        .needs.as_secs(), .whole.as_secs()
    )]
    TooBig { size: u64, mb_per_s: u64, needs: Duration, whole: Duration },
    /// The deadline came while the file was running, and it had the
    /// invocation's whole time: stopped cleanly, a retry would time out again.
    #[error(
        "the invocation deadline came before this file was finished: it was stopped cleanly (no partial output) \
         and will not be retried. {ROUTE_HINT}"
    )]
    Deadline,
    /// Earlier files of the same invocation used the time this one needed:
    /// not finished (no partial output), retried in a fresh invocation.
    #[error(
        "earlier files of the same invocation used {}s of its {}s, leaving too little for this file: it was not \
         finished (no partial output) and will be retried in a fresh invocation",
        .used.as_secs(), .whole.as_secs()
    )]
    Deferred { used: Duration, whole: Duration },
    /// The role lacks a permission (configuration).
    #[error("{0}")]
    Denied(Denied),
    #[error("reading the object failed: {0}")]
    Read(String),
    #[error("writing the output failed: {0}")]
    Write(String),
}

/// Where a file too big for one invocation belongs.
pub const ROUTE_HINT: &str = "Files this large belong on the Step Functions Distributed Map route \
                              (README: Huge files); splitting the file also works";

/// Whether S3 refused the request for lack of a permission.
pub fn is_denied<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("AccessDenied") || e.raw_response().is_some_and(|r| r.status().as_u16() == 403)
}

/// What a failed GetObject means for the file.
pub fn read_error<E>(e: SdkError<E>, object: &ObjectRef) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e.code() {
        // The object (or the version the event named) is gone: nothing to retry.
        // A missing bucket (NoSuchBucket) is a configuration problem: retried.
        Some("NoSuchKey" | "NoSuchVersion") => ObjectError::Missing { version: object.version_id.clone() },
        _ if is_denied(&e) => ObjectError::Denied(Denied {
            // A versioned read is authorized as s3:GetObjectVersion.
            action: if object.version_id.is_some() { "s3:GetObjectVersion" } else { "s3:GetObject" },
            bucket: object.bucket.clone(),
            key: object.key.clone(),
        }),
        _ => ObjectError::Read(DisplayErrorContext(&e).to_string()),
    }
}

/// What a failed PutObject / multipart request means. CreateMultipartUpload,
/// UploadPart and CompleteMultipartUpload are all authorized as s3:PutObject.
pub fn write_error<E>(e: SdkError<E>, bucket: &str, key: &str) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if is_denied(&e) {
        ObjectError::Denied(Denied { action: "s3:PutObject", bucket: bucket.to_owned(), key: key.to_owned() })
    } else {
        ObjectError::Write(DisplayErrorContext(&e).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_the_permission_the_role_needs() {
        let d = |action| Denied { action, bucket: "lab".into(), key: "incoming/a.csv".into() }.to_string();
        let get = d("s3:GetObject");
        assert!(get.starts_with("s3:GetObject on lab/incoming/a.csv was denied"), "{get}");
        assert!(get.contains("s3:GetObjectVersion for versioned reads") && get.contains("s3:ListBucket"), "{get}");
        assert!(d("s3:GetObjectVersion").contains("needs s3:GetObjectVersion (besides s3:GetObject)"));
        assert!(d("s3:PutObject").contains("needs s3:PutObject on the output location"));
    }
}
