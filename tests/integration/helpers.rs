#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

pub const VALID_BODY: &str = r#"{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scorer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scorer"));
    // Tests must not inherit a developer's Lambda or model settings.
    for v in ["AWS_LAMBDA_RUNTIME_API", "MODEL_PATH", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"] {
        c.env_remove(v);
    }
    c
}

pub fn read_json(path: impl AsRef<Path>) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A Function URL event (payload 2.0), like `events/function-url-*.json`.
pub fn function_url_event(method: &str, path: &str, body: Option<&str>) -> Value {
    let mut e = read_json("events/function-url-predict.json");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["body"] = body.map_or(Value::Null, |b| json!(b));
    e["isBase64Encoded"] = json!(false);
    e
}

pub fn base64_event(body: &[u8]) -> Value {
    let mut e = function_url_event("POST", "/", None);
    e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    e["isBase64Encoded"] = json!(true);
    e
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
pub struct Running {
    pub child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scorer serve --port 0` and returns it with its base URL.
pub fn start_serve() -> (Running, String) {
    let mut child = scorer()
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scorer serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
    let url = line.trim().strip_prefix("listening on ").expect("scorer serve prints its address").to_owned();
    (Running { child }, url)
}
