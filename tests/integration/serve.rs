//! `scorer serve` with a real HTTP client.

use serde_json::Value;

use crate::helpers::{record_ureq, start_serve, VALID_BODY};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Records the answer for the OpenAPI check, and checks the request id is in
/// the header and (but for /openapi.json) the body alike.
fn answer(method: &str, path: &str, r: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let (status, headers, text) = record_ureq(method, path, r);
    let body: Value = serde_json::from_str(&text).unwrap();
    let header = headers.iter().find(|(k, _)| k == "x-request-id").map(|(_, v)| v.clone()).expect("X-Request-Id");
    assert!(!header.is_empty());
    if path != "/openapi.json" {
        assert_eq!(body["requestId"], header.as_str(), "{body}");
    }
    (status, body)
}

#[test]
fn serve_answers_the_function_url_contract_over_http() {
    let (_server, url) = start_serve();
    let agent = agent();

    let (status, body) =
        answer("POST", "/", agent.post(&url).content_type("application/json").send(VALID_BODY).unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["prediction"], 1);
    assert_eq!(body["status"], "200");

    let (status, body) = answer("POST", "/", agent.post(&format!("{url}/?explain=true")).send(VALID_BODY).unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["explanation"]["unit"], "log-odds");

    let with_id = VALID_BODY.replace('{', r#"{"id":"lab-0001","#);
    let (status, body) =
        answer("POST", "/", agent.post(&format!("{url}/?explain=false")).send(with_id.as_str()).unwrap());
    assert_eq!((status, body["id"].clone()), (200, Value::from("lab-0001")));
    assert!(body.get("explanation").is_none());

    let (status, body) = answer("POST", "/", agent.post(&url).send(r#"{"worstArea": 1}"#).unwrap());
    assert_eq!(status, 400);
    assert_eq!(body["prediction"], "");

    let (status, body) = answer("POST", "/", agent.post(&format!("{url}/?explain=yes")).send(VALID_BODY).unwrap());
    assert_eq!((status, body["errors"][0]["code"].clone()), (400, Value::from("invalid_explain")));

    let (status, body) = answer("GET", "/", agent.get(&url).call().unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["model"]["features"].as_array().unwrap().len(), 5);
    assert!(body["model"]["baseValue"].is_f64());

    let (status, body) = answer("GET", "/openapi.json", agent.get(&format!("{url}/openapi.json")).call().unwrap());
    assert_eq!((status, body["openapi"].clone()), (200, Value::from("3.1.0")));

    let (status, _) = answer("PUT", "/", agent.put(&url).send(VALID_BODY).unwrap());
    assert_eq!(status, 405);
    let (status, _) = answer("DELETE", "/openapi.json", agent.delete(&format!("{url}/openapi.json")).call().unwrap());
    assert_eq!(status, 405);
    let (status, _) = answer("POST", "/nope", agent.post(&format!("{url}/nope")).send(VALID_BODY).unwrap());
    assert_eq!(status, 404);
    let (status, _) = answer("GET", "/nope", agent.get(&format!("{url}/nope")).call().unwrap());
    assert_eq!(status, 404);

    let big = vec![b' '; 1024 * 1024];
    let (status, body) = answer("POST", "/", agent.post(&url).send(&big[..]).unwrap());
    assert_eq!(status, 413);
    assert_eq!(body["status"], "413");

    // Not UTF-8: arrives base64-encoded, as on a real Function URL, and is a 400.
    let (status, _) = answer("POST", "/", agent.post(&url).send(&[0xffu8, 0xfe, 0x7b][..]).unwrap());
    assert_eq!(status, 400);
}

#[test]
fn serve_listens_on_loopback_only() {
    let (_server, url) = start_serve();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
}
