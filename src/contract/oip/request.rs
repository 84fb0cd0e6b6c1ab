//! An Open Inference Protocol `infer` request, read into rows of
//! [`FieldInput`]s and validated by the one path ([`Observation::from_inputs`]).
//!
//! Two layouts are read, as tabular clients send them:
//! - one tensor `[N, F]` (any name that names no feature), row-major, the
//!   export's feature order (MLServer's scikit-learn runtime);
//! - one tensor per feature, named by the column-name rule
//!   ([`feature_by_name`]), each `[N]` or `[N, 1]` (MLServer's pandas codec).
//!
//! `data` may be flat or nested; with Triton's binary tensor extension an
//! input carries `parameters.binary_data_size` instead and its values follow
//! the JSON as raw little-endian bytes. Every message names the input, the
//! row, the feature and the rule, never a value.

use serde::de::Deserializer;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::core::columns::feature_by_name;
use crate::core::features::{Features, PerFeature};
use crate::core::observation::{FieldInput, Observation, Rejection};

use super::data::{Cell, Data};

/// The most rows one request may carry.
pub const MAX_ROWS: usize = 10_000;

/// The largest request body (decoded), JSON and binary tensors together: a
/// Function URL's own request limit is 6 MB.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The outputs the service computes, in their default order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// INT64 `[N]`: the labels.
    Predict,
    /// FP64 `[N, 2]`: the probability of each class.
    PredictProba,
    /// FP64 `[N, F]`: each feature's contribution (log-odds).
    Explanation,
}

impl OutputKind {
    pub const ALL: [OutputKind; 3] = [OutputKind::Predict, OutputKind::PredictProba, OutputKind::Explanation];

    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Predict => "predict",
            OutputKind::PredictProba => "predict_proba",
            OutputKind::Explanation => "explanation",
        }
    }

    pub fn datatype(self) -> &'static str {
        match self {
            OutputKind::Predict => "INT64",
            _ => "FP64",
        }
    }

    fn by_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One output the answer carries, and whether as binary data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedOutput {
    pub kind: OutputKind,
    pub binary: bool,
}

/// A request, read and every row validated.
#[derive(Debug)]
pub struct Inference {
    /// The request's `id`, echoed.
    pub id: Option<String>,
    /// One per row, in order.
    pub rows: Vec<Observation>,
    pub outputs: Vec<WantedOutput>,
}

impl Inference {
    pub fn explains(&self) -> bool {
        self.outputs.iter().any(|o| o.kind == OutputKind::Explanation)
    }
}

/// Why a request was refused (400): a sentence naming the input, row,
/// feature and rule, never a value, and a code for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: &'static str,
    pub message: String,
}

impl RequestError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        RequestError { code, message: message.into() }
    }
}

/// How many rejected rows a 400 describes before "and N more".
const ROWS_DESCRIBED: usize = 10;

/// Reads `header` (the JSON part of the body) and `binary` (the bytes after
/// it with the binary extension; empty without) into rows for `features`.
pub fn read(features: &Features, header: &[u8], binary: &[u8]) -> Result<Inference, RequestError> {
    let raw: RawRequest = serde_json::from_slice(header).map_err(|e| {
        // serde's messages can quote the input: say where, and what is expected.
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "is not valid JSON",
            _ => "is not an inference request object ({\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]})",
        };
        RequestError::new("invalid_json", format!("the body {what} (line {}, column {})", e.line(), e.column()))
    })?;
    let id = match raw.id {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(RequestError::new("invalid_id", "'id' must be a string")),
    };
    let request_parameters = parameters(raw.parameters, "")?;
    let binary_output = match request_parameters.get("binary_data_output") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RequestError::new("invalid_parameter", "'parameters.binary_data_output' must be a boolean"))
        }
    };
    let outputs = wanted_outputs(raw.outputs, binary_output)?;
    let inputs = raw.inputs.ok_or_else(|| RequestError::new("no_inputs", "'inputs' is missing"))?;
    if inputs.is_empty() {
        return Err(RequestError::new("no_inputs", "'inputs' is empty"));
    }
    let tensors = tensors(inputs, binary)?;
    let layout = layout(features, &tensors)?;
    let rows = validate_rows(features, &tensors, &layout)?;
    Ok(Inference { id, rows, outputs })
}

