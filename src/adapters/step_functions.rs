//! Step Functions Distributed Map: the map reads a CSV from S3 with its
//! ItemReader (header from the first row) and invokes the function with
//! `{"Items": [{column: value, ...}], "BatchInput": {...}}`. Each item is a
//! CSV row as an object of strings; it goes through the same
//! [`Observation::from_inputs`] as a CSV cell and comes back with its fields
//! plus `prediction`, `probability`, `status`, `reason`, `warnings`, in order. A bad row,
//! or an item that is not an object, is an item with status 400, never a
//! failed batch. With `"explain": true` in the map's `BatchInput`, a scored
//! item also gets `explanation`, the object HTTP answers.

use serde_json::{Map, Value};

use crate::contract::answer::ExplanationField;
use crate::core::columns::{feature_by_name, put_value};
use crate::core::csv_pipeline::{BatchCounts, RESULT_COLUMNS};
use crate::core::explain::NoExplanation;
use crate::core::model::Model;
use crate::core::observation::{FieldInput, Observation, Rejection, FEATURE_COUNT};
use crate::core::observation_json::BodyError;
use crate::core::scoring::{write_range_names, Scorer, Wants};
use crate::core::status::Status;

/// Why an item that is not a JSON object is rejected.
const NOT_AN_OBJECT: &str = "the item is not an object of column values";

/// Scores every item of a batch; returns them in order, and the counts. An
/// item that is not an object is answered with the result fields alone.
pub fn score_items(model: &Model, items: Vec<Value>) -> (Vec<Map<String, Value>>, BatchCounts) {
    let mut scorer = Scorer::new(model, Wants::default()).unwrap_or_else(|_| unreachable!("no explanation wanted"));
    score_items_with(&mut scorer, items, Cells::default())
}

/// How the map's items are read: cells of a `;` file may use a decimal comma
/// (the CSV path's rule, [`Dialect::decimal_comma`](crate::core::csv_reader::Dialect::decimal_comma)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cells {
    pub decimal_comma: bool,
}

/// Why no item of a batch can be scored: `explain` asked of a model that
/// cannot explain makes every item a 400 `explanations_unavailable`.
pub fn unexplainable_items(items: Vec<Value>, e: NoExplanation) -> (Vec<Map<String, Value>>, BatchCounts) {
    let mut counts = BatchCounts::default();
    let out = items
        .into_iter()
        .map(|item| match item {
            Value::Object(item) => {
                counts.count_rejected(e.code());
                with_results(item, ItemResult::Rejected(e.to_string()), None)
            }
            _ => {
                counts.count_rejected(BodyError::NOT_AN_OBJECT);
                with_results(Map::new(), ItemResult::Rejected(NOT_AN_OBJECT.to_owned()), None)
            }
        })
        .collect();
    (out, counts)
}

/// [`score_items`] with the route's [`Scorer`] (which explains each scored
/// item when it explains, and counts every item into its drift statistics).
pub fn score_items_with(
    scorer: &mut Scorer<'_>,
    items: Vec<Value>,
    cells: Cells,
) -> (Vec<Map<String, Value>>, BatchCounts) {
    let mut counts = BatchCounts::default();
    let scored = items
        .into_iter()
        .map(|item| {
            let (item, input) = match item {
                Value::Object(item) => {
                    let input = observation_of(&item, cells);
                    (item, Some(input))
                }
                _ => (Map::new(), None),
            };
            let (result, explanation) = match input {
                None => {
                    scorer.reject(BodyError::NOT_AN_OBJECT);
                    counts.count_rejected(BodyError::NOT_AN_OBJECT);
                    (ItemResult::Rejected(NOT_AN_OBJECT.to_owned()), None)
                }
                Some(input) => match scorer.score_input(input) {
                    Ok(scored) => {
                        counts.count_scored(&scored.prediction);
                        let mut warnings = String::new();
                        let _ = write_range_names(scored.out_of_range, &mut warnings);
                        (
                            ItemResult::Scored(scored.prediction.label, scored.prediction.probability, warnings),
                            scored.explanation,
                        )
                    }
                    Err(rejection) => {
                        counts.count_rejected(rejection.code());
                        let mut reason = String::new();
                        rejection.write_field_messages(&mut reason);
                        (ItemResult::Rejected(reason), None)
                    }
                },
            };
            with_results(item, result, explanation.map(ExplanationField))
        })
        .collect();
    (scored, counts)
}

