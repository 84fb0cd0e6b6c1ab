//! Cold start: from exec of a binary to its first Function URL response
//! through a Lambda Runtime API on 127.0.0.1 (the same harness the tests
//! use), for `scorer` and for the floor, a hello-world `lambda_runtime`
//! function (benches/hello_lambda.rs), run alternately so both see the same
//! machine load.
//!
//! ```sh
//! cargo build --release --bin scorer --example hello_lambda --example cold_start
//! target/release/examples/cold_start
//! ```
//!
//! `SCORER_BIN` and `HELLO_BIN` override the binaries (default: next to this
//! one, in the same target directory); `COLD_START_RUNS` sets the number of
//! runs of each (default 30). Extra `NAME=PATH[,VAR=VALUE...]` arguments
//! time more binaries the same way, with those environment variables
//! (another build of scorer, or `MODEL_PATH` naming an export without a
//! compiled form, which is parsed at start-up).

#[path = "../tests/integration/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn beside_me(relative: &str) -> String {
    // This example lives in <target>/<profile>/examples/.
    let me = std::env::current_exe().expect("the harness's own path");
    let profile_dir = me.parent().and_then(|d| d.parent()).map(PathBuf::from).unwrap_or_default();
    profile_dir.join(relative).display().to_string()
}

fn main() {
    let runs: usize = std::env::var("COLD_START_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let none = Vec::new;
    let mut bins = vec![
        (
            "hello-world".to_owned(),
            std::env::var("HELLO_BIN").unwrap_or_else(|_| beside_me("examples/hello_lambda")),
            none(),
        ),
        ("scorer".to_owned(), std::env::var("SCORER_BIN").unwrap_or_else(|_| beside_me("scorer")), none()),
    ];
    for arg in std::env::args().skip(1) {
        let (name, rest) = arg.split_once('=').expect("arguments are NAME=PATH[,VAR=VALUE...]");
        let mut parts = rest.split(',');
        let path = parts.next().unwrap_or_default().to_owned();
        let env =
            parts.map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).expect("VAR=VALUE")).collect();
        bins.push((name.to_owned(), path, env));
    }
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/function-url-predict.json")).unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut times = vec![Vec::with_capacity(runs); bins.len()];
    for _ in 0..runs {
        for ((_, bin, env), times) in bins.iter().zip(&mut times) {
            times.push(rt.block_on(first_response(bin, env, &event)));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let floor = {
        let t = &mut times[0];
        t.sort();
        t[runs / 2]
    };
    println!("cold start, exec -> first Function URL response, {runs} runs of each, alternating:");
    for ((name, bin, env), times) in bins.iter().zip(&mut times) {
        times.sort();
        println!(
            "  {name:<12} median {:>6.2} ms  min {:>6.2}  p90 {:>6.2}  max {:>6.2}  ({:.2}x the hello-world median)  {bin}",
            ms(times[runs / 2]),
            ms(times[0]),
            ms(times[runs * 9 / 10]),
            ms(times[runs - 1]),
            times[runs / 2].as_secs_f64() / floor.as_secs_f64()
        );
        for (k, v) in env {
            println!("  {:<12} with {k}={v}", "");
        }
    }
}

async fn first_response(bin: &str, env: &[(String, String)], event: &serde_json::Value) -> Duration {
    let api = runtime_api::RuntimeApi::start().await;
    let started = Instant::now();
    let mut child = Command::new(bin)
        .envs(api.lambda_env())
        .env("LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let answer = api.invoke_with_timeout(event, Duration::from_secs(10)).await.response();
    let elapsed = started.elapsed();
    assert_eq!(answer["statusCode"], 200, "{bin} answered {answer}");
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}
