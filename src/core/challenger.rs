//! Champion and challenger: a second model scores, in shadow, every
//! observation the served model (the champion) scores, and a file's or a
//! batch's summary says how far the two agree. Answers never change: the
//! challenger's predictions are counted here and never leave but as
//! aggregates ([`ChallengerReport`]).
//!
//! The challenger may have other features than the champion. They are
//! matched by API name once, when a [`Scorer`](super::scoring::Scorer) is
//! built ([`FeatureMap`]): each challenger feature's index among the
//! champion's, so a row costs a copy of its values, no lookup and no
//! allocation. Requests are validated against the champion's contract only,
//! so a challenger feature the champion does not have is never read: with
//! one, the challenger cannot score any row, and every scored row counts as
//! not comparable. Rejected rows are neither compared nor counted.
//!
//! Accumulators of the same challenger merge, as [`DriftStats`] do, so
//! blocks, threads and batches can be counted apart and added up.
//!
//! [`DriftStats`]: super::drift::DriftStats

use serde::Serialize;

use super::features::{PerFeature, MAX_FEATURES};
use super::model::{Model, Prediction};

/// Where each of the challenger's features is among the champion's, by API
/// name: built once per scorer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureMap {
    /// The same features in the same order: the champion's observation as it is.
    Same,
    /// `indices[i]`: the champion's index of the challenger's feature `i`.
    Indices(PerFeature<u8>),
    /// A challenger feature the champion's contract does not have: no row
    /// can be scored by the challenger.
    NotComparable,
}

const _: () = assert!(MAX_FEATURES <= u8::MAX as usize, "feature indices fit a u8");

impl FeatureMap {
    /// Matches `challenger`'s features to `champion`'s by API name.
    pub fn new(champion: &Model, challenger: &Model) -> Self {
        let (ours, theirs) = (champion.features(), challenger.features());
        let mut indices = PerFeature::new();
        for name in theirs.api_names() {
            match ours.by_api_name(name) {
                // Fewer than MAX_FEATURES of each (checked at load).
                Some(i) => indices.push(i as u8),
                None => return FeatureMap::NotComparable,
            }
        }
        if indices.len() == ours.len() && indices.iter().enumerate().all(|(i, &j)| usize::from(j) == i) {
            FeatureMap::Same
        } else {
            FeatureMap::Indices(indices)
        }
    }
}

/// The running comparison of one file, batch, block or request. Per-row
/// calls allocate nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengerStats {
    /// Which challenger (the first 64 bits of its sha256).
    model_id: u64,
    /// Rows both models scored.
    rows: u64,
    /// Rows the champion scored and the challenger could not.
    not_comparable: u64,
    /// Compared rows given the same label.
    agreements: u64,
    /// Of |challenger's probability of class 1 − champion's| over compared rows.
    sum_abs_delta: f64,
    max_abs_delta: f64,
    /// Compared rows the challenger labels 1.
    predicted_malignant: u64,
}

impl ChallengerStats {
    /// Empty statistics for `challenger`.
    pub fn new(challenger: &Model) -> Self {
        ChallengerStats {
            model_id: challenger.id(),
            rows: 0,
            not_comparable: 0,
            agreements: 0,
            sum_abs_delta: 0.0,
            max_abs_delta: 0.0,
            predicted_malignant: 0,
        }
    }

    /// Counts one row both models scored.
    #[inline]
    pub fn record(&mut self, champion: &Prediction, challenger: &Prediction) {
        let delta = (challenger.probability - champion.probability).abs();
        self.rows += 1;
        self.agreements += u64::from(champion.label == challenger.label);
        self.sum_abs_delta += delta;
        self.max_abs_delta = self.max_abs_delta.max(delta);
        self.predicted_malignant += u64::from(challenger.label);
    }

    /// Counts one row the champion scored and the challenger could not.
    #[inline]
    pub fn record_not_comparable(&mut self) {
        self.not_comparable += 1;
    }

    /// Adds `other`'s rows (a block, a thread's share, another batch).
    ///
    /// # Panics
    /// If the two compare different challengers: a programming error.
    pub fn merge(&mut self, other: &ChallengerStats) {
        assert!(self.model_id == other.model_id, "statistics of different challengers cannot be merged");
        self.rows += other.rows;
        self.not_comparable += other.not_comparable;
        self.agreements += other.agreements;
        self.sum_abs_delta += other.sum_abs_delta;
        self.max_abs_delta = self.max_abs_delta.max(other.max_abs_delta);
        self.predicted_malignant += other.predicted_malignant;
    }

    /// Rows both models scored.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows the challenger could not score.
    pub fn not_comparable(&self) -> u64 {
        self.not_comparable
    }

    /// Compared rows the two models label differently.
    pub fn disagreements(&self) -> u64 {
        self.rows - self.agreements
    }

    /// The report, naming `challenger` (the model of [`ChallengerStats::new`]).
    ///
    /// # Panics
    /// If `challenger` is another model: a programming error.
    pub fn report(&self, challenger: &Model) -> ChallengerReport {
        assert!(self.model_id == challenger.id(), "challenger statistics reported against another model");
        let rows = self.rows;
        let of_rows = |x: f64| (rows > 0).then(|| x / rows as f64);
        ChallengerReport {
            model_version: challenger.info().version.clone(),
            rows,
            not_comparable: self.not_comparable,
            label_agreement: of_rows(self.agreements as f64),
            mean_abs_delta: of_rows(self.sum_abs_delta),
            max_abs_delta: (rows > 0).then_some(self.max_abs_delta),
            predicted_malignant_share: of_rows(self.predicted_malignant as f64),
        }
    }
}

/// The `challenger` object of a summary: how the challenger's predictions
/// compare with the answers given, as aggregates only. Every share and delta
/// is `null` when no row was compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengerReport {
    /// The challenger's version (`<name>-<sha256 prefix>`).
    pub model_version: String,
    /// Rows both models scored.
    pub rows: u64,
    /// Rows the champion scored that the challenger could not (a feature
    /// the champion's contract does not have).
    pub not_comparable: u64,
    /// The share of compared rows given the same label (0 to 1).
    pub label_agreement: Option<f64>,
    /// The mean and the largest |challenger − champion| of the probability of class 1.
    pub mean_abs_delta: Option<f64>,
    pub max_abs_delta: Option<f64>,
    /// The share of compared rows the challenger labels 1 (the shipped
    /// model's class 1: malignant).
    pub predicted_malignant_share: Option<f64>,
}

impl ChallengerReport {
    /// Whether there is anything to say: a row compared or not comparable.
    pub fn is_empty(&self) -> bool {
        self.rows == 0 && self.not_comparable == 0
    }
}
