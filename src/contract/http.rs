//! The wire bodies of the seed HTTP contract (docs/http.md), the Function
//! URL's and `scorer serve`'s: a scored observation's answer, every other
//! answer (4xx, 405, 404), and `GET /`'s model metadata. Field order is the
//! order clients read; [`crate::adapters::function_url`] fills and sends them.

use std::borrow::Cow;

use serde::Serialize;

use crate::contract::answer::{ErrorItem, ExplanationField, PredictionField};
use crate::core::model::Model;
use crate::core::status::Status;

/// A scored observation's answer, in the order clients read it. `warnings`
/// is always there, empty or not.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PredictionBody<'a> {
    pub(crate) status: Status,
    pub(crate) reason: Cow<'static, str>,
    pub(crate) prediction: PredictionField,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<&'a str>,
    pub(crate) model_version: &'a str,
    pub(crate) warnings: Vec<String>,
    /// The request's `id`, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// With `explain=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) explanation: Option<ExplanationField<'a>>,
    pub(crate) request_id: &'a str,
}

/// Every other answer: `prediction` is `""`; `errors` when there are field
/// errors; `modelVersion` when an observation was read.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody<'a> {
    pub(crate) status: Status,
    pub(crate) reason: Cow<'static, str>,
    pub(crate) prediction: PredictionField,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<ErrorItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model_version: Option<&'a str>,
    /// The request's `id`, echoed when it was valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) request_id: &'a str,
}

impl<'a> ErrorBody<'a> {
    pub(crate) fn new(status: Status, reason: impl Into<Cow<'static, str>>, request_id: &'a str) -> Self {
        ErrorBody {
            status,
            reason: reason.into(),
            prediction: PredictionField::Empty,
            errors: Vec::new(),
            model_version: None,
            id: None,
            request_id,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetadataBody<'a> {
    pub(crate) status: Status,
    pub(crate) reason: &'static str,
    pub(crate) model: ModelMetadata<'a>,
    pub(crate) request_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelMetadata<'a> {
    pub(crate) name: &'a str,
    pub(crate) version: &'a str,
    sha256: &'a str,
    pub(crate) sklearn_version: &'a str,
    pub(crate) trees: usize,
    pub(crate) max_depth: usize,
    pub(crate) classes: [(u8, &'a str); 2],
    pub(crate) features: Vec<FeatureMetadata<'a>>,
    pub(crate) parameters: &'a serde_json::Value,
    pub(crate) metrics: &'a serde_json::Value,
    /// The explanations' base value (log-odds); null when the export cannot explain.
    pub(crate) base_value: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FeatureMetadata<'a> {
    pub(crate) name: &'a str,
    pub(crate) dataset_name: &'a str,
    pub(crate) training_min: f64,
    pub(crate) training_max: f64,
}

pub(crate) fn metadata<'a>(model: &'a Model, request_id: &'a str) -> MetadataBody<'a> {
    let info = model.info();
    MetadataBody {
        status: Status::Ok,
        reason: Status::Ok.reason_phrase(),
        model: ModelMetadata {
            name: &info.name,
            version: &info.version,
            sha256: &info.sha256,
            sklearn_version: &info.sklearn_version,
            trees: info.tree_count,
            max_depth: info.max_depth,
            classes: [(0, model.class_name(0)), (1, model.class_name(1))],
            features: model
                .features()
                .iter()
                .zip(&info.ranges)
                .map(|(f, &(lo, hi))| FeatureMetadata {
                    name: &f.api_name,
                    dataset_name: &f.dataset_name,
                    training_min: lo,
                    training_max: hi,
                })
                .collect(),
            parameters: &info.parameters,
            metrics: &info.metrics,
            base_value: info.base_value,
        },
        request_id,
    }
}
