//! The Function URL contract, through the same `App::handle_event` the Lambda
//! runtime calls: every bad-input case in SPEC.md gets a 4xx, never a 5xx.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse;
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::handler::App;
use serde_json::{json, Value};

use crate::helpers::{base64_event, function_url_event, read_json, record_reply, VALID_BODY};

fn app() -> App {
    App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap())
}

/// Runs an event and returns (HTTP status, parsed body), checking the
/// contract's invariants on every answer.
fn call(event: &Value) -> (i64, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let reply =
        rt.block_on(app().handle_json(&event.to_string(), &Invocation::local())).expect("a Function URL answer");
    let reply = serde_json::to_value(reply).unwrap();
    record_reply(event, &reply);
    // The answer is exactly what aws_lambda_events models as a Function URL response.
    let typed: LambdaFunctionUrlResponse = serde_json::from_value(reply.clone()).expect("Function URL response shape");
    assert_eq!(typed.status_code, reply["statusCode"].as_i64().unwrap());
    let status = reply["statusCode"].as_i64().unwrap();
    assert_eq!(reply["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    if event["rawPath"] == "/openapi.json" && status == 200 {
        return (status, body);
    }
    assert_eq!(body["status"], json!(status.to_string()), "status field equals the HTTP status");
    assert!(body["reason"].is_string());
    // Every answer names its request, in the body and the header alike.
    assert_eq!(body["requestId"], reply["headers"]["x-request-id"], "{body}");
    assert!(body["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    (status, body)
}

fn post(body: &str) -> (i64, Value) {
    call(&function_url_event("POST", "/", Some(body)))
}

fn assert_rejected(body: &str, field: &str, code: &str) {
    let (status, answer) = post(body);
    assert_eq!(status, 400, "{body}: {answer}");
    assert_eq!(answer["prediction"], "");
    let errors = answer["errors"].as_array().expect("per-field errors");
    assert!(
        errors.iter().any(|e| e["field"] == field && e["code"] == code),
        "{body}: expected {field}/{code} in {errors:?}"
    );
}

#[test]
fn a_valid_observation_gets_the_seed_fields_and_more() {
    let (status, body) = post(VALID_BODY);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "200");
    assert_eq!(body["reason"], "OK");
    // VALID_BODY is the dataset's first row: sklearn's answer from tests/golden/dataset.csv.
    let export = crate::goldens::Export::shipped();
    let (values, label, probability) = &export.predictions("dataset.csv")[0];
    assert_eq!(crate::goldens::shipped_golden_label_of_body(VALID_BODY), *label, "{values:?}");
    assert_eq!(body["prediction"], *label);
    assert_eq!(body["label"], export.class_name(*label).as_str());
    let p = body["probability"].as_f64().unwrap();
    assert!((p - probability).abs() <= crate::goldens::PROBABILITY_TOLERANCE, "{p} vs sklearn {probability}");
    assert!(body["modelVersion"].as_str().unwrap().starts_with("breast-cancer-gbc-"));
    assert_eq!(body["warnings"], json!([]));
}

#[test]
fn the_sample_events_answer_as_documented() {
    let malignant_sample = read_json("events/function-url-predict.json");
    let label = crate::goldens::shipped_golden_label_of_body(malignant_sample["body"].as_str().unwrap());
    let (status, body) = call(&malignant_sample);
    assert_eq!((status, body["prediction"].clone()), (200, json!(label)));
    let (status, body) = call(&read_json("events/function-url-predict-benign.json"));
    assert_eq!((status, body["prediction"].clone(), body["label"].clone()), (200, json!(0), json!("benign")));
    let (status, body) = call(&read_json("events/function-url-base64.json"));
    assert_eq!((status, body["prediction"].clone()), (200, json!(label)), "the same observation, base64");
    let (status, body) = call(&read_json("events/function-url-missing-field.json"));
    assert_eq!(status, 400);
    assert_eq!(body["reason"], "'body' must contain values for: worstArea, worstConcavePoints");
    assert_eq!(body["prediction"], "");
    let (status, body) = call(&read_json("events/function-url-invalid-values.json"));
    assert_eq!(status, 400);
    assert_eq!(body["errors"].as_array().unwrap().len(), 5);
    let (status, body) = call(&read_json("events/function-url-get.json"));
    assert_eq!(status, 200);
    assert_eq!(body["model"]["features"].as_array().unwrap().len(), 5);
}

#[test]
fn keys_may_come_in_any_order() {
    let v: serde_json::Map<String, Value> = serde_json::from_str(VALID_BODY).unwrap();
    let reversed: serde_json::Map<String, Value> = v.into_iter().rev().collect();
    let (_, mut a) = post(VALID_BODY);
    let (_, mut b) = post(&Value::Object(reversed).to_string());
    // Each request has its own id; everything else is equal.
    assert_ne!(a["requestId"], b["requestId"]);
    a.as_object_mut().unwrap().remove("requestId");
    b.as_object_mut().unwrap().remove("requestId");
    assert_eq!(a, b);
}

#[test]
fn each_bad_value_is_a_400_naming_the_field() {
    let with = |value: &str| VALID_BODY.replace("2019.0", value);
    assert_rejected(&VALID_BODY.replace("\"worstArea\":2019.0,", ""), "worstArea", "missing");
    assert_rejected(&with("null"), "worstArea", "null");
    assert_rejected(&with("\"2019\""), "worstArea", "not_a_number");
    assert_rejected(&with("true"), "worstArea", "not_a_number");
    assert_rejected(&with("\"NaN\""), "worstArea", "not_a_number");
    assert_rejected(&with("\"Infinity\""), "worstArea", "not_a_number");
    assert_rejected(&with("-1"), "worstArea", "negative");
    assert_rejected(&with("1e39"), "worstArea", "too_large");
    assert_rejected(&with("[]"), "worstArea", "not_a_number");
}

#[test]
fn missing_values_keep_the_seed_reason() {
    // The seed's text stays the prefix (clients match on it); the names are the missing ones.
    let (status, body) = post(r#"{"meanConcavePoints":0.1}"#);
    assert_eq!(status, 400);
    assert_eq!(
        body["reason"],
        "'body' must contain values for: worstRadius, worstTexture, worstArea, worstConcavePoints"
    );
}

#[test]
fn bodies_that_are_not_observations_are_400s() {
    for (body, words) in [
        ("", "empty"),
        ("   ", "empty"),
        ("not json", "not valid JSON"),
        ("{\"worstArea\": Infinity}", "not valid JSON"),
        ("{\"worstArea\": 1e999}", "not valid JSON"),
        ("[1,2,3]", "must be a JSON object, not an array"),
        ("\"text\"", "must be a JSON object, not a string"),
        ("42", "must be a JSON object"),
        ("null", "must be a JSON object"),
    ] {
        let (status, answer) = post(body);
        assert_eq!(status, 400, "{body:?}");
        assert!(answer["reason"].as_str().unwrap().contains(words), "{body:?}: {answer}");
        assert_eq!(answer["prediction"], "");
    }
    let mut no_body = function_url_event("POST", "/", None);
    no_body.as_object_mut().unwrap().remove("body");
    assert_eq!(call(&no_body).0, 400);
}

#[test]
fn base64_bodies_are_decoded_and_bad_base64_is_a_400() {
    let (status, body) = call(&base64_event(VALID_BODY.as_bytes()));
    let label = crate::goldens::shipped_golden_label_of_body(VALID_BODY);
    assert_eq!((status, body["prediction"].clone()), (200, json!(label)));
    let mut bad = base64_event(b"");
    bad["body"] = json!("***not base64***");
    assert_eq!(call(&bad).0, 400);
    let (status, _) = call(&base64_event(&[0xff, 0xfe, 0x00]));
    assert_eq!(status, 400);
}

#[test]
fn a_body_over_the_limit_is_a_413() {
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(20_000));
    let (status, body) = post(&big);
    assert_eq!(status, 413);
    assert_eq!(body["prediction"], "");
    assert_eq!(call(&base64_event(big.as_bytes())).0, 413);
}

#[test]
fn wrong_methods_are_405_and_unknown_paths_404() {
    for method in ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        assert_eq!(call(&function_url_event(method, "/", Some(VALID_BODY))).0, 405, "{method}");
    }
    for path in ["/predict", "/admin", "/../", "//"] {
        assert_eq!(call(&function_url_event("POST", path, Some(VALID_BODY))).0, 404, "{path}");
    }
}

#[test]
fn get_describes_the_model() {
    let (status, body) = call(&function_url_event("GET", "/", None));
    assert_eq!(status, 200);
    let model = &body["model"];
    let names: Vec<&str> = model["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["meanConcavePoints", "worstRadius", "worstTexture", "worstArea", "worstConcavePoints"]);
    assert_eq!(model["sha256"].as_str().unwrap().len(), 64);
    assert!(model["metrics"]["f1"].as_f64().unwrap() > 0.9);
}

#[test]
fn values_outside_the_training_range_are_scored_with_a_warning() {
    let (status, body) = post(&VALID_BODY.replace("2019.0", "9000"));
    assert_eq!(status, 200);
    let warnings = body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().unwrap().contains("worstArea"));
    assert!(!warnings[0].as_str().unwrap().contains("9000"), "warnings never echo the value");
}

#[test]
fn error_answers_never_echo_the_input() {
    let marker = "98765.4321";
    for body in [
        VALID_BODY.replace("2019.0", &format!("\"{marker}\"")),
        VALID_BODY.replace("2019.0", &format!("-{marker}")),
        format!("{{\"worstArea\": {marker}, broken"),
        format!("[{marker}]"),
    ] {
        let (_, answer) = post(&body);
        assert!(!answer.to_string().contains(marker), "{answer}");
    }
}

#[test]
fn events_that_are_not_function_url_requests_fail_the_invocation() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for event in [json!({"hello": "world"}), json!([1, 2]), json!("x")] {
        let err = rt.block_on(app().handle_json(&event.to_string(), &Invocation::local())).unwrap_err();
        assert!(err.to_string().contains("unrecognised event"), "{err}");
    }
}

