//! The EMF metrics records ([`Metrics`]): built where the work ends, written
//! as one JSON line each to the metrics writer thread (see the parent module).

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use super::{metrics_enabled, METRICS};

#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
    /// Shares, indices, flags (EMF's "None").
    None,
}

impl Unit {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One EMF record: a few named values under the dimensions Service and
/// EntryPoint (and one more, e.g. Feature, if [`Metrics::dimension`] is set).
/// When metrics are off (local commands) it does nothing and allocates nothing.
///
/// Written by hand, on purpose: the one crate made for EMF in Rust,
/// `metrics_cloudwatch_embedded` (0.10), is a backend of the `metrics`
/// facade: one global collector (its registry behind a Mutex) that
/// aggregates counters by name and labels and writes a document per flush,
/// flushed after each invocation by its own `run()` or tower `MetricService`
/// (its default `lambda` feature adds lambda_http and tower). We need
/// records written where the work ends (one per file, one per drift
/// feature with its own dimension set), never aggregated across the files of
/// an invocation, and the same records from `scorer worker` outside Lambda.
/// Measured cost of ours: JSON logs plus an EMF record add 0.44 µs to a
/// Function URL request (2.45 → 2.89 µs,
/// criterion, docs/testing.md), with no dependency added.
#[derive(Debug)]
pub struct Metrics {
    pub(super) entry_point: &'static str,
    pub(super) enabled: bool,
    /// A third dimension: EMF gives each record one value per dimension, so a
    /// per-feature metric is one record per feature.
    pub(super) extra: Option<(&'static str, String)>,
    /// The record is also published without `extra` ([`Metrics::also_by`]).
    pub(super) rollup: bool,
    /// Inline up to the most a Function URL record holds (seven).
    pub(super) values: smallvec::SmallVec<[(Cow<'static, str>, Unit, f64); 8]>,
}

impl Metrics {
    pub fn new(entry_point: &'static str) -> Self {
        Self::with_enabled(entry_point, metrics_enabled())
    }

    pub(super) fn with_enabled(entry_point: &'static str, enabled: bool) -> Self {
        Metrics { entry_point, enabled, extra: None, rollup: false, values: smallvec::SmallVec::new() }
    }

    /// Adds a third dimension (name, value) to this record, e.g. ("Feature", "worstArea").
    pub fn dimension(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.extra = Some((name, value.to_owned()));
        self
    }

    /// Publishes the record under Service/EntryPoint, as without a third
    /// dimension, and also under Service/EntryPoint/`name` (EMF's two
    /// dimension sets in one record): alarms and dashboards on the first see
    /// every request, and the second tells e.g. a route's apart.
    pub fn also_by(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.dimension(name, value);
        self.rollup = true;
        self
    }

    /// A unitless value (a share, an index, a 0/1 flag).
    pub fn value(&mut self, name: impl Into<Cow<'static, str>>, value: f64) -> &mut Self {
        if self.enabled {
            self.values.push((name.into(), Unit::None, value));
        }
        self
    }

    pub(super) fn is_empty(&self) -> bool {
        self.values.is_empty()
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
        let Some(writer) = METRICS.get() else { return };
        let mut line = Vec::with_capacity(512);
        self.write_json(&mut line);
        line.push(b'\n');
        if writer.send(line).is_err() {
            writer.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The record as one JSON object, written straight into `out`: the same
    /// bytes serde_json writes for the document (keys in this order; numbers
    /// and strings written by serde_json itself), without nesting serde
    /// structs. Measured: serde's nested structs cost most of an EMF
    /// record's time on the Function URL path (docs/testing.md).
    pub(super) fn write_json(&self, out: &mut Vec<u8>) {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        out.extend_from_slice(br#"{"_aws":{"Timestamp":"#);
        out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
        out.extend_from_slice(br#","CloudWatchMetrics":[{"Namespace":"Scorer","Dimensions":["#);
        const TWO: &[u8] = br#"["Service","EntryPoint""#;
        match (&self.extra, self.rollup) {
            (None, _) => out.extend_from_slice(TWO),
            (Some((name, _)), rollup) => {
                if rollup {
                    out.extend_from_slice(TWO);
                    out.extend_from_slice(b"],");
                }
                out.extend_from_slice(TWO);
                out.push(b',');
                json_string(out, name);
            }
        }
        out.extend_from_slice(br#"]],"Metrics":["#);
        for (i, (name, unit, _)) in self.values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"Name":"#);
            json_string(out, name);
            out.extend_from_slice(br#","Unit":""#);
            out.extend_from_slice(unit.as_str().as_bytes());
            out.extend_from_slice(br#""}"#);
        }
        out.extend_from_slice(br#"]}]},"Service":"scorer","EntryPoint":"#);
        json_string(out, self.entry_point);
        if let Some((name, value)) = &self.extra {
            out.push(b',');
            json_string(out, name);
            out.push(b':');
            json_string(out, value);
        }
        for (name, _, value) in &self.values {
            out.push(b',');
            json_string(out, name);
            out.push(b':');
            json_f64(out, *value);
        }
        out.push(b'}');
    }
}

/// A JSON string as serde_json escapes it. (Copying names that need no
/// escape between quotes by hand measured the same, ~195 instructions a
/// name: serde_json's escaping is table-driven already.)
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// An f64 as serde_json writes one (`null` when not finite).
fn json_f64(out: &mut Vec<u8>, value: f64) {
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// The drift metrics of one file or batch: `PredictedMalignantShare`,
/// `OutOfRangeShare` (rows with any value outside) and `DriftAlert` under
/// Service/EntryPoint, and per feature `DriftPSI` and `OutOfRangeShare` under
/// Service/EntryPoint/Feature (one record each).
/// Values the report leaves out (too few rows) are not emitted.
pub fn emit_drift(entry_point: &'static str, values: &crate::core::drift::DriftMetricValues) {
    if !metrics_enabled() {
        return;
    }
    for record in drift_records(entry_point, values, true) {
        record.emit();
    }
}

pub(super) fn drift_records(
    entry_point: &'static str,
    values: &crate::core::drift::DriftMetricValues,
    enabled: bool,
) -> Vec<Metrics> {
    let mut records = Vec::with_capacity(values.features.len() + 1);
    let mut file = Metrics::with_enabled(entry_point, enabled);
    if let Some(share) = values.predicted_malignant_share {
        file.value("PredictedMalignantShare", share);
    }
    if let Some(share) = values.out_of_range_share {
        file.value("OutOfRangeShare", share);
    }
    if let Some(alert) = values.alert {
        file.value("DriftAlert", alert);
    }
    records.push(file);
    for f in &values.features {
        let mut record = Metrics::with_enabled(entry_point, enabled);
        record.dimension("Feature", &f.feature);
        if let Some(psi) = f.psi {
            record.value("DriftPSI", psi);
        }
        if let Some(share) = f.out_of_range_share {
            record.value("OutOfRangeShare", share);
        }
        records.push(record);
    }
    records.retain(|r| !r.is_empty());
    records
}

/// How the challenger compared over one file or batch, one record under
/// Service/EntryPoint: `ChallengerRows` and `ChallengerNotComparable`
/// (counts), and, when a row was compared, `ChallengerLabelAgreement`,
/// `ChallengerMeanAbsDelta`, `ChallengerMaxAbsDelta` and
/// `ChallengerPredictedMalignantShare`. Aggregates only.
pub fn emit_challenger(entry_point: &'static str, report: &crate::core::challenger::ChallengerReport) {
    if metrics_enabled() {
        challenger_record(entry_point, report, true).emit();
    }
}

pub(super) fn challenger_record(
    entry_point: &'static str,
    report: &crate::core::challenger::ChallengerReport,
    enabled: bool,
) -> Metrics {
    let mut record = Metrics::with_enabled(entry_point, enabled);
    record.count("ChallengerRows", report.rows).count("ChallengerNotComparable", report.not_comparable);
    let values = [
        ("ChallengerLabelAgreement", report.label_agreement),
        ("ChallengerMeanAbsDelta", report.mean_abs_delta),
        ("ChallengerMaxAbsDelta", report.max_abs_delta),
        ("ChallengerPredictedMalignantShare", report.predicted_malignant_share),
    ];
    for (name, value) in values {
        if let Some(value) = value {
            record.value(name, value);
        }
    }
    record
}
