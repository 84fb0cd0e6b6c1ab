//! The cold-start floor: the smallest `lambda_runtime` function that answers
//! a Function URL event (statusCode 200), built with the same release profile
//! and the same one-thread tokio runtime as `scorer`'s Lambda mode, so
//! benches/cold_start.rs compares only what scorer does on top (model,
//! telemetry, routing).
//! `cargo build --release --example hello_lambda`

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    Ok(json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{\"hello\":\"world\"}"}))
}

fn main() -> Result<(), lambda_runtime::Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(lambda_runtime::run(service_fn(hello)))
}
