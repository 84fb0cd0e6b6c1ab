//! Clients in their own conventions (a .NET clinic client: `Id`,
//! `?explain=True`, a UTF-16 body), and every 4xx's machine-readable code:
//! one input per row of docs/http.md's table, through the Function URL
//! (`App`) and `scorer serve`; the codes received are the table's and
//! openapi.yaml's `ErrorItem.code` enum, exactly.

use std::collections::BTreeSet;

use base64::Engine as _;
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::handler::App;
use serde_json::{json, Value};

use crate::explain_paths::version_1_model;
use crate::helpers::{function_url_event, record_ureq, root, start_serve, VALID_BODY};

/// The answer (status, body) of `event` through the handler the Lambda runtime calls.
fn call_with(model: Model, event: &Value) -> (i64, Value) {
    let app = App::new(model, BatchConfig::from_env().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let reply = rt.block_on(app.handle_json(&event.to_string(), &Invocation::local())).expect("an answer");
    let reply = serde_json::to_value(reply).unwrap();
    let body = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    (reply["statusCode"].as_i64().unwrap(), body)
}

fn call(event: &Value) -> (i64, Value) {
    call_with(Model::embedded().unwrap(), event)
}

fn post_at(path_and_query: &str, body: &str) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut event = function_url_event("POST", path, Some(body));
    event["rawQueryString"] = query.into();
    event
}

fn base64_body(bytes: &[u8]) -> Value {
    let mut event = function_url_event("POST", "/", None);
    event["body"] = base64::engine::general_purpose::STANDARD.encode(bytes).into();
    event["isBase64Encoded"] = true.into();
    event
}

fn utf16(text: &str, mark: bool) -> Vec<u8> {
    let mut bytes = if mark { vec![0xff, 0xfe] } else { Vec::new() };
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

fn with(key_value: &str) -> String {
    VALID_BODY.replacen('{', &format!("{{{key_value},"), 1)
}

/// Every code in `errors` of an answer.
fn codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("every 400/413 has errors: {body}"))
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect()
}

/// The codes docs/http.md's error table lists (backticked words in its third column but field names and `errors`).
fn table_codes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/http.md")).unwrap();
    let table = text.split("| input | status | `errors[].code`").nth(1).expect("the error table");
    let mut codes = BTreeSet::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let third = row.split(" | ").nth(2).unwrap_or_else(|| panic!("{row}"));
        for word in third.split('`').skip(1).step_by(2) {
            let is_code =
                !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if is_code && !["body", "id", "explain", "errors"].contains(&word) {
                codes.insert(word.to_owned());
            }
        }
    }
    codes
}

fn openapi_codes() -> BTreeSet<String> {
    let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("openapi.yaml")).unwrap()).unwrap();
    let codes = &doc["components"]["schemas"]["ErrorItem"]["properties"]["code"]["enum"];
    codes.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

