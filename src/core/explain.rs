//! Exact per-feature explanations of the raw score: path-dependent TreeSHAP
//! (Lundberg, Erion & Lee, "Consistent individualized feature attribution for
//! tree ensembles", 2018, Algorithm 2), the values `shap.TreeExplainer(model)`
//! computes with its defaults (no background data, raw output).
//!
//! For a tree, the base value is its leaves' average weighted by cover (the
//! training rows that reached each leaf) and the contributions add up to the
//! leaf x reaches minus that average. Summed over the ensemble:
//! `base_value + Σ contributions = raw score` (log-odds).
//!
//! * A stump on feature f contributes `leaf(x) - E[leaf]` to f alone. The
//!   stumps of one feature already form one step function (the model's
//!   threshold table), so a table parallel to it, built at load time, holds the
//!   feature's whole contribution per bin: one lookup per feature.
//! * Deeper trees share credit between the features on each path: those are
//!   explained node by node with the general algorithm below, O(leaves × depth²)
//!   per tree.
//!
//! Every comparison uses the model's rule: `float32(x) <= threshold`.

use super::features::{PerFeature, MAX_FEATURES};

/// One observation's values rounded to float32, inline; entries past the
/// model's features are 0 and never read (every split's feature is below).
pub(crate) type Point = [f64; MAX_FEATURES];

/// Why a model cannot explain: the adapters answer 400 with this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoExplanation {
    #[error(
        "explanations are not available for this model: its export (format version 1) has no node covers; \
         retrain with models/train.py to get format version 2"
    )]
    NoCovers,
}

impl NoExplanation {
    /// A stable code for `errors[].code`, metrics and logs.
    pub fn code(self) -> &'static str {
        match self {
            NoExplanation::NoCovers => "explanations_unavailable",
        }
    }
}

/// How each feature moved the raw score (log-odds) of one observation away from
/// the training average. Additive: `base_value + Σ contributions` is the raw
/// score. A contribution describes the model, not a cause in the patient.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explanation {
    /// The expected raw score over the training rows (each tree's leaves
    /// weighted by cover): shap's `expected_value`. The same for every observation.
    pub base_value: f64,
    /// Per feature, in model order: shap's `shap_values`.
    pub contributions: PerFeature<f64>,
}

impl Explanation {
    /// `base_value + Σ contributions`: the raw score (log-odds) again.
    pub fn raw_score(&self) -> f64 {
        self.base_value + self.contributions.iter().sum::<f64>()
    }
}

/// The view of one tree the algorithm needs. Node 0 is the root.
pub(crate) trait ShapTree {
    fn is_leaf(&self, node: usize) -> bool;
    /// Split feature of an internal node.
    fn feature(&self, node: usize) -> usize;
    /// The child `x` goes to, then the other one (`float32(x) <= threshold` goes left).
    fn hot_cold(&self, node: usize, x: &Point) -> (usize, usize);
    /// What the leaf adds to the raw score (learning rate included).
    fn term(&self, node: usize) -> f64;
    fn cover(&self, node: usize) -> f64;
}

/// A tree's expected term: its leaves averaged by cover, computed bottom-up as
/// shap does (children weighted by their own covers). Recursive, one level a
/// split: the model's loader refuses trees deeper than
/// [`MAX_TREE_DEPTH`](super::model::MAX_TREE_DEPTH), which bounds the stack.
pub(crate) fn expected_term(tree: &impl ShapTree) -> f64 {
    fn at(tree: &impl ShapTree, node: usize, x_dummy: &Point) -> f64 {
        if tree.is_leaf(node) {
            return tree.term(node);
        }
        let (a, b) = tree.hot_cold(node, x_dummy);
        let (ca, cb) = (tree.cover(a), tree.cover(b));
        (ca * at(tree, a, x_dummy) + cb * at(tree, b, x_dummy)) / (ca + cb)
    }
    at(tree, 0, &[0.0; MAX_FEATURES])
}

/// Scratch space for [`tree_shap`]: the unique paths of every recursion level.
pub(crate) fn scratch_for_depth(max_depth: usize) -> Vec<PathElement> {
    // Level d holds a path of at most d + 1 elements, and levels are stacked.
    let levels = max_depth + 2;
    vec![PathElement::default(); levels * (levels + 1) / 2]
}

const NO_FEATURE: usize = usize::MAX;

/// One element of the unique path: a feature met on the way from the root,
/// the share of cover that flows through the branch taken (`zero`: the
/// feature left out), whether x itself takes it (`one`: the feature known),
/// and `weight`, the permutation weight of subsets of size = this index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathElement {
    feature: usize,
    zero: f64,
    one: f64,
    weight: f64,
}