// Optional fields are `Some(Value::Null)` when the key holds null (`present`):
// null is no value the protocol allows for them, so it is refused, not skipped.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    parameters: Option<Value>,
    #[serde(default)]
    inputs: Option<Vec<RawInput>>,
    #[serde(default, deserialize_with = "present")]
    outputs: Option<Value>,
}

#[derive(Deserialize)]
struct RawInput {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    shape: Option<Value>,
    #[serde(default)]
    datatype: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    parameters: Option<Value>,
    #[serde(default)]
    data: Option<Data>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A `parameters` object: the protocol's values are strings, numbers and booleans.
fn parameters(raw: Option<Value>, what: &str) -> Result<Map<String, Value>, RequestError> {
    match raw {
        None => Ok(Map::new()),
        Some(Value::Object(map)) if map.values().all(|v| v.is_string() || v.is_number() || v.is_boolean()) => Ok(map),
        Some(_) => Err(RequestError::new(
            "invalid_parameter",
            format!("{what}'parameters' must be an object of strings, numbers and booleans"),
        )),
    }
}

fn wanted_outputs(raw: Option<Value>, binary_default: bool) -> Result<Vec<WantedOutput>, RequestError> {
    let raw = match raw {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(RequestError::new("invalid_output", "'outputs' must be an array")),
    };
    if raw.is_empty() {
        return Ok([OutputKind::Predict, OutputKind::PredictProba]
            .into_iter()
            .map(|kind| WantedOutput { kind, binary: binary_default })
            .collect());
    }
    let names = || OutputKind::ALL.map(OutputKind::name).join(", ");
    let mut out: Vec<WantedOutput> = Vec::with_capacity(raw.len());
    for (i, o) in raw.into_iter().enumerate() {
        let Value::Object(mut o) = o else {
            return Err(RequestError::new("invalid_output", format!("outputs[{i}] must be an object")));
        };
        let Some(Value::String(name)) = o.remove("name") else {
            return Err(RequestError::new("invalid_output", format!("outputs[{i}] must have a string 'name'")));
        };
        let output_parameters = parameters(o.remove("parameters"), &format!("outputs[{i}]: "))?;
        let kind = OutputKind::by_name(&name).ok_or_else(|| {
            RequestError::new("unknown_output", format!("outputs[{i}] names no output of this model ({})", names()))
        })?;
        if out.iter().any(|w| w.kind == kind) {
            return Err(RequestError::new("duplicate_output", format!("output '{}' is asked for twice", kind.name())));
        }
        let binary = match output_parameters.get("binary_data") {
            None => binary_default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(RequestError::new(
                    "invalid_parameter",
                    format!("output '{}': 'parameters.binary_data' must be a boolean", kind.name()),
                ))
            }
        };
        out.push(WantedOutput { kind, binary });
    }
    Ok(out)
}

/// An input's values: JSON cells, or little-endian bytes of the binary extension.
enum Values<'b> {
    Json(Vec<Cell>),
    Binary { bytes: &'b [u8], fp32: bool },
}

struct Tensor<'b> {
    name: String,
    shape: Vec<usize>,
    values: Values<'b>,
}

impl Tensor<'_> {
    /// Value `k` (row-major) as the validation path takes it.
    fn input(&self, k: usize) -> FieldInput<'static> {
        match &self.values {
            Values::Json(cells) => match cells[k] {
                Cell::Number(v) => FieldInput::Number(v),
                Cell::Null => FieldInput::Null,
                Cell::WrongType(kind) => FieldInput::WrongType(kind),
            },
            Values::Binary { bytes, fp32: true } => {
                let b = &bytes[k * 4..k * 4 + 4];
                FieldInput::Number(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Values::Binary { bytes, fp32: false } => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[k * 8..k * 8 + 8]);
                FieldInput::Number(f64::from_le_bytes(b))
            }
        }
    }
}

