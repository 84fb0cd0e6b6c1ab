//! Synthetic rows from the new export's training profile, for comparing two
//! models when no file of real rows is given.
//!
//! The profile keeps, per feature, how many training rows fell in each bin
//! of the model's thresholds, and the training range; not the rows. So the
//! sample reproduces each feature's **marginal** distribution as coarsely as
//! the bins describe it, and nothing of how features go together:
//!
//! - each feature gets `n` values; bin `j` gets its share
//!   `n × counts[j] / rows`, rounded by largest remainder so the shares add
//!   up to `n` (ties to the lower bin);
//! - a bin's `k` values are evenly spaced inside it: the `(i + ½)/k`
//!   points of the interval between its edges, clipped to the training range
//!   (bin 0 starts at the training minimum, the last bin ends at the
//!   maximum). A value is in bin `j` by the model's own rule
//!   (`edges[j-1] < float32(x) <= edges[j]`); one that rounding puts
//!   elsewhere is replaced by the interval's midpoint;
//! - the features are paired independently: each feature's column is
//!   shuffled by its own SplitMix64 stream (seeded from [`SEED`] and the
//!   feature's position), so the same two exports give the same rows on
//!   every machine.
//!
//! The old model reads each of its features from its counterpart in the
//! new model (kept or renamed, [`FeatureMap`]); a row needing an old
//! feature the new model lacks is not comparable ([`NOT_SAMPLED`]).

use super::contract::FeatureMap;
use super::rows::{MissingFeatures, RowPair, NOT_SAMPLED};
use crate::core::features::PerFeature;
use crate::core::model::Model;
use crate::core::observation::Observation;

/// Rows drawn when the caller does not say.
pub const DEFAULT_SAMPLE_ROWS: usize = 10_000;

/// The sample's seed: fixed, so the sample is a function of the exports.
pub const SEED: u64 = 0x5c0e_d1ff;

/// `n` synthetic rows from `new`'s training profile, as both models read
/// them, and the old features they lack. `None` when `new` has no profile
/// (format version 1). Holds `n` values per feature of `new` until the rows
/// are read.
pub fn synthetic_rows<'a>(
    old: &Model,
    new: &'a Model,
    map: &FeatureMap,
    n: usize,
) -> Option<(impl Iterator<Item = RowPair> + 'a, MissingFeatures)> {
    let profile = new.training_profile()?;
    let ranges = &new.info().ranges;
    let columns: Vec<Vec<f64>> = profile
        .features
        .iter()
        .enumerate()
        .map(|(f, p)| {
            let mut column = feature_values(new.bin_edges(f), &p.counts, ranges[f], n);
            shuffle(&mut column, SEED ^ (f as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            column
        })
        .collect();
    let lacking: Vec<String> = (0..old.features().len())
        .filter(|&i| map.old_to_new[i].is_none())
        .map(|i| old.features().api_name(i).to_owned())
        .collect();
    // Where the old model's values are among the new model's; `None` when one lacks.
    let old_columns: Option<Vec<usize>> = map.old_to_new.iter().map(|m| m.map(|(j, _)| j)).collect();
    let rows = (0..n).map(move |r| {
        let values: PerFeature<f64> = columns.iter().map(|c| c[r]).collect();
        let new_row = Observation::from_values(&values).map_err(|e| e.code());
        let old_row = match &old_columns {
            Some(js) => {
                let mapped: PerFeature<f64> = js.iter().map(|&j| values[j]).collect();
                Observation::from_values(&mapped).map_err(|e| e.code())
            }
            None => Err(NOT_SAMPLED),
        };
        RowPair { old: old_row, new: new_row }
    });
    Some((rows, MissingFeatures { old: lacking, new: Vec::new() }))
}

/// How many of `n` values each bin gets: `n × counts[j] / total`, rounded
/// by largest remainder (ties to the lower bin), adding up to `n`.
pub fn apportion(counts: &[u64], n: usize) -> Vec<usize> {
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let exact: Vec<(usize, u128)> = counts
        .iter()
        .map(|&c| {
            let scaled = u128::from(c) * n as u128;
            ((scaled / total) as usize, scaled % total)
        })
        .collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| e.0).collect();
    let left = n - shares.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Largest remainder first; the sort is stable, so ties keep the lower bin first.
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1));
    for &j in order.iter().take(left) {
        shares[j] += 1;
    }
    shares
}

/// The bin of `x` by the model's rule: the edges below float32(x).
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    let x = x as f32 as f64;
    edges.partition_point(|&t| t < x)
}

/// One feature's `n` values, bin by bin in ascending order (see the module).
fn feature_values(edges: &[f64], counts: &[u64], (min, max): (f64, f64), n: usize) -> Vec<f64> {
    let mut values = Vec::with_capacity(n);
    for (j, k) in apportion(counts, n).into_iter().enumerate() {
        let lo = if j == 0 { min } else { edges[j - 1].max(min) };
        let hi = if j == edges.len() { max } else { edges[j].min(max) };
        let (lo, hi) = (lo.min(hi), hi.max(lo));
        let mid = lo + (hi - lo) / 2.0;
        for i in 0..k {
            let x = lo + (hi - lo) * ((i as f64 + 0.5) / k as f64);
            values.push(if bin_of(edges, x) == j { x } else { mid });
        }
    }
    values
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny generator whose output
/// is fixed by its definition, so the sample never changes with a library.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Fisher–Yates with a [`SplitMix64`] stream.
fn shuffle(values: &mut [f64], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..values.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        values.swap(i, j);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn bins_get_their_share_of_the_rows_by_largest_remainder() {
        assert_eq!(apportion(&[1, 1, 1], 10), [4, 3, 3]);
        assert_eq!(apportion(&[112, 170, 13, 160], 455), [112, 170, 13, 160]);
        assert_eq!(apportion(&[0, 5, 0], 7), [0, 7, 0]);
        assert_eq!(apportion(&[1, 2], 0), [0, 0]);
        let shares = apportion(&[81, 10, 4, 72, 12, 117, 43, 1, 2, 67, 20, 26], 10_000);
        assert_eq!(shares.iter().sum::<usize>(), 10_000);
        // Each share is within one of the exact quota.
        for (s, c) in shares.iter().zip([81, 10, 4, 72, 12, 117, 43, 1, 2, 67, 20, 26]) {
            let exact = c as f64 * 10_000.0 / 455.0;
            assert!((*s as f64 - exact).abs() < 1.0, "{s} for {exact}");
        }
    }

    #[test]
    fn splitmix64_gives_its_published_sequence() {
        // The first outputs for seed 1234567 (the reference implementation's example).
        let mut rng = SplitMix64(1_234_567);
        assert_eq!(
            [rng.next(), rng.next(), rng.next()],
            [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]
        );
    }
}