impl Default for PathElement {
    fn default() -> Self {
        PathElement { feature: NO_FEATURE, zero: 0.0, one: 0.0, weight: 0.0 }
    }
}

/// Adds `tree`'s contributions at `x` (already float32-rounded) to `phi`.
/// `scratch` must come from [`scratch_for_depth`] with at least the tree's depth.
/// Recursive, one level a split (a few hundred bytes of stack each): bounded
/// by [`MAX_TREE_DEPTH`](super::model::MAX_TREE_DEPTH), which the loader enforces.
pub(crate) fn tree_shap(tree: &impl ShapTree, x: &Point, phi: &mut [f64], scratch: &mut [PathElement]) {
    recurse(tree, x, phi, scratch, 0, 0, 1.0, 1.0, NO_FEATURE);
}

/// `path[..len]` holds the path down to `node`'s parent; this level owns
/// `path[..]` and gives its children copies in the part after its own.
#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &impl ShapTree,
    x: &Point,
    phi: &mut [f64],
    path: &mut [PathElement],
    node: usize,
    len: usize,
    zero: f64,
    one: f64,
    feature: usize,
) {
    extend(path, len, zero, one, feature);
    let mut len = len + 1;
    if tree.is_leaf(node) {
        let v = tree.term(node);
        // Element 0 is the root's placeholder (zero = one = 1): it adds nothing.
        for i in 1..len {
            let e = path[i];
            phi[e.feature] += unwound_weight_sum(&path[..len], i) * (e.one - e.zero) * v;
        }
        return;
    }
    let split = tree.feature(node);
    let (hot, cold) = tree.hot_cold(node, x);
    let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
    // A feature met again further down: undo its first appearance and carry its
    // fractions, so each feature appears on the path once.
    if let Some(k) = (1..len).find(|&k| path[k].feature == split) {
        incoming_zero = path[k].zero;
        incoming_one = path[k].one;
        unwind(path, len, k);
        len -= 1;
    }
    let cover = tree.cover(node);
    let (mine, rest) = path.split_at_mut(len);
    for (child, one) in [(hot, incoming_one), (cold, 0.0)] {
        rest[..len].copy_from_slice(mine);
        let zero = incoming_zero * tree.cover(child) / cover;
        recurse(tree, x, phi, rest, child, len, zero, one, split);
    }
}

/// Appends an element to `path[..len]` and updates the permutation weights:
/// with the new feature known (fraction `one`) a subset grows by one, left out
/// (fraction `zero`) it keeps its size.
fn extend(path: &mut [PathElement], len: usize, zero: f64, one: f64, feature: usize) {
    let n = (len + 1) as f64;
    path[len] = PathElement { feature, zero, one, weight: if len == 0 { 1.0 } else { 0.0 } };
    for i in (0..len).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / n;
        path[i].weight = zero * path[i].weight * (len - i) as f64 / n;
    }
}

/// Removes element `k` from `path[..len]`, inverting its `extend`.
fn unwind(path: &mut [PathElement], len: usize, k: usize) {
    let last = len - 1;
    let n = len as f64;
    let PathElement { zero, one, .. } = path[k];
    let mut carry = path[last].weight;
    for j in (0..last).rev() {
        if one != 0.0 {
            let w = path[j].weight;
            path[j].weight = carry * n / ((j + 1) as f64 * one);
            carry = w - path[j].weight * zero * (last - j) as f64 / n;
        } else {
            path[j].weight = path[j].weight * n / (zero * (last - j) as f64);
        }
    }
    for j in k..last {
        let next = path[j + 1];
        path[j] = PathElement { weight: path[j].weight, ..next };
    }
}

