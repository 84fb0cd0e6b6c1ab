//! One observation's answer: computed once ([`Answer::of`]) for every path
//! that answers observation by observation (the Function URL, SQS results
//! lines), and the pieces every answer shape shares ([`PredictionField`],
//! [`ErrorItem`], [`range_warnings`]). Each path lays the fields out in its
//! own order, the one its clients already read.

use std::borrow::Cow;

use serde::Serialize;

use crate::core::challenger::ChallengerStats;
use crate::core::explain::{Explanation, NoExplanation};
use crate::core::features::Features;
use crate::core::model::Model;
use crate::core::observation::{FieldError, Observation, Rejection};
use crate::core::observation_json::BodyError;
use crate::core::scoring::{OutOfRange, Scored, Scorer, Wants};
use crate::core::status::Status;

/// What one observation answers, before a path gives it its shape.
/// Borrows the model's names (`'m`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<'m> {
    /// `200` scored, `400` rejected.
    pub status: Status,
    /// `"OK"`, or why the observation was rejected (the seed message when a value is absent).
    pub reason: Cow<'static, str>,
    pub prediction: PredictionField,
    /// Scored only.
    pub probability: Option<f64>,
    /// The class name (the shipped model: `"malignant"` or `"benign"`); scored only.
    pub label: Option<&'m str>,
    /// Rejected only: one per field.
    pub errors: Vec<ErrorItem>,
    /// Scored only: one per value outside the training range.
    pub warnings: Vec<String>,
    /// Scored and asked for only: each feature's contribution (log-odds).
    pub explanation: Option<ExplanationField<'m>>,
}

impl<'m> Answer<'m> {
    /// An observation's answer without an explanation.
    pub fn of(model: &'m Model, observation: Result<Observation, Rejection>) -> Self {
        Self::with(model, observation, false)
    }

    /// One observation's answer; with `explain`, a scored one carries its
    /// explanation, and a model that cannot explain answers 400
    /// `explanations_unavailable` (the request cannot be honoured, whatever
    /// the values).
    pub fn with(model: &'m Model, observation: Result<Observation, Rejection>, explain: bool) -> Self {
        Self::shadowed(model, None, observation, explain).0
    }

    /// [`Answer::with`], the observation also scored by `challenger` in
    /// shadow: the same answer, and how the challenger compared (with a
    /// challenger; nothing is counted for a rejected observation).
    pub fn shadowed(
        model: &'m Model,
        challenger: Option<&'m Model>,
        observation: Result<Observation, Rejection>,
        explain: bool,
    ) -> (Self, Option<ChallengerStats>) {
        match Scorer::new(model, Wants { explain, drift: false }) {
            Ok(scorer) => {
                let mut scorer = scorer.with_challenger(challenger);
                let answer = Self::scored_by(&mut scorer, observation);
                (answer, scorer.into_tallies().challenger)
            }
            Err(e) => (Self::not_explainable(e), None),
        }
    }

    /// The one way an observation (or its rejection) becomes an answer: scored
    /// by the route's [`Scorer`] (which counts it into the route's drift
    /// statistics when it gathers them).
    pub fn scored_by(scorer: &mut Scorer<'m>, observation: Result<Observation, Rejection>) -> Self {
        let model = scorer.model();
        match scorer.score_input(observation) {
            Ok(scored) => Self::from_scored(model, &scored),
            Err(rejection) => Self::of_rejection(scorer.model().features(), &rejection),
        }
    }

    /// A rejected observation's answer: the reason and one item per field.
    pub fn of_rejection(features: &Features, rejection: &Rejection) -> Self {
        Self::rejected(
            rejection.reason(features),
            rejection.errors().iter().map(|e| ErrorItem::of_field(features, e)).collect(),
        )
    }

    /// A scored observation's answer.
    pub fn from_scored(model: &'m Model, scored: &Scored) -> Self {
        let p = scored.prediction;
        Answer {
            status: Status::Ok,
            reason: Cow::Borrowed(Status::Ok.reason_phrase()),
            prediction: PredictionField::Label(p.label),
            probability: Some(p.probability),
            label: Some(model.class_name(p.label)),
            errors: Vec::new(),
            warnings: range_warnings(model, scored.out_of_range),
            explanation: scored
                .explanation
                .map(|explanation| ExplanationField { explanation: explanation.clone(), features: model.features() }),
        }
    }

