//! Drift and data-quality statistics: does a file (or a queue batch) still look
//! like the data the model was trained on?
//!
//! The batch paths feed a [`DriftStats`] one row at a time with what they
//! already have: each scored row's [`Observation`], [`Prediction`] and the
//! [`Bins`] that [`Model::predict_with_bins`] found on the way (no second
//! search), and each rejected row's reason code. Accumulators of the same model
//! merge, so blocks, threads and batches can be counted apart and added up.
//! [`DriftStats::report`] turns the counts into a [`DriftReport`]: the `drift`
//! object of summaries, the EMF values ([`DriftReport::metric_values`]) and the
//! HTML page ([`html::render`]).
//!
//! Only scored rows count towards the statistics, and the report holds counts
//! and aggregates, never a row's value: min, max and mean are left out below
//! [`DriftOptions::min_rows_for_extremes`] scored rows (min and max are always
//! some row's exact value, and with one row so is the mean).
//!
//! PSI (population stability index) per feature, over the model's own bins:
//! `Σ (a − e) · ln(a / e)`, `a` and `e` the file's and the training split's
//! shares of rows in the bin, each floored at [`PSI_FLOOR`] first. PSI values
//! are only comparable under one convention; the report states this one.

use std::collections::BTreeMap;

use super::features::MAX_FEATURES;
use super::model::{outside_training_range, Bins, Model, Prediction};
use super::observation::Observation;

pub mod html;
pub mod plain;
mod report;

pub use report::{BinTable, DriftMetricValues, DriftReport, FeatureDrift, FeatureMetricValues, ReasonCount};

use plain::{sentence, shown_column, Direction, Shift};

/// Shares below this count as this in the PSI formula (so an empty bin gives a
/// large but finite term).
pub const PSI_FLOOR: f64 = 1e-4;
/// The usual "major shift" line.
pub const DEFAULT_PSI_THRESHOLD: f64 = 0.25;
/// Fewer scored rows than this raise no alert: the PSI of a small sample of
/// training-like data is mostly sampling noise (docs/drift.md).
pub const DEFAULT_MIN_ROWS_FOR_ALERT: u64 = 300;
/// Fewer scored rows than this report no min, max or mean.
pub const DEFAULT_MIN_ROWS_FOR_EXTREMES: u64 = 20;
/// How the report's PSI values were computed, in words, for readers of the JSON.
pub const PSI_CONVENTION: &str = "sum over the feature's bins of (a - e) * ln(a / e), a and e the file's and the \
     training split's shares of rows in the bin, each floored at 0.0001; bin j holds \
     edges[j-1] < float32(x) <= edges[j], the edges being the model's distinct split thresholds";

/// Reason codes held inline before the list grows (there are about ten).
const REASONS_INLINE: usize = 16;

/// What makes an alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftOptions {
    /// A feature whose PSI exceeds this raises the alert.
    pub psi_threshold: f64,
    /// No alert (and no PSI metric) below this many scored rows.
    pub min_rows_for_alert: u64,
    /// No min, max or mean below this many scored rows.
    pub min_rows_for_extremes: u64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            psi_threshold: DEFAULT_PSI_THRESHOLD,
            min_rows_for_alert: DEFAULT_MIN_ROWS_FOR_ALERT,
            min_rows_for_extremes: DEFAULT_MIN_ROWS_FOR_EXTREMES,
        }
    }
}

/// The running statistics of one file, batch or block. Build one per unit of
/// work with [`DriftStats::new`]; the per-row calls allocate nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftStats {
    /// Which model's bins these are (the first 64 bits of its sha256).
    model_id: u64,
    /// Every feature's bin counts, one feature after the other: feature `f`'s
    /// are `counts[start[f]..start[f + 1]]`.
    counts: Box<[u64]>,
    /// The model's number of features; the per-feature arrays below are
    /// inline and hold that many.
    n: usize,
    start: [usize; MAX_FEATURES + 1],
    /// Feature `f`'s number of bins, `start[f + 1] - start[f]`, as [`Bins`]
    /// holds them: what [`DriftStats::record`] checks a row's bins against.
    widths: [u32; MAX_FEATURES],
    /// Per feature, inline: the first `n` are the model's.
    values: [ValueStats; MAX_FEATURES],
    scored: u64,
    predicted_malignant: u64,
    /// Rows with at least one value outside the training range.
    rows_out_of_range: u64,
    rejected: u64,
    /// Few distinct codes, in first-seen order: a short list beats a map here.
    rejected_by_reason: Vec<(&'static str, u64)>,
    /// Rows whose bins were not this model's, left out (see [`DriftStats::record`]).
    foreign_rows: u64,
    /// The header text of each feature's column, in model order, when the
    /// rows came from a file with a header ([`DriftStats::name_columns`]).
    columns: Option<Box<[String]>>,
}