fn with_query(mut event: Value, query: &str) -> Value {
    event["rawQueryString"] = json!(query);
    event
}

#[test]
fn explain_true_adds_the_explanation_in_model_order_and_nothing_else_changes() {
    let (_, plain) = post(VALID_BODY);
    let (status, body) = call(&with_query(function_url_event("POST", "/", Some(VALID_BODY)), "explain=true"));
    assert_eq!(status, 200);
    let explanation = body["explanation"].as_object().expect("an explanation");
    assert_eq!(explanation["unit"], "log-odds");
    let names: Vec<&str> = explanation["contributions"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, ["meanConcavePoints", "worstRadius", "worstTexture", "worstArea", "worstConcavePoints"]);
    // base + Σ contributions is the log-odds of the probability given.
    let raw = explanation["baseValue"].as_f64().unwrap()
        + explanation["contributions"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum::<f64>();
    let p = body["probability"].as_f64().unwrap();
    assert!((1.0 / (1.0 + (-raw).exp()) - p).abs() < 1e-12, "{raw} vs {p}");
    for key in ["status", "reason", "prediction", "probability", "label", "modelVersion", "warnings"] {
        assert_eq!(body[key], plain[key], "{key}");
    }
    assert!(plain.get("explanation").is_none(), "opt-in: {plain}");
    let (_, off) = call(&with_query(function_url_event("POST", "/", Some(VALID_BODY)), "explain=false&other=1"));
    assert!(off.get("explanation").is_none(), "{off}");
    // GET / gives the same base value.
    let (_, meta) = call(&function_url_event("GET", "/", None));
    assert_eq!(meta["model"]["baseValue"], explanation["baseValue"]);
}

#[test]
fn an_explain_value_other_than_true_or_false_is_a_clear_400() {
    for query in [
        "explain=yes",
        "explain=2",
        "explain",
        "explain=truee",
        "explain=true&explain=true",
        "explain=true&%65xplain=true",
        "explain=tr+ue",
        "explain=%0Btrue",
        "explain=%ZZ",
    ] {
        let (status, body) = call(&with_query(function_url_event("POST", "/", Some(VALID_BODY)), query));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["prediction"], "");
        assert_eq!(body["errors"][0]["field"], "explain", "{query}: {body}");
        assert_eq!(body["errors"][0]["code"], "invalid_explain", "{query}: {body}");
        assert!(body["reason"].as_str().unwrap().starts_with("'explain' must be"), "{body}");
    }
    // Percent-encoded `true` is `true`.
    let (status, _) = call(&with_query(function_url_event("POST", "/", Some(VALID_BODY)), "explain=%74rue"));
    assert_eq!(status, 200);
    // So is a percent-encoded name, and a `+` elsewhere in the query changes nothing.
    for query in ["%65xplain=true", "note=a+b&explain=true"] {
        let (status, body) = call(&with_query(function_url_event("POST", "/", Some(VALID_BODY)), query));
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body["explanation"].is_object(), "{query}: {body}");
    }
}

