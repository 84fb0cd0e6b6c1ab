//! The compiled form [`Model::predict`](super::Model::predict) uses, built
//! at load time from the checked trees: stumps folded into one step function
//! per feature, the deeper trees kept for a node-by-node walk, the bound on
//! how far that summation order can drift from sklearn's, and the per-bin
//! explanation tables.

use super::super::explain;
use super::tree::Tree;

/// Every stump on one feature, folded into a step function.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct StepFunction {
    /// The feature's distinct split thresholds in every tree, ascending: the
    /// bin edges (deeper trees' thresholds included, so bins are the model's).
    pub(super) thresholds: Vec<f64>,
    /// `sums[j]`: the stumps' total when exactly `j` thresholds are below x (bin `j`).
    pub(super) sums: Vec<f64>,
}

impl StepFunction {
    /// The bin of a float32-rounded value.
    #[inline]
    pub(super) fn bin(&self, x: f64) -> usize {
        self.thresholds.partition_point(|&t| t < x)
    }

    #[inline]
    pub(super) fn eval(&self, x: f64) -> f64 {
        self.sums[self.bin(x)]
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Compiled {
    /// init + every single-leaf tree.
    pub(super) constant: f64,
    /// One per feature, in model order.
    pub(super) steps: Vec<StepFunction>,
    /// Trees deeper than one split, walked node by node.
    pub(super) deep: Vec<usize>,
    /// |fast - exact| never exceeds this; closer to 0 we use the exact walk.
    pub(super) boundary: f64,
}

/// What explaining needs, built at load time from the covers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Explainer {
    pub(super) base_value: f64,
    /// Parallel to the step functions: `tables[f][j]` is feature f's
    /// contribution from its stumps when its value is in bin j.
    pub(super) tables: Vec<Vec<f64>>,
    /// Scratch length for TreeSHAP on the deep trees (0 when there are none).
    pub(super) scratch_len: usize,
}

/// The sum of the stumps `(threshold, left term, right term)` for a value in
/// bin `j` of `thresholds`: a stump goes left iff its threshold is not among
/// the `j` below x.
fn bin_sums(thresholds: &[f64], stumps: &[(f64, f64, f64)]) -> Vec<f64> {
    (0..=thresholds.len())
        .map(|j| {
            neumaier_sum(
                stumps.iter().map(|&(t, l, r)| if thresholds.partition_point(|&u| u < t) >= j { l } else { r }),
            )
        })
        .collect()
}

/// `features`: how many the model has (every tree's splits are below it).
pub(super) fn compile(init: f64, trees: &[Tree], features: usize) -> Compiled {
    let mut constant_terms = vec![init];
    let mut stumps: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); features];
    let mut split_thresholds: Vec<Vec<f64>> = vec![Vec::new(); features];
    let mut deep = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        for n in tree.nodes.iter().filter(|n| !n.is_leaf()) {
            split_thresholds[n.feature as usize].push(n.threshold);
        }
        if let [leaf] = tree.nodes.as_slice() {
            constant_terms.push(leaf.term);
        } else if let Some((root, l, r)) = tree.as_stump() {
            stumps[root.feature as usize].push((root.threshold, l.term, r.term));
        } else {
            deep.push(i);
        }
    }
    let steps = stumps
        .iter()
        .zip(split_thresholds)
        .map(|(s, mut thresholds)| {
            thresholds.sort_by(f64::total_cmp);
            thresholds.dedup();
            let sums = bin_sums(&thresholds, s);
            StepFunction { thresholds, sums }
        })
        .collect();
    // A rigorous bound on how far two summation orders of the same terms can
    // drift apart: twice the classic gamma_n * sum|terms|, with slack.
    let magnitude: f64 = init.abs() + trees.iter().map(Tree::max_abs_term).sum::<f64>();
    let n = (trees.len() + 2 * features + 8) as f64;
    let u = f64::EPSILON / 2.0;
    let boundary = 4.0 * n * u * magnitude / (1.0 - n * u);
    Compiled { constant: neumaier_sum(constant_terms.into_iter()), steps, deep, boundary }
}

/// The base value and the per-bin contribution tables (covers checked).
pub(super) fn build_explainer(init: f64, trees: &[Tree], compiled: &Compiled) -> Explainer {
    let mut base_terms = vec![init];
    // Per feature: each stump's (threshold, left term - E, right term - E).
    let mut stumps: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); compiled.steps.len()];
    let mut deep_depth = None;
    for tree in trees {
        let expected = explain::expected_term(tree);
        base_terms.push(expected);
        if tree.nodes.len() == 1 {
            continue;
        }
        match tree.as_stump() {
            Some((root, l, r)) => {
                stumps[root.feature as usize].push((root.threshold, l.term - expected, r.term - expected))
            }
            None => deep_depth = deep_depth.max(Some(tree.depth)),
        }
    }
    let tables = compiled.steps.iter().zip(&stumps).map(|(step, s)| bin_sums(&step.thresholds, s)).collect();
    Explainer {
        base_value: neumaier_sum(base_terms.into_iter()),
        tables,
        scratch_len: deep_depth.map_or(0, |d| explain::scratch_for_depth(d).len()),
    }
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

    #[test]
    fn neumaier_sum_is_exact_where_naive_summation_is_not() {
        let v = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(neumaier_sum(v.into_iter()), 2.0);
    }
}
