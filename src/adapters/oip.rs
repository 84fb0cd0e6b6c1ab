//! The Open Inference Protocol (KServe v2 REST, with Triton's binary tensor
//! data extension) on the Function URL, beside the seed contract at `/`
//! ([`super::function_url`] hands every `/v2` path here; `serve` turns HTTP
//! into the same Function URL request). It only translates: requests are
//! read by [`crate::contract::oip::request`], every row validated by the one
//! validation path and scored by the one [`Scorer`]. See
//! docs/inference-protocol.md.

use std::time::Instant;

use base64::Engine as _;

use super::function_url::{HttpRequest, HttpResponse};
use crate::contract::invocation::{EntryPoint, Invocation};
use crate::contract::oip::request::{self, MAX_BODY_BYTES};
use crate::contract::oip::{self, ErrorBody, Health, ModelReady, SERVER};
use crate::core::model::Model;
use crate::core::scoring::{Scorer, Wants};
use crate::telemetry::Metrics;

/// The metrics dimension that tells this route's records from the seed's
/// (each record is also published without it, so the function's alarms
/// and dashboard count these requests too).
const ROUTE: (&str, &str) = ("Route", "oip");

/// Whether the protocol answers `path` (`/v2` and below).
pub fn is_oip_path(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// What happened, for logs and metrics (never any input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Inferred { rows: usize, out_of_range_rows: usize, challenger: Option<(u64, u64, u64)> },
    Rejected(&'static str),
    Metadata,
    NotFound,
    MethodNotAllowed,
    TooLarge,
}

/// Handles one request to a protocol path and logs and counts its outcome
/// (never its content), as the seed route does, with the route a dimension.
pub fn handle_request(
    model: &Model,
    challenger: Option<&Model>,
    request: &HttpRequest<'_>,
    invocation: &Invocation,
) -> HttpResponse {
    let started = Instant::now();
    let (response, outcome) = handle(model, challenger, request, &invocation.request_id);
    let micros = started.elapsed().as_micros() as u64;
    let status = response.status_code;
    let (request_id, cold_start) = (invocation.request_id.as_str(), invocation.cold_start);
    let entry_point = EntryPoint::FunctionUrl.as_str();
    let route = ROUTE.1;
    let mut metrics = Metrics::new(entry_point);
    metrics.also_by(ROUTE.0, ROUTE.1);
    match outcome {
        Outcome::Inferred { rows, out_of_range_rows, challenger } => {
            tracing::debug!(
                entry_point,
                route,
                request_id,
                cold_start,
                status,
                rows,
                out_of_range_rows,
                micros,
                "inference"
            );
            metrics.count("Predictions", rows as u64).count("OutOfRangeInputs", out_of_range_rows as u64);
            if let Some((compared, disagreements, not_comparable)) = challenger {
                metrics
                    .count("ChallengerRows", compared)
                    .count("ChallengerLabelDisagreements", disagreements)
                    .count("ChallengerNotComparable", not_comparable);
            }
        }
        Outcome::Rejected(code) => {
            tracing::info!(entry_point, route, request_id, cold_start, status, code, micros, "rejected input");
            metrics.count("RejectedInputs", 1).count(format!("Rejected_{code}"), 1);
        }
        other => {
            tracing::info!(entry_point, route, request_id, cold_start, status, outcome = ?other, micros, "request");
            metrics.count("OtherRequests", 1);
        }
    }
    if cold_start {
        metrics.count("ColdStart", 1);
    }
    metrics.millis("HandlerDuration", micros as f64 / 1000.0).emit();
    response
}

enum Route<'p> {
    Server,
    Live,
    Ready,
    Model { name: &'p str, version: Option<&'p str> },
    ModelReady { name: &'p str, version: Option<&'p str> },
    Infer { name: &'p str, version: Option<&'p str> },
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    let parts: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest[1..].split('/').collect() };
    Some(match parts[..] {
        [] => Route::Server,
        ["health", "live"] => Route::Live,
        ["health", "ready"] => Route::Ready,
        ["models", name] => Route::Model { name, version: None },
        ["models", name, "versions", version] => Route::Model { name, version: Some(version) },
        ["models", name, "ready"] => Route::ModelReady { name, version: None },
        ["models", name, "versions", version, "ready"] => Route::ModelReady { name, version: Some(version) },
        ["models", name, "infer"] => Route::Infer { name, version: None },
        ["models", name, "versions", version, "infer"] => Route::Infer { name, version: Some(version) },
        _ => return None,
    })
}

