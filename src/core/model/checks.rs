//! The slow reference paths, for checks and tests: each computes what the
//! fast path does, the way sklearn and shap do it (every tree walked, no
//! compiled table), so tests, benches and fuzz targets can compare the two.
//! Nothing that serves requests calls them.

use super::super::explain::{self, Explanation, NoExplanation};
use super::super::features::PerFeature;
use super::super::observation::Observation;
use super::{as_float32, prediction_from_raw, Model, Prediction};

impl Model {
    /// For checks and tests: TreeSHAP on every tree, stumps included, with no
    /// table (what the per-bin tables of [`Model::explain`] must equal).
    pub fn explain_exact(&self, observation: &Observation) -> Result<Explanation, NoExplanation> {
        let e = self.explainer.as_ref().ok_or(NoExplanation::NoCovers)?;
        let x = as_float32(observation.values());
        let mut contributions: PerFeature<f64> = observation.values().iter().map(|_| 0.0).collect();
        let mut scratch = explain::scratch_for_depth(self.info.max_depth);
        for tree in self.trees.iter().filter(|t| t.nodes.len() > 1) {
            explain::tree_shap(tree, &x, &mut contributions, &mut scratch);
        }
        Ok(Explanation { base_value: e.base_value, contributions })
    }

    /// For checks and tests: sklearn's raw score (log-odds), summed tree by
    /// tree in sklearn's order.
    pub fn raw_score_exact(&self, observation: &Observation) -> f64 {
        self.raw_score_exact_f32(&as_float32(observation.values()))
    }

    /// For checks and tests: the prediction from the exact tree walk only.
    pub fn predict_exact(&self, observation: &Observation) -> Prediction {
        prediction_from_raw(self.raw_score_exact(observation))
    }
}