#[test]
fn a_version_1_model_answers_explanations_unavailable_and_still_predicts() {
    let v1 = App::new(crate::explain_paths::version_1_model(), BatchConfig::from_env().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let ask = |query: &str| {
        let event = with_query(function_url_event("POST", "/", Some(VALID_BODY)), query);
        let reply = rt.block_on(v1.handle_json(&event.to_string(), &Invocation::local())).unwrap();
        let reply = serde_json::to_value(reply).unwrap();
        record_reply(&event, &reply);
        let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        (reply["statusCode"].as_i64().unwrap(), body)
    };
    let (status, body) = ask("explain=true");
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"],
        json!([{"field": "explain", "code": "explanations_unavailable", "message": body["reason"]}])
    );
    assert!(body["reason"].as_str().unwrap().contains("format version 1"), "{body}");
    assert_eq!(ask("").0, 200);
}

#[test]
fn every_answer_carries_its_own_request_id_in_body_and_header() {
    let mut seen = std::collections::HashSet::new();
    let big = format!("{{\"id\":\"{}\"}}", "x".repeat(20_000));
    for event in [
        function_url_event("POST", "/", Some(VALID_BODY)),
        function_url_event("POST", "/", Some(r#"{"worstArea": 1}"#)),
        function_url_event("POST", "/", Some(&big)),
        function_url_event("GET", "/", None),
        function_url_event("PUT", "/", Some(VALID_BODY)),
        function_url_event("POST", "/nope", Some(VALID_BODY)),
    ] {
        let (_, body) = call(&event);
        let id = body["requestId"].as_str().unwrap().to_owned();
        assert!(uuid_shaped(&id), "{id}");
        assert!(seen.insert(id), "request ids are unique");
    }
}

fn uuid_shaped(id: &str) -> bool {
    let parts: Vec<usize> = id.split('-').map(str::len).collect();
    parts == [8, 4, 4, 4, 12] && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn the_request_id_is_the_invocations_and_the_id_is_echoed_when_valid() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let invocation = Invocation { request_id: "c0ffee00-1111-4222-8333-444455556666".into(), ..Invocation::local() };
    let run = |body: &str| {
        let event = function_url_event("POST", "/", Some(body));
        let reply =
            serde_json::to_value(rt.block_on(app().handle_json(&event.to_string(), &invocation)).unwrap()).unwrap();
        record_reply(&event, &reply);
        assert_eq!(reply["headers"]["x-request-id"], "c0ffee00-1111-4222-8333-444455556666");
        serde_json::from_str::<Value>(reply["body"].as_str().unwrap()).unwrap()
    };
    let body = run(&VALID_BODY.replace('{', r#"{"id":"lab-0001","#));
    assert_eq!((body["id"].clone(), body["requestId"].clone()), (json!("lab-0001"), json!(invocation.request_id)));
    let body = run(&VALID_BODY.replace('{', r#"{"id":42,"#));
    assert_eq!(body["id"], json!("42"));
    // A rejected observation still echoes its id; an invalid id is named, not echoed.
    let body = run(r#"{"id":"lab-0002","worstArea":-1}"#);
    assert_eq!((body["status"].clone(), body["id"].clone()), (json!("400"), json!("lab-0002")));
    let body = run(&VALID_BODY.replace('{', r#"{"id":[1],"#));
    assert_eq!(body["errors"][0]["field"], "id");
    assert!(body.get("id").is_none(), "{body}");
    let body = run(VALID_BODY);
    assert!(body.get("id").is_none(), "{body}");
}

/// The `Id` schema and the server agree: a string of at most 256 characters
/// or a 64-bit integer; `null`, a larger integer, a float are `invalid_id`.
#[test]
fn a_null_or_out_of_range_id_is_a_400_naming_id() {
    for id in ["null", "18446744073709551616", "-9223372036854775809", "1.5"] {
        let body = VALID_BODY.replace('{', &format!(r#"{{"id":{id},"#));
        let (status, answer) = post(&body);
        assert_eq!(status, 400, "{id}: {answer}");
        assert_eq!(
            answer["errors"],
            json!([{"field": "id", "code": "invalid_id", "message": answer["reason"]}]),
            "{id}"
        );
        assert!(answer.get("id").is_none(), "{answer}");
    }
    for (id, echoed) in [
        ("18446744073709551615", "18446744073709551615"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("1e3", "1000"),
    ] {
        let (status, answer) = post(&VALID_BODY.replace('{', &format!(r#"{{"id":{id},"#)));
        assert_eq!((status, answer["id"].clone()), (200, json!(echoed)), "{answer}");
    }
}

#[test]
fn the_openapi_document_is_built_on_the_first_request_for_it_not_before() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let app = app();
    assert!(!app.openapi_document_built());
    for (method, path, body) in [("POST", "/", Some(VALID_BODY)), ("GET", "/", None), ("PUT", "/openapi.json", None)] {
        let event = function_url_event(method, path, body);
        rt.block_on(app.handle_json(&event.to_string(), &Invocation::local())).unwrap();
    }
    assert!(!app.openapi_document_built());
    let event = function_url_event("GET", "/openapi.json", None);
    let first = serde_json::to_value(rt.block_on(app.handle_json(&event.to_string(), &Invocation::local())).unwrap());
    assert!(app.openapi_document_built());
    let again = serde_json::to_value(rt.block_on(app.handle_json(&event.to_string(), &Invocation::local())).unwrap());
    assert_eq!(first.unwrap()["body"], again.unwrap()["body"]);
}

#[test]
fn get_openapi_json_serves_the_contract() {
    let (status, body) = call(&function_url_event("GET", "/openapi.json", None));
    assert_eq!(status, 200);
    assert_eq!(body["openapi"], "3.1.0");
    assert!(body["paths"]["/"]["post"].is_object(), "{body}");
    // The document made for the shipped model is openapi.yaml; tests/openapi_check.py
    // --answers checks it as an independent YAML reader (PyYAML) sees the file.
    let committed: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(crate::helpers::root().join("openapi.yaml")).unwrap())
            .unwrap();
    assert_eq!(body, committed);
    let (status, _) = call(&function_url_event("POST", "/openapi.json", Some("{}")));
    assert_eq!(status, 405);
}
