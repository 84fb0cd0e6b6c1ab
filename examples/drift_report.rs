//! The drift report of a CSV file, with columns shifted at will (`scorer score
//! --report/--html` gives the same report of the file as it is): reads the
//! file like the batch pipeline (columns by name, cells as text), feeds
//! `DriftStats`, writes the JSON report and the HTML page.
//! (The screenshots in docs/drift.md are of `scorer score --html` pages: docs/drift_screenshot.sh.)
//!
//!   cargo run --example drift_report -- samples/wdbc.csv --json r.json --html r.html
//!   cargo run --example drift_report -- samples/wdbc.csv --scale worstArea=1.35 --add worstTexture=6 --html s.html
//!   cargo run --release --example drift_report -- samples/wdbc.csv --noise
//!
//! `--noise` prints how often rows drawn at random from the file itself (no
//! drift at all) would raise the alert, by sample size: the evidence for
//! `DEFAULT_MIN_ROWS_FOR_ALERT`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use scorer::core::columns::feature_by_name;
use scorer::core::drift::{html, DriftOptions, DriftStats};
use scorer::core::features::Features;
use scorer::core::model::Model;
use scorer::core::observation::{FieldInput, Observation, PerFeatureInputs};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let input = PathBuf::from(args.next().context("usage: drift_report IN.csv [options]")?);
    let (mut json, mut page, mut source, mut noise) = (None, None, None, false);
    let model = scorer::model_file::load_model()?;
    let n = model.features().len();
    let mut scale = vec![1.0; n];
    let mut add = vec![0.0; n];
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--json" => json = Some(PathBuf::from(value()?)),
            "--html" => page = Some(PathBuf::from(value()?)),
            "--source" => source = Some(value()?),
            "--scale" | "--add" => {
                let v = value()?;
                let (name, number) = v.split_once('=').context("expected NAME=NUMBER")?;
                let f = model.features().by_api_name(name).with_context(|| format!("no feature {name}"))?;
                let number: f64 = number.parse()?;
                if arg == "--scale" {
                    scale[f] = number;
                } else {
                    add[f] = number;
                }
            }
            "--noise" => noise = true,
            other => bail!("unknown option {other}"),
        }
    }

    let rows = read_rows(model.features(), &input)?;
    let rows: Vec<Result<Observation, &'static str>> = rows
        .into_iter()
        .map(|r| {
            r.map(|o| {
                let v = o.values();
                let shifted: Vec<f64> = (0..n).map(|f| v[f] * scale[f] + add[f]).collect();
                Observation::from_values(shifted).expect("a shifted valid value stays valid")
            })
        })
        .collect();
    if noise {
        let scored: Vec<Observation> = rows.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        print_noise(&model, &scored);
        return Ok(());
    }

    let mut stats = DriftStats::new(&model);
    for row in &rows {
        match row {
            Ok(o) => {
                let (p, bins) = model.predict_with_bins(o);
                stats.record(o, &p, &bins);
            }
            Err(code) => stats.record_rejected(code),
        }
    }
    let report = stats.report(&model, &DriftOptions::default());
    for f in &report.features {
        eprintln!("{:20} PSI {:.6}", f.name, f.psi.unwrap_or(f64::NAN));
    }
    eprintln!("alert: {} {:?}", report.alert, report.alert_features);
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    if let Some(path) = page {
        let source = source.unwrap_or_else(|| input.file_name().unwrap_or_default().to_string_lossy().into_owned());
        let context = html::PageContext { source: Some(&source), model_version: Some(&model.info().version) };
        std::fs::write(&path, html::render(&report, &context))?;
    }
    Ok(())
}

/// Every data row: an observation, or the code of its first problem.
fn read_rows(features: &Features, path: &PathBuf) -> anyhow::Result<Vec<Result<Observation, &'static str>>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
    let header = reader.byte_headers()?.clone();
    let mut columns = vec![usize::MAX; features.len()];
    for (i, name) in header.iter().enumerate() {
        if let Some(f) = std::str::from_utf8(name).ok().and_then(|n| feature_by_name(features, n)) {
            columns[f] = i;
        }
    }
    if columns.contains(&usize::MAX) {
        bail!("the header lacks a feature column");
    }
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = record?;
        let inputs: PerFeatureInputs = columns
            .iter()
            .map(|&c| match record.get(c) {
                None | Some(b"") => FieldInput::Missing,
                Some(b) => FieldInput::Text(std::str::from_utf8(b).unwrap_or("\u{fffd}")),
            })
            .collect();
        rows.push(Observation::from_inputs(&inputs).map_err(|r| r.errors()[0].problem.code()));
    }
    Ok(rows)
}

/// Samples of n rows drawn with replacement from `rows`: how often would
/// their largest PSI cross the threshold although nothing drifted?
fn print_noise(model: &Model, rows: &[Observation]) {
    const TRIALS: usize = 4000;
    let threshold = DriftOptions::default().psi_threshold;
    let options = DriftOptions { min_rows_for_alert: 1, ..DriftOptions::default() };
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    };
    println!("{} rows, {TRIALS} samples each, largest PSI of the five features:", rows.len());
    println!("{:>6} {:>8} {:>8} {:>8} {:>14}", "rows", "median", "p95", "p99", "PSI > 0.25");
    for n in [1, 10, 20, 50, 100, 150, 200, 300, 500, 1000] {
        let mut largest: Vec<f64> = (0..TRIALS)
            .map(|_| {
                let mut stats = DriftStats::new(model);
                for _ in 0..n {
                    let o = &rows[next(rows.len())];
                    let (p, bins) = model.predict_with_bins(o);
                    stats.record(o, &p, &bins);
                }
                let r = stats.report(model, &options);
                r.features.iter().filter_map(|f| f.psi).fold(0.0, f64::max)
            })
            .collect();
        largest.sort_by(f64::total_cmp);
        let over = largest.iter().filter(|&&p| p > threshold).count();
        let q = |p: f64| largest[((TRIALS as f64 * p) as usize).min(TRIALS - 1)];
        println!(
            "{n:>6} {:>8.3} {:>8.3} {:>8.3} {:>13.2}%",
            q(0.5),
            q(0.95),
            q(0.99),
            100.0 * over as f64 / TRIALS as f64
        );
    }
}
