//! Logging setup. JSON lines on Lambda (CloudWatch parses them), human text on
//! a terminal. Level from `LOG_LEVEL` or `AWS_LAMBDA_LOG_LEVEL` (default info).
//! Nothing here or anywhere else logs feature values, ids or bodies.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let level = std::env::var("LOG_LEVEL")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).with_target(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).with_target(false).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
