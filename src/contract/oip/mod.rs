//! The Open Inference Protocol (KServe v2, REST) answer shapes: server and
//! model metadata, the `infer` response (JSON, or JSON then raw tensors with
//! Triton's binary tensor data extension) and the error body. The request is
//! read in [`request`]. Names, versions, inputs come from the loaded export.

mod data;
pub mod request;

use serde::Serialize;

use crate::core::model::Model;
use crate::core::scoring::{write_range_names, Scorer};
use request::{Inference, OutputKind};

/// The protocol's error body.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
}

/// `GET /v2`.
#[derive(Serialize)]
pub struct ServerMetadata {
    pub name: &'static str,
    pub version: &'static str,
    pub extensions: [&'static str; 1],
}

pub const SERVER: ServerMetadata =
    ServerMetadata { name: "scorer", version: env!("CARGO_PKG_VERSION"), extensions: ["binary_tensor_data"] };

/// `GET /v2/health/live` and `/ready`.
#[derive(Serialize)]
pub struct Health {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

/// `GET /v2/models/{name}[/versions/{version}]/ready`.
#[derive(Serialize)]
pub struct ModelReady<'a> {
    pub name: &'a str,
    pub ready: bool,
}

/// One tensor's description in the model metadata.
#[derive(Serialize)]
pub struct TensorMetadata<'a> {
    pub name: &'a str,
    pub datatype: &'static str,
    /// `-1`: any number of rows.
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}[/versions/{version}]`: the inputs are the
/// export's features, one `[N]` tensor each, in the model's order (the
/// order of the columns of an `[N, F]` tensor).
#[derive(Serialize)]
pub struct ModelMetadata<'a> {
    pub name: &'a str,
    pub versions: [&'a str; 1],
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata<'a>>,
    pub outputs: Vec<TensorMetadata<'a>>,
}

/// The platform string of the model metadata: the export is a scikit-learn model.
pub const PLATFORM: &str = "scikit-learn";

pub fn model_metadata(model: &Model) -> ModelMetadata<'_> {
    let info = model.info();
    let f = model.features().len() as i64;
    ModelMetadata {
        name: &info.name,
        versions: [&info.version],
        platform: PLATFORM,
        inputs: model
            .features()
            .api_names()
            .map(|name| TensorMetadata { name, datatype: "FP64", shape: vec![-1] })
            .collect(),
        outputs: OutputKind::ALL
            .into_iter()
            .filter(|k| *k != OutputKind::Explanation || model.can_explain())
            .map(|k| TensorMetadata {
                name: k.name(),
                datatype: k.datatype(),
                shape: match k {
                    OutputKind::Predict => vec![-1],
                    OutputKind::PredictProba => vec![-1, 2],
                    OutputKind::Explanation => vec![-1, f],
                },
            })
            .collect(),
    }
}

/// An `infer` answer: the JSON part and the binary part (empty unless an
/// output is sent as binary data).
#[derive(Debug)]
pub struct InferAnswer {
    pub json: Vec<u8>,
    pub binary: Vec<u8>,
    /// Rows with a value outside the training range.
    pub out_of_range_rows: usize,
}

/// What one output holds, row-major.
enum OutputData {
    Labels(Vec<i64>),
    Numbers(Vec<f64>),
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataField<'a> {
    Labels(&'a [i64]),
    Numbers(&'a [f64]),
}

#[derive(Serialize)]
struct OutputParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_data_size: Option<usize>,
    /// Explanation only: the base value (log-odds) the contributions add to.
    #[serde(skip_serializing_if = "Option::is_none")]
    base_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'static str>,
}

#[derive(Serialize)]
struct ResponseOutput<'a> {
    name: &'static str,
    datatype: &'static str,
    shape: [usize; 2],
    #[serde(skip)]
    dims: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<OutputParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataField<'a>>,
}

#[derive(Serialize)]
struct ResponseParameters {
    /// Rows with values outside the training range, by feature name only.
    #[serde(skip_serializing_if = "Option::is_none")]
    range_warnings: Option<String>,
}

#[derive(Serialize)]
struct Response<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<ResponseParameters>,
    #[serde(serialize_with = "serialize_outputs")]
    outputs: Vec<ResponseOutput<'a>>,
}

/// Outputs with their shape cut to their dimensions (`[N]` or `[N, k]`).
fn serialize_outputs<S: serde::Serializer>(outputs: &[ResponseOutput<'_>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeSeq, SerializeStruct};
    struct Cut<'b, 'a>(&'b ResponseOutput<'a>);
    impl Serialize for Cut<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let o = self.0;
            let mut st = s.serialize_struct("output", 5)?;
            st.serialize_field("name", o.name)?;
            st.serialize_field("datatype", o.datatype)?;
            st.serialize_field("shape", &o.shape[..o.dims])?;
            if let Some(p) = &o.parameters {
                st.serialize_field("parameters", p)?;
            }
            if let Some(d) = &o.data {
                st.serialize_field("data", d)?;
            }
            st.end()
        }
    }
    let mut seq = s.serialize_seq(Some(outputs.len()))?;
    for o in outputs {
        seq.serialize_element(&Cut(o))?;
    }
    seq.end()
}

/// Scores every row of `inference` with `scorer` (the one scoring path) and
/// lays the answer out as asked. The scorer explains when the request asks
/// for the explanation output.
pub fn answer(scorer: &mut Scorer<'_>, inference: &Inference) -> InferAnswer {
    let model = scorer.model();
    let features = model.features();
    let (n, f) = (inference.rows.len(), features.len());
    let mut labels = Vec::with_capacity(n);
    let mut proba = Vec::with_capacity(2 * n);
    let explain = inference.explains();
    let mut contributions = Vec::with_capacity(if explain { n * f } else { 0 });
    let mut base_value = None;
    let mut warnings = String::new();
    let mut out_of_range_rows = 0;
    for (row, observation) in inference.rows.iter().enumerate() {
        let scored = scorer.score(observation);
        let p = scored.prediction;
        labels.push(i64::from(p.label));
        // scikit-learn's predict_proba: [1 - p, p].
        proba.extend([1.0 - p.probability, p.probability]);
        if let Some(e) = scored.explanation {
            contributions.extend_from_slice(&e.contributions);
            base_value = Some(e.base_value);
        }
        if !scored.out_of_range.is_empty() {
            out_of_range_rows += 1;
            if !warnings.is_empty() {
                warnings.push_str(", ");
            }
            warnings.push_str(&format!("row {row} ("));
            let _ = write_range_names(features, scored.out_of_range, &mut warnings);
            warnings.push(')');
        }
    }
    let data = [
        (OutputKind::Predict, OutputData::Labels(labels), [n, 0], 1),
        (OutputKind::PredictProba, OutputData::Numbers(proba), [n, 2], 2),
        (OutputKind::Explanation, OutputData::Numbers(contributions), [n, f], 2),
    ];
    let mut binary = Vec::new();
    let mut outputs = Vec::with_capacity(inference.outputs.len());
    for wanted in &inference.outputs {
        let Some((kind, values, shape, dims)) = data.iter().find(|d| d.0 == wanted.kind) else { continue };
        let explanation = *kind == OutputKind::Explanation;
        let mut parameters = OutputParameters {
            binary_data_size: None,
            base_value: if explanation { base_value.or(model.info().base_value) } else { None },
            unit: explanation.then_some("log-odds"),
        };
        let field = if wanted.binary {
            let start = binary.len();
            match values {
                OutputData::Labels(v) => v.iter().for_each(|x| binary.extend_from_slice(&x.to_le_bytes())),
                OutputData::Numbers(v) => v.iter().for_each(|x| binary.extend_from_slice(&x.to_le_bytes())),
            }
            parameters.binary_data_size = Some(binary.len() - start);
            None
        } else {
            Some(match values {
                OutputData::Labels(v) => DataField::Labels(v),
                OutputData::Numbers(v) => DataField::Numbers(v),
            })
        };
        let has_parameters = parameters.binary_data_size.is_some() || explanation;
        outputs.push(ResponseOutput {
            name: kind.name(),
            datatype: kind.datatype(),
            shape: *shape,
            dims: *dims,
            parameters: has_parameters.then_some(parameters),
            data: field,
        });
    }
    let info = model.info();
    let response = Response {
        model_name: &info.name,
        model_version: &info.version,
        id: inference.id.as_deref(),
        parameters: (!warnings.is_empty()).then_some(ResponseParameters { range_warnings: Some(warnings) }),
        outputs,
    };
    // Serializing plain numbers and strings cannot fail.
    let json = serde_json::to_vec(&response).unwrap_or_default();
    InferAnswer { json, binary, out_of_range_rows }
}
