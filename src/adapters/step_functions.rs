//! Step Functions Distributed Map: the map reads a CSV from S3 with its
//! ItemReader (header from the first row) and invokes the function with
//! `{"Items": [{column: value, ...}], "BatchInput": {...}}`. Each item is a
//! CSV row as an object of strings; it goes through the same
//! [`Observation::from_inputs`] as a CSV cell and comes back with its fields
//! plus `prediction`, `probability`, `status`, `reason`, `warnings`, in order. A bad row,
//! or an item that is not an object, is an item with status 400, never a
//! failed batch. With `"explain": true` in the map's `BatchInput`, a scored
//! item also gets `explanation`, the object HTTP answers. `BatchInput`'s
//! `delimiter` is the ItemReader's `CSVDelimiter` (the state machine passes
//! the same value to both): with `SEMICOLON`, cells may use a decimal comma,
//! as on the S3 route. A row with text the reader could not decode (U+FFFD
//! or NUL: a Windows-1252 or UTF-16 file) is a 400 saying what to do.

use std::time::Instant;

use serde_json::{Map, Value};

use super::drift_out::{self, Keep};
use super::Context;
use crate::contract::answer::ExplanationField;
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::core::columns::{feature_by_name, put_value};
use crate::core::csv_pipeline::{BatchCounts, RESULT_COLUMNS};
use crate::core::csv_reader::Dialect;
use crate::core::explain::NoExplanation;
use crate::core::features::Features;
use crate::core::model::Model;
use crate::core::observation::{missing_inputs, FieldInput, Observation, Rejection};
use crate::core::observation_json::BodyError;
use crate::core::scoring::{write_range_names, Scorer, Tallies, Wants};
use crate::core::status::Status;
use crate::telemetry::Metrics;

/// Why an item that is not a JSON object is rejected.
const NOT_AN_OBJECT: &str = "the item is not an object of column values";

/// Handles a Distributed Map batch: scores its items (with their
/// explanations when `explain`, cells read by `cells`), logs and counts
/// them, and reports the batch's drift as metrics (the answer stays the
/// items array, the state machine's result). Items that are not objects
/// come back as 400 items; the batch itself never fails.
pub async fn handle(
    ctx: &Context<'_>,
    items: Vec<Value>,
    explain: bool,
    cells: Cells,
    invocation: &Invocation,
) -> Vec<Map<String, Value>> {
    let started = Instant::now();
    let wants = Wants { explain, drift: ctx.config.drift.is_some() };
    let (out, counts, tallies) = match Scorer::new(ctx.model, wants) {
        Ok(scorer) => {
            let mut scorer = scorer.with_challenger(ctx.challenger.map(|c| &**c));
            let (out, counts) = score_items_with(&mut scorer, items, cells);
            (out, counts, scorer.into_tallies())
        }
        Err(e) => {
            let (out, counts) = unexplainable_items(items, e);
            (out, counts, Tallies::default())
        }
    };
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
    // Kept nowhere: metrics only, which cannot fail (docs/drift.md).
    let _ = drift_out::publish(ctx, entry_point, tallies, Keep::Nowhere).await;
    out
}

/// The code of an item whose text the map's CSV reader could not decode.
pub const UNDECODED_TEXT: &str = "undecoded_text";

/// Why: AWS documents no encoding for the CSV ItemReader (state data is JSON
/// text); a Windows-1252 or UTF-16 file reaches us with U+FFFD or NUL where
/// its bytes were not UTF-8. Scoring such a row would answer under an id the
/// lab cannot join back (or read a garbled header), so it is refused with
/// what to do.
const UNDECODED_REASON: &str = "the row's text was not decoded (it holds U+FFFD or NUL): \
     the file is not UTF-8 (Windows-1252, or UTF-16 such as Excel's \"Unicode Text\"?), \
     which the Distributed Map's CSV reader does not read; save it as \"CSV UTF-8\", \
     or score it through the S3 route, which reads both";

