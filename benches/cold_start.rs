//! Cold start: from exec of the binary to its first Function URL response
//! through a Lambda Runtime API on 127.0.0.1 (the same harness the tests use).
//!
//! `cargo bench --bench cold_start` uses the bench-profile binary; set
//! `SCORER_BIN=target/release/scorer` (after `cargo build --release`) to time
//! the shipped build. `COLD_START_RUNS` sets the number of runs (default 30).

#[path = "../tests/integration/runtime_api.rs"]
mod runtime_api;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let bin = std::env::var("SCORER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_scorer").to_owned());
    let runs: usize = std::env::var("COLD_START_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/function-url-predict.json")).unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let elapsed = rt.block_on(async {
            let api = runtime_api::RuntimeApi::start().await;
            let started = Instant::now();
            let mut child = Command::new(&bin)
                .envs(api.lambda_env())
                .env("LOG_LEVEL", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the function");
            let answer = api.invoke_with_timeout(&event, Duration::from_secs(10)).await.response();
            let elapsed = started.elapsed();
            assert_eq!(answer["statusCode"], 200);
            let _ = child.kill();
            let _ = child.wait();
            elapsed
        });
        times.push(elapsed);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "cold start (exec -> first response), {runs} runs of {bin}: median {:.2} ms, min {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs * 9 / 10]),
        ms(times[runs - 1])
    );
}
