//! S3 notifications, read leniently: only bucket, key, size, ETag, version.
//! (moto and some relays omit fields that aws_lambda_events' `S3Event`
//! requires, and a notification we cannot fully type must still be scored.)
//! Used for S3 events delivered directly, through SQS, and through EventBridge.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::s3_routing::Skip;

/// One object to score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// Decoded key (S3 events carry it URL-encoded, `+` for space).
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// A notification's records: objects to score, or why a record is skipped.
pub type Records = Vec<Result<ObjectRef, Skip>>;

#[derive(Debug, Deserialize)]
pub struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
    /// `s3:TestEvent` when S3 checks a new notification configuration.
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Entity,
}

#[derive(Debug, Deserialize)]
struct Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Object {
    key: String,
    size: Option<u64>,
    #[serde(rename = "eTag")]
    e_tag: Option<String>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
}

/// Why a notification could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an S3 event notification ({0})")]
pub struct NotS3Event(pub String);

/// Parses an S3 notification (`{"Records": [...]}` or an `s3:TestEvent`).
pub fn parse_notification(json: &str) -> Result<Records, NotS3Event> {
    let n: Notification =
        serde_json::from_str(json).map_err(|e| NotS3Event(format!("line {}, column {}", e.line(), e.column())))?;
    Ok(records_of(n))
}

/// Parses the `Records` array of a notification delivered to Lambda directly.
pub fn parse_records(json: &str) -> Result<Records, NotS3Event> {
    let records: Vec<Record> =
        serde_json::from_str(json).map_err(|e| NotS3Event(format!("line {}, column {}", e.line(), e.column())))?;
    Ok(records_of(Notification { records, event: None }))
}

/// Whether an event's `Event` field makes it the `s3:TestEvent` S3 sends when
/// a notification is configured (directly, or into a queue). The one test for
/// every path that can receive it.
pub fn is_test_event(event: Option<&str>) -> bool {
    event == Some("s3:TestEvent")
}

pub fn records_of(n: Notification) -> Records {
    if is_test_event(n.event.as_deref()) {
        return vec![Err(Skip::TestEvent)];
    }
    n.records
        .into_iter()
        .map(|r| {
            if !r.event_name.starts_with("ObjectCreated:") {
                return Err(Skip::NotObjectCreated);
            }
            Ok(ObjectRef {
                bucket: r.s3.bucket.name,
                key: decode_key(&r.s3.object.key),
                size: r.s3.object.size,
                etag: r.s3.object.e_tag,
                version_id: r.s3.object.version_id,
            })
        })
        .collect()
}

/// The `detail` of an EventBridge "Object Created" event from S3.
#[derive(Debug, Deserialize)]
pub struct EventBridgeDetail {
    bucket: Bucket,
    object: EventBridgeObject,
}

#[derive(Debug, Deserialize)]
struct EventBridgeObject {
    key: String,
    size: Option<u64>,
    etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
}

/// Recognises an EventBridge event from S3 by its `source`, `detail-type`
/// and `detail` (read only when needed): `None` when it is not from S3, the
/// object of an "Object Created" event, or why another S3 event cannot be
/// scored. The one reading for every path EventBridge can reach (Lambda
/// directly, an SQS message). Keys arrive as they are, not URL-encoded.
pub fn eventbridge_object(
    source: Option<&str>,
    detail_type: Option<&str>,
    detail: impl FnOnce() -> Option<EventBridgeDetail>,
) -> Option<Result<ObjectRef, &'static str>> {
    if source != Some("aws.s3") {
        return None;
    }
    if detail_type != Some("Object Created") {
        return Some(Err("an EventBridge S3 event other than Object Created"));
    }
    let Some(detail) = detail() else { return Some(Err("an EventBridge Object Created event without bucket and key")) };
    Some(Ok(ObjectRef {
        bucket: detail.bucket.name,
        key: detail.object.key,
        size: detail.object.size,
        etag: detail.object.etag,
        version_id: detail.object.version_id,
    }))
}