/// An item with a key or value the reader could not decode.
fn undecoded(item: &Map<String, Value>) -> bool {
    let bad = |s: &str| s.contains(['\u{fffd}', '\0']);
    item.iter().any(|(k, v)| bad(k) || matches!(v, Value::String(s) if bad(s)))
}

/// Scores every item of a batch; returns them in order, and the counts. An
/// item that is not an object is answered with the result fields alone.
pub fn score_items(model: &Model, items: Vec<Value>) -> (Vec<Map<String, Value>>, BatchCounts) {
    let mut scorer = Scorer::new(model, Wants::default()).unwrap_or_else(|_| unreachable!("no explanation wanted"));
    score_items_with(&mut scorer, items, Cells::default())
}

/// How the map's items are read: cells of a `;` file may use a decimal comma
/// (the CSV path's rule, [`Dialect::decimal_comma`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cells {
    pub decimal_comma: bool,
}

/// The key of the map's `BatchInput` that names the delimiter its ItemReader
/// split the file with.
pub const DELIMITER: &str = "delimiter";

/// The names Step Functions' `ReaderConfig.CSVDelimiter` accepts, and the
/// byte each stands for.
const READER_DELIMITERS: [(&str, u8); 5] =
    [("COMMA", b','), ("PIPE", b'|'), ("SEMICOLON", b';'), ("SPACE", b' '), ("TAB", b'\t')];

impl Cells {
    /// From the map's `BatchInput.delimiter`: the ItemReader's `CSVDelimiter`,
    /// spelt as the state machine spells it (`COMMA`, `PIPE`, `SEMICOLON`,
    /// `SPACE`, `TAB`); absent or null is `COMMA`, the ItemReader's default.
    /// A `SEMICOLON` file reads decimal commas, by the CSV path's rule. Any
    /// other value is an error: the state machine is misconfigured, and
    /// guessing would score `0,5` as a 400 or `1,234` as the wrong number.
    pub fn from_batch_input(value: Option<&Value>) -> Result<Cells, String> {
        let delimiter = match value {
            None | Some(Value::Null) => b',',
            Some(Value::String(name)) => match READER_DELIMITERS.iter().find(|(n, _)| n == name) {
                Some(&(_, byte)) => byte,
                None => return Err(delimiter_error(&format!("{name:?}"))),
            },
            Some(other) => return Err(delimiter_error(json_kind(other))),
        };
        Ok(Cells { decimal_comma: Dialect::with_delimiter(delimiter).decimal_comma() })
    }
}