/// The total weight `path` would have with element `k` unwound, without unwinding it.
fn unwound_weight_sum(path: &[PathElement], k: usize) -> f64 {
    let last = path.len() - 1;
    let n = path.len() as f64;
    let PathElement { zero, one, .. } = path[k];
    let mut total = 0.0;
    if one != 0.0 {
        let mut carry = path[last].weight;
        for j in (0..last).rev() {
            let w = carry * n / ((j + 1) as f64 * one);
            total += w;
            carry = path[j].weight - w * zero * (last - j) as f64 / n;
        }
    } else {
        for j in (0..last).rev() {
            total += path[j].weight * n / (zero * (last - j) as f64);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree in plain arrays: `left[i] == usize::MAX` marks a leaf.
    struct Plain {
        left: Vec<usize>,
        right: Vec<usize>,
        feature: Vec<usize>,
        threshold: Vec<f64>,
        term: Vec<f64>,
        cover: Vec<f64>,
    }

    impl ShapTree for Plain {
        fn is_leaf(&self, n: usize) -> bool {
            self.left[n] == usize::MAX
        }
        fn feature(&self, n: usize) -> usize {
            self.feature[n]
        }
        fn hot_cold(&self, n: usize, x: &Point) -> (usize, usize) {
            if x[self.feature[n]] <= self.threshold[n] {
                (self.left[n], self.right[n])
            } else {
                (self.right[n], self.left[n])
            }
        }
        fn term(&self, n: usize) -> f64 {
            self.term[n]
        }
        fn cover(&self, n: usize) -> f64 {
            self.cover[n]
        }
    }

    const L: usize = usize::MAX;

    /// Depth 2, feature 0 at the root and feature 1 below, feature 0 again on the right.
    fn tree() -> Plain {
        Plain {
            left: vec![1, 2, L, L, 5, L, L],
            right: vec![4, 3, L, L, 6, L, L],
            feature: vec![0, 1, 0, 0, 0, 0, 0],
            threshold: vec![1.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0],
            term: vec![0.0, 0.0, 1.0, 5.0, 0.0, -2.0, 7.0],
            cover: vec![10.0, 6.0, 2.0, 4.0, 4.0, 1.0, 3.0],
        }
    }

    /// Path-dependent SHAP by brute force: the Shapley formula over every subset,
    /// with E[f(x) | x_S] computed by following x on known features and
    /// averaging branches by cover elsewhere (the definition TreeSHAP computes fast).
    fn brute_force(t: &Plain, x: &Point) -> [f64; 5] {
        fn cond(t: &Plain, n: usize, x: &Point, known: u32) -> f64 {
            if t.is_leaf(n) {
                return t.term(n);
            }
            let (hot, cold) = t.hot_cold(n, x);
            if known & (1 << t.feature(n)) != 0 {
                cond(t, hot, x, known)
            } else {
                (t.cover(hot) * cond(t, hot, x, known) + t.cover(cold) * cond(t, cold, x, known)) / t.cover(n)
            }
        }
        let m = 2; // features 0 and 1 are the only ones used
        let fact = |k: usize| (1..=k).product::<usize>() as f64;
        let mut phi = [0.0; 5];
        for (i, p) in phi.iter_mut().enumerate().take(m) {
            for s in 0u32..(1 << m) {
                if s & (1 << i) != 0 {
                    continue;
                }
                let size = s.count_ones() as usize;
                let w = fact(size) * fact(m - size - 1) / fact(m);
                *p += w * (cond(t, 0, x, s | (1 << i)) - cond(t, 0, x, s));
            }
        }
        phi
    }

    #[test]
    fn tree_shap_matches_the_shapley_formula_when_a_feature_repeats_on_a_path() {
        let t = tree();
        let mut scratch = scratch_for_depth(2);
        for x in [[0.5, 1.0], [0.5, 2.5], [2.0, 0.0], [3.5, 9.0], [1.0, 2.0]] {
            let mut x = [x[0], x[1]].to_vec();
            x.resize(MAX_FEATURES, 0.0);
            let x: Point = x.try_into().unwrap();
            let mut phi = [0.0; 5];
            tree_shap(&t, &x, &mut phi, &mut scratch);
            let want = brute_force(&t, &x);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{phi:?} vs {want:?} at {x:?}");
            }
            // Additivity: the base value plus the contributions is the leaf x reaches.
            let mut n = 0;
            while !t.is_leaf(n) {
                n = t.hot_cold(n, &x).0;
            }
            let total = expected_term(&t) + phi.iter().sum::<f64>();
            assert!((total - t.term(n)).abs() < 1e-12, "{total} vs {}", t.term(n));
        }
    }

    #[test]
    fn a_stump_gives_its_feature_the_leaf_minus_the_cover_weighted_average() {
        let t = Plain {
            left: vec![1, L, L],
            right: vec![2, L, L],
            feature: vec![3, 0, 0],
            threshold: vec![2.5, 0.0, 0.0],
            term: vec![0.0, -1.0, 3.0],
            cover: vec![4.0, 3.0, 1.0],
        };
        let mut phi = [0.0; 5];
        let mut x = [0.0; MAX_FEATURES];
        x[3] = 9.0;
        tree_shap(&t, &x, &mut phi, &mut scratch_for_depth(1));
        assert_eq!(expected_term(&t), 0.0);
        assert_eq!(phi, [0.0, 0.0, 0.0, 3.0, 0.0]);
    }
}