/// One feature's running value statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ValueStats {
    /// The training range (min, max).
    range: (f64, f64),
    /// Scored rows outside it.
    out_of_range: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Default for ValueStats {
    fn default() -> Self {
        ValueStats { range: (0.0, 0.0), out_of_range: 0, min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0 }
    }
}

impl DriftStats {
    /// Empty statistics over `model`'s bins (one allocation).
    pub fn new(model: &Model) -> Self {
        let n = model.features().len();
        let mut start = [0usize; MAX_FEATURES + 1];
        let mut widths = [0u32; MAX_FEATURES];
        let mut values = [ValueStats::default(); MAX_FEATURES];
        for f in 0..n {
            start[f + 1] = start[f] + model.bin_edges(f).len() + 1;
            // A feature has fewer thresholds than the model has nodes, which fit a u32.
            widths[f] = u32::try_from(start[f + 1] - start[f]).unwrap_or(u32::MAX);
            values[f].range = model.info().ranges[f];
        }
        // Past the model's features every bin is 0 and every width 1: such
        // entries are never foreign and never counted.
        widths[n..].fill(1);
        DriftStats {
            model_id: model.id(),
            counts: vec![0; start[n]].into_boxed_slice(),
            n,
            widths,
            start,
            values,
            scored: 0,
            predicted_malignant: 0,
            rows_out_of_range: 0,
            rejected: 0,
            rejected_by_reason: Vec::with_capacity(REASONS_INLINE),
            foreign_rows: 0,
            columns: None,
        }
    }

    /// Names each feature as the file's header did (`Worst Area (mm²)`,
    /// `worst_area`), in model order: the report shows these beside the API
    /// names. Names of columns only, never a cell below the header.
    pub fn name_columns(&mut self, headers: impl IntoIterator<Item = String>) {
        let headers: Box<[String]> = headers.into_iter().collect();
        if headers.len() == self.n {
            self.columns = Some(headers);
        }
    }

    /// Counts one scored row: its observation, its prediction and the bins
    /// [`Model::predict_with_bins`] returned with it (from the same model).
    ///
    /// Bins that cannot be this model's (a bin past a feature's last, as
    /// another model's search may give) would count in another feature's
    /// bins or past the end: such a row is left out entirely, counted only by
    /// [`DriftStats::foreign_rows`], in every build — never a panic, never a
    /// write outside the feature's bins.
    #[inline]
    #[allow(clippy::needless_range_loop)] // parallel arrays, one index
    pub fn record(&mut self, observation: &Observation, prediction: &Prediction, bins: &Bins) {
        // Checked before anything changes, all at once (no early exit: one
        // predictable branch a row).
        let foreign =
            bins[..self.n].iter().zip(&self.widths[..self.n]).fold(false, |any, (&bin, &width)| any | (bin >= width));
        if foreign {
            self.foreign_rows += 1;
            return;
        }
        let values = observation.values();
        self.scored += 1;
        self.predicted_malignant += u64::from(prediction.label);
        // The value statistics first, the bin counts after: the counts live
        // behind a pointer the compiler cannot tell apart from these fields,
        // so interleaving the two would reload every field after each count
        // (measured with five features: 12.2 -> 7.7 ns a row).
        let mut any_out = false;
        for (stats, &v) in self.values[..self.n].iter_mut().zip(values) {
            let out = outside_training_range(stats.range, v);
            stats.out_of_range += u64::from(out);
            any_out |= out;
            // Values are finite (an Observation is), so min/max need no NaN care.
            stats.min = stats.min.min(v);
            stats.max = stats.max.max(v);
            stats.sum += v;
        }
        self.rows_out_of_range += u64::from(any_out);
        for (&start, &bin) in self.start[..self.n].iter().zip(&bins[..self.n]) {
            self.counts[start + bin as usize] += 1;
        }
    }