fn tensors(inputs: Vec<RawInput>, binary: &[u8]) -> Result<Vec<Tensor<'_>>, RequestError> {
    let mut rest = binary;
    let mut out = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let Some(Value::String(name)) = input.name else {
            return Err(RequestError::new("invalid_input", format!("inputs[{i}] must have a string 'name'")));
        };
        let shape = shape(&name, input.shape)?;
        let fp32 = match input.datatype {
            Some(Value::String(t)) if t == "FP64" => false,
            Some(Value::String(t)) if t == "FP32" => true,
            Some(Value::String(_)) => {
                return Err(RequestError::new(
                    "invalid_datatype",
                    format!("input '{name}': 'datatype' must be FP64 or FP32 (measurements are numbers)"),
                ))
            }
            _ => {
                return Err(RequestError::new(
                    "invalid_datatype",
                    format!("input '{name}' must have a 'datatype' (FP64 or FP32)"),
                ))
            }
        };
        // `shape` checked every dimension against MAX_ROWS * MAX_FEATURES: no overflow.
        let count: usize = shape.iter().product();
        let input_parameters = parameters(input.parameters, &format!("input '{name}': "))?;
        let binary_size = match input_parameters.get("binary_data_size") {
            None => None,
            Some(v) => Some(v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
                RequestError::new(
                    "invalid_parameter",
                    format!("input '{name}': 'parameters.binary_data_size' must be a non-negative integer"),
                )
            })?),
        };
        let values = match (binary_size, input.data) {
            (Some(_), Some(_)) => {
                return Err(RequestError::new(
                    "invalid_input",
                    format!("input '{name}' has both 'data' and 'parameters.binary_data_size': give one"),
                ))
            }
            (None, None) => {
                return Err(RequestError::new("invalid_input", format!("input '{name}' has no 'data'")));
            }
            (None, Some(Data(cells))) => {
                if cells.len() != count {
                    return Err(RequestError::new(
                        "data_length",
                        format!(
                            "input '{name}': 'data' has {} values but 'shape' {shape:?} holds {count}",
                            cells.len()
                        ),
                    ));
                }
                Values::Json(cells)
            }
            (Some(size), None) => {
                let width = if fp32 { 4 } else { 8 };
                if size != count * width {
                    return Err(RequestError::new(
                        "data_length",
                        format!(
                            "input '{name}': 'binary_data_size' is {size} bytes but 'shape' {shape:?} holds {count} \
                             values of {width} bytes"
                        ),
                    ));
                }
                if size > rest.len() {
                    return Err(RequestError::new(
                        "data_length",
                        format!("input '{name}': the body ends before its {size} bytes of binary data"),
                    ));
                }
                let (bytes, after) = rest.split_at(size);
                rest = after;
                Values::Binary { bytes, fp32 }
            }
        };
        out.push(Tensor { name, shape, values });
    }
    if !rest.is_empty() {
        return Err(RequestError::new(
            "data_length",
            format!("the body has {} bytes after the tensors its inputs' 'binary_data_size' account for", rest.len()),
        ));
    }
    Ok(out)
}

fn shape(name: &str, raw: Option<Value>) -> Result<Vec<usize>, RequestError> {
    let invalid = || {
        RequestError::new("invalid_shape", format!("input '{name}': 'shape' must be an array of non-negative integers"))
    };
    let Some(Value::Array(dims)) = raw else { return Err(invalid()) };
    let mut shape = Vec::with_capacity(dims.len());
    for d in dims {
        let d = d.as_u64().ok_or_else(invalid)?;
        if d > MAX_ROWS as u64 {
            return Err(too_many_rows(name));
        }
        shape.push(d as usize);
    }
    if shape.len() > 2 {
        return Err(RequestError::new("invalid_shape", format!("input '{name}': 'shape' must have 1 or 2 dimensions")));
    }
    Ok(shape)
}

fn too_many_rows(name: &str) -> RequestError {
    RequestError::new("too_many_rows", format!("input '{name}': at most {MAX_ROWS} rows per request"))
}

/// Where each feature's values are.
enum Layout {
    /// One `[N, F]` tensor.
    Matrix { rows: usize },
    /// Tensor index per feature, model order.
    Columns { rows: usize, of_feature: Vec<usize> },
}

