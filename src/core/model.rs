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

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::explain::{self, Explanation, NoExplanation, PathElement, ShapTree};
use super::observation::{Observation, FEATURES, FEATURE_COUNT};

/// The export format this build reads (see models/README.md).
pub const EXPORT_FORMAT: &str = "scorer-gbdt";
/// The version `models/train.py` writes: covers and the training profile.
pub const EXPORT_FORMAT_VERSION: u32 = 2;
/// Version 1 (no covers, no profile) still loads; it cannot explain.
pub const OLDEST_EXPORT_FORMAT_VERSION: u32 = 1;

/// A cover may differ from the sum of its children's by this much, relative:
/// sklearn sums (float) sample weights separately per node.
const COVER_TOLERANCE: f64 = 1e-9;

/// The model shipped inside the binary.
pub const EMBEDDED_MODEL: &[u8] = include_bytes!("../../models/breast-cancer-gbc.json");

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("model file is not a valid export: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model file is not usable: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ModelError {
    ModelError::Invalid(msg.into())
}

/// A label and the probability of malignancy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// 1 = malignant, 0 = benign.
    pub label: u8,
    /// Probability of class 1 (malignant).
    pub probability: f64,
}

impl Prediction {
    pub fn label_name(&self) -> &'static str {
        if self.label == 1 {
            "malignant"
        } else {
            "benign"
        }
    }
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
    pub ranges: [(f64, f64); FEATURE_COUNT],
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
pub type Bins = [u32; FEATURE_COUNT];

/// How the training split looked to the model (format version 2), for drift
/// statistics. Bin edges are [`Model::bin_edges`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingProfile {
    /// Rows of the training split.
    pub rows: u64,
    /// Training rows the model predicts malignant.
    pub predicted_malignant: u64,
    /// In model order.
    pub features: [FeatureProfile; FEATURE_COUNT],
}

impl TrainingProfile {
    /// The share of training rows predicted malignant.
    pub fn predicted_malignant_share(&self) -> f64 {
        self.predicted_malignant as f64 / self.rows as f64
    }
}

/// One feature of the training profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureProfile {
    /// Mean over the training rows (min and max are in [`ModelInfo::ranges`]).
    pub mean: f64,
    /// Training rows per bin (`bin_edges(f).len() + 1` bins); they add up to `rows`.
    pub counts: Vec<u64>,
}

// ---- the export, as it is on disk -------------------------------------------------

#[derive(Deserialize)]
struct ExportDoc {
    format: String,
    format_version: u32,
    name: String,
    sklearn_version: String,
    classes: Vec<ExportClass>,
    features: Vec<ExportFeature>,
    init_raw_score: f64,
    learning_rate: f64,
    #[serde(default)]
    parameters: serde_json::Value,
    #[serde(default)]
    metrics: serde_json::Value,
    /// Version 2.
    #[serde(default)]
    training_profile: Option<ExportProfile>,
    trees: Vec<ExportTree>,
}

#[derive(Deserialize)]
struct ExportProfile {
    rows: u64,
    predicted_malignant: u64,
    features: Vec<ExportFeatureProfile>,
}

#[derive(Deserialize)]
struct ExportFeatureProfile {
    name: String,
    mean: f64,
    thresholds: Vec<f64>,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
struct ExportClass {
    label: i64,
    name: String,
}

#[derive(Deserialize)]
struct ExportFeature {
    name: String,
    dataset_name: String,
    min: f64,
    max: f64,
}

#[derive(Deserialize)]
struct ExportTree {
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<i64>,
    threshold: Vec<f64>,
    value: Vec<f64>,
    /// Version 2: sklearn's `weighted_n_node_samples`.
    #[serde(default)]
    cover: Option<Vec<f64>>,
}

// ---- the loaded form ---------------------------------------------------------------

const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Feature index, or `LEAF`.
    feature: u32,
    left: u32,
    right: u32,
    threshold: f64,
    /// For leaves: learning_rate * leaf value, the term sklearn adds.
    term: f64,
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    /// Per node, parallel to `nodes`; empty for version 1 exports.
    cover: Vec<f64>,
}

