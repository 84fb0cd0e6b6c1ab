//! Criterion benchmarks: the model alone (predict, explain), the JSON body parse, the whole
//! Function URL handler from event JSON to response JSON, and a challenger's cost.
//! Run: `cargo bench --bench scoring` (reports in target/criterion).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::core::observation::Observation;
use scorer::core::observation_json::parse_observation_json;
use scorer::core::scoring::{Scorer, Wants};
use scorer::handler::{App, Event};

const BODY: &str = r#"{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}"#;

/// What the Lambda runtime does per invocation, minus the HTTP hop:
/// event bytes -> envelope -> handler -> response bytes.
fn run_event(app: &App, rt: &tokio::runtime::Runtime, invocation: &Invocation, event: &str) -> Vec<u8> {
    let event: Event = serde_json::from_str(event).unwrap();
    let reply = rt.block_on(app.handle(event, invocation)).unwrap();
    serde_json::to_vec(&reply).unwrap()
}

fn model(c: &mut Criterion) {
    let model = Model::embedded().unwrap();
    let obs = Observation::from_values([0.1471, 25.38, 17.33, 2019.0, 0.2654]).unwrap();
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(1));
    g.bench_function("predict", |b| b.iter(|| model.predict(black_box(&obs))));
    g.bench_function("predict_exact_tree_walk", |b| b.iter(|| model.predict_exact(black_box(&obs))));
    g.bench_function("predict_with_bins", |b| b.iter(|| model.predict_with_bins(black_box(&obs))));
    // The explanation on its own (bins searched again), and what a handler pays
    // on top of predict_with_bins when it reuses the bins.
    g.bench_function("explain", |b| b.iter(|| model.explain(black_box(&obs))));
    g.bench_function("predict_and_explain_reusing_bins", |b| {
        b.iter(|| {
            let (p, bins) = model.predict_with_bins(black_box(&obs));
            (p, model.explain_with_bins(&obs, &bins))
        })
    });
    g.bench_function("explain_exact_tree_shap_every_tree", |b| b.iter(|| model.explain_exact(black_box(&obs))));
    g.bench_function("load_embedded", |b| b.iter(Model::embedded));
    g.finish();
}

fn function_url(c: &mut Criterion) {
    let app = App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap());
    let event =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/function-url-predict.json")).unwrap();
    let invocation = Invocation::local();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("function_url");
    g.throughput(Throughput::Elements(1));
    let model = Model::embedded().unwrap();
    let features = model.features();
    g.bench_function("parse_body", |b| b.iter(|| parse_observation_json(features, black_box(BODY.as_bytes()))));
    // Keys that miss the exact camelCase lookup go through the column-name rule.
    let pascal = BODY.replace("\"mean", "\"Mean").replace("\"worst", "\"Worst");
    g.bench_function("parse_body_pascal_case", |b| {
        b.iter(|| parse_observation_json(features, black_box(pascal.as_bytes())))
    });
    // What the Lambda runtime does per invocation, minus the HTTP hop:
    // event bytes -> handler -> response bytes.
    g.bench_function("handler_event_to_response", |b| b.iter(|| run_event(&app, &rt, &invocation, black_box(&event))));
    // The same request with ?explain=true: the extra cost of an explanation (target: at most 1 µs).
    let mut explained: serde_json::Value = serde_json::from_str(&event).unwrap();
    explained["rawQueryString"] = "explain=true".into();
    let explained = explained.to_string();
    g.bench_function("handler_event_to_response_explain", |b| {
        b.iter(|| run_event(&app, &rt, &invocation, black_box(&explained)))
    });
    g.finish();
}

/// 100,000 rows of five full-precision floats (~95 bytes a row), in memory.
fn synthetic_csv(rows: usize) -> Vec<u8> {
    let max = [0.2012, 36.04, 49.54, 4254.0, 0.291];
    let mut out = b"meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n".to_vec();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = ryu::Buffer::new();
    for _ in 0..rows {
        for (j, m) in max.iter().enumerate() {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let u = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(buf.format(u * m * 1.1).as_bytes());
        }
        out.push(b'\n');
    }
    out
}

fn batch(c: &mut Criterion) {
    let model = Model::embedded().unwrap();
    let rows = 100_000;
    let csv = synthetic_csv(rows);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(20);
    g.bench_function("score_csv_100k_rows_in_memory", |b| {
        b.iter(|| scorer::core::csv_pipeline::score_csv(&model, black_box(&csv[..]), std::io::sink(), |_| {}).unwrap())
    });
    g.finish();
}

