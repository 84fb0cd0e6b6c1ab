//! The report's shapes: the `drift` object of summaries ([`DriftReport`])
//! and the EMF values drawn from it ([`DriftMetricValues`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::plain::Shift;

/// The `drift` object of a summary: counts and aggregates only.
///
/// Every share is `null` where its denominator is 0 (a file with no scored
/// rows has no PSI, no shares and no alert), so the JSON never holds NaN.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// Rows seen: scored + rejected.
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    /// rejected / rows.
    pub rejected_share: Option<f64>,
    /// By the first problem found in the row; shares of `rows`.
    pub rejected_by_reason: BTreeMap<&'static str, ReasonCount>,
    /// Scored rows the model labels malignant.
    pub predicted_malignant: u64,
    /// predictedMalignant / scored.
    pub predicted_malignant_share: Option<f64>,
    /// The same share over the training split (`null` without a profile).
    pub training_predicted_malignant_share: Option<f64>,
    /// Scored rows with at least one value outside its training range.
    pub rows_out_of_range: u64,
    /// rowsOutOfRange / scored.
    pub out_of_range_share: Option<f64>,
    /// True when a feature's PSI exceeds `psiThreshold` (and the alert was assessed).
    pub alert: bool,
    /// False below `minRowsForAlert` scored rows or without a training
    /// profile: `alert` is then false because nothing can be said, not because
    /// all is well.
    pub alert_assessed: bool,
    /// The features whose PSI exceeds the threshold, in model order.
    pub alert_features: Vec<String>,
    pub psi_threshold: f64,
    pub min_rows_for_alert: u64,
    pub min_rows_for_extremes: u64,
    pub psi_floor: f64,
    pub psi_convention: &'static str,
    /// Rows of the training split (`null` without a profile).
    pub training_rows: Option<u64>,
    /// In model order.
    pub features: Vec<FeatureDrift>,
}

/// Rejected rows of one reason.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    pub rows: u64,
    /// Of all rows (scored + rejected).
    pub share: f64,
}

/// One feature of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDrift {
    /// API name (`worstArea`).
    pub name: String,
    /// The header of the feature's column as the file wrote it (`Worst Area
    /// (mm²)`), at most 60 characters; `null` when the rows had no header
    /// (queue messages, Distributed Map items).
    pub column: Option<String>,
    /// What the PSI says: `not_assessed` (too few rows or no training
    /// profile: `psi` is then noise, graded by nobody), `stable`, `moderate`
    /// or `major` (above `psiThreshold`, named in `alertFeatures`).
    pub shift: Shift,
    /// One plain sentence for a lab person, or `null`: for a major shift, and
    /// for values whose mean lies outside the training range (however few).
    pub note: Option<String>,
    /// Against the training profile; `null` without scored rows or profile.
    /// Computed below `minRowsForAlert` too, for compatibility: read `shift`.
    pub psi: Option<f64>,
    /// Scored rows whose value lies outside the training range.
    pub out_of_range_rows: u64,
    pub out_of_range_share: Option<f64>,
    /// Over the scored rows; `null` below `minRowsForExtremes` scored rows.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// The training split's range (the model card's) and mean.
    pub training_min: f64,
    pub training_max: f64,
    pub training_mean: Option<f64>,
    pub bins: BinTable,
}

/// A feature's bins: `edges.len() + 1` of them, bin j holding
/// `edges[j-1] < float32(x) <= edges[j]` (the model's own rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BinTable {
    pub edges: Vec<f64>,
    /// Scored rows per bin.
    pub counts: Vec<u64>,
    /// counts / scored (`null` without scored rows).
    pub shares: Option<Vec<f64>>,
    /// The training split's shares (`null` without a profile).
    pub training_shares: Option<Vec<f64>>,
}

/// What to emit as EMF metrics for one file or batch (the telemetry layer
/// writes the records). `None` means "do not emit": too few rows to say.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftMetricValues {
    /// `PredictedMalignantShare` (dimensions Service, EntryPoint).
    pub predicted_malignant_share: Option<f64>,
    /// `OutOfRangeShare` of rows with any value outside the training range
    /// (dimensions Service, EntryPoint); whenever a row was scored.
    pub out_of_range_share: Option<f64>,
    /// `DriftAlert`, 1 or 0 (dimensions Service, EntryPoint); only when assessed.
    pub alert: Option<f64>,
    /// One record per feature (dimensions Service, EntryPoint, Feature).
    pub features: Vec<FeatureMetricValues>,
}

/// `DriftPSI` and `OutOfRangeShare` of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMetricValues {
    /// The `Feature` dimension's value (API name).
    pub feature: String,
    /// `DriftPSI`; only when the alert was assessed (enough rows), since the
    /// PSI of a few rows is noise and an average of such values means nothing.
    pub psi: Option<f64>,
    /// `OutOfRangeShare`; whenever a row was scored.
    pub out_of_range_share: Option<f64>,
}

impl DriftReport {
    /// The EMF values for this report (never per row).
    pub fn metric_values(&self) -> DriftMetricValues {
        DriftMetricValues {
            predicted_malignant_share: self.predicted_malignant_share,
            out_of_range_share: self.out_of_range_share,
            alert: self.alert_assessed.then_some(if self.alert { 1.0 } else { 0.0 }),
            features: self
                .features
                .iter()
                .map(|f| FeatureMetricValues {
                    feature: f.name.clone(),
                    psi: if self.alert_assessed { f.psi } else { None },
                    out_of_range_share: f.out_of_range_share,
                })
                .collect(),
        }
    }
}
