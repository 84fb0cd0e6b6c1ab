//! Function URL adapter: an HTTP request event in, an HTTP response event out.
//! It only translates; parsing and prediction are the core's.
//!
//! Contract (see docs/http.md): `POST /` with an observation object answers
//! `{"status":"200","reason":"OK","prediction":1,...}`; bad input answers a 4xx
//! with the same shape and `"prediction":""`. The HTTP status equals `status`.
//! `?explain=true` adds the explanation. Every answer carries the request id,
//! in the body (`requestId`) and the `X-Request-Id` header; `GET /openapi.json`
//! serves the contract as OpenAPI, the document made for the loaded model
//! ([`crate::contract::openapi`]), built on the first such request.

use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::Serialize;

use std::borrow::Cow;
use std::time::Instant;

use crate::contract::answer::{
    body_error_items, explain_flag, Answer, ErrorItem, ExplainFlagError, PredictionField, EXPLAIN,
};
use crate::contract::http::{metadata, ErrorBody, PredictionBody};
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::contract::openapi::LazyDocument;
use crate::core::challenger::ChallengerStats;
use crate::core::model::Model;
use crate::core::observation_json::{parse_observation_json, BodyError};
use crate::core::status::Status;
use crate::telemetry::Metrics;

/// Largest accepted request body, decoded. An observation is ~200 bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The parts of a Function URL request (payload 2.0) the contract uses.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `requestContext.http.method` (the top-level `httpMethod` of some emulators is wrong).
    pub method: &'a str,
    /// `rawPath`.
    pub path: &'a str,
    /// `rawQueryString` (without `?`).
    pub query: &'a str,
    pub body: Option<&'a str>,
    pub is_base64_encoded: bool,
    /// The `Inference-Header-Content-Length` header (the Open Inference
    /// Protocol's binary tensor extension, [`super::oip`]).
    pub inference_header_length: Option<&'a str>,
}

/// A Function URL response: serializes to `{"statusCode", "headers", "body",
/// "isBase64Encoded", "cookies"}`, the shape of aws_lambda_events' `HttpResponse`
/// (tests check it deserializes as one), without building a `HeaderMap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status_code: u16,
    /// JSON text, or (`body_base64`) binary data encoded as base64.
    pub body: String,
    /// `isBase64Encoded`: `body` is base64 (binary tensors, [`super::oip`]).
    pub body_base64: bool,
    pub content_type: &'static str,
    /// The `Inference-Header-Content-Length` header: the length of the JSON
    /// before binary tensors ([`super::oip`]).
    pub inference_header_length: Option<String>,
    /// For 405: the `Allow` header.
    pub allow: Option<&'static str>,
    /// The `X-Request-Id` header (also `requestId` in the body).
    pub request_id: String,
}

impl HttpResponse {
    /// A JSON answer.
    pub fn json(status_code: u16, body: String, allow: Option<&'static str>, request_id: &str) -> Self {
        HttpResponse {
            status_code,
            body,
            body_base64: false,
            content_type: "application/json",
            inference_header_length: None,
            allow,
            request_id: request_id.to_owned(),
        }
    }

    /// Headers sent with every answer. Predictions are medical data: no caching.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("content-type", self.content_type), ("cache-control", "no-store"), ("x-request-id", &self.request_id)]
            .into_iter()
            .chain(self.allow.map(|a| ("allow", a)))
            .chain(self.inference_header_length.as_deref().map(|n| ("inference-header-content-length", n)))
    }
}

impl Serialize for HttpResponse {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Headers<'a>(&'a HttpResponse);
        impl Serialize for Headers<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(None)?;
                for (k, v) in self.0.headers() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("statusCode", &self.status_code)?;
        map.serialize_entry("headers", &Headers(self))?;
        map.serialize_entry("body", &self.body)?;
        map.serialize_entry("isBase64Encoded", &self.body_base64)?;
        map.serialize_entry("cookies", &[] as &[&str])?;
        map.end()
    }
}

/// What happened, for logs and metrics (never any input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `shadow`: how the challenger saw it, with one.
    Predicted {
        label: u8,
        out_of_range: bool,
        shadow: Option<Shadow>,
    },
    Rejected(&'static str),
    Metadata,
    NotFound,
    MethodNotAllowed,
    TooLarge,
}

/// How a challenger saw one scored request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shadow {
    /// It scored the observation and gave the same label.
    Agreed,
    /// It scored the observation and gave the other label.
    Disagreed,
    /// It could not: it has a feature the model's contract does not.
    NotComparable,
}

