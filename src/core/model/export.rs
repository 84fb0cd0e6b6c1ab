//! The export as it is on disk (models/README.md describes the format), and
//! every rule a file must meet before it becomes a [`Model`](super::Model).
//! Nothing past this module checks the file again: prediction cannot fail.
//!
//! Messages name the tree, node or field and the rule broken, in the words
//! of the format; they never name where the file came from (the edge that
//! read it adds that).

use serde::Deserialize;

use super::super::features::{Feature, Features};
use super::compile::StepFunction;
use super::tree::{Node, Tree, LEAF};
use super::{
    invalid, FeatureProfile, ModelError, TrainingProfile, EXPORT_FORMAT, EXPORT_FORMAT_VERSION, MAX_TREE_DEPTH,
    OLDEST_EXPORT_FORMAT_VERSION,
};

/// A cover may differ from the sum of its children's by this much, relative:
/// sklearn sums (float) sample weights separately per node.
const COVER_TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
pub(super) struct ExportDoc {
    format: String,
    pub(super) format_version: u32,
    pub(super) name: String,
    pub(super) sklearn_version: String,
    classes: Vec<ExportClass>,
    pub(super) features: Vec<ExportFeature>,
    pub(super) init_raw_score: f64,
    pub(super) learning_rate: f64,
    #[serde(default)]
    pub(super) parameters: serde_json::Value,
    #[serde(default)]
    pub(super) metrics: serde_json::Value,
    /// Version 2.
    #[serde(default)]
    pub(super) training_profile: Option<ExportProfile>,
    pub(super) trees: Vec<ExportTree>,
}

#[derive(Deserialize)]
pub(super) struct ExportProfile {
    rows: u64,
    /// Version 3 (training rows labelled 1); version 2 calls it `predicted_malignant`.
    #[serde(default)]
    predicted_positive: Option<u64>,
    #[serde(default)]
    predicted_malignant: Option<u64>,
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
pub(super) struct ExportFeature {
    name: String,
    /// Version 3: the JSON key clients send (equal to `name`, kept for version 2 readers).
    #[serde(default)]
    api_name: Option<String>,
    dataset_name: String,
    pub(super) min: f64,
    pub(super) max: f64,
}

#[derive(Deserialize)]
pub(super) struct ExportTree {
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<i64>,
    threshold: Vec<f64>,
    value: Vec<f64>,
    /// Version 2: sklearn's `weighted_n_node_samples`.
    #[serde(default)]
    cover: Option<Vec<f64>>,
}

impl ExportDoc {
    /// Version 2 and later: covers and a training profile.
    pub(super) fn can_explain(&self) -> bool {
        self.format_version >= 2
    }