/// Handles one request to a protocol path. Never panics on any input and
/// never answers 5xx for bad input.
pub fn handle(
    model: &Model,
    challenger: Option<&Model>,
    request: &HttpRequest<'_>,
    request_id: &str,
) -> (HttpResponse, Outcome) {
    let Some(route) = route(request.path) else {
        let message = "Not Found: the Open Inference Protocol paths are /v2, /v2/health/{live,ready}, \
                       /v2/models/{name}[/versions/{version}][/ready|/infer]";
        return (error(404, message, request_id), Outcome::NotFound);
    };
    let (method, allow) = match route {
        Route::Infer { .. } => ("POST", "POST"),
        _ => ("GET", "GET"),
    };
    if request.method != method {
        let mut response = error(405, &format!("Method Not Allowed: use {method}"), request_id);
        response.allow = Some(allow);
        return (response, Outcome::MethodNotAllowed);
    }
    let info = model.info();
    let served = |name: &str, version: Option<&str>| name == info.name && version.is_none_or(|v| v == info.version);
    let unknown = || {
        let message = format!(
            "Not Found: no such model or version; this service serves model '{}' version '{}'",
            info.name, info.version
        );
        (error(404, &message, request_id), Outcome::NotFound)
    };
    match route {
        Route::Server => (json(200, &SERVER, request_id), Outcome::Metadata),
        Route::Live => (json(200, &Health { live: Some(true), ready: None }, request_id), Outcome::Metadata),
        Route::Ready => (json(200, &Health { live: None, ready: Some(true) }, request_id), Outcome::Metadata),
        Route::Model { name, version } if served(name, version) => {
            (json(200, &oip::model_metadata(model), request_id), Outcome::Metadata)
        }
        Route::ModelReady { name, version } if served(name, version) => {
            (json(200, &ModelReady { name: &info.name, ready: true }, request_id), Outcome::Metadata)
        }
        Route::Infer { name, version } if served(name, version) => infer(model, challenger, request, request_id),
        _ => unknown(),
    }
}

fn infer(
    model: &Model,
    challenger: Option<&Model>,
    request: &HttpRequest<'_>,
    request_id: &str,
) -> (HttpResponse, Outcome) {
    let raw = request.body.unwrap_or("");
    let decoded;
    let body: &[u8] = if request.is_base64_encoded {
        // Check the size before decoding so a huge body costs nothing.
        if raw.len() > MAX_BODY_BYTES.div_ceil(3) * 4 + 4 {
            return (payload_too_large(request_id), Outcome::TooLarge);
        }
        match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
            Ok(bytes) => {
                decoded = bytes;
                &decoded
            }
            Err(_) => {
                return rejected("bad_base64", "the body is marked base64-encoded but is not valid base64", request_id)
            }
        }
    } else {
        raw.as_bytes()
    };
    if body.len() > MAX_BODY_BYTES {
        return (payload_too_large(request_id), Outcome::TooLarge);
    }
    let (header, binary) = match request.inference_header_length {
        None => (body, &[][..]),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n <= body.len() => body.split_at(n),
            _ => {
                return rejected(
                    "invalid_header_length",
                    "the Inference-Header-Content-Length header must be a byte count no larger than the body",
                    request_id,
                )
            }
        },
    };
    let inference = match request::read(model.features(), header, binary) {
        Ok(inference) => inference,
        Err(e) => return rejected(e.code, &e.message, request_id),
    };
    let explain = inference.explains();
    let mut scorer = match Scorer::new(model, Wants { explain, drift: false }) {
        Ok(scorer) => scorer.with_challenger(challenger),
        Err(e) => return rejected(e.code(), &e.to_string(), request_id),
    };
    let answer = oip::answer(&mut scorer, &inference);
    let challenger = scorer.into_tallies().challenger.map(|s| (s.rows(), s.disagreements(), s.not_comparable()));
    let outcome =
        Outcome::Inferred { rows: inference.rows.len(), out_of_range_rows: answer.out_of_range_rows, challenger };
    if !inference.outputs.iter().any(|o| o.binary) {
        let body = String::from_utf8(answer.json).unwrap_or_default();
        return (HttpResponse::json(200, body, None, request_id), outcome);
    }
    let header_length = answer.json.len();
    let mut bytes = answer.json;
    bytes.extend_from_slice(&answer.binary);
    let mut response =
        HttpResponse::json(200, base64::engine::general_purpose::STANDARD.encode(&bytes), None, request_id);
    response.body_base64 = true;
    response.content_type = "application/octet-stream";
    response.inference_header_length = Some(header_length.to_string());
    (response, outcome)
}

/// The 413 answer on the protocol's paths (`serve` sees the size first).
pub fn payload_too_large(request_id: &str) -> HttpResponse {
    error(413, &format!("Payload Too Large: a request body must be at most {MAX_BODY_BYTES} bytes"), request_id)
}

fn rejected(code: &'static str, message: &str, request_id: &str) -> (HttpResponse, Outcome) {
    (error(400, message, request_id), Outcome::Rejected(code))
}

fn error(status: u16, message: &str, request_id: &str) -> HttpResponse {
    json(status, &ErrorBody { error: message }, request_id)
}

fn json(status: u16, body: &impl serde::Serialize, request_id: &str) -> HttpResponse {
    // Serializing these plain structs cannot fail; fall back to a fixed body anyway.
    let body = serde_json::to_string(body).unwrap_or_else(|_| r#"{"error":"Internal Server Error"}"#.to_owned());
    HttpResponse::json(status, body, None, request_id)
}