impl ShapTree for Tree {
    fn is_leaf(&self, node: usize) -> bool {
        self.nodes[node].feature == LEAF
    }
    fn feature(&self, node: usize) -> usize {
        self.nodes[node].feature as usize
    }
    fn hot_cold(&self, node: usize, x: &[f64; FEATURE_COUNT]) -> (usize, usize) {
        let n = &self.nodes[node];
        if x[n.feature as usize] <= n.threshold {
            (n.left as usize, n.right as usize)
        } else {
            (n.right as usize, n.left as usize)
        }
    }
    fn term(&self, node: usize) -> f64 {
        self.nodes[node].term
    }
    fn cover(&self, node: usize) -> f64 {
        self.cover[node]
    }
}

impl Tree {
    #[inline]
    fn term(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.feature == LEAF {
                return n.term;
            }
            i = if x[n.feature as usize] <= n.threshold { n.left } else { n.right } as usize;
        }
    }

    fn max_abs_term(&self) -> f64 {
        self.nodes.iter().filter(|n| n.feature == LEAF).map(|n| n.term.abs()).fold(0.0, f64::max)
    }

    fn depth(&self) -> usize {
        fn depth_of(nodes: &[Node], i: usize) -> usize {
            let n = &nodes[i];
            if n.feature == LEAF {
                0
            } else {
                1 + depth_of(nodes, n.left as usize).max(depth_of(nodes, n.right as usize))
            }
        }
        depth_of(&self.nodes, 0)
    }
}

/// Every stump on one feature, folded into a step function.
#[derive(Debug, Clone, Default)]
struct StepFunction {
    /// The feature's distinct split thresholds in every tree, ascending: the
    /// bin edges (deeper trees' thresholds included, so bins are the model's).
    thresholds: Vec<f64>,
    /// `sums[j]`: the stumps' total when exactly `j` thresholds are below x (bin `j`).
    sums: Vec<f64>,
}

impl StepFunction {
    /// The bin of a float32-rounded value.
    #[inline]
    fn bin(&self, x: f64) -> usize {
        self.thresholds.partition_point(|&t| t < x)
    }

    #[inline]
    fn eval(&self, x: f64) -> f64 {
        self.sums[self.bin(x)]
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    /// init + every single-leaf tree.
    constant: f64,
    steps: [StepFunction; FEATURE_COUNT],
    /// Trees deeper than one split, walked node by node.
    deep: Vec<usize>,
    /// |fast - exact| never exceeds this; closer to 0 we use the exact walk.
    boundary: f64,
}

/// What explaining needs, built at load time from the covers.
#[derive(Debug, Clone)]
struct Explainer {
    base_value: f64,
    /// Parallel to the step functions: `tables[f][j]` is feature f's
    /// contribution from its stumps when its value is in bin j.
    tables: [Vec<f64>; FEATURE_COUNT],
    /// Scratch length for TreeSHAP on the deep trees (0 when there are none).
    scratch_len: usize,
}

/// The loaded, checked ensemble. Build it once at start-up and share it.
#[derive(Debug, Clone)]
pub struct Model {
    info: ModelInfo,
    init: f64,
    trees: Vec<Tree>,
    compiled: Compiled,
    /// Version 2 exports only.
    explainer: Option<Explainer>,
    profile: Option<TrainingProfile>,
    /// Each feature's out-of-range warning, written once at load: the batch
    /// path gives one to most rows of some files, and formatting the range's
    /// floats for each cost a third more CPU on benches/throughput.sh's file.
    range_warnings: [String; FEATURE_COUNT],
}

impl Model {
    /// The model embedded in the binary.
    pub fn embedded() -> Result<Self, ModelError> {
        Self::from_json_bytes(EMBEDDED_MODEL)
    }