    /// Everything but the trees and the profile: format, version, features,
    /// classes, the initial score and the learning rate. Returns the features
    /// and the class names (label 0, label 1).
    pub(super) fn check_header(&self) -> Result<(Features, [String; 2]), ModelError> {
        if self.format != EXPORT_FORMAT {
            return Err(invalid(format!("format is {:?}, expected {EXPORT_FORMAT:?}", self.format)));
        }
        if !(OLDEST_EXPORT_FORMAT_VERSION..=EXPORT_FORMAT_VERSION).contains(&self.format_version) {
            return Err(invalid(format!(
                "format_version is {}, this build reads versions {OLDEST_EXPORT_FORMAT_VERSION} to {EXPORT_FORMAT_VERSION}",
                self.format_version
            )));
        }
        if !self.can_explain() && (self.training_profile.is_some() || self.trees.iter().any(|t| t.cover.is_some())) {
            return Err(invalid(
                "format_version 1 has no covers or training_profile; an export with them is version 2",
            ));
        }
        let features = check_features(&self.features, self.format_version)?;
        let class_names = match self.classes.as_slice() {
            [a, b]
                if a.label == 0
                    && b.label == 1
                    && !a.name.trim().is_empty()
                    && !b.name.trim().is_empty()
                    && a.name != b.name =>
            {
                [a.name.clone(), b.name.clone()]
            }
            _ => {
                return Err(invalid(
                    "classes must be two: label 0 and label 1, in this order, with distinct non-empty names",
                ))
            }
        };
        if !self.init_raw_score.is_finite() {
            return Err(invalid("init_raw_score is not finite"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(invalid("learning_rate must be a positive finite number"));
        }
        if self.trees.is_empty() {
            return Err(invalid("the ensemble has no trees"));
        }
        Ok((features, class_names))
    }

    /// Every tree, checked and loaded; an error names the tree.
    pub(super) fn load_trees(&self) -> Result<Vec<Tree>, ModelError> {
        let features = self.features.len();
        self.trees
            .iter()
            .enumerate()
            .map(|(i, t)| {
                load_tree(t, self.learning_rate, self.can_explain(), features)
                    .map_err(|e| invalid(format!("tree {i}: {e}")))
            })
            .collect()
    }
}

/// The export's features become the contract: API names (version 3's
/// `api_name`, which must equal `name`; version 1 and 2's `name`), dataset
/// names and training ranges, checked by [`Features::new`]'s rules.
fn check_features(features: &[ExportFeature], version: u32) -> Result<Features, ModelError> {
    let mut list = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        match (&f.api_name, version >= 3) {
            (Some(api), true) if *api == f.name => {}
            (Some(api), true) => {
                return Err(invalid(format!("feature {i}: api_name {api:?} differs from name {:?}", f.name)))
            }
            (None, true) => return Err(invalid(format!("feature {i}: format_version 3 needs an api_name"))),
            (_, false) => {}
        }
        if !(f.min.is_finite() && f.max.is_finite() && f.min <= f.max) {
            return Err(invalid(format!("feature {:?} has an invalid training range", f.name)));
        }
        list.push(Feature { api_name: f.name.clone(), dataset_name: f.dataset_name.clone() });
    }
    Features::new(list).map_err(invalid)
}

/// Checks one tree's shape in a single forward pass, with no recursion and
/// memory linear in its nodes: equal array lengths; a node is a leaf
/// (children `-1`/`-1`, feature `-1`) or a split (two distinct children,
/// both later nodes — sklearn's depth-first order, so there is no cycle and
/// every walk ends — and a feature in range); every node but the root has
/// exactly one parent; and no leaf lies more than [`MAX_TREE_DEPTH`] splits
/// below the root, so the recursive walks (TreeSHAP, expected values) are
/// bounded and cannot overflow a stack.
fn load_tree(t: &ExportTree, learning_rate: f64, with_cover: bool, features: usize) -> Result<Tree, String> {
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
    // A node's depth is known before it is reached: its parent comes first.
    let mut depths = vec![0u32; n];
    let mut depth = 0;
    for i in 0..n {
        let (l, r, f) = (t.left[i], t.right[i], t.feature[i]);
        let node = if l == -1 && r == -1 {
            if f != -1 {
                return Err(format!("node {i} is a leaf (children -1 and -1) but names feature {f}; a leaf's is -1"));
            }
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
            if !(0..features as i64).contains(&f) {
                return Err(format!("node {i} splits on feature {f}, outside 0..{features}"));
            }
            if !t.threshold[i].is_finite() {
                return Err(format!("node {i} has a non-finite threshold"));
            }
            let child_depth = depths[i] + 1;
            if child_depth as usize > MAX_TREE_DEPTH {
                return Err(format!(
                    "node {i} splits at depth {}; trees may be at most {MAX_TREE_DEPTH} splits deep",
                    depths[i]
                ));
            }
            depth = depth.max(child_depth as usize);
            for c in [l as usize, r as usize] {
                parents[c] += 1;
                depths[c] = child_depth;
            }
            Node { feature: f as u32, left: l as u32, right: r as u32, threshold: t.threshold[i], term: 0.0 }
        };
        nodes.push(node);
    }
    if parents[0] != 0 || parents[1..].iter().any(|&p| p != 1) {
        return Err("nodes do not form a single tree (a node is shared or unreachable)".into());
    }
    let cover = if with_cover { load_cover(t.cover.as_deref(), &nodes)? } else { Vec::new() };
    Ok(Tree { nodes, cover, depth })
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
    for (i, n) in nodes.iter().enumerate().filter(|(_, n)| !n.is_leaf()) {
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
pub(super) fn load_profile(
    p: &ExportProfile,
    steps: &[StepFunction],
    names: &Features,
) -> Result<TrainingProfile, ModelError> {
    load_profile_inner(p, steps, names).map_err(|e| invalid(format!("training_profile: {e}")))
}

fn load_profile_inner(p: &ExportProfile, steps: &[StepFunction], names: &Features) -> Result<TrainingProfile, String> {
    if p.rows == 0 {
        return Err("rows must be positive".into());
    }
    let predicted = match (p.predicted_positive, p.predicted_malignant) {
        (Some(a), Some(b)) if a != b => return Err("predicted_positive and predicted_malignant differ".into()),
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => return Err("predicted_positive (or version 2's predicted_malignant) is missing".into()),
    };
    if predicted > p.rows {
        return Err("the count labelled 1 (predicted_positive, or predicted_malignant) exceeds rows".into());
    }
    if p.features.len() != names.len() {
        return Err(format!("it has {} features; the model has {}", p.features.len(), names.len()));
    }
    let mut features = Vec::with_capacity(names.len());
    for (i, f) in p.features.iter().enumerate() {
        let name = names.api_name(i);
        if f.name != name {
            return Err(format!("feature {i} is {:?}; expected {name:?}", f.name));
        }
        if f.thresholds != steps[i].thresholds {
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
        features.push(FeatureProfile { mean: f.mean, counts: f.counts.clone() });
    }
    Ok(TrainingProfile { rows: p.rows, predicted_malignant: predicted, features })
}