/// An SQS batch of 10 single-observation messages: classification, parsing,
/// prediction and the results lines, everything but the S3 write.
fn sqs(c: &mut Criterion) {
    use scorer::adapters::sqs::{classify, result_line, Message};
    let model = Model::embedded().unwrap();
    let bodies: Vec<String> = (0..10).map(|i| BODY.replacen('{', &format!("{{\"id\":\"lab-{i}\","), 1)).collect();
    let mut g = c.benchmark_group("sqs");
    g.throughput(Throughput::Elements(10));
    g.bench_function("batch_of_10_messages_without_s3", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(4096);
            let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
            for (m, body) in bodies.iter().enumerate() {
                if let Message::Observations(items) = classify(model.features(), black_box(body)) {
                    for (i, item) in items.into_iter().enumerate() {
                        let line = result_line(&mut scorer, "00000000-0000-0000-0000-000000000000", m + i, item);
                        serde_json::to_writer(&mut out, &line).unwrap();
                        out.push(b'\n');
                    }
                }
            }
            out
        })
    });
    g.finish();
}

/// A Distributed Map batch of 1,000 CSV rows as items (strings, as the ItemReader sends them).
fn distributed_map(c: &mut Criterion) {
    let app = App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap());
    let csv = synthetic_csv(1000);
    let text = std::str::from_utf8(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let items: Vec<serde_json::Value> = lines
        .map(|l| {
            serde_json::Value::Object(header.iter().zip(l.split(',')).map(|(h, v)| (h.to_string(), v.into())).collect())
        })
        .collect();
    let event = serde_json::json!({"Items": items, "BatchInput": {"bucket": "b", "key": "k"}}).to_string();
    let invocation = Invocation::local();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("distributed_map");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(30);
    g.bench_function("batch_of_1000_items_event_to_response", |b| {
        b.iter(|| run_event(&app, &rt, &invocation, black_box(&event)))
    });
    g.finish();
}

/// The cost of a challenger in shadow (CHALLENGER_MODEL_PATH): one
/// observation through `Scorer::score` without one and with one (gbc-depth2,
/// 100 trees of depth 2 over the same five features; the shipped model
/// itself, 1500 stumps), the batch path's drift statistics on and off; what
/// building a scorer with one costs (its features matched by name: once per
/// HTTP request); and a 100k-row CSV in memory both ways.
/// Run: `cargo bench --bench scoring -- challenger`.
fn challenger(c: &mut Criterion) {
    let model = Model::embedded().unwrap();
    let depth2 = Model::from_json_bytes(
        &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/testdata/gbc-depth2.json")).unwrap(),
    )
    .unwrap();
    let obs = Observation::from_values([0.1471, 25.38, 17.33, 2019.0, 0.2654]).unwrap();
    let mut g = c.benchmark_group("challenger");
    g.throughput(Throughput::Elements(1));
    for (name, drift) in [("score", false), ("score_with_drift", true)] {
        let wants = Wants { explain: false, drift };
        let mut plain = Scorer::new(&model, wants).unwrap();
        g.bench_function(name, |b| b.iter(|| plain.score(black_box(&obs)).prediction));
        let mut shadowed = Scorer::new(&model, wants).unwrap().with_challenger(Some(&depth2));
        g.bench_function(format!("{name}_and_challenger_depth2"), |b| {
            b.iter(|| shadowed.score(black_box(&obs)).prediction)
        });
        let mut itself = Scorer::new(&model, wants).unwrap().with_challenger(Some(&model));
        g.bench_function(format!("{name}_and_challenger_itself"), |b| {
            b.iter(|| itself.score(black_box(&obs)).prediction)
        });
    }
    g.bench_function("new_scorer", |b| b.iter(|| Scorer::new(black_box(&model), Wants::default()).unwrap()));
    g.bench_function("new_scorer_with_challenger", |b| {
        b.iter(|| Scorer::new(black_box(&model), Wants::default()).unwrap().with_challenger(Some(black_box(&depth2))))
    });
    let rows = 100_000;
    let csv = synthetic_csv(rows);
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    let options = scorer::core::csv_pipeline::ScoreOptions::default();
    for (name, challenger) in
        [("score_csv_100k_rows", None), ("score_csv_100k_rows_and_challenger_depth2", Some(&depth2))]
    {
        g.bench_function(name, |b| {
            b.iter(|| {
                let input = black_box(&csv[..]);
                scorer::core::csv_pipeline::score_csv_shadowed(
                    &model,
                    challenger,
                    input,
                    std::io::sink(),
                    &options,
                    |_| {},
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

/// The Function URL handler again, with JSON logs and EMF metrics on (written
/// to a sink): the cost of telemetry. Registered last: metrics stay on.
fn telemetry(c: &mut Criterion) {
    let app = App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap());
    let pretty =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/function-url-predict.json")).unwrap();
    let event = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&pretty).unwrap()).unwrap();
    let invocation = Invocation::local();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    scorer::telemetry::enable_metrics(Box::new(std::io::sink()));
    let subscriber =
        tracing_subscriber::fmt().json().flatten_event(true).with_span_list(true).with_writer(std::io::sink).finish();
    let mut g = c.benchmark_group("telemetry");
    g.throughput(Throughput::Elements(1));
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("handler_event_to_response_with_logs_and_metrics", |b| {
            b.iter(|| run_event(&app, &rt, &invocation, black_box(&event)))
        });
    });
    g.finish();
}

criterion_group!(benches, model, function_url, batch, sqs, distributed_map, challenger, telemetry);
criterion_main!(benches);