    /// A 400 answer: its reason and field errors.
    pub fn rejected(reason: String, errors: Vec<ErrorItem>) -> Self {
        Answer {
            status: Status::BadRequest,
            reason: Cow::Owned(reason),
            prediction: PredictionField::Empty,
            probability: None,
            label: None,
            errors,
            warnings: Vec::new(),
            explanation: None,
        }
    }

    /// A body that is not an observation object (nothing was scored).
    pub fn of_body_error(e: &BodyError) -> Self {
        Self::rejected(e.to_string(), body_error_items(e))
    }

    /// `explain` was asked of a model that cannot explain.
    pub fn not_explainable(e: NoExplanation) -> Self {
        let message = e.to_string();
        Self::rejected(message.clone(), vec![ErrorItem { field: Cow::Borrowed(EXPLAIN), code: e.code(), message }])
    }

    /// `explain` had a value other than true or false.
    pub fn bad_explain_flag(e: &ExplainFlagError) -> Self {
        Self::rejected(e.to_string(), vec![e.item()])
    }

    /// The label (1 or 0) when scored.
    pub fn prediction_label(&self) -> Option<u8> {
        match self.prediction {
            PredictionField::Label(l) => Some(l),
            PredictionField::Empty => None,
        }
    }

    /// The first rejected field's code (`missing`, `negative`, ...), for logs and metrics.
    pub fn rejection_code(&self) -> Option<&'static str> {
        self.errors.first().map(|e| e.code)
    }
}

/// `prediction` is an integer, or `""` when there is none (the seed's contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionField {
    Label(u8),
    Empty,
}

impl Serialize for PredictionField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PredictionField::Label(l) => s.serialize_u8(*l),
            PredictionField::Empty => s.serialize_str(""),
        }
    }
}

/// One entry of `errors`: the field, a stable code and a sentence naming the
/// field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorItem {
    /// A feature's API name, or `id`, `explain`.
    pub field: Cow<'static, str>,
    pub code: &'static str,
    pub message: String,
}

impl ErrorItem {
    /// The item of one rejected field.
    pub fn of_field(features: &Features, e: &FieldError) -> Self {
        ErrorItem {
            field: Cow::Owned(e.field(features).to_owned()),
            code: e.problem.code(),
            message: e.message(features).to_string(),
        }
    }
}

/// The `field` of an error about the body as a whole (not JSON, empty, too large, ...).
pub const BODY: &str = "body";

/// The `errors` of a body that is not an observation: one item, naming
/// `id` for an invalid or repeated `id`, `body` otherwise, with the
/// error's code. HTTP and SQS alike: every 400 carries a code in `errors`.
pub fn body_error_items(e: &BodyError) -> Vec<ErrorItem> {
    let field = match e {
        BodyError::InvalidId | BodyError::DuplicateId => "id",
        BodyError::Empty(_) | BodyError::NotJson { .. } | BodyError::NotAnObject(_) | BodyError::NotUtf8 => BODY,
    };
    vec![ErrorItem { field: Cow::Borrowed(field), code: e.code(), message: e.to_string() }]
}

impl ErrorItem {
    /// An item about the body as a whole.
    pub fn of_body(code: &'static str, message: impl Into<String>) -> Self {
        ErrorItem { field: Cow::Borrowed(BODY), code, message: message.into() }
    }
}

/// The name of the explain option on every path (query parameter, message
/// and BatchInput field, `errors[].field`).
pub const EXPLAIN: &str = "explain";

/// An `explain` option that is neither true nor false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExplainFlagError {
    #[error("'explain' must be true or false (any case), or 1 or 0")]
    Invalid,
    #[error("'explain' must be given at most once")]
    Repeated,
}

impl ExplainFlagError {
    pub const CODE: &'static str = "invalid_explain";

    pub fn item(&self) -> ErrorItem {
        ErrorItem { field: Cow::Borrowed(EXPLAIN), code: Self::CODE, message: self.to_string() }
    }
}

