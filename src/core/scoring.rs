//! The one scoring decision. Every route (HTTP answers, CSV rows, SQS lines,
//! Distributed Map items, `scorer explain`) turns a validated
//! [`Observation`] into its result through [`Scorer::score`]; nothing else in
//! the crate calls the model's prediction or explanation methods.
//!
//! One call decides what the caller asked for and does it with one bin
//! search: the prediction, its bins (when an explanation or drift statistics
//! need them), the explanation, the drift count, and which values lie outside
//! the training range. Rejected inputs are counted here too
//! ([`Scorer::reject`]), so a route's drift statistics see every row.

use super::drift::DriftStats;
use super::explain::{Explanation, NoExplanation};
use super::features::{Features, MAX_FEATURES};
use super::model::{Model, Prediction};
use super::observation::{Observation, Rejection};

/// What a caller wants besides the prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// Each value's contribution (exact TreeSHAP).
    pub explain: bool,
    /// Drift statistics over every scored and rejected input.
    pub drift: bool,
}

/// One scored observation: everything any answer shape is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub prediction: Prediction,
    /// With [`Wants::explain`] only.
    pub explanation: Option<Explanation>,
    /// The features whose value lies outside the range seen in training.
    pub out_of_range: OutOfRange,
}

/// A set of features (by model index) outside their training range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutOfRange(u64);

const _: () = assert!(MAX_FEATURES <= 64, "OutOfRange holds one bit per feature");

impl OutOfRange {
    /// The feature indices, in model order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        // Set bits only, lowest first: no walk over every possible feature.
        let mut bits = self.0;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let f = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                f
            })
        })
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    fn insert(&mut self, feature: usize) {
        self.0 |= 1 << feature;
    }
}

/// The features of `out_of_range` by API name, joined with "; " (nothing
/// when there is none): the CSV and Distributed Map `warnings` cell. The
/// same rule as the HTTP and SQS `warnings`
/// ([`Model::write_range_warning`]); a batch cell names the features only,
/// as the sentence (with the range, ~90 bytes a feature) on every row nearly
/// doubled the throughput bench's output (123 -> 220 MB, 76 % of its rows
/// out of range) and cost ~40 % more CPU.
pub fn write_range_names(
    features: &Features,
    out_of_range: OutOfRange,
    out: &mut impl std::fmt::Write,
) -> std::fmt::Result {
    for (n, f) in out_of_range.iter().enumerate() {
        if n > 0 {
            out.write_str("; ")?;
        }
        out.write_str(features.api_name(f))?;
    }
    Ok(())
}

/// Scores observations for one request, file or batch: the model, what the
/// caller wants, and (when wanted) the drift statistics of what it scored.
/// Building one without drift allocates nothing.
#[derive(Debug)]
pub struct Scorer<'m> {
    model: &'m Model,
    explain: bool,
    drift: Option<DriftStats>,
}

