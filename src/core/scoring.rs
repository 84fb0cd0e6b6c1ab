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
//!
//! With a challenger ([`Scorer::with_challenger`]), the same call scores the
//! observation with it right after the champion and counts how the two
//! compare ([`super::challenger`]); what the call returns is the champion's
//! alone, so no answer changes.

use super::challenger::{ChallengerStats, FeatureMap};
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

/// One scored observation: everything any answer shape is built from. Small:
/// the explanation (one value per feature, up to `MAX_FEATURES`, inline) stays
/// in the [`Scorer`] and is lent, so scoring a row copies no per-feature array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored<'s> {
    pub prediction: Prediction,
    /// With [`Wants::explain`] only.
    pub explanation: Option<&'s Explanation>,
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
/// caller wants, (when wanted) the drift statistics of what it scored, and
/// (when there is one) the challenger in shadow. Building one without drift
/// allocates nothing.
#[derive(Debug)]
pub struct Scorer<'m> {
    model: &'m Model,
    explain: bool,
    drift: Option<DriftStats>,
    /// The last explanation, lent by [`Scored::explanation`].
    explanation: Explanation,
    challenger: Option<Shadow<'m>>,
}

/// The challenger, its features among the champion's, and the comparison so far.
#[derive(Debug)]
struct Shadow<'m> {
    model: &'m Model,
    map: FeatureMap,
    stats: ChallengerStats,
}

/// What a scorer gathered: the drift statistics (with [`Wants::drift`]) and
/// the challenger's comparison (with a challenger).
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    pub drift: Option<DriftStats>,
    pub challenger: Option<ChallengerStats>,
}

impl<'m> Scorer<'m> {
    /// A scorer for `wants`. Fails when an explanation is wanted of a model
    /// that cannot explain (format version 1 exports): the request cannot be
    /// honoured whatever the values, so each route answers that up front.
    pub fn new(model: &'m Model, wants: Wants) -> Result<Self, NoExplanation> {
        if wants.explain && !model.can_explain() {
            return Err(NoExplanation::NoCovers);
        }
        Ok(Scorer {
            model,
            explain: wants.explain,
            drift: wants.drift.then(|| DriftStats::new(model)),
            explanation: Explanation::default(),
            challenger: None,
        })
    }

    /// Also scores every observation with `challenger` (none: nothing
    /// changes), in shadow: [`Scorer::score`] returns the champion's result
    /// alone. Its features are matched to the champion's by API name here,
    /// once ([`FeatureMap`]).
    pub fn with_challenger(mut self, challenger: Option<&'m Model>) -> Self {
        self.challenger = challenger.map(|model| Shadow {
            model,
            map: FeatureMap::new(self.model, model),
            stats: ChallengerStats::new(model),
        });
        self
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
    pub fn score(&mut self, observation: &Observation) -> Scored<'_> {
        let model = self.model;
        let (prediction, explained) = if self.explain || self.drift.is_some() {
            // One search for all: the bins the prediction found index the
            // explanation tables and the drift counts.
            let (prediction, bins) = model.predict_with_bins(observation);
            if let Some(stats) = self.drift.as_mut() {
                stats.record(observation, &prediction, &bins);
            }
            // `new` checked that the model can explain.
            let explained = self.explain && model.explain_into(observation, &bins, &mut self.explanation).is_ok();
            (prediction, explained)
        } else {
            (model.predict(observation), false)
        };
        if let Some(shadow) = self.challenger.as_mut() {
            // The challenger's prediction, counted and never returned.
            let theirs = match &shadow.map {
                FeatureMap::Same => Some(shadow.model.predict(observation)),
                FeatureMap::Indices(indices) => Some(shadow.model.predict(&observation.select(indices))),
                FeatureMap::NotComparable => None,
            };
            match theirs {
                Some(theirs) => shadow.stats.record(&prediction, &theirs),
                None => shadow.stats.record_not_comparable(),
            }
        }
        let mut out_of_range = OutOfRange::default();
        for f in model.out_of_range(observation) {
            out_of_range.insert(f);
        }
        Scored { prediction, explanation: explained.then_some(&self.explanation), out_of_range }
    }

