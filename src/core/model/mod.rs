//! The gradient-boosted tree ensemble: loading, checking, and exact prediction.
//!
//! sklearn's `GradientBoostingClassifier` computes
//! `raw = init + lr*leaf(tree_1) + lr*leaf(tree_2) + ...` in tree order, with
//! each tree comparing `float32(x) <= threshold` (float64), then
//! `p = expit(raw)` and label = argmax(1 - p, p). We reproduce that exactly:
//!
//! * [`Model::raw_score_exact`] walks every tree in sklearn's order, so its
//!   sum is bit-identical.
//! * [`Model::predict`] uses a form compiled at load time: depth-1 trees
//!   ("stumps") on the same feature add up to a step function of that feature,
//!   so they become one sorted threshold table per feature (a binary search
//!   instead of hundreds of comparisons). Summing in another order can differ
//!   from sklearn's sum by a few ulps, bounded at load time; when the raw score
//!   is within that bound of the decision boundary we fall back to the exact
//!   walk, so labels always match sklearn and probabilities agree far inside
//!   1e-12.
//!
//! Format version 2 exports also carry every node's cover (training rows that
//! reached it) and the training profile; with them the model explains its raw
//! score exactly ([`Model::explain`], see `explain.rs`) and says which bin of
//! its thresholds each value falls in ([`Model::predict_with_bins`]), which the
//! drift statistics count against the profile.
//!
//! The files: `export` is the format on disk and every rule a file must
//! meet; `tree` one loaded tree and its walk; `compile` the step
//! functions, the exact-walk boundary and the explanation tables; `checks`
//! the slow reference paths that tests and benches compare the fast ones
//! with. Reading a file or the environment is the edge's business
//! (`crate::model_file`): core only parses bytes.

mod checks;
mod compile;
mod compiled;
mod export;
mod tree;

use sha2::{Digest, Sha256};

use super::explain::{self, Explanation, NoExplanation, PathElement, Point};
use super::features::{Features, MAX_FEATURES};
use super::observation::Observation;
use compile::{Compiled, Explainer};
use export::ExportDoc;
use tree::Tree;

/// The export format this build reads (see models/README.md).
pub const EXPORT_FORMAT: &str = "scorer-gbdt";
/// The newest version this build reads: version 2 (covers and the training
/// profile) plus the whole contract (API names, classes, target).
pub const EXPORT_FORMAT_VERSION: u32 = 3;
/// Version 1 (no covers, no profile) still loads; it cannot explain.
pub const OLDEST_EXPORT_FORMAT_VERSION: u32 = 1;

/// The most splits a tree may have on any root-to-leaf path; a deeper tree
/// is a [`ModelError`] at load. It bounds the recursion of TreeSHAP and of
/// the expected values (64 levels is a few KiB of stack) and their scratch
/// (O(depth²) path elements, ~70 KiB at the cap). sklearn's boosted trees
/// are shallow (`max_depth` 3 by default; the shipped model's are 1 deep),
/// and a tree 64 deep would need more training rows than exist.
pub const MAX_TREE_DEPTH: usize = 64;

/// The model shipped inside the binary.
pub const EMBEDDED_MODEL: &[u8] = include_bytes!("../../../models/breast-cancer-gbc.json");
/// Its sha256, computed by build.rs (a cold start hashes nothing).
const EMBEDDED_SHA256: [u8; 32] = *include_bytes!(concat!(env!("OUT_DIR"), "/embedded.sha256"));
/// Its compiled form (models/breast-cancer-gbc.json.compiled) if build.rs
/// found it current, else empty.
const EMBEDDED_COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/embedded.compiled"));

pub use compiled::{compiled_path_for, COMPILED_FORMAT_VERSION};

/// Why bytes are not a usable model. Names the tree, node or field and the
/// rule; says nothing of where the bytes came from (the edge adds that).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a valid model export: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the model export is not usable: {0}")]
    Invalid(String),
    /// A compiled form that does not belong to the export beside it, or is damaged.
    #[error("the compiled form is not usable: {0}")]
    Compiled(String),
}

fn invalid(msg: impl Into<String>) -> ModelError {
    ModelError::Invalid(msg.into())
}

/// A label and the probability of malignancy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// 1 or 0 (the shipped model: 1 = malignant, 0 = benign; the names are
    /// the export's, [`Model::class_name`]).
    pub label: u8,
    /// Probability of class 1.
    pub probability: f64,
}

