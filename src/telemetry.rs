//! Logs and metrics, without patient data.
//!
//! * Logs: tracing, one JSON object per line on Lambda and in the worker
//!   (timestamp, level, message, request id, cold start, entry point, counts,
//!   durations), human-readable text on a terminal. Level from `LOG_LEVEL` or
//!   `AWS_LAMBDA_LOG_LEVEL` (default info); it applies to this crate only.
//!   Dependencies log at warn at most, whatever the level: at debug and trace
//!   they print what we must never log (lambda_runtime the raw event, the AWS
//!   SDK every request and response body, so queue messages and results).
//! * Metrics: CloudWatch Embedded Metric Format, one line per invocation (or
//!   per file) on stdout, which Lambda ships to CloudWatch; no SDK call, never
//!   per row. Off for the local `invoke`, `serve` and `score` commands.
//!
//! Never logged: feature values, observation or sample ids, request bodies,
//! CSV content, or error text that could echo input.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::ser::{SerializeMap, Serializer as _};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The most verbose level any other crate may log at.
pub const DEPENDENCY_CEILING: LevelFilter = LevelFilter::WARN;

/// Sets up logging; `json` for Lambda and the worker, text otherwise.
pub fn init(json: bool) {
    let setting = std::env::var("LOG_LEVEL").or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL")).ok();
    let level = setting.as_deref().map_or(Some(LevelFilter::INFO), parse_level);
    let registry = tracing_subscriber::registry().with(log_filter(level.unwrap_or(LevelFilter::INFO)));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let result = if json {
        registry.with(layer.json().flatten_event(true).with_current_span(false).with_span_list(true)).try_init()
    } else {
        registry.with(layer.with_ansi(std::io::stderr().is_terminal())).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    if result.is_ok() && level.is_none() {
        tracing::warn!("LOG_LEVEL is not one of trace, debug, info, warn, error, off: logging at info");
    }
}

/// A level name as `LOG_LEVEL` (the template: `error` … `trace`) or Lambda's
/// `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `FATAL`) spell it. Filter directives are
/// not accepted: they could turn a dependency's logs back on.
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "fatal" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        _ => return None,
    })
}

/// This crate logs at `level`; every other crate at `level` or
/// [`DEPENDENCY_CEILING`], whichever is less verbose.
pub fn log_filter(level: LevelFilter) -> Targets {
    Targets::new().with_default(level.min(DEPENDENCY_CEILING)).with_target(env!("CARGO_CRATE_NAME"), level)
}

static COLD: AtomicBool = AtomicBool::new(true);

/// True for the first invocation of this process only.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

type Sink = Mutex<Box<dyn Write + Send>>;
static METRICS: OnceLock<Sink> = OnceLock::new();

/// Turns metrics on, written to `out` (stdout on Lambda and in the worker).
pub fn enable_metrics(out: Box<dyn Write + Send>) {
    let _ = METRICS.set(Mutex::new(out));
}

pub fn metrics_enabled() -> bool {
    METRICS.get().is_some()
}

#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF record: a few named values under the dimensions Service and EntryPoint.
/// When metrics are off (local commands) it does nothing and allocates nothing.
#[derive(Debug)]
pub struct Metrics {
    entry_point: &'static str,
    enabled: bool,
    values: Vec<(Cow<'static, str>, Unit, f64)>,
}

impl Metrics {
    pub fn new(entry_point: &'static str) -> Self {
        Metrics { entry_point, enabled: metrics_enabled(), values: Vec::new() }
    }

    pub fn count(&mut self, name: impl Into<Cow<'static, str>>, value: u64) -> &mut Self {
        if self.enabled {
            self.values.push((name.into(), Unit::Count, value as f64));
        }
        self
    }

    pub fn millis(&mut self, name: impl Into<Cow<'static, str>>, value: f64) -> &mut Self {
        if self.enabled {
            self.values.push((name.into(), Unit::Milliseconds, value));
        }
        self
    }

    /// Writes the record if metrics are on; a failed write is not an error of the request.
    pub fn emit(&self) {
        let Some(sink) = METRICS.get() else { return };
        let mut line = Vec::with_capacity(512);
        if self.write_json(&mut line).is_err() {
            return;
        }
        line.push(b'\n');
        if let Ok(mut out) = sink.lock() {
            let _ = out.write_all(&line).and_then(|()| out.flush());
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        struct Definitions<'a>(&'a [(Cow<'static, str>, Unit, f64)]);
        impl serde::Serialize for Definitions<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (name, unit, _) in self.0 {
                    seq.serialize_element(&Definition { name, unit: unit.as_str() })?;
                }
                seq.end()
            }
        }
        #[derive(serde::Serialize)]
        struct Definition<'a> {
            #[serde(rename = "Name")]
            name: &'a str,
            #[serde(rename = "Unit")]
            unit: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Directive<'a> {
            #[serde(rename = "Namespace")]
            namespace: &'static str,
            #[serde(rename = "Dimensions")]
            dimensions: [[&'static str; 2]; 1],
            #[serde(rename = "Metrics")]
            metrics: Definitions<'a>,
        }
        #[derive(serde::Serialize)]
        struct Aws<'a> {
            #[serde(rename = "Timestamp")]
            timestamp: u64,
            #[serde(rename = "CloudWatchMetrics")]
            metrics: [Directive<'a>; 1],
        }
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let aws = Aws {
            timestamp,
            metrics: [Directive {
                namespace: "Scorer",
                dimensions: [["Service", "EntryPoint"]],
                metrics: Definitions(&self.values),
            }],
        };
        let mut ser = serde_json::Serializer::new(out);
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("_aws", &aws)?;
        map.serialize_entry("Service", "scorer")?;
        map.serialize_entry("EntryPoint", self.entry_point)?;
        for (name, _, value) in &self.values {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn dependencies_never_log_below_warn_whatever_the_level() {
        for name in ["trace", "TRACE", "debug", "info", "warn", "error", "FATAL", "off"] {
            let level = parse_level(name).unwrap();
            let filter = log_filter(level);
            for dependency in ["lambda_runtime::layers::api_response", "aws_smithy_runtime::client", "hyper", "log"] {
                for verbose in [Level::TRACE, Level::DEBUG, Level::INFO] {
                    assert!(!filter.would_enable(dependency, &verbose), "{dependency} at {verbose} under {name}");
                }
                assert_eq!(filter.would_enable(dependency, &Level::WARN), level >= LevelFilter::WARN, "{name}");
                assert_eq!(filter.would_enable(dependency, &Level::ERROR), level >= LevelFilter::ERROR, "{name}");
            }
            for ours in [Level::TRACE, Level::DEBUG, Level::INFO, Level::WARN, Level::ERROR] {
                assert_eq!(filter.would_enable("scorer::adapters::sqs", &ours), level >= ours, "{ours} under {name}");
            }
        }
    }

    #[test]
    fn filter_directives_are_not_levels() {
        for setting in ["aws_smithy_runtime=trace", "info,lambda_runtime=trace", "verbose", ""] {
            assert_eq!(parse_level(setting), None, "{setting}");
        }
    }

    #[test]
    fn emf_records_name_their_metrics_and_dimensions() {
        let mut m = Metrics { entry_point: "sqs", enabled: true, values: Vec::new() };
        m.count("Predictions", 3).millis("Duration", 1.5);
        let mut out = Vec::new();
        m.write_json(&mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["EntryPoint"], "sqs");
        assert_eq!(v["Predictions"], 3.0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"], "Milliseconds");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1], "EntryPoint");
    }
}
