//! Where a cold start's time goes, phase by phase (not a test, not a
//! benchmark harness: one process, first call of each phase, as a cold start
//! pays it; each model load is timed cold, then warm).
//! `cargo run --release --example startup_phases`

use std::time::Instant;

use scorer::core::model::{Model, EMBEDDED_MODEL};

fn time<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    eprintln!("{label:<44} {:>8.3} ms", started.elapsed().as_secs_f64() * 1e3);
    out
}

fn main() {
    let all = Instant::now();
    time("sha256 of the embedded export", || {
        use sha2::Digest;
        sha2::Sha256::digest(EMBEDDED_MODEL)
    });
    time("serde_json::Value of the embedded export", || {
        serde_json::from_slice::<serde_json::Value>(EMBEDDED_MODEL).unwrap()
    });
    time("Model::from_json_bytes (parse + check + compile)", || Model::from_json_bytes(EMBEDDED_MODEL).unwrap());
    time("Model::from_json_bytes again (warm)", || Model::from_json_bytes(EMBEDDED_MODEL).unwrap());
    let model = time("Model::embedded() (the compiled form)", || Model::embedded().unwrap());
    time("Model::embedded() again (warm)", || Model::embedded().unwrap());
    time("telemetry::init(json)", || scorer::telemetry::init(true));
    time("tokio current-thread runtime", || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    });
    time("BatchConfig::from_env", || scorer::config::BatchConfig::from_env().unwrap());
    time("App::new", || scorer::handler::App::new(model, scorer::config::BatchConfig::from_env().unwrap()));
    eprintln!("{:<44} {:>8.3} ms", "total", all.elapsed().as_secs_f64() * 1e3);
}