/// One item's results, before they are placed beside its fields.
enum ItemResult {
    /// Label, probability, warnings (feature names).
    Scored(u8, f64, String),
    /// The reason.
    Rejected(String),
}

/// The item with its result fields (and explanation) after its own.
fn with_results(
    mut item: Map<String, Value>,
    result: ItemResult,
    explanation: Option<ExplanationField>,
) -> Map<String, Value> {
    let results = match result {
        ItemResult::Scored(label, probability, warnings) => [
            Value::from(label),
            Value::from(probability),
            Value::from(Status::Ok.as_str()),
            Value::from(Status::Ok.reason_phrase()),
            Value::from(warnings),
        ],
        ItemResult::Rejected(reason) => [
            Value::from(""),
            Value::from(""),
            Value::from(Status::BadRequest.as_str()),
            Value::from(reason),
            Value::from(""),
        ],
    };
    for (name, value) in RESULT_COLUMNS.into_iter().zip(results) {
        let key = result_key(&item, name);
        item.insert(key, value);
    }
    if let Some(explanation) = explanation {
        let key = result_key(&item, "explanation");
        item.insert(key, serde_json::to_value(explanation).unwrap_or_default());
    }
    item
}

/// Where a result goes in an item: its own name, unless the input already has
/// a field by that name. Input fields are never overwritten (the rule of the
/// CSV path, which appends its result columns after the input's, duplicates
/// included): the result then takes the name pandas gives the second of two
/// equal CSV columns, `status.1` (or `status.2`, ... if that is taken too).
fn result_key(item: &Map<String, Value>, name: &str) -> String {
    if !item.contains_key(name) {
        return name.to_owned();
    }
    (1..).map(|n| format!("{name}.{n}")).find(|key| !item.contains_key(key)).unwrap_or_default()
}

