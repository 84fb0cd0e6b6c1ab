//! Function URL handler: any method, path, base64 flag and body must get a
//! well-formed 2xx/4xx JSON answer, never a panic or a 5xx. Also: the Lambda
//! event envelope (`scorer::handler::Event`) must deserialize any bytes
//! without panicking; a POST body answers exactly the same sent plain or
//! base64-encoded; and a marker planted in the body (every `#` becomes one)
//! never appears in an answer outside the echoed `id`, whatever the body.
//!
//! Input layout (so seeds can be written by hand, see README.md):
//!   byte 0      flags: bit0 isBase64Encoded, bit1 body is None,
//!               bits2-3 method (0 POST, 1 GET, 2-3 next line of the input),
//!               bits4-5 path   (0 "/",  1 "",  2-3 next line of the input),
//!               bit6 repeat the body (count from byte 1) to reach large sizes,
//!               bit7 query `explain=true`
//!   [byte 1]    repeat count, only when bit6 is set
//!   rest        UTF-8 (lossily decoded): optional method line, optional path
//!               line, then the body.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use scorer::adapters::function_url::{handle, HttpRequest, Outcome};
use scorer::contract::openapi::LazyDocument;
use scorer::core::model::Model;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().expect("embedded model loads"))
}

fn openapi() -> &'static LazyDocument {
    static OPENAPI: OnceLock<LazyDocument> = OnceLock::new();
    OPENAPI.get_or_init(LazyDocument::default)
}

/// Replaces every `#` of a body: a value no answer may echo.
const MARKER: &str = "zqMARKERzq";

fn next_line<'a>(rest: &mut &'a str) -> &'a str {
    match rest.split_once('\n') {
        Some((line, tail)) => {
            *rest = tail;
            line
        }
        None => std::mem::take(rest),
    }
}

fuzz_target!(|data: &[u8]| {
    // The envelope parser sees the raw bytes, whatever they are.
    let _ = serde_json::from_slice::<scorer::handler::Event>(data);

    let Some((&flags, mut tail)) = data.split_first() else { return };
    let mut repeat = 1usize;
    if flags & 0x40 != 0 {
        let Some((&r, t)) = tail.split_first() else { return };
        repeat = (usize::from(r) + 1) * 64;
        tail = t;
    }
    let text = String::from_utf8_lossy(tail);
    let mut rest: &str = &text;
    let method = match (flags >> 2) & 3 {
        0 => "POST",
        1 => "GET",
        _ => next_line(&mut rest),
    };
    let path = match (flags >> 4) & 3 {
        0 => "/",
        1 => "",
        _ => next_line(&mut rest),
    };
    let repeated;
    let body_text: &str = if repeat > 1 {
        // Cap the size so one input stays cheap: just past the base64 limit.
        let cap = 48 * 1024;
        let times = if rest.is_empty() { 0 } else { repeat.min(cap / rest.len() + 1) };
        repeated = rest.repeat(times);
        &repeated
    } else {
        rest
    };
    // The body alone may be a whole event too (seeds are event files).
    let _ = serde_json::from_str::<scorer::handler::Event>(body_text);

    let request = HttpRequest {
        method,
        path,
        query: if flags & 0x80 != 0 { "explain=true" } else { "" },
        body: if flags & 0x02 != 0 { None } else { Some(body_text) },
        is_base64_encoded: flags & 0x01 != 0,
        inference_header_length: None,
    };
    let (response, outcome) = handle(model(), openapi(), &request, "fuzz-request");

    let status = response.status_code;
    assert!(
        matches!(status, 200 | 400 | 404 | 405 | 413),
        "unexpected status {status} for {outcome:?}: {}",
        response.body
    );
    let expected = match outcome {
        Outcome::Predicted { .. } | Outcome::Metadata => 200,
        Outcome::Rejected(_) => 400,
        Outcome::NotFound => 404,
        Outcome::MethodNotAllowed => 405,
        Outcome::TooLarge => 413,
    };
    assert_eq!(status, expected, "status does not match outcome {outcome:?}");
    if status == 405 {
        assert!(response.allow.is_some(), "405 without an Allow header");
    }
    let body: serde_json::Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", response.body));
    if path == "/openapi.json" && status == 200 {
        return; // the OpenAPI document, not an answer
    }
    assert_eq!(body["requestId"], "fuzz-request", "every answer names its request: {}", response.body);
    let code = status.to_string();
    assert_eq!(
        body.get("status").and_then(serde_json::Value::as_str),
        Some(code.as_str()),
        "body 'status' differs from HTTP status {status}: {}",
        response.body
    );
    // The whole response event must serialize too.
    serde_json::to_string(&response).expect("response serializes");

    let Some(body) = request.body.filter(|_| method == "POST" && !request.is_base64_encoded) else { return };
    // The same body base64-encoded answers exactly as the plain one.
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let (as_base64, _) = handle(
        model(),
        openapi(),
        &HttpRequest { body: Some(&encoded), is_base64_encoded: true, ..request },
        "fuzz-request",
    );
    assert_eq!(as_base64, response, "a base64 body answers differently from the plain one");
    // A planted marker is never echoed, but in the `id` the caller sent (echoed on purpose).
    let planted = body.replace('#', MARKER);
    let (answer, _) = handle(model(), openapi(), &HttpRequest { body: Some(&planted), ..request }, "fuzz-request");
    let mut answer: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON answer");
    if let Some(map) = answer.as_object_mut() {
        map.remove("id");
    }
    assert!(!answer.to_string().contains(MARKER), "the answer echoes the body: {answer}");
});