impl<'m> Scorer<'m> {
    /// A scorer for `wants`. Fails when an explanation is wanted of a model
    /// that cannot explain (format version 1 exports): the request cannot be
    /// honoured whatever the values, so each route answers that up front.
    pub fn new(model: &'m Model, wants: Wants) -> Result<Self, NoExplanation> {
        if wants.explain && !model.can_explain() {
            return Err(NoExplanation::NoCovers);
        }
        Ok(Scorer { model, explain: wants.explain, drift: wants.drift.then(|| DriftStats::new(model)) })
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Whether scored results carry an explanation.
    pub fn explains(&self) -> bool {
        self.explain
    }

    /// Changes whether what is scored next is explained (an SQS batch's
    /// messages each say so), under the rule of [`Scorer::new`].
    pub fn set_explain(&mut self, explain: bool) -> Result<(), NoExplanation> {
        if explain && !self.model.can_explain() {
            return Err(NoExplanation::NoCovers);
        }
        self.explain = explain;
        Ok(())
    }

    /// The one function that scores an observation, for every route.
    #[inline]
    pub fn score(&mut self, observation: &Observation) -> Scored {
        let model = self.model;
        let (prediction, explanation) = if self.explain || self.drift.is_some() {
            // One search for all: the bins the prediction found index the
            // explanation tables and the drift counts.
            let (prediction, bins) = model.predict_with_bins(observation);
            if let Some(stats) = self.drift.as_mut() {
                stats.record(observation, &prediction, &bins);
            }
            // `new` checked that the model can explain.
            let explanation = if self.explain { model.explain_with_bins(observation, &bins).ok() } else { None };
            (prediction, explanation)
        } else {
            (model.predict(observation), None)
        };
        let mut out_of_range = OutOfRange::default();
        for f in model.out_of_range(observation) {
            out_of_range.insert(f);
        }
        Scored { prediction, explanation, out_of_range }
    }

    /// Scores a validated input, or counts its rejection (by
    /// [`Rejection::code`]) and hands it back.
    #[inline]
    pub fn score_input(&mut self, input: Result<Observation, Rejection>) -> Result<Scored, Rejection> {
        match input {
            Ok(observation) => Ok(self.score(&observation)),
            Err(rejection) => {
                self.reject(rejection.code());
                Err(rejection)
            }
        }
    }

    /// Counts an input rejected before it became an observation
    /// (`wrong_field_count`, `not_an_object`, ...) or by validation.
    #[inline]
    pub fn reject(&mut self, code: &'static str) {
        if let Some(stats) = self.drift.as_mut() {
            stats.record_rejected(code);
        }
    }

    /// The drift statistics gathered so far (with [`Wants::drift`]).
    pub fn drift(&self) -> Option<&DriftStats> {
        self.drift.as_ref()
    }

    /// The drift statistics, ending this scorer.
    pub fn into_drift(self) -> Option<DriftStats> {
        self.drift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::embedded().unwrap()
    }

    const INSIDE: [f64; 5] = [0.1471, 25.38, 17.33, 2019.0, 0.2654];

    #[test]
    fn every_want_gives_the_same_prediction() {
        let model = model();
        let observation = Observation::from_values(INSIDE).unwrap();
        let plain = Scorer::new(&model, Wants::default()).unwrap().score(&observation);
        for wants in [
            Wants { explain: true, drift: false },
            Wants { explain: false, drift: true },
            Wants { explain: true, drift: true },
        ] {
            let scored = Scorer::new(&model, wants).unwrap().score(&observation);
            assert_eq!(scored.prediction, plain.prediction, "{wants:?}");
            assert_eq!(scored.explanation.is_some(), wants.explain, "{wants:?}");
        }
        assert_eq!(plain.explanation, None);
        // The explanation adds up to the exact raw score, whatever the route.
        let explained = Scorer::new(&model, Wants { explain: true, drift: true }).unwrap().score(&observation);
        let raw = explained.explanation.unwrap().raw_score();
        assert!((raw - model.raw_score_exact(&observation)).abs() < 1e-9);
    }

    #[test]
    fn out_of_range_features_are_named_by_index_in_model_order() {
        let model = model();
        let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
        assert!(scorer.score(&Observation::from_values(INSIDE).unwrap()).out_of_range.is_empty());
        let far = Observation::from_values([0.1471, 99_999.0, 17.33, 2019.0, 99.0]).unwrap();
        let out = scorer.score(&far).out_of_range;
        assert_eq!(out.iter().collect::<Vec<_>>(), [1, 4]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn drift_counts_scored_and_rejected_inputs_once_each() {
        let model = model();
        let mut scorer = Scorer::new(&model, Wants { explain: false, drift: true }).unwrap();
        scorer.score_input(Observation::from_values(INSIDE)).unwrap();
        let rejected = scorer.score_input(Observation::from_values([0.1, -1.0, 1.0, 1.0, 1.0])).unwrap_err();
        assert_eq!(rejected.code(), "negative");
        scorer.reject("wrong_field_count");
        let stats = scorer.into_drift().unwrap();
        assert_eq!((stats.scored(), stats.rejected()), (1, 2));
        assert!(Scorer::new(&model, Wants::default()).unwrap().into_drift().is_none());
    }
}
