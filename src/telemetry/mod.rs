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
//!
//! Neither ever blocks the runtime's threads: a metrics record (and, on
//! Lambda and in the worker, a log line) is formatted by the task that makes
//! it, without a lock, and handed whole to one writer thread per stream
//! ([`LineWriter`]), which alone writes stdout (stderr). Handing a line over
//! does not wake that thread (it looks every 100 ms); [`flush`] wakes it and
//! waits until what was handed over is written: the Lambda loop calls it
//! before each answer, `main` before the process exits.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod metrics;

#[cfg(test)]
use metrics::{challenger_record, drift_records};
pub use metrics::{emit_challenger, emit_drift, Metrics, Unit};

/// The most verbose level any other crate may log at.
pub const DEPENDENCY_CEILING: LevelFilter = LevelFilter::WARN;

/// Sets up logging; `json` for Lambda and the worker, text otherwise.
pub fn init(json: bool) {
    let setting = std::env::var("LOG_LEVEL").or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL")).ok();
    let level = setting.as_deref().map_or(Some(LevelFilter::INFO), parse_level);
    let registry = tracing_subscriber::registry().with(log_filter(level.unwrap_or(LevelFilter::INFO)));
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    let result = if json {
        // Lambda and the worker log from async tasks: through the writer thread.
        let _ = LOGS.set(LineWriter::new("scorer-logs", Box::new(std::io::stderr())));
        let layer = layer.with_writer(|| LogLine).json();
        registry.with(layer.flatten_event(true).with_current_span(false).with_span_list(true)).try_init()
    } else {
        // Local commands on a terminal: written where they are made (a
        // progress bar shares the terminal; nothing is left to flush at exit).
        registry.with(layer.with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal())).try_init()
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

static METRICS: OnceLock<LineWriter> = OnceLock::new();
static LOGS: OnceLock<LineWriter> = OnceLock::new();

/// Turns metrics on, written to `out` (stdout on Lambda and in the worker)
/// by a thread of their own, started by the first record. The first call wins.
pub fn enable_metrics(out: Box<dyn Write + Send>) {
    let _ = METRICS.set(LineWriter::new("scorer-metrics", out));
}

/// Starts the metrics thread now rather than with the first record (the
/// Lambda loop, while it waits for its first event).
pub fn start_metrics_thread() {
    if let Some(writer) = METRICS.get() {
        writer.start();
    }
}

pub fn metrics_enabled() -> bool {
    METRICS.get().is_some()
}

/// Lines the writer threads have not taken yet: enough for thousands of
/// invocations' metrics, a few MB at most. A line that finds the queue full
/// (the output has stopped taking lines) is dropped and counted, never waited for.
const QUEUE_LINES: usize = 4096;

/// How long [`flush`] waits for the writer threads: an output that takes no
/// more lines must not hold an answer (or the process's exit) for ever.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// How long the writer thread sleeps when nobody asked it to write: lines
/// sent meanwhile wait at most this long (a flush, or a queue a quarter
/// full, wakes it at once). The Lambda loop flushes before every answer.
const IDLE_WAKE: Duration = Duration::from_millis(100);

/// Lines waiting that wake the writer thread before [`IDLE_WAKE`].
const WAKE_AT: usize = QUEUE_LINES / 4;

enum Message {
    Line(Vec<u8>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// One output written by one thread, fed whole lines through a bounded queue:
/// lines are never interleaved and the sender never waits for the output.
/// The thread starts with the first line (or flush), not when the writer is
/// made: a cold start that logs nothing starts no logs thread, and the
/// metrics thread starts after the first event has arrived.
///
/// Sending a line does not wake the thread: a wake is a system call (a futex
/// wake, and a context switch on the other core), which cost more than
/// formatting the line on the Function URL path (measured, docs/testing.md).
/// The thread writes what is waiting every [`IDLE_WAKE`], and at once when a
/// [`LineWriter::flush`] asks or [`WAKE_AT`] lines wait.
///
/// Hand-written rather than `tracing-appender`'s non-blocking writer, which
/// does the same for logs: it cannot tell a caller when what was sent is
/// written (only dropping its guard, which ends the thread, flushes), and the
/// Lambda loop must know that before it answers, or a function frozen (or a
/// test's process killed) after the answer loses the invocation's metrics.
struct LineWriter {
    name: &'static str,
    queue: std::sync::mpsc::SyncSender<Message>,
    /// Lines sent and not yet taken by the thread.
    waiting: Arc<AtomicUsize>,
    dropped: AtomicU64,
    /// The thread's end of the queue and the output, until the thread takes them.
    idle: std::sync::Mutex<Option<Idle>>,
    /// Set by the first line or flush: the running thread, to wake (`None`
    /// if it could not be started).
    running: OnceLock<Option<std::thread::Thread>>,
}

/// A writer's thread end of the queue and output, before its thread starts.
type Idle = (std::sync::mpsc::Receiver<Message>, Box<dyn Write + Send>);

impl LineWriter {
    fn new(name: &'static str, out: Box<dyn Write + Send>) -> LineWriter {
        let (queue, lines) = std::sync::mpsc::sync_channel::<Message>(QUEUE_LINES);
        LineWriter {
            name,
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            dropped: AtomicU64::new(0),
            idle: std::sync::Mutex::new(Some((lines, out))),
            running: OnceLock::new(),
        }
    }

    /// Starts the thread if it has not been; `None` if it cannot be (metrics
    /// are then dropped and counted, logs written directly).
    fn start(&self) -> Option<&std::thread::Thread> {
        self.running
            .get_or_init(|| {
                let idle = self.idle.lock().map(|mut idle| idle.take()).unwrap_or(None);
                idle.and_then(|(lines, out)| Self::spawn(self.name, lines, out, Arc::clone(&self.waiting)))
            })
            .as_ref()
    }

    fn spawn(
        name: &str,
        lines: std::sync::mpsc::Receiver<Message>,
        mut out: Box<dyn Write + Send>,
        taken: Arc<AtomicUsize>,
    ) -> Option<std::thread::Thread> {
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut unflushed = false;
                // Ends when the sender is gone (never for the process-wide writers).
                loop {
                    match lines.try_recv() {
                        Ok(Message::Line(line)) => {
                            taken.fetch_sub(1, Ordering::Relaxed);
                            let _ = out.write_all(&line);
                            unflushed = true;
                        }
                        Ok(Message::Flush(done)) => {
                            let _ = out.flush();
                            unflushed = false;
                            let _ = done.send(());
                        }
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            if unflushed {
                                let _ = out.flush();
                                unflushed = false;
                            }
                            std::thread::park_timeout(IDLE_WAKE);
                        }
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                    }
                }
            })
            .ok()?;
        Some(thread.thread().clone())
    }

    /// Hands over one whole line; never waits, and wakes the writer thread
    /// only when many lines wait. The line back if no thread can write it.
    fn send(&self, line: Vec<u8>) -> Result<(), Vec<u8>> {
        let Some(thread) = self.start() else { return Err(line) };
        if self.queue.try_send(Message::Line(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else if self.waiting.fetch_add(1, Ordering::Relaxed) + 1 >= WAKE_AT {
            thread.unpark();
        }
        Ok(())
    }

    /// Waits until every line sent before this call is written (and flushed).
    async fn flush(&self) {
        let Some(Some(thread)) = self.running.get() else { return };
        let (done, written) = tokio::sync::oneshot::channel();
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    // A full queue: the thread is writing (or its output
                    // takes nothing, and the caller's timeout ends the wait).
                    message = back;
                    thread.unpark();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
            }
        }
        thread.unpark();
        let _ = written.await;
    }

    /// Whether a line has started the thread (nothing to flush otherwise).
    fn is_running(&self) -> bool {
        matches!(self.running.get(), Some(Some(_)))
    }
}