/// Item fields by the column-name rule ([`feature_by_name`]) and the
/// duplicate rule every object's keys follow ([`put_value`]); values as CSV
/// cells (a decimal comma where the file's dialect has one); JSON numbers
/// are accepted too (JSON item readers).
fn observation_of(item: &Map<String, Value>, cells: Cells) -> Result<Observation, Rejection> {
    let mut inputs = [FieldInput::Missing; FEATURE_COUNT];
    for (key, value) in item {
        let Some(f) = feature_by_name(key) else { continue };
        let input = match value {
            // A blank string is missing, by the rule every cell follows.
            Value::String(s) if cells.decimal_comma => FieldInput::DecimalCommaText(s),
            Value::String(s) => FieldInput::Text(s),
            Value::Number(n) => n.as_f64().map_or(FieldInput::WrongType("a number out of range"), FieldInput::Number),
            Value::Null => FieldInput::Null,
            Value::Bool(_) => FieldInput::WrongType("a boolean"),
            Value::Array(_) => FieldInput::WrongType("an array"),
            Value::Object(_) => FieldInput::WrongType("an object"),
        };
        put_value(&mut inputs, f, input);
    }
    Observation::from_inputs(&inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_their_fields_and_order_and_bad_rows_are_400s() {
        let model = Model::embedded().unwrap();
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"sample_id":"a","mean concave points":"0.1471","worst radius":"25.38","worst texture":"17.33","worst area":"2019","worst concave points":"0.2654"},
                {"sample_id":"b","mean concave points":"","worst radius":"25.38","worst texture":"x","worst area":"-1","worst concave points":"0.2"},
                {"sample_id":"c"}]"#,
        )
        .unwrap();
        let (out, counts) = score_items(&model, items);
        assert_eq!((counts.rows, counts.scored, counts.rejected), (3, 1, 2));
        let keys: Vec<&str> = out[0].keys().map(String::as_str).collect();
        assert_eq!(keys[0], "sample_id");
        assert_eq!(&keys[6..], ["prediction", "probability", "status", "reason", "warnings"]);
        assert_eq!(out[0]["warnings"], "");
        assert_eq!(out[0]["prediction"], 1);
        assert_eq!(out[1]["status"], "400");
        assert_eq!(
            out[1]["reason"],
            "'meanConcavePoints' is missing; 'worstTexture' is not a number; 'worstArea' must not be negative"
        );
        assert_eq!(out[2]["sample_id"], "c");
    }

    #[test]
    fn an_item_that_is_not_an_object_is_a_400_item_in_its_place() {
        let model = Model::embedded().unwrap();
        let items: Vec<Value> = serde_json::from_str(
            r#"[7,{"mean concave points":"0.1471","worst radius":"25.38","worst texture":"17.33","worst area":"2019","worst concave points":"\u00a0"},"x"]"#,
        )
        .unwrap();
        let (out, counts) = score_items(&model, items);
        assert_eq!((counts.rows, counts.scored, counts.rejected), (3, 0, 3));
        let expected =
            serde_json::json!({"prediction":"","probability":"","status":"400","reason":NOT_AN_OBJECT,"warnings":""});
        assert_eq!(Value::Object(out[0].clone()), expected);
        assert_eq!(Value::Object(out[2].clone()), expected);
        // A blank value, whatever its white space, is missing.
        assert_eq!(out[1]["reason"], "'worstConcavePoints' is missing");
    }

    #[test]
    fn items_named_by_any_form_of_the_column_rule_score_and_carry_the_csv_warnings() {
        let model = Model::embedded().unwrap();
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"Mean_Concave_Points":"0.1471","worst-radius":"25.38","WorstTexture":"17.33","worst area (mm2)":"9000","worst concave points":"0.2654"},
                {"worst_area":"1","worstArea":"2"}]"#,
        )
        .unwrap();
        let (out, counts) = score_items(&model, items);
        assert_eq!((counts.scored, counts.rejected), (1, 1));
        let warnings = out[0]["warnings"].as_str().unwrap();
        assert_eq!(warnings, "worstArea");
        // The features HTTP warns about, by name.
        let observation = Observation::from_values([0.1471, 25.38, 17.33, 9000.0, 0.2654]).unwrap();
        let http = crate::contract::answer::range_warnings(
            &model,
            Scorer::new(&model, Wants::default()).unwrap().score(&observation).out_of_range,
        );
        assert_eq!(http.len(), 1);
        assert!(http[0].starts_with("'worstArea' is outside the range seen in training ("), "{http:?}");
        assert!(out[1]["reason"].as_str().unwrap().contains("'worstArea' is given more than once"));
    }

    #[test]
    fn input_fields_named_like_results_are_kept_and_the_results_go_beside_them() {
        let model = Model::embedded().unwrap();
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"status":"pending","mean concave points":"0.1471","worst radius":"25.38","worst texture":"17.33","worst area":"2019","worst concave points":"0.2654","reason":"screening","reason.1":"second opinion"}]"#,
        )
        .unwrap();
        let (out, _) = score_items(&model, items);
        let keys: Vec<&str> = out[0].keys().map(String::as_str).collect();
        assert_eq!(keys[8..], ["prediction", "probability", "status.1", "reason.2", "warnings"]);
        assert_eq!(out[0]["status"], "pending");
        assert_eq!(out[0]["reason"], "screening");
        assert_eq!(out[0]["reason.1"], "second opinion");
        assert_eq!(out[0]["status.1"], "200");
        assert_eq!(out[0]["reason.2"], "OK");
        assert_eq!(out[0]["prediction"], 1);
    }
}
