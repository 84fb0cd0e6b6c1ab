//! `scorer serve` with a real HTTP client.

use serde_json::Value;

use crate::helpers::{start_serve, VALID_BODY};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn json(mut r: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

#[test]
fn serve_answers_the_function_url_contract_over_http() {
    let (_server, url) = start_serve();
    let agent = agent();

    let (status, body) = json(agent.post(&url).content_type("application/json").send(VALID_BODY).unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["prediction"], 1);
    assert_eq!(body["status"], "200");

    let (status, body) = json(agent.post(&url).send(r#"{"worstArea": 1}"#).unwrap());
    assert_eq!(status, 400);
    assert_eq!(body["prediction"], "");

    let (status, body) = json(agent.get(&url).call().unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["model"]["features"].as_array().unwrap().len(), 5);

    let (status, _) = json(agent.put(&url).send(VALID_BODY).unwrap());
    assert_eq!(status, 405);
    let (status, _) = json(agent.post(&format!("{url}/nope")).send(VALID_BODY).unwrap());
    assert_eq!(status, 404);

    let big = vec![b' '; 1024 * 1024];
    let (status, body) = json(agent.post(&url).send(&big[..]).unwrap());
    assert_eq!(status, 413);
    assert_eq!(body["status"], "413");

    // Not UTF-8: arrives base64-encoded, as on a real Function URL, and is a 400.
    let (status, _) = json(agent.post(&url).send(&[0xffu8, 0xfe, 0x7b][..]).unwrap());
    assert_eq!(status, 400);
}

#[test]
fn serve_listens_on_loopback_only() {
    let (_server, url) = start_serve();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
}