#[test]
fn every_4xx_carries_a_code_and_the_codes_received_are_the_tables_and_the_documents() {
    let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(17_000));
    let cases: Vec<(Value, i64, &str, &str)> = vec![
        (post_at("/", r#"{"worstArea":1}"#), 400, "meanConcavePoints", "missing"),
        (post_at("/", &VALID_BODY.replace("2019.0", "null")), 400, "worstArea", "null"),
        (post_at("/", &VALID_BODY.replace("2019.0", "\"2019\"")), 400, "worstArea", "not_a_number"),
        (post_at("/", &VALID_BODY.replace("2019.0", "-1")), 400, "worstArea", "negative"),
        (post_at("/", &VALID_BODY.replace("2019.0", "1e39")), 400, "worstArea", "too_large"),
        (post_at("/", &with(r#""worst_area":3"#)), 400, "worstArea", "duplicate"),
        (post_at("/", &with(r#""id":"a","Id":"b""#)), 400, "id", "duplicate"),
        (post_at("/", &with(r#""id":null"#)), 400, "id", "invalid_id"),
        (post_at("/?explain=yes", VALID_BODY), 400, "explain", "invalid_explain"),
        (post_at("/", ""), 400, "body", "empty_body"),
        (post_at("/", "{"), 400, "body", "not_json"),
        (base64_body(&utf16(VALID_BODY, true)), 400, "body", "not_utf8"),
        (base64_body(&utf16(VALID_BODY, false)), 400, "body", "not_utf8"),
        (post_at("/", "[1]"), 400, "body", "not_an_object"),
        (json!({}), 400, "body", "bad_base64"),
        (post_at("/", &large), 413, "body", "body_too_large"),
    ];
    let mut received = BTreeSet::new();
    for (mut event, status, field, code) in cases {
        if event == json!({}) {
            event = function_url_event("POST", "/", Some("not base64!"));
            event["isBase64Encoded"] = true.into();
        }
        let (got, body) = call(&event);
        assert_eq!(got, status, "{code}: {body}");
        let found = codes(&body);
        assert!(found.contains(&(field.to_owned(), code.to_owned())), "{code}: {body}");
        received.extend(found.into_iter().map(|(_, c)| c));
    }
    let (status, body) = call_with(version_1_model(), &post_at("/?explain=true", VALID_BODY));
    assert_eq!(status, 400);
    received.extend(codes(&body).into_iter().map(|(_, c)| c));
    // The one code no request here can cause: `scorer serve` losing the connection mid-body.
    received.insert("unreadable_body".to_owned());

    assert_eq!(table_codes(), received, "docs/http.md's table lists exactly the codes received");
    assert_eq!(openapi_codes(), received, "openapi.yaml's ErrorItem.code enum is exactly the codes received");
}

#[test]
fn the_missing_values_reason_keeps_the_seed_prefix_and_names_only_the_missing() {
    let body = VALID_BODY.replace(r#""worstTexture":17.33,"#, "").replace(r#","worstConcavePoints":0.2654"#, "");
    let (status, answer) = call(&post_at("/", &body));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["reason"], "'body' must contain values for: worstTexture, worstConcavePoints");
    let (_, answer) = call(&post_at("/", &VALID_BODY.replace("2019.0", "null")));
    assert_eq!(answer["reason"], "'body' must contain values for: worstArea");
}

#[test]
fn a_dotnet_client_gets_its_id_echoed_and_explain_true_read_on_the_function_url() {
    for key in ["Id", "ID", "id"] {
        let (status, answer) = call(&post_at("/", &with(&format!(r#""{key}":"lab-7""#))));
        assert_eq!((status, &answer["id"]), (200, &json!("lab-7")), "{key}: {answer}");
        // Echoed on a 400 for bad values too.
        let bad = with(&format!(r#""{key}":"lab-7""#)).replace("2019.0", "-1");
        assert_eq!(call(&post_at("/", &bad)).1["id"], "lab-7", "{key}");
    }
    for flag in ["True", "TRUE", "true", "1"] {
        let (status, answer) = call(&post_at(&format!("/?explain={flag}"), VALID_BODY));
        assert_eq!(status, 200, "{flag}: {answer}");
        assert_eq!(answer["explanation"]["unit"], "log-odds", "{flag}");
    }
    for flag in ["False", "FALSE", "0"] {
        let (status, answer) = call(&post_at(&format!("/?explain={flag}"), VALID_BODY));
        assert_eq!(status, 200, "{flag}: {answer}");
        assert!(answer.get("explanation").is_none(), "{flag}");
    }
}

#[test]
fn a_dotnet_client_is_understood_by_scorer_serve_and_a_utf16_body_gets_its_code() {
    let (_server, url) = start_serve();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let post = |path: &str, body: &[u8], content_type: &str| {
        let response = agent.post(&format!("{url}{path}")).content_type(content_type).send(body).unwrap();
        let (status, _, text) = record_ureq("POST", "/", response);
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };
    let (status, answer) = post("/?explain=True", with(r#""Id":"lab-7""#).as_bytes(), "application/json");
    assert_eq!(status, 200, "{answer}");
    assert_eq!((&answer["id"], &answer["explanation"]["unit"]), (&json!("lab-7"), &json!("log-odds")));
    // .NET's Encoding.Unicode: UTF-16 LE with its mark, and without.
    for mark in [true, false] {
        let (status, answer) = post("/", &utf16(VALID_BODY, mark), "application/json; charset=utf-16");
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["errors"][0]["code"], "not_utf8", "{answer}");
        assert!(answer["reason"].as_str().unwrap().contains("send JSON encoded as UTF-8"), "{answer}");
    }
}