    /// `MODEL_PATH` if set, else the embedded model.
    pub fn from_env() -> Result<Self, ModelError> {
        match std::env::var_os("MODEL_PATH") {
            Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
            _ => Self::embedded(),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
        Self::from_json_bytes(&bytes)
    }

    /// Parses and checks an export; every structural problem is an error here,
    /// so prediction itself can never fail.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let doc: ExportDoc = serde_json::from_slice(bytes)?;
        if doc.format != EXPORT_FORMAT {
            return Err(invalid(format!("format is {:?}, expected {EXPORT_FORMAT:?}", doc.format)));
        }
        if !(OLDEST_EXPORT_FORMAT_VERSION..=EXPORT_FORMAT_VERSION).contains(&doc.format_version) {
            return Err(invalid(format!(
                "format_version is {}, this build reads versions {OLDEST_EXPORT_FORMAT_VERSION} to {EXPORT_FORMAT_VERSION}",
                doc.format_version
            )));
        }
        let v2 = doc.format_version >= 2;
        if !v2 && (doc.training_profile.is_some() || doc.trees.iter().any(|t| t.cover.is_some())) {
            return Err(invalid(
                "format_version 1 has no covers or training_profile; an export with them is version 2",
            ));
        }
        check_features(&doc.features)?;
        let classes: Vec<(i64, &str)> = doc.classes.iter().map(|c| (c.label, c.name.as_str())).collect();
        if classes != [(0, "benign"), (1, "malignant")] {
            return Err(invalid("classes must be [0 = benign, 1 = malignant]"));
        }
        if !doc.init_raw_score.is_finite() {
            return Err(invalid("init_raw_score is not finite"));
        }
        if !(doc.learning_rate.is_finite() && doc.learning_rate > 0.0) {
            return Err(invalid("learning_rate must be a positive finite number"));
        }
        if doc.trees.is_empty() {
            return Err(invalid("the ensemble has no trees"));
        }
        let trees = doc
            .trees
            .iter()
            .enumerate()
            .map(|(i, t)| load_tree(t, doc.learning_rate, v2).map_err(|e| invalid(format!("tree {i}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let compiled = compile(doc.init_raw_score, &trees);
        let profile = match &doc.training_profile {
            Some(p) => Some(load_profile(p, &compiled).map_err(|e| invalid(format!("training_profile: {e}")))?),
            None if v2 => return Err(invalid("format_version 2 needs a training_profile")),
            None => None,
        };
        let explainer = v2.then(|| build_explainer(doc.init_raw_score, &trees, &compiled));

        let sha256 = hex::encode(Sha256::digest(bytes));
        let mut ranges = [(0.0, 0.0); FEATURE_COUNT];
        for (r, f) in ranges.iter_mut().zip(&doc.features) {
            *r = (f.min, f.max);
        }
        let info = ModelInfo {
            version: format!("{}-{}", doc.name, &sha256[..12]),
            name: doc.name,
            sha256,
            sklearn_version: doc.sklearn_version,
            ranges,
            tree_count: trees.len(),
            max_depth: trees.iter().map(Tree::depth).max().unwrap_or(0),
            parameters: doc.parameters,
            metrics: doc.metrics,
            format_version: doc.format_version,
            base_value: explainer.as_ref().map(|e| e.base_value),
        };
        let range_warnings = std::array::from_fn(|i| {
            let (lo, hi) = info.ranges[i];
            format!(
                "'{}' is outside the range seen in training ({lo} to {hi}); the prediction is less reliable",
                FEATURES[i].api_name
            )
        });
        Ok(Model { info, init: doc.init_raw_score, trees, compiled, explainer, profile, range_warnings })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Label and probability of malignancy, exactly as sklearn 1.2.1 computes them.
    #[inline]
    pub fn predict(&self, observation: &Observation) -> Prediction {
        // Kept apart from predict_with_bins: writing the bins costs ~2 ns (measured), and
        // this is the path every caller without drift statistics takes.
        let x = as_float32(observation.values());
        let c = &self.compiled;
        let mut raw = c.constant;
        for (step, &v) in c.steps.iter().zip(&x) {
            raw += step.eval(v);
        }
        self.finish(raw, &x)
    }

    /// [`Model::predict`], and the bin of each value (found by the same search
    /// the prediction needs, so drift statistics cost no second search).
    #[inline]
    pub fn predict_with_bins(&self, observation: &Observation) -> (Prediction, Bins) {
        let x = as_float32(observation.values());
        let c = &self.compiled;
        let mut bins = [0u32; FEATURE_COUNT];
        let mut raw = c.constant;
        for ((step, &v), bin) in c.steps.iter().zip(&x).zip(&mut bins) {
            let j = step.bin(v);
            raw += step.sums[j];
            *bin = j as u32;
        }
        (self.finish(raw, &x), bins)
    }

    /// Adds the deep trees to the step functions' sum; near the boundary, the exact walk decides.
    #[inline]
    fn finish(&self, mut raw: f64, x: &[f64; FEATURE_COUNT]) -> Prediction {
        let c = &self.compiled;
        for &t in &c.deep {
            raw += self.trees[t].term(x);
        }
        if raw.abs() <= c.boundary {
            raw = self.raw_score_exact_f32(x);
        }
        prediction_from_raw(raw)
    }

    /// The bin of each value (see [`Bins`]).
    pub fn bins(&self, observation: &Observation) -> Bins {
        let x = as_float32(observation.values());
        let mut bins = [0u32; FEATURE_COUNT];
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
        let e = self.explainer.as_ref().ok_or(NoExplanation::NoCovers)?;
        let mut contributions = [0.0; FEATURE_COUNT];
        for ((c, table), &j) in contributions.iter_mut().zip(&e.tables).zip(bins) {
            *c = table[j as usize];
        }
        if !self.compiled.deep.is_empty() {
            let x = as_float32(observation.values());
            let mut scratch = vec![PathElement::default(); e.scratch_len];
            for &t in &self.compiled.deep {
                explain::tree_shap(&self.trees[t], &x, &mut contributions, &mut scratch);
            }
        }
        Ok(Explanation { base_value: e.base_value, contributions })
    }

    /// TreeSHAP on every tree, stumps included, with no table (slow; for tests
    /// and checks of the tables).
    pub fn explain_exact(&self, observation: &Observation) -> Result<Explanation, NoExplanation> {
        let e = self.explainer.as_ref().ok_or(NoExplanation::NoCovers)?;
        let x = as_float32(observation.values());
        let mut contributions = [0.0; FEATURE_COUNT];
        let mut scratch = explain::scratch_for_depth(self.info.max_depth);
        for tree in self.trees.iter().filter(|t| t.nodes.len() > 1) {
            explain::tree_shap(tree, &x, &mut contributions, &mut scratch);
        }
        Ok(Explanation { base_value: e.base_value, contributions })
    }

    /// sklearn's raw score (log-odds), summed tree by tree in sklearn's order.
    pub fn raw_score_exact(&self, observation: &Observation) -> f64 {
        self.raw_score_exact_f32(&as_float32(observation.values()))
    }

    /// Prediction from the exact tree walk only (slow; for tests and checks).
    pub fn predict_exact(&self, observation: &Observation) -> Prediction {
        prediction_from_raw(self.raw_score_exact(observation))
    }

    fn raw_score_exact_f32(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        let mut raw = self.init;
        for tree in &self.trees {
            raw += tree.term(x);
        }
        raw
    }

    /// Features whose value lies outside the range seen in training.
    pub fn out_of_range(&self, observation: &Observation) -> impl Iterator<Item = usize> + '_ {
        let values = *observation.values();
        (0..FEATURE_COUNT).filter(move |&i| outside_training_range(self.info.ranges[i], values[i]))
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
            out.write_str(FEATURES[i].api_name)?;
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
fn as_float32(values: &[f64; FEATURE_COUNT]) -> [f64; FEATURE_COUNT] {
    values.map(|v| v as f32 as f64)
}

#[inline]
fn prediction_from_raw(raw: f64) -> Prediction {
    // scipy.special.expit, then argmax over [1 - p, p] (ties go to class 0).
    let p = 1.0 / (1.0 + (-raw).exp());
    let label = u8::from(p > 1.0 - p);
    Prediction { label, probability: p }
}

fn check_features(features: &[ExportFeature]) -> Result<(), ModelError> {
    if features.len() != FEATURE_COUNT {
        return Err(invalid(format!("it has {} features; this service takes exactly {FEATURE_COUNT}", features.len())));
    }
    for (i, (got, want)) in features.iter().zip(FEATURES.iter()).enumerate() {
        if got.name != want.api_name || !got.dataset_name.eq_ignore_ascii_case(want.dataset_name) {
            return Err(invalid(format!(
                "feature {i} is {:?} ({:?}); expected {:?} ({:?})",
                got.name, got.dataset_name, want.api_name, want.dataset_name
            )));
        }
        if !(got.min.is_finite() && got.max.is_finite() && got.min <= got.max) {
            return Err(invalid(format!("feature {:?} has an invalid training range", got.name)));
        }
    }
    Ok(())
}

fn load_tree(t: &ExportTree, learning_rate: f64, with_cover: bool) -> Result<Tree, String> {
    let n = t.left.len();
    if n == 0 {
        return Err("no nodes".into());
    }
    if [t.right.len(), t.feature.len(), t.threshold.len(), t.value.len()].iter().any(|&l| l != n) {
        return Err("node arrays have different lengths".into());
    }
    if n > u32::MAX as usize / 2 {
        return Err("too many nodes".into());
    }
    let mut nodes = Vec::with_capacity(n);
    let mut parents = vec![0u32; n];
    for i in 0..n {
        let (l, r, f) = (t.left[i], t.right[i], t.feature[i]);
        let node = if l == -1 && r == -1 {
            let term = learning_rate * t.value[i];
            if !term.is_finite() {
                return Err(format!("leaf {i} has a non-finite value"));
            }
            Node { feature: LEAF, left: 0, right: 0, threshold: 0.0, term }
        } else {
            // Children after their parent (sklearn's depth-first order): no cycles,
            // every walk ends at a leaf.
            let in_range = |c: i64| c > i as i64 && c < n as i64;
            if !in_range(l) || !in_range(r) || l == r {
                return Err(format!("node {i} has children {l} and {r}; each must be a later node of the tree"));
            }
            if !(0..FEATURE_COUNT as i64).contains(&f) {
                return Err(format!("node {i} splits on feature {f}, outside 0..{FEATURE_COUNT}"));
            }
            if !t.threshold[i].is_finite() {
                return Err(format!("node {i} has a non-finite threshold"));
            }
            for c in [l, r] {
                parents[c as usize] += 1;
            }
            Node { feature: f as u32, left: l as u32, right: r as u32, threshold: t.threshold[i], term: 0.0 }
        };
        nodes.push(node);
    }
    if parents[0] != 0 || parents[1..].iter().any(|&p| p != 1) {
        return Err("nodes do not form a single tree (a node is shared or unreachable)".into());
    }
    let cover = if with_cover { load_cover(t.cover.as_deref(), &nodes)? } else { Vec::new() };
    Ok(Tree { nodes, cover })
}

/// Covers must be positive (TreeSHAP divides by them) and consistent: a
/// parent's is the sum of its children's, or the explanations would not add up.
fn load_cover(cover: Option<&[f64]>, nodes: &[Node]) -> Result<Vec<f64>, String> {
    let cover = cover.ok_or("format_version 2 needs a cover for every node")?;
    if cover.len() != nodes.len() {
        return Err(format!("cover has {} entries for {} nodes", cover.len(), nodes.len()));
    }
    if let Some(i) = cover.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(format!("node {i} has a cover that is not a positive finite number"));
    }
    for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.feature != LEAF) {
        let (parent, children) = (cover[i], cover[n.left as usize] + cover[n.right as usize]);
        if (parent - children).abs() > COVER_TOLERANCE * parent {
            return Err(format!(
                "node {i}'s cover {parent} is not the sum of its children's ({} + {})",
                cover[n.left as usize], cover[n.right as usize]
            ));
        }
    }
    Ok(cover.to_vec())
}

/// Checks the profile against the model: its bins must be the model's.
fn load_profile(p: &ExportProfile, compiled: &Compiled) -> Result<TrainingProfile, String> {
    if p.rows == 0 {
        return Err("rows must be positive".into());
    }
    if p.predicted_malignant > p.rows {
        return Err("predicted_malignant exceeds rows".into());
    }
    if p.features.len() != FEATURE_COUNT {
        return Err(format!("it has {} features; the model has {FEATURE_COUNT}", p.features.len()));
    }
    let mut features: [FeatureProfile; FEATURE_COUNT] = Default::default();
    for (i, (f, out)) in p.features.iter().zip(&mut features).enumerate() {
        let name = FEATURES[i].api_name;
        if f.name != name {
            return Err(format!("feature {i} is {:?}; expected {name:?}", f.name));
        }
        if f.thresholds != compiled.steps[i].thresholds {
            return Err(format!("the thresholds of {name:?} are not the model's distinct split thresholds"));
        }
        if f.counts.len() != f.thresholds.len() + 1 {
            return Err(format!("{name:?} has {} counts for {} bins", f.counts.len(), f.thresholds.len() + 1));
        }
        if f.counts.iter().try_fold(0u64, |a, &c| a.checked_add(c)) != Some(p.rows) {
            return Err(format!("the counts of {name:?} do not add up to rows ({})", p.rows));
        }
        if !f.mean.is_finite() {
            return Err(format!("the mean of {name:?} is not finite"));
        }
        *out = FeatureProfile { mean: f.mean, counts: f.counts.clone() };
    }
    Ok(TrainingProfile { rows: p.rows, predicted_malignant: p.predicted_malignant, features })
}

/// The base value and the per-bin contribution tables (covers checked).
fn build_explainer(init: f64, trees: &[Tree], compiled: &Compiled) -> Explainer {
    let mut base_terms = vec![init];
    // Per feature: each stump's (threshold, left term - E, right term - E).
    let mut stumps: [Vec<(f64, f64, f64)>; FEATURE_COUNT] = Default::default();
    let mut deep_depth = None;
    for tree in trees {
        let expected = explain::expected_term(tree);
        base_terms.push(expected);
        match tree.nodes.as_slice() {
            [_] => {}
            [root, a, b] if a.feature == LEAF && b.feature == LEAF => {
                let (l, r) = (&tree.nodes[root.left as usize], &tree.nodes[root.right as usize]);
                stumps[root.feature as usize].push((root.threshold, l.term - expected, r.term - expected));
            }
            _ => deep_depth = deep_depth.max(Some(tree.depth())),
        }
    }
    let tables = std::array::from_fn(|f| {
        let thresholds = &compiled.steps[f].thresholds;
        (0..=thresholds.len())
            .map(|j| {
                neumaier_sum(
                    stumps[f].iter().map(|&(t, l, r)| if thresholds.partition_point(|&u| u < t) >= j { l } else { r }),
                )
            })
            .collect()
    });
    Explainer {
        base_value: neumaier_sum(base_terms.into_iter()),
        tables,
        scratch_len: deep_depth.map_or(0, |d| explain::scratch_for_depth(d).len()),
    }
}

fn compile(init: f64, trees: &[Tree]) -> Compiled {
    let mut constant_terms = vec![init];
    let mut stumps: [Vec<(f64, f64, f64)>; FEATURE_COUNT] = Default::default();
    let mut split_thresholds: [Vec<f64>; FEATURE_COUNT] = Default::default();
    let mut deep = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        for n in tree.nodes.iter().filter(|n| n.feature != LEAF) {
            split_thresholds[n.feature as usize].push(n.threshold);
        }
        match tree.nodes.as_slice() {
            [leaf] => constant_terms.push(leaf.term),
            [root, a, b] if a.feature == LEAF && b.feature == LEAF => {
                let (l, r) = (&tree.nodes[root.left as usize], &tree.nodes[root.right as usize]);
                stumps[root.feature as usize].push((root.threshold, l.term, r.term));
            }
            _ => deep.push(i),
        }
    }
    let mut split_thresholds = split_thresholds.into_iter();
    let steps = stumps.map(|s| {
        let mut thresholds = split_thresholds.next().unwrap_or_default();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        let sums = (0..=thresholds.len())
            .map(|j| {
                // j thresholds lie below x: a stump goes left iff its threshold is not among them.
                neumaier_sum(s.iter().map(|&(t, l, r)| if thresholds.partition_point(|&u| u < t) >= j { l } else { r }))
            })
            .collect();
        StepFunction { thresholds, sums }
    });
    // A rigorous bound on how far two summation orders of the same terms can
    // drift apart: twice the classic gamma_n * sum|terms|, with slack.
    let magnitude: f64 = init.abs() + trees.iter().map(Tree::max_abs_term).sum::<f64>();
    let n = (trees.len() + 2 * FEATURE_COUNT + 8) as f64;
    let u = f64::EPSILON / 2.0;
    let boundary = 4.0 * n * u * magnitude / (1.0 - n * u);
    Compiled { constant: neumaier_sum(constant_terms.into_iter()), steps, deep, boundary }
}

/// Compensated summation, so the compiled tables carry no error of their own.
fn neumaier_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = sum + v;
        c += if sum.abs() >= v.abs() { (sum - t) + v } else { (v - t) + sum };
        sum = t;
    }
    sum + c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made export: `trees` is a JSON array of tree objects.
    fn export_with(trees: &str) -> String {
        let features: Vec<String> = FEATURES
            .iter()
            .map(|f| format!(r#"{{"name":"{}","dataset_name":"{}","min":0.0,"max":10.0}}"#, f.api_name, f.dataset_name))
            .collect();
        format!(
            r#"{{"format":"scorer-gbdt","format_version":1,"name":"t","sklearn_version":"1.2.1",
            "classes":[{{"label":0,"name":"benign"}},{{"label":1,"name":"malignant"}}],
            "features":[{}],"init_raw_score":-0.5,"learning_rate":0.1,"trees":{trees}}}"#,
            features.join(",")
        )
    }

    const STUMP: &str =
        r#"{"left":[1,-1,-1],"right":[2,-1,-1],"feature":[3,-1,-1],"threshold":[2.5,0,0],"value":[0,-1.0,3.0]}"#;
    // depth 2: root on feature 0 at 1.0; left child splits feature 1 at 5.0.
    const DEEP: &str = r#"{"left":[1,2,-1,-1,-1],"right":[4,3,-1,-1,-1],"feature":[0,1,-1,-1,-1],"threshold":[1.0,5.0,0,0,0],"value":[0,0,2.0,-2.0,7.0]}"#;

    fn obs(v: [f64; 5]) -> Observation {
        Observation::from_values(v).unwrap()
    }

    #[test]
    fn the_embedded_model_loads() {
        let m = Model::embedded().unwrap();
        assert!(m.info().tree_count > 0);
        assert!(m.info().version.starts_with("breast-cancer-gbc-"));
    }

    #[test]
    fn the_version_names_the_artifact_by_the_lowercase_hex_of_its_sha256() {
        let m = Model::from_json_bytes(export_with(&format!("[{STUMP}]")).as_bytes()).unwrap();
        let digest = Sha256::digest(export_with(&format!("[{STUMP}]")).as_bytes());
        let sha = &m.info().sha256;
        assert_eq!(sha.len(), 64);
        for (i, byte) in digest.iter().enumerate() {
            assert_eq!(u8::from_str_radix(&sha[2 * i..2 * i + 2], 16).unwrap(), *byte);
        }
        assert_eq!(sha.to_ascii_lowercase(), *sha);
        assert_eq!(m.info().version, format!("t-{}", &sha[..12]));
    }

    #[test]
    fn stumps_and_deep_trees_predict_like_the_tree_walk() {
        let m = Model::from_json_bytes(export_with(&format!("[{STUMP},{DEEP},{STUMP}]")).as_bytes()).unwrap();
        assert_eq!(m.info().max_depth, 2);
        // x0 <= 1, x1 <= 5: deep leaf 2.0; x3 <= 2.5: stumps -1 each.
        let raw = -0.5 - 0.1 + 0.1 * 2.0 - 0.1;
        let o = obs([0.5, 4.0, 0.0, 2.5, 0.0]);
        assert_eq!(m.raw_score_exact(&o), raw);
        assert_eq!(m.predict(&o), m.predict_exact(&o));
        for x in [[2.0, 0.0, 0.0, 2.6, 0.0], [0.0, 6.0, 0.0, 0.0, 0.0], [1.0, 5.0, 0.0, 9.0, 9.0]] {
            let o = obs(x);
            let (fast, exact) = (m.predict(&o), m.predict_exact(&o));
            assert_eq!(fast.label, exact.label);
            assert!((fast.probability - exact.probability).abs() < 1e-15);
        }
    }

    #[test]
    fn compares_the_float32_value_with_the_float64_threshold() {
        // 2.5000001 rounds to float32 2.5: it goes left like sklearn's.
        let m = Model::from_json_bytes(export_with(&format!("[{STUMP}]")).as_bytes()).unwrap();
        let left = m.predict(&obs([0.0, 0.0, 0.0, 2.5, 0.0]));
        assert_eq!(m.predict(&obs([0.0, 0.0, 0.0, 2.500_000_01, 0.0])), left);
        assert_ne!(m.predict(&obs([0.0, 0.0, 0.0, 2.500_001, 0.0])), left);
    }

    #[test]
    fn rejects_broken_exports_with_a_clear_error() {
        let cases = [
            (export_with("[]"), "no trees"),
            (
                export_with(r#"[{"left":[1,-1],"right":[0,-1],"feature":[0,-1],"threshold":[1,0],"value":[0,0]}]"#),
                "later node",
            ),
            (
                export_with(
                    r#"[{"left":[1,-1,-1],"right":[2,-1,-1],"feature":[7,-1,-1],"threshold":[1,0,0],"value":[0,0,0]}]"#,
                ),
                "feature 7",
            ),
            (
                export_with(r#"[{"left":[1,-1],"right":[2,-1],"feature":[0,-1],"threshold":[1,0],"value":[0,0]}]"#),
                "later node",
            ),
            (
                export_with(
                    r#"[{"left":[1],"right":[2,-1,-1],"feature":[0,-1,-1],"threshold":[1,0,0],"value":[0,0,0]}]"#,
                ),
                "different lengths",
            ),
            (
                export_with(
                    r#"[{"left":[1,-1,-1,-1],"right":[2,-1,-1,-1],"feature":[0,-1,-1,-1],"threshold":[1,0,0,0],"value":[0,0,0,0]}]"#,
                ),
                "unreachable",
            ),
            (
                export_with(&format!("[{STUMP}]")).replace("\"format_version\":1", "\"format_version\":3"),
                "format_version",
            ),
            (export_with(&format!("[{STUMP}]")).replace("worstArea", "worstPerimeter"), "feature 3"),
            (String::from("{\"format\":"), "not a valid export"),
        ];
        for (text, expected) in cases {
            let err = Model::from_json_bytes(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn neumaier_sum_is_exact_where_naive_summation_is_not() {
        let v = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(neumaier_sum(v.into_iter()), 2.0);
    }
}
