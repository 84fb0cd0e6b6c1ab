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

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::observation::{Observation, FEATURES, FEATURE_COUNT};

/// The export format this build reads (see models/README.md).
pub const EXPORT_FORMAT: &str = "scorer-gbdt";
pub const EXPORT_FORMAT_VERSION: u32 = 1;

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
    trees: Vec<ExportTree>,
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
    /// Distinct thresholds, ascending.
    thresholds: Vec<f64>,
    /// `sums[j]`: the stumps' total when exactly `j` thresholds are below x.
    sums: Vec<f64>,
}

impl StepFunction {
    #[inline]
    fn eval(&self, x: f64) -> f64 {
        let j = self.thresholds.partition_point(|&t| t < x);
        self.sums[j]
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

/// The loaded, checked ensemble. Build it once at start-up and share it.
#[derive(Debug, Clone)]
pub struct Model {
    info: ModelInfo,
    init: f64,
    trees: Vec<Tree>,
    compiled: Compiled,
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
        if doc.format_version != EXPORT_FORMAT_VERSION {
            return Err(invalid(format!(
                "format_version is {}, this build reads version {EXPORT_FORMAT_VERSION}",
                doc.format_version
            )));
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
            .map(|(i, t)| load_tree(t, doc.learning_rate).map_err(|e| invalid(format!("tree {i}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;

        let sha256 = hex(&Sha256::digest(bytes));
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
        };
        let compiled = compile(doc.init_raw_score, &trees);
        Ok(Model { info, init: doc.init_raw_score, trees, compiled })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Label and probability of malignancy, exactly as sklearn 1.2.1 computes them.
    #[inline]
    pub fn predict(&self, observation: &Observation) -> Prediction {
        let x = as_float32(observation.values());
        let c = &self.compiled;
        let mut raw = c.constant;
        for (step, &v) in c.steps.iter().zip(&x) {
            raw += step.eval(v);
        }
        for &t in &c.deep {
            raw += self.trees[t].term(&x);
        }
        if raw.abs() <= c.boundary {
            raw = self.raw_score_exact_f32(&x);
        }
        prediction_from_raw(raw)
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
        (0..FEATURE_COUNT).filter(move |&i| {
            let (lo, hi) = self.info.ranges[i];
            values[i] < lo || values[i] > hi
        })
    }
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

fn load_tree(t: &ExportTree, learning_rate: f64) -> Result<Tree, String> {
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
    Ok(Tree { nodes })
}

fn compile(init: f64, trees: &[Tree]) -> Compiled {
    let mut constant_terms = vec![init];
    let mut stumps: [Vec<(f64, f64, f64)>; FEATURE_COUNT] = Default::default();
    let mut deep = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        match tree.nodes.as_slice() {
            [leaf] => constant_terms.push(leaf.term),
            [root, a, b] if a.feature == LEAF && b.feature == LEAF => {
                let (l, r) = (&tree.nodes[root.left as usize], &tree.nodes[root.right as usize]);
                stumps[root.feature as usize].push((root.threshold, l.term, r.term));
            }
            _ => deep.push(i),
        }
    }
    let steps = stumps.map(|s| {
        let mut thresholds: Vec<f64> = s.iter().map(|&(t, _, _)| t).collect();
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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
                export_with(&format!("[{STUMP}]")).replace("\"format_version\":1", "\"format_version\":2"),
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
