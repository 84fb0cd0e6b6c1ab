//! The command line as a user meets it.

use serde_json::Value;

use crate::helpers::{root, scorer};

#[test]
fn invoke_prints_the_handlers_response_for_an_event_file() {
    let out = scorer().arg("invoke").arg(root().join("events/function-url-predict.json")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["statusCode"], 200);
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["prediction"], 1);
}

#[test]
fn invoke_fails_clearly_on_a_missing_or_unrecognised_event() {
    let out = scorer().args(["invoke", "/nonexistent/event.json"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(&file, r#"{"unknown": true}"#).unwrap();
    let out = scorer().arg("invoke").arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognised event"));
}

#[test]
fn help_explains_the_commands() {
    let out = scorer().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "invoke", "malignant", "MODEL_PATH"] {
        assert!(text.contains(word), "--help should mention {word}:\n{text}");
    }
}