/// Decodes an object key as S3 sends it to Lambda, form-encoded: `+` is a
/// space, `%XX` a byte (a literal `+` arrives as `%2B`). The one decoder for
/// every source that encodes keys, and the two AWS sources encode alike:
///
/// * S3 event notifications (direct, via SQS): the S3 User Guide, "Event
///   message structure": the key "is URL encoded", e.g. `red flower.jpg`
///   arrives as `red+flower.jpg` (`application/x-www-form-urlencoded`).
/// * S3 Batch Operations, invocation schema 1.0 and 2.0 alike (`s3Key`; the
///   schemas differ in the bucket field only): the S3 User Guide, "Invoke AWS
///   Lambda function", says "keys from S3 Batch Operations are URL encoded"
///   and must be URL-decoded, and decodes its manifest example with
///   `unquote_plus`; "Creating a job / Specifying a manifest" requires the
///   manifest's keys to be URL-encoded (`object%20key%20with%20spaces`),
///   and S3 Inventory reports, the other manifest source, write a space as
///   `+`. AWS Lambda Powertools' `S3BatchOperationTask.s3_key` decodes with
///   `unquote_plus` too, noting that events carry `+` for a space in
///   practice. So `+` means a space in `s3Key` as well; a raw `+` meaning
///   itself would be a manifest that is not URL-encoded as required.
///
/// EventBridge events carry keys as they are and are not decoded.
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded_with_plus_as_space() {
        assert_eq!(decode_key("incoming/lab+results%2B2026.csv"), "incoming/lab results+2026.csv");
        assert_eq!(decode_key("incoming%2F%C3%A9chantillon+1.csv"), "incoming/échantillon 1.csv");
        assert_eq!(decode_key("plain.csv"), "plain.csv");
    }

    #[test]
    fn s3_notification_keys_decode_plus_as_space_and_percent_2b_as_plus() {
        let event = r#"{"Records":[{"eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"b"},"object":{"key":"incoming/lab+7/run%2B1+%C3%BC.csv"}}}]}"#;
        let records = parse_notification(event).unwrap();
        assert_eq!(records[0].as_ref().unwrap().key, "incoming/lab 7/run+1 ü.csv");
    }

    #[test]
    fn test_events_and_other_event_names_are_skipped() {
        let t = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-25T10:00:00Z","Bucket":"b"}"#;
        assert_eq!(parse_notification(t).unwrap(), vec![Err(Skip::TestEvent)]);
        let removed =
            r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert_eq!(parse_notification(removed).unwrap(), vec![Err(Skip::NotObjectCreated)]);
        assert!(parse_notification("[1]").is_err());
    }

    #[test]
    fn eventbridge_events_from_s3_are_recognised_by_source_and_detail_type() {
        let detail =
            || serde_json::from_str(r#"{"bucket":{"name":"b"},"object":{"key":"incoming/a b+c.csv","size":5}}"#).ok();
        let object = eventbridge_object(Some("aws.s3"), Some("Object Created"), detail).unwrap().unwrap();
        assert_eq!((object.bucket.as_str(), object.key.as_str(), object.size), ("b", "incoming/a b+c.csv", Some(5)));
        assert_eq!(
            eventbridge_object(Some("aws.s3"), Some("Object Deleted"), detail).unwrap(),
            Err("an EventBridge S3 event other than Object Created")
        );
        assert_eq!(
            eventbridge_object(Some("aws.s3"), Some("Object Created"), || None).unwrap(),
            Err("an EventBridge Object Created event without bucket and key")
        );
        let never = || -> Option<EventBridgeDetail> { panic!("the detail of an event not from S3 is never read") };
        assert!(eventbridge_object(Some("aws.ec2"), Some("Object Created"), never).is_none());
        assert!(eventbridge_object(None, None, never).is_none());
    }

    #[test]
    fn only_the_s3_test_event_is_a_test_event() {
        assert!(is_test_event(Some("s3:TestEvent")));
        for other in [None, Some("s3:testevent"), Some("s3:ObjectCreated:Put"), Some("")] {
            assert!(!is_test_event(other), "{other:?}");
        }
    }

    #[test]
    fn minimal_records_from_moto_parse() {
        let moto = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"lab"},"object":{"key":"incoming%2Fa+b.csv","size":12,"eTag":"abc"}}}]}"#;
        let r = parse_notification(moto).unwrap();
        assert_eq!(
            r,
            vec![Ok(ObjectRef {
                bucket: "lab".into(),
                key: "incoming/a b.csv".into(),
                size: Some(12),
                etag: Some("abc".into()),
                version_id: None
            })]
        );
    }
}