fn layout(features: &Features, tensors: &[Tensor<'_>]) -> Result<Layout, RequestError> {
    let f = features.len();
    let named: Vec<Option<usize>> = tensors.iter().map(|t| feature_by_name(features, &t.name)).collect();
    if let ([t], [None]) = (tensors, named.as_slice()) {
        return match t.shape[..] {
            [rows, cols] if cols == f => Ok(Layout::Matrix { rows }),
            _ => Err(RequestError::new(
                "invalid_shape",
                format!(
                    "input '{}': 'shape' must be [N, {f}] (a row per observation, a column per feature: {}), or send \
                     one input per feature named after it",
                    t.name,
                    features.api_names_joined()
                ),
            )),
        };
    }
    let mut of_feature: PerFeature<Option<usize>> = (0..f).map(|_| None).collect();
    let mut rows = None;
    for (i, (t, feature)) in tensors.iter().zip(&named).enumerate() {
        let Some(feature) = *feature else {
            return Err(RequestError::new(
                "unknown_input",
                format!(
                    "input '{}' names no feature; send one [N, {f}] input, or one input per feature named after it ({})",
                    t.name,
                    features.api_names_joined()
                ),
            ));
        };
        let n = match t.shape[..] {
            [n] | [n, 1] => n,
            _ => {
                return Err(RequestError::new(
                    "invalid_shape",
                    format!("input '{}': 'shape' must be [N] or [N, 1] for one feature's values", t.name),
                ))
            }
        };
        if rows.is_some_and(|r| r != n) {
            return Err(RequestError::new(
                "invalid_shape",
                format!("input '{}' has another number of rows than the inputs before it", t.name),
            ));
        }
        rows = Some(n);
        if of_feature[feature].replace(i).is_some() {
            return Err(RequestError::new(
                "duplicate_input",
                format!("feature '{}' is given by more than one input", features.api_name(feature)),
            ));
        }
    }
    let missing: Vec<&str> = (0..f).filter(|&j| of_feature[j].is_none()).map(|j| features.api_name(j)).collect();
    if !missing.is_empty() {
        return Err(RequestError::new("missing", format!("no input gives: {}", missing.join(", "))));
    }
    Ok(Layout::Columns { rows: rows.unwrap_or(0), of_feature: of_feature.into_iter().flatten().collect() })
}

fn validate_rows(
    features: &Features,
    tensors: &[Tensor<'_>],
    layout: &Layout,
) -> Result<Vec<Observation>, RequestError> {
    let f = features.len();
    let rows = match *layout {
        Layout::Matrix { rows } | Layout::Columns { rows, .. } => rows,
    };
    if rows > MAX_ROWS {
        return Err(too_many_rows(&tensors[0].name));
    }
    if rows == 0 {
        return Err(RequestError::new("no_rows", "the inputs hold no rows (N is 0)"));
    }
    let mut observations = Vec::with_capacity(rows);
    let mut rejected: Vec<(usize, Rejection)> = Vec::new();
    let mut rejected_rows = 0usize;
    for row in 0..rows {
        let inputs: PerFeature<FieldInput<'_>> = (0..f)
            .map(|j| match layout {
                Layout::Matrix { .. } => tensors[0].input(row * f + j),
                Layout::Columns { of_feature, .. } => tensors[of_feature[j]].input(row),
            })
            .collect();
        match Observation::from_inputs(&inputs) {
            Ok(o) => observations.push(o),
            Err(rejection) => {
                rejected_rows += 1;
                if rejected.len() < ROWS_DESCRIBED {
                    rejected.push((row, rejection));
                }
            }
        }
    }
    if rejected.is_empty() {
        return Ok(observations);
    }
    let mut message = format!("{rejected_rows} of {rows} rows have invalid values: ");
    for (n, (row, rejection)) in rejected.iter().enumerate() {
        if n > 0 {
            message.push_str("; ");
        }
        message.push_str(&format!("row {row}: "));
        rejection.write_field_messages(features, &mut message);
    }
    if rejected_rows > rejected.len() {
        message.push_str(&format!("; and {} more rows", rejected_rows - rejected.len()));
    }
    Err(RequestError { code: rejected[0].1.code(), message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::testing::shipped;

    fn read_json(body: &str) -> Result<Inference, RequestError> {
        read(&shipped(), body.as_bytes(), &[])
    }

    const ROW: [f64; 5] = [0.1471, 25.38, 17.33, 2019.0, 0.2654];

    #[test]
    fn a_matrix_flat_or_nested_and_per_feature_columns_read_the_same_rows() {
        let flat = read_json(
            r#"{"inputs":[{"name":"x","shape":[2,5],"datatype":"FP64","data":[0.1471,25.38,17.33,2019.0,0.2654,0.1471,25.38,17.33,2019.0,0.2654]}]}"#,
        )
        .unwrap();
        let nested = read_json(
            r#"{"inputs":[{"name":"x","shape":[2,5],"datatype":"FP32","data":[[0.1471,25.38,17.33,2019,0.2654],[0.1471,25.38,17.33,2019.0,0.2654]]}]}"#,
        )
        .unwrap();
        let columns = read_json(
            r#"{"parameters":{"content_type":"pd"},"inputs":[
            {"name":"worst_concave_points","shape":[2,1],"datatype":"FP64","data":[0.2654,0.2654]},
            {"name":"meanConcavePoints","shape":[2],"datatype":"FP64","data":[0.1471,0.1471]},
            {"name":"worst radius","shape":[2],"datatype":"FP64","data":[25.38,25.38]},
            {"name":"worstTexture","shape":[2],"datatype":"FP64","data":[17.33,17.33]},
            {"name":"WorstArea","shape":[2],"datatype":"FP64","data":[2019.0,2019.0]}]}"#,
        )
        .unwrap();
        let want = vec![Observation::from_values(ROW).unwrap(); 2];
        for got in [&flat, &nested, &columns] {
            assert_eq!(got.rows, want);
            assert_eq!(
                got.outputs.iter().map(|o| o.kind).collect::<Vec<_>>(),
                [OutputKind::Predict, OutputKind::PredictProba]
            );
        }
    }

    #[test]
    fn binary_tensors_read_the_same_rows_as_json() {
        let header = r#"{"id":"a","inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","parameters":{"binary_data_size":40}}],"parameters":{"binary_data_output":true}}"#;
        let bytes: Vec<u8> = ROW.iter().flat_map(|v| v.to_le_bytes()).collect();
        let got = read(&shipped(), header.as_bytes(), &bytes).unwrap();
        assert_eq!(got.rows, vec![Observation::from_values(ROW).unwrap()]);
        assert_eq!(got.id.as_deref(), Some("a"));
        assert!(got.outputs.iter().all(|o| o.binary));
        // A byte too many or too few.
        let err = read(&shipped(), header.as_bytes(), &bytes[..39]).unwrap_err();
        assert_eq!(err.code, "data_length");
        let mut more = bytes.clone();
        more.push(0);
        assert_eq!(read(&shipped(), header.as_bytes(), &more).unwrap_err().code, "data_length");
    }

    #[test]
    fn every_malformed_request_is_a_named_error_that_quotes_no_value() {
        let cases = [
            (r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}"#, "invalid_shape"),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"INT64","data":[1,2,3,4,5]}]}"#, "invalid_datatype"),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4]}]}"#, "data_length"),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,-3.5,4,5]}]}"#, "negative"),
            (r#"{"inputs":[{"name":"x","shape":[10001,5],"datatype":"FP64","data":[]}]}"#, "too_many_rows"),
            (r#"{"inputs":[{"name":"x","shape":[-1,5],"datatype":"FP64","data":[]}]}"#, "invalid_shape"),
            (r#"{"inputs":[{"name":"x","shape":[0,5],"datatype":"FP64","data":[]}]}"#, "no_rows"),
            (r#"{"inputs":[]}"#, "no_inputs"),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,"77.5",3,4,5]}]}"#, "not_a_number"),
            (r#"{"inputs":[{"name":"worstArea","shape":[1],"datatype":"FP64","data":[1]}]}"#, "missing"),
            (
                r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4,5]}],"outputs":[{"name":"y"}]}"#,
                "unknown_output",
            ),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4,5]}],"id":7}"#, "invalid_id"),
            ("[1,2", "invalid_json"),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[[[1,2,3,4,5]]]}]}"#, "data_length"),
            (r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP64","data":[[[1,2,3,4,5]]]}]}"#, "invalid_shape"),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":7}]}"#, "invalid_json"),
            (
                r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4,5]}],"parameters":null}"#,
                "invalid_parameter",
            ),
            (
                r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4,5]}],"outputs":[{"name":"predict","parameters":{"a":{}}}]}"#,
                "invalid_parameter",
            ),
            (
                r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4,5]}],"outputs":null}"#,
                "invalid_output",
            ),
            (r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[1,2,3,4,5]}],"id":null}"#, "invalid_id"),
            (r#"{"inputs":"77.5"}"#, "invalid_json"),
        ];
        for (body, code) in cases {
            let err = read_json(body).unwrap_err();
            assert_eq!(err.code, code, "{body}: {err:?}");
            assert!(!err.message.contains("3.5") && !err.message.contains("77"), "{err:?}");
        }
        let err =
            read_json(r#"{"inputs":[{"name":"x","shape":[2,5],"datatype":"FP64","data":[1,2,3,4,5,1,-2,3,4,5]}]}"#)
                .unwrap_err();
        assert_eq!(err.message, "1 of 2 rows have invalid values: row 1: 'worstRadius' must not be negative");
    }
}