    /// Counts one rejected row by its reason code (`missing`, `negative`,
    /// `wrong_field_count`, ...: the codes of the summaries).
    #[inline]
    pub fn record_rejected(&mut self, code: &'static str) {
        self.rejected += 1;
        match self.rejected_by_reason.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.rejected_by_reason.push((code, 1)),
        }
    }

    /// Adds `other`'s rows (a block, a thread's share, another batch) to these.
    ///
    /// # Panics
    /// If the two count different models' bins: a programming error.
    pub fn merge(&mut self, other: &DriftStats) {
        assert!(
            self.model_id == other.model_id && self.start == other.start,
            "drift statistics of different models cannot be merged"
        );
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.scored += other.scored;
        self.predicted_malignant += other.predicted_malignant;
        self.rows_out_of_range += other.rows_out_of_range;
        for f in 0..self.n {
            let (a, b) = (&mut self.values[f], &other.values[f]);
            a.out_of_range += b.out_of_range;
            a.min = a.min.min(b.min);
            a.max = a.max.max(b.max);
            a.sum += b.sum;
        }
        self.rejected += other.rejected;
        self.foreign_rows += other.foreign_rows;
        if self.columns.is_none() {
            self.columns.clone_from(&other.columns);
        }
        for &(code, n) in &other.rejected_by_reason {
            match self.rejected_by_reason.iter_mut().find(|(c, _)| *c == code) {
                Some((_, m)) => *m += n,
                None => self.rejected_by_reason.push((code, n)),
            }
        }
    }

    /// Scored rows counted so far.
    pub fn scored(&self) -> u64 {
        self.scored
    }

    /// Rejected rows counted so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Rows [`DriftStats::record`] left out because their bins were not this
    /// model's: always 0 unless a caller mixed models (a programming error).
    pub fn foreign_rows(&self) -> u64 {
        self.foreign_rows
    }

    /// The report against `model`'s training profile (the model these
    /// statistics were built for). Without a profile (export version 1) every
    /// PSI and training share is `null` and there is no alert.
    ///
    /// # Panics
    /// If `model` is not the model of [`DriftStats::new`]: a programming error.
    pub fn report(&self, model: &Model, options: &DriftOptions) -> DriftReport {
        assert!(self.model_id == model.id(), "drift statistics reported against another model");
        let profile = model.training_profile();
        let scored = self.scored;
        let rows = scored + self.rejected;
        let show_extremes = scored > 0 && scored >= options.min_rows_for_extremes;
        let assessed = profile.is_some() && scored > 0 && scored >= options.min_rows_for_alert;

        let features: Vec<FeatureDrift> = (0..self.n)
            .map(|f| {
                let counts = &self.counts[self.start[f]..self.start[f + 1]];
                let shares = shares_of(counts, scored);
                let training = profile.map(|p| (&p.features[f], p.rows));
                let training_shares = training.and_then(|(t, n)| shares_of(&t.counts, n));
                let psi = match (&shares, &training_shares) {
                    (Some(a), Some(e)) => Some(psi(a, e)),
                    _ => None,
                };
                let stats = &self.values[f];
                let (min, max) = stats.range;
                let name = model.features().api_name(f);
                let column = self.columns.as_ref().map(|c| shown_column(&c[f]));
                let training_mean = training.map(|(t, _)| t.mean);
                let shift = Shift::of(psi, assessed, options.psi_threshold);
                // The side only, from the mean however few the rows: never a value.
                let mean = (scored > 0).then(|| stats.sum / scored as f64);
                let direction = Direction::of(mean, stats.range, training_mean);
                FeatureDrift {
                    name: name.to_owned(),
                    note: sentence(column.as_deref().unwrap_or(name), shift, direction),
                    column,
                    shift,
                    psi,
                    out_of_range_rows: stats.out_of_range,
                    out_of_range_share: share(stats.out_of_range, scored),
                    min: show_extremes.then_some(stats.min),
                    max: show_extremes.then_some(stats.max),
                    mean: show_extremes.then(|| stats.sum / scored as f64),
                    training_min: min,
                    training_max: max,
                    training_mean,
                    bins: BinTable {
                        edges: model.bin_edges(f).to_vec(),
                        counts: counts.to_vec(),
                        shares,
                        training_shares,
                    },
                }
            })
            .collect();

        let alert_features: Vec<String> = if assessed {
            features.iter().filter(|f| f.shift == Shift::Major).map(|f| f.name.clone()).collect()
        } else {
            Vec::new()
        };
        let mut rejected_by_reason = BTreeMap::new();
        for &(code, n) in &self.rejected_by_reason {
            rejected_by_reason.insert(code, ReasonCount { rows: n, share: n as f64 / rows as f64 });
        }
        DriftReport {
            rows,
            scored,
            rejected: self.rejected,
            rejected_share: share(self.rejected, rows),
            rejected_by_reason,
            predicted_malignant: self.predicted_malignant,
            predicted_malignant_share: share(self.predicted_malignant, scored),
            training_predicted_malignant_share: profile.map(|p| p.predicted_malignant_share()),
            rows_out_of_range: self.rows_out_of_range,
            out_of_range_share: share(self.rows_out_of_range, scored),
            alert: !alert_features.is_empty(),
            alert_assessed: assessed,
            alert_features,
            psi_threshold: options.psi_threshold,
            min_rows_for_alert: options.min_rows_for_alert,
            min_rows_for_extremes: options.min_rows_for_extremes,
            psi_floor: PSI_FLOOR,
            psi_convention: PSI_CONVENTION,
            training_rows: profile.map(|p| p.rows),
            features,
        }
    }
}

/// `n / of`, or `None` when there is nothing to divide by (never NaN).
fn share(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

fn shares_of(counts: &[u64], of: u64) -> Option<Vec<f64>> {
    (of > 0).then(|| counts.iter().map(|&c| c as f64 / of as f64).collect())
}

/// PSI of shares `a` against shares `e` (same bins), each floored at [`PSI_FLOOR`].
pub fn psi(a: &[f64], e: &[f64]) -> f64 {
    a.iter()
        .zip(e)
        .map(|(&a, &e)| {
            let (a, e) = (a.max(PSI_FLOOR), e.max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests;
