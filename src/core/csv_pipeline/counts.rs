//! What one file's rows came to: counts only, never a value.

use std::collections::BTreeMap;

use crate::core::model::Prediction;

/// Counts for one file: logged and written beside the output (no data).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCounts {
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    pub malignant: u64,
    /// Rejected rows by the first problem found: missing, negative, wrong_field_count, ...
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    pub bytes_in: u64,
}

impl BatchCounts {
    /// Counts one scored row.
    #[inline]
    pub fn count_scored(&mut self, prediction: &Prediction) {
        self.rows += 1;
        self.scored += 1;
        self.malignant += u64::from(prediction.label);
    }

    /// Adds another part of the same file's counts (a worker's chunk).
    pub fn merge(&mut self, other: &BatchCounts) {
        self.rows += other.rows;
        self.scored += other.scored;
        self.rejected += other.rejected;
        self.malignant += other.malignant;
        for (&code, &n) in &other.rejected_by_reason {
            *self.rejected_by_reason.entry(code).or_default() += n;
        }
        self.bytes_in += other.bytes_in;
    }

    /// Counts one rejected row under its reason code.
    pub fn count_rejected(&mut self, code: &'static str) {
        self.rows += 1;
        self.rejected += 1;
        *self.rejected_by_reason.entry(code).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_counted_once_as_scored_or_rejected_under_its_code() {
        let mut counts = BatchCounts::default();
        counts.count_scored(&Prediction { label: 1, probability: 0.9 });
        counts.count_scored(&Prediction { label: 0, probability: 0.1 });
        counts.count_rejected("missing");
        counts.count_rejected("missing");
        counts.count_rejected("negative");
        assert_eq!((counts.rows, counts.scored, counts.rejected, counts.malignant), (5, 2, 3, 1));
        assert_eq!(counts.rejected_by_reason, BTreeMap::from([("missing", 2), ("negative", 1)]));
    }
}