/// The one rule for an `explain` option written as text (a query parameter,
/// the `EXPLAIN` variable, a JSON string): `true` or `false` in any case
/// (.NET's `bool.ToString()` writes `True`), or `1` or `0`; spaces, tabs and
/// line ends around it are ignored. Nothing else. openapi.yaml's `explain`
/// pattern says exactly this.
pub fn explain_flag(text: &str) -> Result<bool, ExplainFlagError> {
    let word = text.trim_matches([' ', '\t', '\r', '\n']);
    if word == "1" || word.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if word == "0" || word.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ExplainFlagError::Invalid)
    }
}

/// The same rule for a JSON field (an SQS observation, a Distributed Map
/// `BatchInput`): absent or null is false; a boolean, or the text rule
/// (Step Functions passes execution input through as strings as often as not).
pub fn explain_flag_json(value: Option<&serde_json::Value>) -> Result<bool, ExplainFlagError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(serde_json::Value::String(s)) => explain_flag(s),
        Some(_) => Err(ExplainFlagError::Invalid),
    }
}

/// The explanation as every answer shape carries it:
/// `{"unit":"log-odds","baseValue":E,"contributions":{"meanConcavePoints":phi,…}}`,
/// features in the model's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplanationField<'m> {
    pub explanation: Explanation,
    /// The model's features, which name the contributions.
    pub features: &'m Features,
}

impl Serialize for ExplanationField<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Contributions<'a>(&'a ExplanationField<'a>);
        impl Serialize for Contributions<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let contributions = &self.0.explanation.contributions;
                let mut map = s.serialize_map(Some(contributions.len()))?;
                for (name, phi) in self.0.features.api_names().zip(contributions) {
                    map.serialize_entry(name, phi)?;
                }
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("unit", "log-odds")?;
        map.serialize_entry("baseValue", &self.explanation.base_value)?;
        map.serialize_entry("contributions", &Contributions(self))?;
        map.end()
    }
}

/// One warning per feature outside the range seen in training (names the
/// range, never the value).
pub fn range_warnings(model: &Model, out_of_range: OutOfRange) -> Vec<String> {
    out_of_range
        .iter()
        .map(|i| {
            let mut warning = String::new();
            let _ = model.write_range_warning(i, &mut warning);
            warning
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_observation_answers_its_prediction_and_warnings_and_a_rejection_its_reasons() {
        let model = Model::embedded().unwrap();
        let inside = Observation::from_values([0.1471, 25.38, 17.33, 2019.0, 0.2654]).unwrap();
        let answer = Answer::of(&model, Ok(inside));
        let p = model.predict(&inside);
        assert_eq!((answer.status, answer.reason.as_ref()), (Status::Ok, "OK"));
        assert_eq!(answer.prediction, PredictionField::Label(p.label));
        assert_eq!((answer.probability, answer.label), (Some(p.probability), Some(model.class_name(p.label))));
        assert!(answer.errors.is_empty() && answer.warnings.is_empty());

        let far = Observation::from_values([0.1471, 25.38, 17.33, 2019.0, 99.0]).unwrap();
        let warnings = Answer::of(&model, Ok(far)).warnings;
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("'worstConcavePoints' is outside the range seen in training ("),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("99"), "{warnings:?}");

        let rejection = Observation::from_values([0.1, -1.0, 1.0, 1.0, f64::NAN]).unwrap_err();
        let answer = Answer::of(&model, Err(rejection.clone()));
        assert_eq!(
            (answer.status, answer.reason.as_ref()),
            (Status::BadRequest, rejection.reason(model.features()).as_str())
        );
        assert_eq!(answer.prediction, PredictionField::Empty);
        assert_eq!((answer.probability, answer.label), (None, None));
        let codes: Vec<(&str, &str)> = answer.errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(codes, [("worstRadius", "negative"), ("worstConcavePoints", "not_finite")]);
        assert_eq!(answer.rejection_code(), Some("negative"));
    }

    #[test]
    fn a_prediction_is_an_integer_or_an_empty_string() {
        assert_eq!(serde_json::to_string(&PredictionField::Label(1)).unwrap(), "1");
        assert_eq!(serde_json::to_string(&PredictionField::Empty).unwrap(), "\"\"");
    }
}
