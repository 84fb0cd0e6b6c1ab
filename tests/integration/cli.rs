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

#[test]
fn score_refuses_a_file_whose_quote_never_closes_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    // Enough rows that output was flushed to the temporary file before the end.
    let rows = "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(300_000);
    let header = "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n";
    std::fs::write(&input, format!("{header}{rows}\"S2,0.1,20,20,900,0.1\nS3,0.1,20,20,900,0.1\n")).unwrap();
    let output = dir.path().join("out.csv");
    std::fs::write(&output, "an earlier result").unwrap();

    let out = scorer().arg("score").arg(&input).arg("-o").arg(&output).arg("--quiet").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the record starting on line 300002 opens a quote that never closes"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "an earlier result");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "a temporary file was left: {left:?}");
}
