//! What RESULT_QUEUE_URL announces: one notice per written results object
//! (SQS observations) and per scored file (any route), with locations and
//! counts, never data. Consumers deduplicate on `noticeId` (docs/queue-messages.md,
//! "Delivery is at least once").

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::file::Location;

/// What a notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A message's results object (`sqs/<messageId>.jsonl`).
    Observations,
    /// A scored CSV.
    File,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Observations => "observations",
            NoticeKind::File => "file",
        }
    }
}

impl Serialize for NoticeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A notification on RESULT_QUEUE_URL.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultNotice<'a> {
    pub kind: NoticeKind,
    /// Deduplication key: see [`notice_id`].
    pub notice_id: String,
    /// The message whose results these are (observations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    pub output: &'a Location,
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    pub model_version: &'a str,
}

impl<'a> ResultNotice<'a> {
    /// The notice for `output`; `source` is what its content came from (the
    /// message id for observations, the input's ETag for a file).
    pub fn new(
        kind: NoticeKind,
        output: &'a Location,
        source: &str,
        message_id: Option<&'a str>,
        (rows, scored): (u64, u64),
        model_version: &'a str,
    ) -> Self {
        ResultNotice {
            kind,
            notice_id: notice_id(kind, output, source, model_version),
            message_id,
            output,
            rows,
            scored,
            rejected: rows.saturating_sub(scored),
            model_version,
        }
    }
}

/// A notice's deduplication key, 32 hex digits: the same for every notice
/// announcing the same object with the same content (same output, same source
/// — message id, or input ETag — and same model), different when the object
/// was rewritten with different content.
pub fn notice_id(kind: NoticeKind, output: &Location, source: &str, model_version: &str) -> String {
    let mut hash = Sha256::new();
    for part in [kind.as_str(), &output.bucket, &output.key, source, model_version] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_ids_change_exactly_when_the_announced_content_can() {
        let out = |key: &str| Location { bucket: "b".into(), key: key.into() };
        let obs = NoticeKind::Observations;
        let id = notice_id(obs, &out("scored/sqs/m1.jsonl"), "m1", "model-1");
        assert_eq!(id, notice_id(obs, &out("scored/sqs/m1.jsonl"), "m1", "model-1"));
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
        for other in [
            notice_id(obs, &out("scored/sqs/m2.jsonl"), "m2", "model-1"),
            notice_id(obs, &out("scored/sqs/m1.jsonl"), "m1", "model-2"),
            notice_id(NoticeKind::File, &out("scored/sqs/m1.jsonl"), "m1", "model-1"),
        ] {
            assert_ne!(id, other);
        }
        // A new upload of the same input key (another ETag) is a new result.
        assert_ne!(
            notice_id(NoticeKind::File, &out("scored/a.csv"), "etag-1", "model-1"),
            notice_id(NoticeKind::File, &out("scored/a.csv"), "etag-2", "model-1")
        );
    }

    #[test]
    fn a_notice_reads_as_the_readme_shows_it() {
        let output = Location { bucket: "b".into(), key: "scored/sqs/m1.jsonl".into() };
        let notice = ResultNotice::new(NoticeKind::Observations, &output, "m1", Some("m1"), (3, 2), "model-1");
        let json = serde_json::to_string(&notice).unwrap();
        let id = notice_id(NoticeKind::Observations, &output, "m1", "model-1");
        assert_eq!(
            json,
            format!(
                r#"{{"kind":"observations","noticeId":"{id}","messageId":"m1","output":{{"bucket":"b","key":"scored/sqs/m1.jsonl"}},"rows":3,"scored":2,"rejected":1,"modelVersion":"model-1"}}"#
            )
        );
        let file = ResultNotice::new(NoticeKind::File, &output, "etag", None, (1, 1), "model-1");
        assert!(serde_json::to_string(&file).unwrap().starts_with(r#"{"kind":"file","noticeId":""#));
    }
}