/// What callers may show about the model (GET /, logs, summaries).
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    /// `<name>-<first 12 hex digits of the artifact's sha256>`.
    pub version: String,
    pub sha256: String,
    pub sklearn_version: String,
    /// Per feature, the (min, max) seen in training, in model order.
    pub ranges: Vec<(f64, f64)>,
    pub tree_count: usize,
    pub max_depth: usize,
    pub parameters: serde_json::Value,
    pub metrics: serde_json::Value,
    /// The export's `format_version`.
    pub format_version: u32,
    /// The explanations' base value (expected raw score, log-odds); `None` for
    /// exports that cannot explain (version 1).
    pub base_value: Option<f64>,
}

/// Where each value fell among its feature's distinct split thresholds: bin
/// `j` holds `thresholds[j-1] < float32(x) <= thresholds[j]` (the model's rule),
/// so bins are exactly the distinctions the model can see. In model order.
/// Inline; entries past the model's features are 0.
pub type Bins = [u32; MAX_FEATURES];

/// How the training split looked to the model (format version 2), for drift
/// statistics. Bin edges are [`Model::bin_edges`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingProfile {
    /// Rows of the training split.
    pub rows: u64,
    /// Training rows the model predicts malignant.
    pub predicted_malignant: u64,
    /// In model order.
    pub features: Vec<FeatureProfile>,
}

impl TrainingProfile {
    /// The share of training rows predicted malignant.
    pub fn predicted_malignant_share(&self) -> f64 {
        self.predicted_malignant as f64 / self.rows as f64
    }
}

/// One feature of the training profile.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureProfile {
    /// Mean over the training rows (min and max are in [`ModelInfo::ranges`]).
    pub mean: f64,
    /// Training rows per bin (`bin_edges(f).len() + 1` bins); they add up to `rows`.
    pub counts: Vec<u64>,
}

/// Everything a [`Model`] is made of before what is derived from it.
struct Parts {
    /// Of the export's bytes.
    sha256: [u8; 32],
    name: String,
    sklearn_version: String,
    format_version: u32,
    ranges: Vec<(f64, f64)>,
    parameters: serde_json::Value,
    metrics: serde_json::Value,
    features: Features,
    class_names: [String; 2],
    init: f64,
    trees: Vec<Tree>,
    compiled: Compiled,
    explainer: Option<Explainer>,
    profile: Option<TrainingProfile>,
}

/// The loaded, checked ensemble. Build it once at start-up and share it.
#[derive(Debug, Clone)]
pub struct Model {
    info: ModelInfo,
    /// The contract: API and dataset names in model order.
    features: Features,
    /// The names of label 0 and label 1.
    class_names: [String; 2],
    init: f64,
    trees: Vec<Tree>,
    compiled: Compiled,
    /// Version 2 exports only.
    explainer: Option<Explainer>,
    profile: Option<TrainingProfile>,
    /// Each feature's out-of-range warning, written once at load: the batch
    /// path gives one to most rows of some files, and formatting the range's
    /// floats for each cost a third more CPU on benches/throughput.sh's file.
    range_warnings: Vec<String>,
}

impl Model {
    /// The model embedded in the binary: its compiled form (written by
    /// `scorer model compile`, left out by build.rs unless it records the
    /// embedded export's sha256), or, failing that, the export itself:
    /// correct, only slower to start (a test fails while the committed form
    /// is not what this build compiles).
    pub fn embedded() -> Result<Self, ModelError> {
        Self::from_embedded_compiled(EMBEDDED_COMPILED, &EMBEDDED_SHA256)
            .or_else(|_| Self::from_json_bytes(EMBEDDED_MODEL))
    }

