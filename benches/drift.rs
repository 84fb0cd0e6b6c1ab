//! Criterion: what drift statistics cost. The per-row figure is
//! `drift/record_4096_rows` divided by 4096 (criterion prints it as elements/s);
//! `predict_with_bins` over the same rows is beside it for scale.
//! Run: `cargo bench --bench drift`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scorer::core::drift::{html, DriftOptions, DriftStats};
use scorer::core::model::{Bins, Model, Prediction};
use scorer::core::observation::Observation;

const ROWS: usize = 4096;

/// Random observations up to 1.1x the training maxima, like the batch bench's file.
fn observations() -> Vec<Observation> {
    let max = [0.2012, 36.04, 49.54, 4254.0, 0.291];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..ROWS)
        .map(|_| {
            let values: [f64; 5] = std::array::from_fn(|j| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let u = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
                u * max[j] * 1.1
            });
            Observation::from_values(values).unwrap()
        })
        .collect()
}

fn drift(c: &mut Criterion) {
    let model = Model::embedded().unwrap();
    let obs = observations();
    let scored: Vec<(Observation, Prediction, Bins)> = obs
        .iter()
        .map(|o| {
            let (p, b) = model.predict_with_bins(o);
            (*o, p, b)
        })
        .collect();
    let mut g = c.benchmark_group("drift");
    g.throughput(Throughput::Elements(ROWS as u64));
    // The accumulator alone: what the pipeline adds per scored row.
    g.bench_function("record_4096_rows", |b| {
        let mut stats = DriftStats::new(&model);
        b.iter(|| {
            for (o, p, bins) in black_box(&scored) {
                stats.record(o, p, bins);
            }
        });
        black_box(stats.scored());
    });
    g.bench_function("record_rejected_4096_rows", |b| {
        let mut stats = DriftStats::new(&model);
        let codes = ["missing", "negative", "not_a_number", "wrong_field_count"];
        b.iter(|| {
            for i in 0..ROWS {
                stats.record_rejected(black_box(codes[i & 3]));
            }
        });
        black_box(stats.rejected());
    });
    // For scale: the prediction the pipeline already makes, without and with the statistics.
    g.bench_function("predict_with_bins_4096_rows", |b| {
        b.iter(|| {
            let mut malignant = 0u32;
            for o in black_box(&obs) {
                malignant += u32::from(model.predict_with_bins(o).0.label);
            }
            malignant
        })
    });
    g.bench_function("predict_with_bins_and_record_4096_rows", |b| {
        let mut stats = DriftStats::new(&model);
        b.iter(|| {
            for o in black_box(&obs) {
                let (p, bins) = model.predict_with_bins(o);
                stats.record(o, &p, &bins);
            }
        });
        black_box(stats.scored());
    });
    g.finish();

    // Once per file or batch.
    let mut stats = DriftStats::new(&model);
    for (o, p, bins) in &scored {
        stats.record(o, p, bins);
    }
    let report = stats.report(&model, &DriftOptions::default());
    let mut g = c.benchmark_group("drift_per_file");
    g.bench_function("new", |b| b.iter(|| DriftStats::new(black_box(&model))));
    g.bench_function("merge", |b| {
        let mut total = DriftStats::new(&model);
        b.iter(|| total.merge(black_box(&stats)))
    });
    g.bench_function("report", |b| b.iter(|| stats.report(black_box(&model), &DriftOptions::default())));
    g.bench_function("report_json", |b| b.iter(|| serde_json::to_vec(black_box(&report)).unwrap()));
    g.bench_function("html", |b| b.iter(|| html::render(black_box(&report), &html::PageContext::default())));
    g.finish();
}

criterion_group!(benches, drift);
criterion_main!(benches);