impl Shadow {
    /// From the comparison of one request's observation.
    fn of(stats: &ChallengerStats) -> Option<Shadow> {
        match (stats.rows(), stats.disagreements(), stats.not_comparable()) {
            (1, 0, 0) => Some(Shadow::Agreed),
            (1, 1, 0) => Some(Shadow::Disagreed),
            (0, 0, 1) => Some(Shadow::NotComparable),
            _ => None,
        }
    }
}

/// Handles one Function URL request and logs and counts its outcome (never
/// its content), as every route's adapter does: the handler only routes.
/// The answer and every log line carry the request id. With a `challenger`,
/// each observation is also scored by it in shadow, and only counted: the
/// answer is the model's. `document` holds `model`'s OpenAPI document once a
/// request has asked for it.
pub fn handle_request(
    model: &Model,
    challenger: Option<&Model>,
    document: &LazyDocument,
    request: &HttpRequest<'_>,
    invocation: &Invocation,
) -> HttpResponse {
    if super::oip::is_oip_path(request.path) {
        return super::oip::handle_request(model, challenger, request, invocation);
    }
    let started = Instant::now();
    let (response, outcome) = handle_shadowed(model, challenger, document, request, &invocation.request_id);
    let micros = started.elapsed().as_micros() as u64;
    let status = response.status_code;
    let (request_id, cold_start) = (invocation.request_id.as_str(), invocation.cold_start);
    let entry_point = EntryPoint::FunctionUrl.as_str();
    let mut metrics = Metrics::new(entry_point);
    match outcome {
        Outcome::Predicted { label, out_of_range, shadow } => {
            tracing::debug!(entry_point, request_id, cold_start, status, label, out_of_range, micros, "prediction");
            metrics.count("Predictions", 1).count("OutOfRangeInputs", u64::from(out_of_range));
            if let Some(shadow) = shadow {
                // Counters only: one request's values would be one patient's.
                metrics
                    .count("ChallengerRows", u64::from(shadow != Shadow::NotComparable))
                    .count("ChallengerLabelDisagreements", u64::from(shadow == Shadow::Disagreed))
                    .count("ChallengerNotComparable", u64::from(shadow == Shadow::NotComparable));
            }
        }
        Outcome::Rejected(code) => {
            tracing::info!(entry_point, request_id, cold_start, status, code, micros, "rejected input");
            metrics.count("RejectedInputs", 1).count(format!("Rejected_{code}"), 1);
        }
        other => {
            tracing::info!(entry_point, request_id, cold_start, status, outcome = ?other, micros, "request");
            metrics.count("OtherRequests", 1);
        }
    }
    if cold_start {
        metrics.count("ColdStart", 1);
    }
    metrics.millis("HandlerDuration", micros as f64 / 1000.0).emit();
    response
}

/// Handles one Function URL request. Never panics on any input and never
/// answers 5xx for bad input. `request_id` goes into every answer. `document`
/// holds `model`'s OpenAPI document once a request has asked for it.
pub fn handle(
    model: &Model,
    document: &LazyDocument,
    request: &HttpRequest<'_>,
    request_id: &str,
) -> (HttpResponse, Outcome) {
    handle_shadowed(model, None, document, request, request_id)
}

/// [`handle`], each observation also scored by `challenger` in shadow.
pub fn handle_shadowed(
    model: &Model,
    challenger: Option<&Model>,
    document: &LazyDocument,
    request: &HttpRequest<'_>,
    request_id: &str,
) -> (HttpResponse, Outcome) {
    let (method, path) = (request.method, request.path);
    let openapi = path == "/openapi.json";
    if path != "/" && !path.is_empty() && !openapi {
        return (
            error(
                Status::NotFound,
                "Not Found: this service answers POST / (predict) and GET / (model metadata)",
                request_id,
            ),
            Outcome::NotFound,
        );
    }
    match method {
        "GET" if openapi => {
            (HttpResponse::json(200, document.get(model).to_owned(), None, request_id), Outcome::Metadata)
        }
        "POST" if !openapi => predict(model, challenger, request, request_id),
        "GET" => (respond(Status::Ok, &metadata(model, request_id), None, request_id), Outcome::Metadata),
        _ => {
            let status = Status::MethodNotAllowed;
            let reason = "Method Not Allowed: use POST / to predict or GET / for model metadata";
            let allow = if openapi { "GET" } else { "GET, POST" };
            (
                respond(status, &ErrorBody::new(status, reason, request_id), Some(allow), request_id),
                Outcome::MethodNotAllowed,
            )
        }
    }
}