    /// Parses and checks an export; every structural problem is an error here,
    /// so prediction itself can never fail.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let doc: ExportDoc = serde_json::from_slice(bytes)?;
        let (features, class_names) = doc.check_header()?;
        let v2 = doc.can_explain();
        let trees = doc.load_trees()?;
        let compiled = compile::compile(doc.init_raw_score, &trees, features.len());
        let profile = match &doc.training_profile {
            Some(p) => Some(export::load_profile(p, &compiled.steps, &features)?),
            None if v2 => return Err(invalid("format_version 2 needs a training_profile")),
            None => None,
        };
        let explainer = v2.then(|| compile::build_explainer(doc.init_raw_score, &trees, &compiled));
        Ok(Self::assemble(Parts {
            sha256: Sha256::digest(bytes).into(),
            name: doc.name,
            sklearn_version: doc.sklearn_version,
            format_version: doc.format_version,
            ranges: doc.features.iter().map(|f| (f.min, f.max)).collect(),
            parameters: doc.parameters,
            metrics: doc.metrics,
            features,
            class_names,
            init: doc.init_raw_score,
            trees,
            compiled,
            explainer,
            profile,
        }))
    }

    /// The model from its parts, checked (the export's) or trusted (the
    /// compiled form's, which a checked export wrote); what both derive.
    fn assemble(p: Parts) -> Self {
        let sha256 = hex::encode(p.sha256);
        let info = ModelInfo {
            version: format!("{}-{}", p.name, &sha256[..12]),
            name: p.name,
            sha256,
            sklearn_version: p.sklearn_version,
            ranges: p.ranges,
            tree_count: p.trees.len(),
            max_depth: p.trees.iter().map(|t| t.depth).max().unwrap_or(0),
            parameters: p.parameters,
            metrics: p.metrics,
            format_version: p.format_version,
            base_value: p.explainer.as_ref().map(|e| e.base_value),
        };
        let range_warnings = p
            .features
            .api_names()
            .zip(&info.ranges)
            .map(|(name, (lo, hi))| {
                format!(
                    "'{name}' is outside the range seen in training ({lo} to {hi}); the prediction is less reliable"
                )
            })
            .collect();
        Model {
            info,
            features: p.features,
            class_names: p.class_names,
            init: p.init,
            trees: p.trees,
            compiled: p.compiled,
            explainer: p.explainer,
            profile: p.profile,
            range_warnings,
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The first 64 bits of the export's sha256: what accumulators of one
    /// model's figures (drift, challenger) check before they merge or report.
    pub fn id(&self) -> u64 {
        u64::from_str_radix(self.info.sha256.get(..16).unwrap_or_default(), 16).unwrap_or_default()
    }

    /// The model's features: the contract every path follows.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The export's name of label 0 or 1 (the shipped model: `benign`, `malignant`).
    pub fn class_name(&self, label: u8) -> &str {
        &self.class_names[usize::from(label == 1)]
    }

    /// Label and probability of malignancy, exactly as sklearn 1.2.1 computes them.
    #[inline]
    pub fn predict(&self, observation: &Observation) -> Prediction {
        // Kept apart from predict_with_bins: writing the bins costs ~2 ns (measured), and
        // this is the path every caller without drift statistics takes.
        let c = &self.compiled;
        let mut raw = c.constant;
        for (step, &v) in c.steps.iter().zip(observation.values()) {
            raw += step.eval(v as f32 as f64);
        }
        self.finish(raw, observation)
    }

    /// [`Model::predict`], and the bin of each value (found by the same search
    /// the prediction needs, so drift statistics cost no second search).
    #[inline]
    pub fn predict_with_bins(&self, observation: &Observation) -> (Prediction, Bins) {
        let c = &self.compiled;
        let mut bins = [0u32; MAX_FEATURES];
        let mut raw = c.constant;
        for ((step, &v), bin) in c.steps.iter().zip(observation.values()).zip(&mut bins) {
            let j = step.bin(v as f32 as f64);
            raw += step.sums[j];
            *bin = j as u32;
        }
        (self.finish(raw, observation), bins)
    }

    /// Adds the deep trees to the step functions' sum; near the boundary, the
    /// exact walk decides. The float32-rounded point (inline, `MAX_FEATURES` wide) is made only
    /// when a tree walk needs it: a model of stumps far from the boundary
    /// never does.
    #[inline]
    fn finish(&self, mut raw: f64, observation: &Observation) -> Prediction {
        let c = &self.compiled;
        if !c.deep.is_empty() {
            let x = as_float32(observation.values());
            for &t in &c.deep {
                raw += self.trees[t].term(&x);
            }
        }
        if raw.abs() <= c.boundary {
            raw = self.raw_score_exact_f32(&as_float32(observation.values()));
        }
        prediction_from_raw(raw)
    }

    /// The bin of each value (see [`Bins`]).
    pub fn bins(&self, observation: &Observation) -> Bins {
        let x = as_float32(observation.values());
        let mut bins = [0u32; MAX_FEATURES];
        for ((step, &v), bin) in self.compiled.steps.iter().zip(&x).zip(&mut bins) {
            *bin = step.bin(v) as u32;
        }
        bins
    }

    /// Feature `feature`'s bin edges: its distinct split thresholds, ascending.
    /// There are `bin_edges(f).len() + 1` bins.
    pub fn bin_edges(&self, feature: usize) -> &[f64] {
        &self.compiled.steps[feature].thresholds
    }

    /// The training profile (format version 2 exports; `None` for version 1).
    pub fn training_profile(&self) -> Option<&TrainingProfile> {
        self.profile.as_ref()
    }

    /// Whether [`Model::explain`] can answer (format version 2 exports).
    pub fn can_explain(&self) -> bool {
        self.explainer.is_some()
    }

    /// The exact path-dependent TreeSHAP explanation of the raw score (what
    /// `shap.TreeExplainer(model).shap_values` gives). Fails only for exports
    /// without covers (format version 1).
    pub fn explain(&self, observation: &Observation) -> Result<Explanation, NoExplanation> {
        self.explain_with_bins(observation, &self.bins(observation))
    }

    /// [`Model::explain`] reusing the bins [`Model::predict_with_bins`] found for
    /// this observation: for a model of stumps, one table lookup per feature.
    pub fn explain_with_bins(&self, observation: &Observation, bins: &Bins) -> Result<Explanation, NoExplanation> {
        let mut out = Explanation::default();
        self.explain_into(observation, bins, &mut out)?;
        Ok(out)
    }

    /// [`Model::explain_with_bins`] written into `out` (the scorer's buffer:
    /// no per-feature array is moved per row).
    pub fn explain_into(
        &self,
        observation: &Observation,
        bins: &Bins,
        out: &mut Explanation,
    ) -> Result<(), NoExplanation> {
        let e = self.explainer.as_ref().ok_or(NoExplanation::NoCovers)?;
        out.base_value = e.base_value;
        out.contributions.clear();
        out.contributions.extend(e.tables.iter().zip(bins).map(|(table, &j)| table[j as usize]));
        if !self.compiled.deep.is_empty() {
            let x = as_float32(observation.values());
            let mut scratch = vec![PathElement::default(); e.scratch_len];
            for &t in &self.compiled.deep {
                explain::tree_shap(&self.trees[t], &x, &mut out.contributions, &mut scratch);
            }
        }
        Ok(())
    }

    fn raw_score_exact_f32(&self, x: &Point) -> f64 {
        let mut raw = self.init;
        for tree in &self.trees {
            raw += tree.term(x);
        }
        raw
    }

    /// Features whose value lies outside the range seen in training.
    pub fn out_of_range<'a>(&'a self, observation: &'a Observation) -> impl Iterator<Item = usize> + 'a {
        observation
            .values()
            .iter()
            .zip(&self.info.ranges)
            .enumerate()
            .filter(|(_, (&v, &range))| outside_training_range(range, v))
            .map(|(i, _)| i)
    }

    /// The warning for feature `i` outside its training range: the one
    /// wording every path gives (HTTP and SQS `warnings`, the CSV and
    /// Distributed Map `warnings` column). Names the range, never the value.
    pub fn write_range_warning(&self, i: usize, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        out.write_str(&self.range_warnings[i])
    }

    /// The features of `observation` outside their training range, by API
    /// name, joined with "; " (empty when there is none): the CSV and
    /// Distributed Map `warnings` cell. The same rule as the HTTP and SQS
    /// `warnings` ([`Model::write_range_warning`]); a batch cell names the
    /// features only, as the sentence (with the range, ~90 bytes a feature)
    /// on every row nearly doubled the throughput bench's output (123 -> 220
    /// MB, 76 % of its rows out of range) and cost ~40 % more CPU.
    pub fn write_range_warnings(&self, observation: &Observation, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        for (n, i) in self.out_of_range(observation).enumerate() {
            if n > 0 {
                out.write_str("; ")?;
            }
            out.write_str(self.features.api_name(i))?;
        }
        Ok(())
    }
}

/// The out-of-range rule, for warnings and drift statistics alike: a value
/// below the training minimum or above the training maximum (compared as given,
/// not rounded to float32).
#[inline]
pub fn outside_training_range((min, max): (f64, f64), value: f64) -> bool {
    value < min || value > max
}

/// sklearn compares float32(x) with float64 thresholds.
#[inline]
fn as_float32(values: &[f64]) -> Point {
    let mut x = [0.0; MAX_FEATURES];
    for (x, &v) in x.iter_mut().zip(values) {
        *x = v as f32 as f64;
    }
    x
}

#[inline]
fn prediction_from_raw(raw: f64) -> Prediction {
    // scipy.special.expit, then argmax over [1 - p, p] (ties go to class 0).
    let p = 1.0 / (1.0 + (-raw).exp());
    let label = u8::from(p > 1.0 - p);
    Prediction { label, probability: p }
}

#[cfg(test)]
mod tests;
