//! The real binary as a Lambda function, against a Runtime API on 127.0.0.1.

use std::process::Stdio;

use serde_json::{json, Value};

use crate::helpers::{function_url_event, read_json, scorer, Running, VALID_BODY};
use crate::runtime_api::RuntimeApi;

async fn start_function(api: &RuntimeApi) -> Running {
    let child = scorer()
        .envs(api.lambda_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the function");
    Running { child }
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("a Function URL response body")).unwrap()
}

#[tokio::test]
async fn the_binary_serves_function_url_events_through_the_runtime_api() {
    let api = RuntimeApi::start().await;
    let _function = start_function(&api).await;

    let event = read_json("events/function-url-predict.json");
    let label = crate::goldens::shipped_golden_label_of_body(event["body"].as_str().unwrap());
    let ok = api.invoke(&event).await.response();
    assert_eq!(ok["statusCode"], 200);
    assert_eq!(ok["headers"]["content-type"], "application/json");
    let b = body(&ok);
    assert_eq!(
        (b["status"].clone(), b["reason"].clone(), b["prediction"].clone()),
        (json!("200"), json!("OK"), json!(label))
    );

    let missing = api.invoke(&read_json("events/function-url-missing-field.json")).await.response();
    assert_eq!(missing["statusCode"], 400);
    assert_eq!(body(&missing)["prediction"], "");

    // Bad input never becomes an invocation error, and the function keeps serving.
    for b in ["", "{", "[]", "null"] {
        let r = api.invoke(&function_url_event("POST", "/", Some(b))).await.response();
        assert_eq!(r["statusCode"], 400, "{b:?}");
    }
    let r = api.invoke(&function_url_event("POST", "/", Some(VALID_BODY))).await.response();
    assert_eq!(r["statusCode"], 200);
}

#[tokio::test]
async fn an_unrecognised_event_is_an_invocation_error_not_a_crash() {
    let api = RuntimeApi::start().await;
    let _function = start_function(&api).await;
    let err = api.invoke(&json!({"something": "else"})).await.error();
    assert_eq!(err["errorType"], "UnrecognisedEvent");
    // Still alive afterwards.
    let r = api.invoke(&function_url_event("GET", "/", None)).await.response();
    assert_eq!(r["statusCode"], 200);
}

#[tokio::test]
async fn a_broken_model_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, r#"{"format":"scorer-gbdt","format_version":99}"#).unwrap();
    let api = RuntimeApi::start().await;
    let out = scorer().envs(api.lambda_env()).env("MODEL_PATH", &path).output().expect("run the function");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model file"), "{stderr}");
}

/// The Lambda mode is chosen from the environment before any argument
/// parsing (a cold start skips clap): only with no arguments at all. A
/// command, `--help` or `--version` still runs where the variable is set.
#[test]
fn the_runtime_variable_alone_does_not_take_over_a_command() {
    let closed = "127.0.0.1:1";
    let version = scorer().env("AWS_LAMBDA_RUNTIME_API", closed).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("scorer "));
    let help = scorer().env("AWS_LAMBDA_RUNTIME_API", closed).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("Usage"));
    let invoke = scorer()
        .env("AWS_LAMBDA_RUNTIME_API", closed)
        .args(["invoke", "events/function-url-predict.json"])
        .current_dir(crate::helpers::root())
        .output()
        .unwrap();
    assert!(invoke.status.success(), "{}", String::from_utf8_lossy(&invoke.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&invoke.stdout).unwrap()["statusCode"], 200);
    // No arguments: the Lambda mode, with its JSON logs (here: no Runtime API answers).
    let lambda = scorer()
        .env("AWS_LAMBDA_RUNTIME_API", closed)
        .env("AWS_LAMBDA_FUNCTION_NAME", "scorer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .output()
        .unwrap();
    assert!(!lambda.status.success());
    let stderr = String::from_utf8_lossy(&lambda.stderr);
    let line: Value = serde_json::from_str(stderr.lines().last().unwrap_or_default()).expect("a JSON log line");
    assert_eq!(line["level"], "ERROR", "{stderr}");
}

/// The cold start pays no relative relocations: build.rs links the binary
/// position-dependent (an ELF executable, type 2, not a PIE, type 3).
#[cfg(target_os = "linux")]
#[test]
fn the_binary_is_linked_position_dependent() {
    use std::io::Read as _;
    let mut header = [0u8; 18];
    std::fs::File::open(env!("CARGO_BIN_EXE_scorer")).unwrap().read_exact(&mut header).unwrap();
    assert_eq!(&header[..4], b"\x7fELF");
    let e_type = u16::from_le_bytes([header[16], header[17]]);
    assert_eq!(e_type, 2, "the binary is a position-independent executable: every start relocates it");
}