    /// Scores a validated input, or counts its rejection (by
    /// [`Rejection::code`]) and hands it back.
    #[inline]
    pub fn score_input(&mut self, input: Result<Observation, Rejection>) -> Result<Scored<'_>, Rejection> {
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

    /// The challenger's comparison so far (with a challenger).
    pub fn challenger(&self) -> Option<&ChallengerStats> {
        self.challenger.as_ref().map(|s| &s.stats)
    }

    /// Everything gathered, ending this scorer.
    pub fn into_tallies(self) -> Tallies {
        Tallies { drift: self.drift, challenger: self.challenger.map(|s| s.stats) }
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
        let mut plain_scorer = Scorer::new(&model, Wants::default()).unwrap();
        let plain = plain_scorer.score(&observation);
        for wants in [
            Wants { explain: true, drift: false },
            Wants { explain: false, drift: true },
            Wants { explain: true, drift: true },
        ] {
            let mut scorer = Scorer::new(&model, wants).unwrap();
            let scored = scorer.score(&observation);
            assert_eq!(scored.prediction, plain.prediction, "{wants:?}");
            assert_eq!(scored.explanation.is_some(), wants.explain, "{wants:?}");
        }
        assert_eq!(plain.explanation, None);
        // The explanation adds up to the exact raw score, whatever the route.
        let mut explaining = Scorer::new(&model, Wants { explain: true, drift: true }).unwrap();
        let explained = explaining.score(&observation);
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

    const DEPTH2: &[u8] = include_bytes!("../../models/testdata/gbc-depth2.json");
    const CLINIC: &[u8] = include_bytes!("../../models/testdata/clinic-outcomes-gbc.json");

    /// `export` with its features in reverse order (trees and profile
    /// renumbered): the same model under another feature order.
    fn reversed(export: &[u8]) -> Model {
        let mut doc: serde_json::Value = serde_json::from_slice(export).unwrap();
        let n = doc["features"].as_array().unwrap().len() as i64;
        doc["features"].as_array_mut().unwrap().reverse();
        doc["training_profile"]["features"].as_array_mut().unwrap().reverse();
        for tree in doc["trees"].as_array_mut().unwrap() {
            for f in tree["feature"].as_array_mut().unwrap() {
                let i = f.as_i64().unwrap();
                if i >= 0 {
                    *f = (n - 1 - i).into();
                }
            }
        }
        Model::from_json_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap()
    }

    fn some_observations() -> Vec<Observation> {
        (0..50)
            .map(|i| {
                let t = f64::from(i) / 49.0;
                Observation::from_values([
                    0.2 * t,
                    8.0 + 30.0 * t,
                    12.0 + 30.0 * (1.0 - t),
                    200.0 + 4000.0 * t,
                    0.3 * t,
                ])
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_challenger_changes_nothing_the_scorer_returns() {
        let (model, depth2) = (model(), Model::from_json_bytes(DEPTH2).unwrap());
        for wants in [Wants::default(), Wants { explain: true, drift: true }] {
            let mut plain = Scorer::new(&model, wants).unwrap();
            let mut shadowed = Scorer::new(&model, wants).unwrap().with_challenger(Some(&depth2));
            for observation in some_observations() {
                assert_eq!(shadowed.score(&observation), plain.score(&observation), "{wants:?}");
            }
            let (plain, shadowed) = (plain.into_tallies(), shadowed.into_tallies());
            assert_eq!(plain.drift, shadowed.drift, "the drift statistics are the champion's");
            assert!(plain.challenger.is_none());
            assert_eq!(shadowed.challenger.unwrap().rows(), 50);
        }
        assert!(Scorer::new(&model, Wants::default()).unwrap().with_challenger(None).challenger().is_none());
    }

    #[test]
    fn the_champion_as_its_own_challenger_agrees_everywhere() {
        let model = model();
        let mut scorer = Scorer::new(&model, Wants::default()).unwrap().with_challenger(Some(&model));
        let observations = some_observations();
        let mut malignant = 0;
        for observation in &observations {
            malignant += u64::from(scorer.score(observation).prediction.label);
        }
        let report = scorer.challenger().unwrap().report(&model);
        assert_eq!((report.rows, report.not_comparable), (50, 0));
        assert_eq!(report.label_agreement, Some(1.0));
        assert_eq!((report.mean_abs_delta, report.max_abs_delta), (Some(0.0), Some(0.0)));
        assert_eq!(report.predicted_malignant_share, Some(malignant as f64 / 50.0));
        assert_eq!(report.model_version, model.info().version);
    }

    #[test]
    fn a_challenger_with_the_features_in_another_order_is_mapped_by_name() {
        let (model, depth2, reversed) = (model(), Model::from_json_bytes(DEPTH2).unwrap(), reversed(DEPTH2));
        assert_eq!(FeatureMap::new(&model, &depth2), FeatureMap::Same);
        assert!(matches!(FeatureMap::new(&model, &reversed), FeatureMap::Indices(ref i) if i[..] == [4, 3, 2, 1, 0]));
        let mut straight = Scorer::new(&model, Wants::default()).unwrap().with_challenger(Some(&depth2));
        let mut crossed = Scorer::new(&model, Wants::default()).unwrap().with_challenger(Some(&reversed));
        let mut expected = ChallengerStats::new(&depth2);
        for observation in some_observations() {
            let champion = straight.score(&observation).prediction;
            crossed.score(&observation);
            expected.record(&champion, &depth2.predict(&observation));
        }
        let (a, b) = (straight.challenger().unwrap().report(&depth2), crossed.challenger().unwrap().report(&reversed));
        assert_eq!(a, expected.report(&depth2));
        assert!(a.max_abs_delta.unwrap() > 0.0, "another model: {a:?}");
        assert_eq!((a.rows, a.label_agreement, a.mean_abs_delta), (b.rows, b.label_agreement, b.mean_abs_delta));
        assert_eq!((a.max_abs_delta, a.predicted_malignant_share), (b.max_abs_delta, b.predicted_malignant_share));
    }

    #[test]
    fn a_challenger_feature_the_champion_lacks_makes_every_scored_row_not_comparable() {
        let (model, clinic) = (model(), Model::from_json_bytes(CLINIC).unwrap());
        assert_eq!(FeatureMap::new(&model, &clinic), FeatureMap::NotComparable);
        let mut scorer = Scorer::new(&model, Wants::default()).unwrap().with_challenger(Some(&clinic));
        for observation in some_observations() {
            scorer.score(&observation);
        }
        let report = scorer.challenger().unwrap().report(&clinic);
        assert_eq!((report.rows, report.not_comparable), (0, 50));
        assert_eq!(report.label_agreement, None);
        assert_eq!((report.mean_abs_delta, report.max_abs_delta, report.predicted_malignant_share), (None, None, None));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["labelAgreement"], serde_json::Value::Null, "null, not absent: {json}");
    }

    #[test]
    fn rejected_inputs_are_neither_compared_nor_counted_and_tallies_merge() {
        let (model, depth2) = (model(), Model::from_json_bytes(DEPTH2).unwrap());
        let new = || Scorer::new(&model, Wants { explain: false, drift: true }).unwrap().with_challenger(Some(&depth2));
        let (mut whole, mut first, mut second) = (new(), new(), new());
        for (i, observation) in some_observations().into_iter().enumerate() {
            whole.score(&observation);
            if i % 3 == 0 { &mut first } else { &mut second }.score(&observation);
        }
        for scorer in [&mut whole, &mut first] {
            assert!(scorer.score_input(Observation::from_values([0.1, -1.0, 1.0, 1.0, 1.0])).is_err());
            scorer.reject("wrong_field_count");
        }
        let whole = whole.into_tallies().challenger.unwrap();
        let mut merged = first.into_tallies().challenger.unwrap();
        merged.merge(&second.into_tallies().challenger.unwrap());
        assert_eq!((whole.rows(), whole.not_comparable()), (50, 0));
        let (a, b) = (whole.report(&depth2), merged.report(&depth2));
        assert_eq!((a.rows, a.label_agreement, a.max_abs_delta), (b.rows, b.label_agreement, b.max_abs_delta));
        assert_eq!(whole.disagreements(), merged.disagreements());
        assert!((a.mean_abs_delta.unwrap() - b.mean_abs_delta.unwrap()).abs() < 1e-15);
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