/// The `explain` query parameter (`true` or `false`; absent is false). Other
/// parameters are ignored. Names and values are decoded as forms encode them
/// (`%xx` escapes, `+` for a space) by `form_urlencoded`; bytes that are not
/// UTF-8 decode to U+FFFD, which is no flag.
pub fn explain_query(query: &str) -> Result<bool, ExplainFlagError> {
    // Without `%` or `+` decoding changes nothing: the pairs are the text
    // itself, split as form_urlencoded splits it (on `&`, empty pairs
    // skipped, at the first `=`). Measured: `explain=true` ~900 → ~450
    // instructions (callgrind, docs/testing.md).
    if !query.bytes().any(|b| b == b'%' || b == b'+') {
        let pairs = query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")));
        return explain_among(pairs);
    }
    explain_among(form_urlencoded::parse(query.as_bytes()))
}

/// The one rule over the decoded pairs: at most one `explain`, true or false.
fn explain_among<K: AsRef<str>, V: AsRef<str>>(pairs: impl Iterator<Item = (K, V)>) -> Result<bool, ExplainFlagError> {
    let mut found = None;
    for (key, value) in pairs {
        if key.as_ref() != EXPLAIN {
            continue;
        }
        if found.is_some() {
            return Err(ExplainFlagError::Repeated);
        }
        found = Some(explain_flag(value.as_ref())?);
    }
    Ok(found.unwrap_or(false))
}

fn predict(
    model: &Model,
    challenger: Option<&Model>,
    request: &HttpRequest<'_>,
    request_id: &str,
) -> (HttpResponse, Outcome) {
    let explain = match explain_query(request.query) {
        Ok(explain) => explain,
        Err(e) => {
            let body =
                ErrorBody { errors: vec![e.item()], ..ErrorBody::new(Status::BadRequest, e.to_string(), request_id) };
            return (respond(Status::BadRequest, &body, None, request_id), Outcome::Rejected(ExplainFlagError::CODE));
        }
    };
    let raw = request.body.unwrap_or("");
    let decoded;
    let body: &[u8] = if request.is_base64_encoded {
        // Check the size before decoding so a huge body costs nothing.
        if raw.len() > MAX_BODY_BYTES.div_ceil(3) * 4 + 4 {
            return too_large(request_id);
        }
        match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
            Ok(bytes) => {
                decoded = bytes;
                &decoded
            }
            Err(_) => {
                let reason = "'body' is marked base64-encoded but is not valid base64";
                return (bad_request(BAD_BASE64, reason, request_id), Outcome::Rejected(BAD_BASE64));
            }
        }
    } else {
        raw.as_bytes()
    };
    if body.len() > MAX_BODY_BYTES {
        return too_large(request_id);
    }
    let submission = match parse_observation_json(model.features(), body) {
        Ok(s) => s,
        Err(e) => return (body_error(&e, request_id), Outcome::Rejected(e.code())),
    };
    let (answer, compared) = Answer::shadowed(model, challenger, submission.observation, explain);
    let model_version = &model.info().version;
    let id = submission.id;
    match answer.prediction {
        PredictionField::Label(label) => {
            let shadow = compared.as_ref().and_then(Shadow::of);
            let outcome = Outcome::Predicted { label, out_of_range: !answer.warnings.is_empty(), shadow };
            let body = PredictionBody {
                status: answer.status,
                reason: answer.reason,
                prediction: answer.prediction,
                probability: answer.probability,
                label: answer.label,
                model_version,
                warnings: answer.warnings,
                id,
                explanation: answer.explanation,
                request_id,
            };
            (respond(body.status, &body, None, request_id), outcome)
        }
        PredictionField::Empty => {
            // A rejection names at least one field.
            let code = answer.rejection_code().unwrap_or_default();
            let body = ErrorBody {
                status: answer.status,
                reason: answer.reason,
                prediction: answer.prediction,
                errors: answer.errors,
                model_version: Some(model_version),
                id,
                request_id,
            };
            (respond(body.status, &body, None, request_id), Outcome::Rejected(code))
        }
    }
}

fn too_large(request_id: &str) -> (HttpResponse, Outcome) {
    (payload_too_large(request_id), Outcome::TooLarge)
}

/// The codes of the body-level answers this module gives itself (the
/// others come from [`BodyError::code`]); docs/http.md lists them all.
pub const BAD_BASE64: &str = "bad_base64";
pub const BODY_TOO_LARGE: &str = "body_too_large";
/// `serve` could not read the request's body.
pub const UNREADABLE_BODY: &str = "unreadable_body";

/// The 413 answer, for callers that see the size before building an event (`serve`).
pub fn payload_too_large(request_id: &str) -> HttpResponse {
    let reason = format!("Payload Too Large: 'body' must be at most {MAX_BODY_BYTES} bytes");
    let body = ErrorBody {
        errors: vec![ErrorItem::of_body(BODY_TOO_LARGE, reason.clone())],
        ..ErrorBody::new(Status::PayloadTooLarge, reason, request_id)
    };
    respond(body.status, &body, None, request_id)
}