/// Lines dropped because an output stopped taking them (metrics, logs).
pub fn dropped_lines() -> (u64, u64) {
    let dropped = |w: &OnceLock<LineWriter>| w.get().map_or(0, |w| w.dropped.load(Ordering::Relaxed));
    (dropped(&METRICS), dropped(&LOGS))
}

/// Waits (at most [`FLUSH_WAIT`]) until the metrics and logs emitted so far
/// are written. Never blocks the thread: the wait is a future.
pub async fn flush() {
    let writers = [&METRICS, &LOGS].map(OnceLock::get);
    let all = async {
        for writer in writers.into_iter().flatten() {
            writer.flush().await;
        }
    };
    let _ = tokio::time::timeout(FLUSH_WAIT, all).await;
}

/// [`flush`] for the end of `main`, outside any runtime.
pub fn flush_before_exit() {
    if ![&METRICS, &LOGS].iter().any(|w| w.get().is_some_and(LineWriter::is_running)) {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_time().build() {
        runtime.block_on(flush());
    }
}

/// The tracing writer of one log line (the fmt layer writes each event with
/// one `write_all`): handed to the logs thread, or written directly if it
/// could not be started.
struct LogLine;

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match LOGS.get().map(|writer| writer.send(bytes.to_vec())) {
            Some(Ok(())) => {}
            Some(Err(_)) | None => std::io::stderr().write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
    fn a_record_also_by_a_dimension_is_published_with_and_without_it() {
        let dims = |m: &Metrics| {
            let mut out = Vec::new();
            m.write_json(&mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            (v["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone(), v["Route"].clone())
        };
        let mut m = Metrics::with_enabled("function_url", true);
        m.also_by("Route", "oip").count("Predictions", 569);
        let (sets, route) = dims(&m);
        assert_eq!(sets, serde_json::json!([["Service", "EntryPoint"], ["Service", "EntryPoint", "Route"]]));
        assert_eq!(route, "oip");
        let mut m = Metrics::with_enabled("s3", true);
        m.dimension("Feature", "worstArea").count("DriftPSI", 1);
        assert_eq!(dims(&m).0, serde_json::json!([["Service", "EntryPoint", "Feature"]]));
        let m = Metrics::with_enabled("s3", true);
        assert_eq!(dims(&m).0, serde_json::json!([["Service", "EntryPoint"]]));
    }

    /// The record written by hand is the document serde_json writes, byte
    /// for byte: every dimension shape, every unit, numbers serde_json
    /// writes in its own way (integers as floats, -0, non-finite as null),
    /// names and values that need escaping.
    #[test]
    fn the_emf_record_is_byte_for_byte_what_serde_json_writes() {
        use serde_json::json;
        let mut plain = Metrics::with_enabled("function_url", true);
        plain.count("Predictions", 1).count("OutOfRangeInputs", 0).millis("HandlerDuration", 0.003);
        let mut by = Metrics::with_enabled("s3", true);
        by.dimension("Feature", "worst \"area\"\n\u{1}é")
            .value("DriftPSI", f64::NAN)
            .value("Share", -0.0)
            .value("Back\\slash", 1.0);
        let mut rollup = Metrics::with_enabled("function_url", true);
        rollup
            .also_by("Route", "oip")
            .count("Rejected_not_json", u64::MAX)
            .value("Big", 1e300)
            .value("Small", 1.5e-9)
            .millis("Inf", f64::INFINITY);
        let empty = Metrics::with_enabled("sqs", true);
        for (m, sets) in [
            (&plain, json!([["Service", "EntryPoint"]])),
            (&by, json!([["Service", "EntryPoint", "Feature"]])),
            (&rollup, json!([["Service", "EntryPoint"], ["Service", "EntryPoint", "Route"]])),
            (&empty, json!([["Service", "EntryPoint"]])),
        ] {
            let mut out = Vec::new();
            m.write_json(&mut out);
            let text = String::from_utf8(out).unwrap();
            let read: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let definitions: Vec<serde_json::Value> =
                m.values.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()})).collect();
            let mut expected = json!({
                "_aws": {
                    "Timestamp": read["_aws"]["Timestamp"].as_u64().unwrap(),
                    "CloudWatchMetrics": [{"Namespace": "Scorer", "Dimensions": sets, "Metrics": definitions}]
                },
                "Service": "scorer",
                "EntryPoint": m.entry_point,
            });
            let map = expected.as_object_mut().unwrap();
            if let Some((name, value)) = &m.extra {
                map.insert((*name).to_owned(), json!(value));
            }
            for (name, _, value) in &m.values {
                map.insert(name.to_string(), json!(value));
            }
            assert_eq!(text, serde_json::to_string(&expected).unwrap());
        }
    }

    /// A writer starts its thread with its first line, not before (a cold
    /// start that logs nothing starts none), and that line arrives.
    #[test]
    fn a_writer_thread_starts_with_the_first_line() {
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let open = std::sync::Arc::new((std::sync::Mutex::new(true), std::sync::Condvar::new()));
        let writer = LineWriter::new("scorer-test", Box::new(Gated { open, kept: std::sync::Arc::clone(&kept) }));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(writer.flush());
        assert!(!writer.is_running(), "made or flushed with nothing sent, the writer started a thread");
        assert!(writer.idle.lock().unwrap().is_some());
        writer.send(b"one line\n".to_vec()).expect("a thread can start");
        assert!(writer.is_running());
        runtime.block_on(writer.flush());
        assert_eq!(kept.lock().unwrap().as_slice(), b"one line\n");
    }

    /// An output whose bytes a test can read while the writer thread writes.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Sending does not wake the writer thread, but nothing waits for ever:
    /// the worker, which does not flush after each message, sees its lines
    /// written within the idle wake, and a flush writes them at once.
    #[test]
    fn a_line_sent_without_a_flush_is_written_soon_and_a_flush_writes_it_at_once() {
        let out = Shared::default();
        let writer = LineWriter::new("test-lines", Box::new(out.clone()));
        let sent = std::time::Instant::now();
        writer.send(b"one\n".to_vec()).unwrap();
        while out.0.lock().unwrap().is_empty() {
            assert!(sent.elapsed() < IDLE_WAKE * 20, "a line waited far longer than the idle wake");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(writer.waiting.load(Ordering::Relaxed), 0);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        // Right after the thread went back to sleep: the flush must wake it.
        std::thread::sleep(Duration::from_millis(1));
        let flushed = std::time::Instant::now();
        writer.send(b"two\n".to_vec()).unwrap();
        runtime.block_on(writer.flush());
        assert_eq!(&out.0.lock().unwrap()[..], b"one\ntwo\n");
        // Without a wake it would wait about the whole idle wake.
        assert!(flushed.elapsed() < IDLE_WAKE / 2, "the flush waited for the idle wake");
    }

    #[test]
    fn emf_records_name_their_metrics_and_dimensions() {
        let mut m = Metrics::with_enabled("sqs", true);
        m.count("Predictions", 3).millis("Duration", 1.5);
        let mut out = Vec::new();
        m.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["EntryPoint"], "sqs");
        assert_eq!(v["Predictions"], 3.0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"], "Milliseconds");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1], "EntryPoint");
    }

    /// An output that takes nothing until its gate opens (a full pipe, a
    /// stalled log agent), then keeps what it is given.
    struct Gated {
        open: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
        kept: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.open;
            let _unused = cv.wait_while(open.lock().unwrap(), |open| !*open).unwrap();
            self.kept.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Opens the gate however the test ends, so a failure cannot hang the others.
    struct OpenOnDrop(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);
    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.0 .1.notify_all();
        }
    }

    /// The only test that turns the process-wide metrics on (other tests
    /// emitting meanwhile only add lines of other entry points).
    #[test]
    fn emitting_never_waits_for_the_output_and_every_line_arrives_whole() {
        const TASKS: usize = 8;
        const EACH: usize = 50;
        let open = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let gate = OpenOnDrop(std::sync::Arc::clone(&open));
        enable_metrics(Box::new(Gated { open, kept: std::sync::Arc::clone(&kept) }));
        assert!(metrics_enabled());

        // Many tasks emit while the output takes nothing: they must all finish.
        let (finished, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
            runtime.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|task| {
                        tokio::spawn(async move {
                            for i in 0..EACH {
                                let mut m = Metrics::new("telemetry_test");
                                m.count("Task", task as u64).count("Line", i as u64).millis("Padding", 0.5);
                                m.emit();
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
            let _ = finished.send(());
        });
        assert!(
            done.recv_timeout(Duration::from_secs(10)).is_ok(),
            "emitting tasks waited for an output that takes nothing"
        );

        drop(gate);
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(flush());
        let kept = kept.lock().unwrap();
        let text = std::str::from_utf8(&kept).expect("whole lines: never a record cut in two");
        assert!(text.ends_with('\n'));
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if v["EntryPoint"] == "telemetry_test" {
                assert!(seen.insert((v["Task"].as_f64().unwrap() as u64, v["Line"].as_f64().unwrap() as u64)));
            }
        }
        assert_eq!(dropped_lines().0, 0);
        assert_eq!(seen.len(), TASKS * EACH, "every record written once, by the time flush returns");
    }

    fn json_of(m: &Metrics) -> serde_json::Value {
        let mut out = Vec::new();
        m.write_json(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn the_challenger_record_is_one_per_file_with_counts_and_values_and_no_value_without_rows() {
        use crate::core::challenger::ChallengerReport;
        let report = ChallengerReport {
            model_version: "x".into(),
            rows: 10,
            not_comparable: 2,
            label_agreement: Some(0.9),
            mean_abs_delta: Some(0.01),
            max_abs_delta: Some(0.2),
            predicted_malignant_share: Some(0.3),
        };
        let v = json_of(&challenger_record("s3", &report, true));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Service", "EntryPoint"]]));
        let units: Vec<(&str, &str)> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert_eq!(
            units,
            [
                ("ChallengerRows", "Count"),
                ("ChallengerNotComparable", "Count"),
                ("ChallengerLabelAgreement", "None"),
                ("ChallengerMeanAbsDelta", "None"),
                ("ChallengerMaxAbsDelta", "None"),
                ("ChallengerPredictedMalignantShare", "None"),
            ]
        );
        assert_eq!((v["ChallengerRows"].as_f64(), v["ChallengerMaxAbsDelta"].as_f64()), (Some(10.0), Some(0.2)));
        assert!(v.get("modelVersion").is_none() && !v.to_string().contains("\"x\""), "no version as a value: {v}");
        let none = ChallengerReport {
            rows: 0,
            label_agreement: None,
            mean_abs_delta: None,
            max_abs_delta: None,
            predicted_malignant_share: None,
            ..report
        };
        let v = json_of(&challenger_record("sqs", &none, true));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["ChallengerNotComparable"], 2.0);
    }

    #[test]
    fn drift_metrics_are_one_record_per_feature_with_a_feature_dimension() {
        use crate::core::drift::{DriftOptions, DriftStats};
        use crate::core::model::Model;
        use crate::core::observation::Observation;
        let model = Model::embedded().unwrap();
        let mut stats = DriftStats::new(&model);
        let obs = Observation::from_values([0.5, 60.0, 80.0, 9000.0, 0.9]).unwrap();
        for _ in 0..400 {
            let (p, bins) = model.predict_with_bins(&obs);
            stats.record(&obs, &p, &bins);
        }
        let report = stats.report(&model, &DriftOptions::default());
        let records = drift_records("s3", &report.metric_values(), true);
        assert_eq!(records.len(), 1 + model.features().len());
        let file = json_of(&records[0]);
        assert_eq!(file["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Service", "EntryPoint"]]));
        assert_eq!(file["DriftAlert"], 1.0);
        assert_eq!(file["PredictedMalignantShare"], report.predicted_malignant_share.unwrap());
        assert_eq!(file["OutOfRangeShare"], 1.0);
        assert_eq!(file["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"], "None");
        for (record, feature) in records[1..].iter().zip(&report.features) {
            let v = json_of(record);
            assert_eq!(
                v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                serde_json::json!([["Service", "EntryPoint", "Feature"]])
            );
            assert_eq!(v["Feature"], feature.name);
            assert_eq!(v["EntryPoint"], "s3");
            assert_eq!(v["DriftPSI"], feature.psi.unwrap());
            assert_eq!(v["OutOfRangeShare"], 1.0);
            let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["DriftPSI", "OutOfRangeShare"]);
        }

        // A small batch: shares only, no PSI and no alert to average into noise.
        let mut few = DriftStats::new(&model);
        let (p, bins) = model.predict_with_bins(&obs);
        few.record(&obs, &p, &bins);
        let records = drift_records("sqs", &few.report(&model, &DriftOptions::default()).metric_values(), true);
        let all: Vec<serde_json::Value> = records.iter().map(json_of).collect();
        assert!(all.iter().all(|v| v.get("DriftPSI").is_none() && v.get("DriftAlert").is_none()));
        assert_eq!(all[0]["PredictedMalignantShare"], 1.0);
        // Nothing scored: nothing to emit.
        let empty = DriftStats::new(&model).report(&model, &DriftOptions::default());
        assert!(drift_records("sqs", &empty.metric_values(), true).is_empty());
        // Metrics off: nothing is built.
        assert!(drift_records("s3", &report.metric_values(), false).is_empty());
    }
}
