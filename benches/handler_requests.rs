//! N Function URL requests through the handler, event JSON to response JSON,
//! for an instruction count that the machine's load does not change:
//!
//! ```text
//! cargo build --profile bench --example handler_requests
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/handler_requests MODE N
//! ```
//!
//! MODE is `bare`, `telemetry` (JSON logs at info and EMF metrics on, both
//! to a sink) or `explain` (`?explain=true`, telemetry on). Run it with N and
//! with 0: the difference of the two totals over N is the instructions of one
//! request (docs/testing.md). The criterion benches (benches/scoring.rs) give
//! the time of the same three cases.

use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::handler::{App, Event};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "bare".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let pretty =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/function-url-predict.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    let telemetry = match mode.as_str() {
        "bare" => false,
        "telemetry" => true,
        "explain" => {
            event["rawQueryString"] = "explain=true".into();
            true
        }
        other => panic!("unknown mode {other}: bare, telemetry or explain"),
    };
    let event = event.to_string();
    let app = App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap());
    let invocation = Invocation::local();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let run = || {
        let mut bytes = 0;
        for _ in 0..n {
            let parsed: Event = serde_json::from_str(std::hint::black_box(&event)).unwrap();
            let reply = rt.block_on(app.handle(parsed, &invocation)).unwrap();
            bytes += serde_json::to_vec(&reply).unwrap().len();
        }
        rt.block_on(scorer::telemetry::flush());
        bytes
    };
    let bytes = if telemetry {
        scorer::telemetry::enable_metrics(Box::new(std::io::sink()));
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_span_list(true)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, run)
    } else {
        run()
    };
    println!("{mode}: {n} requests, {bytes} response bytes");
}