/// A 400 about the body as a whole: its reason, and one `errors` item
/// (field `body`) with its code.
pub fn bad_request(code: &'static str, reason: &str, request_id: &str) -> HttpResponse {
    let body = ErrorBody {
        errors: vec![ErrorItem::of_body(code, reason)],
        ..ErrorBody::new(Status::BadRequest, reason.to_owned(), request_id)
    };
    respond(body.status, &body, None, request_id)
}

fn body_error(e: &BodyError, request_id: &str) -> HttpResponse {
    let body =
        ErrorBody { errors: body_error_items(e), ..ErrorBody::new(Status::BadRequest, e.to_string(), request_id) };
    respond(body.status, &body, None, request_id)
}

fn error(status: Status, reason: impl Into<Cow<'static, str>>, request_id: &str) -> HttpResponse {
    respond(status, &ErrorBody::new(status, reason, request_id), None, request_id)
}

fn respond(status: Status, body: &impl Serialize, allow: Option<&'static str>, request_id: &str) -> HttpResponse {
    // Serializing these plain structs cannot fail; fall back to a fixed body anyway.
    let mut text = Vec::with_capacity(512);
    let body = match serde_json::to_writer(&mut text, body) {
        Ok(()) => String::from_utf8(text).unwrap_or_default(),
        Err(_) => r#"{"status":"500","reason":"Internal Server Error","prediction":""}"#.to_owned(),
    };
    HttpResponse::json(status.code(), body, allow, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenger_changes_no_answer_and_the_outcome_says_how_it_saw_the_request() {
        let model = Model::embedded().unwrap();
        let clinic = Model::from_json_bytes(include_bytes!("../../models/testdata/clinic-outcomes-gbc.json")).unwrap();
        let body = r#"{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#;
        let request = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            body: Some(body),
            is_base64_encoded: false,
            inference_header_length: None,
        };
        let (plain, outcome) = handle(&model, &LazyDocument::default(), &request, "r");
        assert!(matches!(outcome, Outcome::Predicted { shadow: None, .. }), "{outcome:?}");
        for (challenger, want) in [(&model, Shadow::Agreed), (&clinic, Shadow::NotComparable)] {
            let (answer, outcome) = handle_shadowed(&model, Some(challenger), &LazyDocument::default(), &request, "r");
            assert_eq!(answer, plain);
            assert!(matches!(outcome, Outcome::Predicted { shadow: Some(s), .. } if s == want), "{outcome:?}");
        }
        // A rejected observation is not compared.
        let bad = HttpRequest { body: Some("{}"), ..request };
        let (_, outcome) = handle_shadowed(&model, Some(&model), &LazyDocument::default(), &bad, "r");
        assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    }

    #[test]
    fn the_explain_parameter_is_read_as_forms_encode_it() {
        use ExplainFlagError::{Invalid, Repeated};
        let cases: [(&str, Result<bool, ExplainFlagError>); 28] = [
            // Split as form_urlencoded splits: empty pairs skipped, the value after the first `=`.
            ("&&explain=true&", Ok(true)),
            ("explain==true", Err(Invalid)),
            ("explain=true=", Err(Invalid)),
            ("=true&explain=0", Ok(false)),
            ("explain=&explain=1", Err(Invalid)),
            ("", Ok(false)),
            ("explain=true", Ok(true)),
            ("explain=false&other=1", Ok(false)),
            ("explain=%74rue", Ok(true)),
            // The name is decoded too: an escaped name is the same parameter.
            ("%65xplain=true", Ok(true)),
            ("explain=true&explain=true", Err(Repeated)),
            ("explain=false&%65xplain=false", Err(Repeated)),
            // `+` is a space, and spaces around the word are ignored; another parameter's `+` changes nothing.
            ("explain=true+", Ok(true)),
            ("explain=+true", Ok(true)),
            ("explain=t+rue", Err(Invalid)),
            // Any case (.NET writes `True`), and 1 or 0.
            ("explain=True", Ok(true)),
            ("explain=FALSE", Ok(false)),
            ("explain=fAlSe", Ok(false)),
            ("explain=1", Ok(true)),
            ("explain=0", Ok(false)),
            ("explain=yes", Err(Invalid)),
            ("explain=01", Err(Invalid)),
            ("explain=%0Btrue", Err(Invalid)),
            ("note=a+b&explain=true", Ok(true)),
            ("explain+=true", Ok(false)),
            ("explain=%ZZ", Err(Invalid)),
            ("explain=%FF", Err(Invalid)),
            ("explain", Err(Invalid)),
        ];
        for (query, expected) in cases {
            assert_eq!(explain_query(query), expected, "{query}");
        }
    }
}
