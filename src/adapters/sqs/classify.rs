//! What an SQS message body is: observations, S3 file notifications, or
//! nothing we can act on. The body is read in one pass into its top-level
//! members (raw JSON text, in order); each member is then read once into
//! what it is, and each observation's own text goes through the same parser
//! as an HTTP body (which a value tree would not allow: it hides duplicate
//! keys).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::adapters::s3_event::{self, EventBridgeDetail, Records};
use crate::adapters::s3_routing::Skip;
use crate::contract::answer::{explain_flag_json, ExplainFlagError, EXPLAIN};
use crate::core::columns::{feature_by_name, names_reserved};
use crate::core::features::Features;
use crate::core::observation_json::{parse_observation_json, without_json_bom, BodyError, Submission};

/// What a message body is.
#[derive(Debug)]
pub enum Message {
    /// One observation object or an array of them (each parsed or rejected).
    Observations(Vec<Observed>),
    /// An S3 notification (direct, or an EventBridge "Object Created" event).
    Files(Records),
    /// Nothing we can act on: retried, then dead-lettered.
    Unintelligible(&'static str),
}

/// One observation of a message: the object as parsed (or why not), and its
/// `explain` field (`true` adds the explanation HTTP gives).
#[derive(Debug)]
pub struct Observed {
    pub item: Result<Submission, BodyError>,
    pub explain: Result<bool, ExplainFlagError>,
}

impl Observed {
    /// `raw` is one JSON value; `members` its top-level members when it is an object.
    fn of(features: &Features, raw: &str, members: Option<&Members<'_>>) -> Self {
        let explain = members.and_then(|m| m.get(EXPLAIN)).and_then(|v| serde_json::from_str(v.get()).ok());
        Observed {
            item: parse_observation_json(features, raw.as_bytes()),
            explain: explain_flag_json(explain.as_ref()),
        }
    }
}

/// A JSON object's top-level members as raw text, in order (duplicates kept).
struct Members<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The last member named `key` (as a value tree would keep it).
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A member that is a string.
    fn text(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| serde_json::from_str(v.get()).ok())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members<'a>, M::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Classifies a message body. The one place that decides what a message is.
pub fn classify(features: &Features, body: &str) -> Message {
    // A byte-order mark before the JSON is ignored, as on HTTP (the one rule).
    // The mark is one whole character: what is left is still a str.
    let body = &body[body.len() - without_json_bom(body.as_bytes()).len()..];
    match body.trim_start().as_bytes().first() {
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(body) {
            Ok(items) if items.is_empty() => Message::Unintelligible("an empty array"),
            Ok(items) => Message::Observations(
                items
                    .iter()
                    .map(|item| {
                        let members = serde_json::from_str::<Members>(item.get()).ok();
                        Observed::of(features, item.get(), members.as_ref())
                    })
                    .collect(),
            ),
            Err(_) => Message::Unintelligible("the body is not JSON"),
        },
        Some(b'{') => match serde_json::from_str::<Members>(body) {
            Ok(members) => classify_object(features, body, &members),
            Err(_) => Message::Unintelligible("the body is not JSON"),
        },
        _ => match serde_json::from_str::<&RawValue>(body) {
            Ok(_) => Message::Unintelligible("JSON that is neither an object nor an array"),
            Err(_) => Message::Unintelligible("the body is not JSON"),
        },
    }
}

fn classify_object(features: &Features, body: &str, members: &Members<'_>) -> Message {
    if s3_event::is_test_event(members.text("Event").as_deref()) {
        return Message::Files(vec![Err(Skip::TestEvent)]);
    }
    if let Some(records) = members.get("Records") {
        return match s3_event::parse_records(records.get()) {
            Ok(records) => Message::Files(records),
            Err(_) => Message::Unintelligible("an S3 notification that cannot be read"),
        };
    }
    let detail = || members.get("detail").and_then(|d| serde_json::from_str::<EventBridgeDetail>(d.get()).ok());
    let (source, detail_type) = (members.text("source"), members.text("detail-type"));
    match s3_event::eventbridge_object(source.as_deref(), detail_type.as_deref(), detail) {
        Some(Ok(object)) => return Message::Files(vec![Ok(object)]),
        Some(Err(why)) => return Message::Unintelligible(why),
        None => {}
    }
    let looks_like_observation =
        members.0.iter().any(|(k, _)| names_reserved(k, "id") || feature_by_name(features, k).is_some());
    if looks_like_observation {
        Message::Observations(vec![Observed::of(features, body, Some(members))])
    } else {
        Message::Unintelligible("a JSON object with none of the observation fields")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqs::results::{result_line, ResultLine};
    use crate::core::model::Model;
    use crate::core::scoring::{Scorer, Wants};
    use crate::core::status::Status;

    const OBS: &str = r#"{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#;

    fn kind(body: &str) -> &'static str {
        match classify(&crate::core::features::testing::shipped(), body) {
            Message::Observations(_) => "observations",
            Message::Files(_) => "files",
            Message::Unintelligible(_) => "unintelligible",
        }
    }

    #[test]
    fn every_message_kind_is_recognised() {
        assert_eq!(kind(OBS), "observations");
        assert_eq!(kind(&format!("[{OBS},{OBS}]")), "observations");
        assert_eq!(kind(r#"{"id":"x","worstArea":"bad"}"#), "observations");
        assert_eq!(
            kind(
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#
            ),
            "files"
        );
        assert_eq!(kind(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#), "files");
        assert_eq!(
            kind(
                r#"{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"incoming/a.csv"}}}"#
            ),
            "files"
        );
        for garbage in [
            "",
            "hello",
            "[]",
            "42",
            "null",
            r#"{"foo":1}"#,
            r#"{"Records":5}"#,
            r#"{"source":"aws.s3","detail-type":"Object Deleted"}"#,
        ] {
            assert_eq!(kind(garbage), "unintelligible", "{garbage:?}");
        }
    }

    #[test]
    fn array_items_are_scored_or_rejected_one_by_one() {
        let model = Model::embedded().unwrap();
        let Message::Observations(items) =
            classify(&crate::core::features::testing::shipped(), &format!(r#"[{OBS},7,{{"id":"b","worstArea":-1}}]"#))
        else {
            panic!()
        };
        let lines: Vec<ResultLine> = {
            let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
            items.into_iter().enumerate().map(|(i, it)| result_line(&mut scorer, "m1", i, it)).collect()
        };
        let status: Vec<Status> = lines.iter().map(|l| l.status).collect();
        assert_eq!(status, [Status::Ok, Status::BadRequest, Status::BadRequest]);
        assert_eq!(lines[1].reason, "'body' must be a JSON object, not a number");
        assert_eq!(lines[2].id.as_deref(), Some("b"));
    }

    #[test]
    fn the_batch_drift_counts_each_item_as_its_answer_says() {
        // Scored once, by the same call that answered it: an item answered
        // 400 (a bad explain flag, a body that is not an object, a bad value)
        // is a rejected row of the batch's drift statistics, never a scored one.
        let model = Model::embedded().unwrap();
        let bad_flag = OBS.replacen('{', r#"{"explain":"yes","#, 1);
        let mut scorer = Scorer::new(&model, Wants { explain: false, drift: true }).unwrap();
        let mut statuses = Vec::new();
        for body in [OBS.to_owned(), bad_flag, "[7]".to_owned(), r#"{"worstArea":-1}"#.to_owned()] {
            let Message::Observations(items) = classify(&crate::core::features::testing::shipped(), &body) else {
                panic!("{body}")
            };
            for (i, item) in items.into_iter().enumerate() {
                statuses.push(result_line(&mut scorer, "m1", i, item).status);
            }
        }
        assert_eq!(statuses, [Status::Ok, Status::BadRequest, Status::BadRequest, Status::BadRequest]);
        let stats = scorer.into_drift().unwrap();
        assert_eq!((stats.scored(), stats.rejected()), (1, 3));
    }

    #[test]
    fn observations_in_any_key_style_or_after_a_bom_are_observations() {
        let pascal = OBS.replace("\"mean", "\"Mean").replace("\"worst", "\"Worst");
        let snake = r#"{"mean_concave_points":0.1471,"worst_radius":25.38,"worst_texture":17.33,"worst_area":2019.0,"worst_concave_points":0.2654}"#;
        for body in [pascal.clone(), snake.to_owned(), format!("\u{feff}{OBS}"), format!("\u{feff}[{pascal}]")] {
            let Message::Observations(items) = classify(&crate::core::features::testing::shipped(), &body) else {
                panic!("{body}")
            };
            assert!(items[0].item.as_ref().unwrap().observation.is_ok(), "{body}");
        }
    }

    #[test]
    fn duplicate_keys_are_rejected_as_on_http() {
        let dup = OBS.replace('}', r#","worstArea":-5}"#);
        for body in [dup.clone(), format!("[{dup}]")] {
            let Message::Observations(items) = classify(&crate::core::features::testing::shipped(), &body) else {
                panic!("{body}")
            };
            let rejection = items.into_iter().next().unwrap().item.unwrap().observation.unwrap_err();
            assert_eq!(rejection.errors()[0].problem, crate::core::observation::Problem::Duplicate);
        }
    }
}
