//! One observation's answer: computed once ([`Answer::of`]) for every path
//! that answers observation by observation (the Function URL, SQS results
//! lines), and the pieces every answer shape shares ([`PredictionField`],
//! [`ErrorItem`], [`range_warnings`]). Each path lays the fields out in its
//! own order, the one its clients already read.

use std::borrow::Cow;

use serde::Serialize;

use crate::core::model::Model;
use crate::core::observation::{FieldError, Observation, Rejection};
use crate::core::status::Status;

/// What one observation answers, before a path gives it its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `200` scored, `400` rejected.
    pub status: Status,
    /// `"OK"`, or why the observation was rejected (the seed message when a value is absent).
    pub reason: Cow<'static, str>,
    pub prediction: PredictionField,
    /// Scored only.
    pub probability: Option<f64>,
    /// `"malignant"` or `"benign"`; scored only.
    pub label: Option<&'static str>,
    /// Rejected only: one per field.
    pub errors: Vec<ErrorItem>,
    /// Scored only: one per value outside the training range.
    pub warnings: Vec<String>,
}

impl Answer {
    /// The one way an observation (or its rejection) becomes an answer.
    pub fn of(model: &Model, observation: Result<Observation, Rejection>) -> Self {
        match observation {
            Ok(observation) => {
                let p = model.predict(&observation);
                Answer {
                    status: Status::Ok,
                    reason: Cow::Borrowed(Status::Ok.reason_phrase()),
                    prediction: PredictionField::Label(p.label),
                    probability: Some(p.probability),
                    label: Some(p.label_name()),
                    errors: Vec::new(),
                    warnings: range_warnings(model, &observation),
                }
            }
            Err(rejection) => Answer {
                status: Status::BadRequest,
                reason: Cow::Owned(rejection.reason()),
                prediction: PredictionField::Empty,
                probability: None,
                label: None,
                errors: rejection.errors().iter().map(ErrorItem::from).collect(),
                warnings: Vec::new(),
            },
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
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl From<&FieldError> for ErrorItem {
    fn from(e: &FieldError) -> Self {
        ErrorItem { field: e.field(), code: e.problem.code(), message: e.to_string() }
    }
}

/// One warning per feature outside the range seen in training (names the
/// range, never the value).
pub fn range_warnings(model: &Model, observation: &Observation) -> Vec<String> {
    model
        .out_of_range(observation)
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
        assert_eq!((answer.probability, answer.label), (Some(p.probability), Some(p.label_name())));
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
        assert_eq!((answer.status, answer.reason.as_ref()), (Status::BadRequest, rejection.reason().as_str()));
        assert_eq!(answer.prediction, PredictionField::Empty);
        assert_eq!((answer.probability, answer.label), (None, None));
        let codes: Vec<(&str, &str)> = answer.errors.iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(codes, [("worstRadius", "negative"), ("worstConcavePoints", "not_finite")]);
        assert_eq!(answer.rejection_code(), Some("negative"));
    }

    #[test]
    fn a_prediction_is_an_integer_or_an_empty_string() {
        assert_eq!(serde_json::to_string(&PredictionField::Label(1)).unwrap(), "1");
        assert_eq!(serde_json::to_string(&PredictionField::Empty).unwrap(), "\"\"");
    }
}