fn delimiter_error(what: &str) -> String {
    format!(
        "'{DELIMITER}' must be the ItemReader's CSVDelimiter, one of COMMA, PIPE, SEMICOLON, SPACE or TAB, not {what}"
    )
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null | Value::String(_) => "a string",
    }
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
    let model = scorer.model();
    let features = model.features();
    let scored = items
        .into_iter()
        .map(|item| {
            let (item, input) = match item {
                Value::Object(item) if undecoded(&item) => (item, Err(UNDECODED_TEXT)),
                Value::Object(item) => {
                    let input = observation_of(features, &item, cells);
                    (item, Ok(input))
                }
                _ => (Map::new(), Err(BodyError::NOT_AN_OBJECT)),
            };
            let (result, explanation) = match input {
                Err(code) => {
                    scorer.reject(code);
                    counts.count_rejected(code);
                    let reason = if code == UNDECODED_TEXT { UNDECODED_REASON } else { NOT_AN_OBJECT };
                    (ItemResult::Rejected(reason.to_owned()), None)
                }
                Ok(input) => match scorer.score_input(input) {
                    Ok(scored) => {
                        counts.count_scored(&scored.prediction);
                        let mut warnings = String::new();
                        let _ = write_range_names(features, scored.out_of_range, &mut warnings);
                        (
                            ItemResult::Scored(scored.prediction.label, scored.prediction.probability, warnings),
                            scored.explanation.cloned(),
                        )
                    }
                    Err(rejection) => {
                        counts.count_rejected(rejection.code());
                        let mut reason = String::new();
                        rejection.write_field_messages(features, &mut reason);
                        (ItemResult::Rejected(reason), None)
                    }
                },
            };
            with_results(item, result, explanation.map(|explanation| ExplanationField { explanation, features }))
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
    explanation: Option<ExplanationField<'_>>,
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
fn observation_of(features: &Features, item: &Map<String, Value>, cells: Cells) -> Result<Observation, Rejection> {
    let mut inputs = missing_inputs(features.len());
    for (key, value) in item {
        let Some(f) = feature_by_name(features, key) else { continue };
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
    fn the_readers_delimiter_names_decide_the_decimal_comma_and_anything_else_is_refused() {
        let cells = |v: Option<Value>| Cells::from_batch_input(v.as_ref());
        assert_eq!(cells(None), Ok(Cells { decimal_comma: false }));
        assert_eq!(cells(Some(Value::Null)), Ok(Cells { decimal_comma: false }));
        assert_eq!(cells(Some("SEMICOLON".into())), Ok(Cells { decimal_comma: true }));
        for name in ["COMMA", "PIPE", "SPACE", "TAB"] {
            assert_eq!(cells(Some(name.into())), Ok(Cells { decimal_comma: false }), "{name}");
        }
        // One documented form, the state machine's: not the character, not lower case.
        for bad in [";", "semicolon", "", "tab"] {
            let e = cells(Some(bad.into())).unwrap_err();
            assert!(e.contains("one of COMMA, PIPE, SEMICOLON, SPACE or TAB"), "{e}");
            assert!(e.ends_with(&format!("not {bad:?}")), "{e}");
        }
        assert!(cells(Some(true.into())).unwrap_err().ends_with("not a boolean"));
    }

    #[test]
    fn a_semicolon_batch_reads_decimal_commas_as_the_csv_path_does() {
        let model = Model::embedded().unwrap();
        let item = |sep: char| {
            let c = |t: &str| t.replace('.', &sep.to_string());
            serde_json::json!({"mean concave points": c("0.1471"), "worst radius": c("25.38"), "worst texture": c("17.33"), "worst area": "2019", "worst concave points": c("0.2654")})
        };
        let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
        let (dot, _) = score_items_with(&mut scorer, vec![item('.')], Cells::default());
        let (comma, counts) = score_items_with(&mut scorer, vec![item(','), item('.')], Cells { decimal_comma: true });
        assert_eq!(counts.scored, 2, "{comma:?}");
        assert_eq!(comma[0]["probability"], dot[0]["probability"]);
        assert_eq!(comma[1]["probability"], dot[0]["probability"]);
        // Without the delimiter, a decimal comma is not a number (the CSV path's rule for ',' files).
        let (plain, _) = score_items_with(&mut scorer, vec![item(',')], Cells::default());
        assert_eq!(plain[0]["status"], "400");
        assert!(plain[0]["reason"].as_str().unwrap().contains("'meanConcavePoints' is not a number"), "{plain:?}");
    }

    #[test]
    fn a_row_the_reader_could_not_decode_is_refused_with_what_to_do() {
        let model = Model::embedded().unwrap();
        let good = r#""mean concave points":"0.1471","worst radius":"25.38","worst texture":"17.33","worst area":"2019","worst concave points":"0.2654""#;
        let items: Vec<Value> = serde_json::from_str(&format!(
            r#"[{{"id":"Mu\ufffdoz",{good}}}, {{"\u0000i\u0000d":"1",{good}}}, {{"id":"Muñoz",{good}}}]"#
        ))
        .unwrap();
        let (out, counts) = score_items(&model, items);
        assert_eq!((counts.scored, counts.rejected), (1, 2));
        assert_eq!(counts.rejected_by_reason.get(UNDECODED_TEXT), Some(&2));
        for item in &out[..2] {
            assert_eq!(item["status"], "400");
            assert_eq!(item["reason"], UNDECODED_REASON);
        }
        assert_eq!(out[0]["id"], "Mu\u{fffd}oz", "the fields come back as they came");
        assert_eq!(out[2]["status"], "200", "UTF-8 text is text");
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
