//! SQS message bodies: classify anything, score every observation item, and
//! serialize each result line. Also the one-object JSON parser on raw bytes.
//! A marker planted in the body (every `#` becomes one) never appears in a
//! result line (its `id` field excepted: ids are echoed by design) nor in
//! the reason a message is unintelligible.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scorer::adapters::sqs::{classify, result_line, Message};
use scorer::core::model::Model;
use scorer::core::observation_json::parse_observation_json;
use scorer::core::scoring::{Scorer, Wants};

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().expect("embedded model loads"))
}

/// Replaces every `#` of a body.
const MARKER: &str = "zqMARKERzq";

fuzz_target!(|data: &[u8]| {
    let _ = parse_observation_json(model().features(), data);

    let body = String::from_utf8_lossy(data).replace('#', MARKER);
    match classify(model().features(), &body) {
        Message::Observations(items) => {
            assert!(!items.is_empty(), "Observations with no items");
            let mut scorer =
                Scorer::new(model(), Wants { explain: false, drift: true }).expect("no explanation wanted");
            for (index, item) in items.into_iter().enumerate() {
                let line = result_line(&mut scorer, "fuzz-message", index, item);
                let json = serde_json::to_string(&line).expect("result line serializes");
                assert!(!json.contains('\n'), "a JSON Lines line holds a newline");
                let back: serde_json::Value = serde_json::from_str(&json).expect("result line is JSON");
                let status = back.get("status").and_then(serde_json::Value::as_str);
                assert!(matches!(status, Some("200" | "400")), "status {status:?} in {json}");
                let mut without_id = back;
                without_id.as_object_mut().expect("a result line is an object").remove("id");
                let text = without_id.to_string();
                assert!(!text.contains(MARKER), "a result line echoes the body: {text}");
            }
        }
        Message::Files(records) => {
            for record in records {
                let _ = format!("{record:?}");
            }
        }
        Message::Unintelligible(why) => {
            assert!(!why.is_empty());
            assert!(!why.contains(MARKER), "the reason echoes the body: {why}");
        }
    }
});
