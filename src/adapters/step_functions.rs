//! Step Functions Distributed Map: the map reads a CSV from S3 with its
//! ItemReader (header from the first row) and invokes the function with
//! `{"Items": [{column: value, ...}], "BatchInput": {...}}`. Each item is a
//! CSV row as an object of strings; it goes through the same
//! [`Observation::from_inputs`] as a CSV cell and comes back with its fields
//! plus `prediction`, `probability`, `status`, `reason`, `warnings`, in order. A bad row,
//! or an item that is not an object, is an item with status 400, never a
//! failed batch. With `"explain": true` in the map's `BatchInput`, a scored
//! item also gets `explanation`, the object HTTP answers.

use std::time::Instant;

use serde_json::{Map, Value};

use super::drift_out::{self, Keep};
use super::Context;
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::telemetry::Metrics;

use crate::contract::answer::{ExplanationField, PredictionField};
use crate::core::batch::{BatchCounts, RESULT_COLUMNS};
use crate::core::columns::feature_by_name;
use crate::core::drift::DriftStats;
use crate::core::explain::NoExplanation;
use crate::core::model::Model;
use crate::core::observation::{FieldInput, Observation, FEATURE_COUNT};
use crate::core::observation_json::BodyError;
use crate::core::status::Status;

/// Why an item that is not a JSON object is rejected.
const NOT_AN_OBJECT: &str = "the item is not an object of column values";

/// Handles a Distributed Map batch: scores its items (with their
/// explanations when `explain`), logs and counts them, and reports the
/// batch's drift as metrics (the answer stays the items array, the state
/// machine's result). Items that are not objects come back as 400 items;
/// the batch itself never fails.
pub async fn handle(
    ctx: &Context<'_>,
    items: Vec<Value>,
    explain: bool,
    invocation: &Invocation,
) -> Vec<Map<String, Value>> {
    let started = Instant::now();
    let model = ctx.model;
    let mut drift = ctx.config.drift.map(|_| DriftStats::new(model));
    let (out, counts) = score_items_with(model, items, explain, drift.as_mut());
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let entry_point = EntryPoint::DistributedMap;
    let (request_id, cold_start) = (invocation.request_id.as_str(), invocation.cold_start);
    tracing::info!(
        entry_point = entry_point.as_str(),
        request_id,
        cold_start,
        rows = counts.rows,
        scored = counts.scored,
        rejected = counts.rejected,
        "items scored"
    );
    let mut metrics = Metrics::new(entry_point.as_str());
    metrics.count("RowsScored", counts.scored).count("RejectedInputs", counts.rejected).millis("HandlerDuration", ms);
    if cold_start {
        metrics.count("ColdStart", 1);
    }
    metrics.emit();
    // Keeping it nowhere cannot fail.
    let _ = drift_out::publish(ctx, entry_point, drift, Keep::Nowhere).await;
    out
}

/// Scores every item of a batch; returns them in order, and the counts. An
/// item that is not an object is answered with the result fields alone.
pub fn score_items(model: &Model, items: Vec<Value>) -> (Vec<Map<String, Value>>, BatchCounts) {
    score_items_with(model, items, false, None)
}

/// [`score_items`]; with `explain`, each scored item gets `explanation` after
/// its results (on a model that cannot explain, every item is a 400
/// `explanations_unavailable`); each item is counted into `drift` if given.
pub fn score_items_with(
    model: &Model,
    items: Vec<Value>,
    explain: bool,
    mut drift: Option<&mut DriftStats>,
) -> (Vec<Map<String, Value>>, BatchCounts) {
    let unexplainable = (explain && !model.can_explain()).then_some(NoExplanation::NoCovers);
    let mut counts = BatchCounts::default();
    let scored = items
        .into_iter()
        .map(|item| {
            counts.rows += 1;
            let (mut item, result) = match item {
                Value::Object(item) => {
                    let result = match unexplainable {
                        Some(e) => Err((e.code(), e.to_string())),
                        None => observation_of(&item),
                    };
                    (item, result)
                }
                _ => (Map::new(), Err((BodyError::NOT_AN_OBJECT, NOT_AN_OBJECT.to_owned()))),
            };
            let mut explanation = None;
            let (prediction, probability, status, reason, warnings) = match result {
                Ok(obs) => {
                    let p = if explain || drift.is_some() {
                        let (p, bins) = model.predict_with_bins(&obs);
                        if explain {
                            explanation = model.explain_with_bins(&obs, &bins).ok().map(ExplanationField);
                        }
                        if let Some(stats) = drift.as_deref_mut() {
                            stats.record(&obs, &p, &bins);
                        }
                        p
                    } else {
                        model.predict(&obs)
                    };
                    counts.scored += 1;
                    counts.malignant += u64::from(p.label);
                    let reason = Status::Ok.reason_phrase().to_owned();
                    let mut warnings = String::new();
                    let _ = model.write_range_warnings(&obs, &mut warnings);
                    (PredictionField::Label(p.label), Value::from(p.probability), Status::Ok, reason, warnings)
                }
                Err((code, reason)) => {
                    if let Some(stats) = drift.as_deref_mut() {
                        stats.record_rejected(code);
                    }
                    counts.rejected += 1;
                    *counts.rejected_by_reason.entry(code).or_default() += 1;
                    (PredictionField::Empty, Value::from(""), Status::BadRequest, reason, String::new())
                }
            };
            let prediction = match prediction {
                PredictionField::Label(l) => Value::from(l),
                PredictionField::Empty => Value::from(""),
            };
            let results =
                [prediction, probability, Value::from(status.as_str()), Value::from(reason), Value::from(warnings)];
            for (name, value) in RESULT_COLUMNS.into_iter().zip(results) {
                let key = result_key(&item, name);
                item.insert(key, value);
            }
            if let Some(explanation) = explanation {
                let key = result_key(&item, "explanation");
                item.insert(key, serde_json::to_value(explanation).unwrap_or_default());
            }
            item
        })
        .collect();
    (scored, counts)
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

/// Item fields by the column-name rule ([`feature_by_name`]), values as
/// CSV cells; JSON numbers are accepted too (JSON item readers).
fn observation_of(item: &Map<String, Value>) -> Result<Observation, (&'static str, String)> {
    let mut inputs = [FieldInput::Missing; FEATURE_COUNT];
    for (key, value) in item {
        let Some(f) = feature_by_name(key) else { continue };
        if inputs[f] != FieldInput::Missing {
            inputs[f] = FieldInput::Duplicate;
            continue;
        }
        inputs[f] = match value {
            // A blank string is missing, by the rule every cell follows.
            Value::String(s) => FieldInput::Text(s),
            Value::Number(n) => n.as_f64().map_or(FieldInput::WrongType("a number out of range"), FieldInput::Number),
            Value::Null => FieldInput::Null,
            Value::Bool(_) => FieldInput::WrongType("a boolean"),
            Value::Array(_) => FieldInput::WrongType("an array"),
            Value::Object(_) => FieldInput::WrongType("an object"),
        };
    }
    Observation::from_inputs(&inputs).map_err(|rejection| {
        let mut reason = String::new();
        rejection.write_field_messages(&mut reason);
        (rejection.errors()[0].problem.code(), reason)
    })
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
        let http = crate::contract::answer::range_warnings(&model, &observation);
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
