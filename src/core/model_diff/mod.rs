//! Two model exports side by side, before the new one replaces the old
//! (`scorer model diff`): what changes for clients, and how differently the
//! two models label rows. Pure: the caller loads both models and hands over
//! the rows (a CSV file's, [`CsvRows`], or a synthetic sample of the new
//! export's training profile, [`synthetic_rows`]); nothing here opens a file.
//!
//! - `contract`: which old feature is which new one ([`FeatureMap`]), and
//!   every difference ([`Change`]), each saying whether it breaks clients;
//! - `rows`: the rows both models score, and the figures ([`Agreement`]);
//! - `sample`: the synthetic rows.

mod contract;
mod rows;
mod sample;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use contract::{compare_contract, Change, FeatureMap, Match, RenameRule};
pub use rows::{
    compare_rows, Agreement, CsvRows, DeltaP, Flips, MissingFeatures, PositiveShare, Reason, ReasonCount, RowPair,
    RowSource, NOT_SAMPLED, NO_COLUMN,
};
pub use sample::{apportion, bin_of, synthetic_rows, DEFAULT_SAMPLE_ROWS, SEED};

use super::model::Model;

/// What the report says of each export.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFacts {
    pub name: String,
    /// The `modelVersion` the service answers with.
    pub version: String,
    pub sha256: String,
    pub format_version: u32,
    pub trees: usize,
    pub max_depth: usize,
    /// The names of labels 0 and 1.
    pub classes: [String; 2],
    /// API names, in model order.
    pub features: Vec<String>,
    pub explanations: bool,
    pub training_profile: bool,
}

impl ModelFacts {
    pub fn of(model: &Model) -> Self {
        let info = model.info();
        ModelFacts {
            name: info.name.clone(),
            version: info.version.clone(),
            sha256: info.sha256.clone(),
            format_version: info.format_version,
            trees: info.tree_count,
            max_depth: info.max_depth,
            classes: [model.class_name(0).to_owned(), model.class_name(1).to_owned()],
            features: model.features().api_names().map(str::to_owned).collect(),
            explanations: model.can_explain(),
            training_profile: model.training_profile().is_some(),
        }
    }
}

/// One change as the report writes it: the change, whether it breaks
/// clients, and its sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEntry {
    #[serde(flatten)]
    pub change: Change,
    pub breaking: bool,
    pub message: String,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    pub old: ModelFacts,
    pub new: ModelFacts,
    /// Some change breaks clients.
    pub breaking: bool,
    /// Contract first (breaking or not), then facts of the exports.
    pub changes: Vec<ChangeEntry>,
    pub rows: Agreement,
}

impl DiffReport {
    /// The report of `old` against `new` with the figures of `rows`.
    pub fn new(old: &Model, new: &Model, map: &FeatureMap, rows: Agreement) -> Self {
        let changes: Vec<ChangeEntry> = compare_contract(old, new, map)
            .into_iter()
            .map(|change| ChangeEntry { breaking: change.breaks_clients(), message: change.to_string(), change })
            .collect();
        DiffReport {
            old: ModelFacts::of(old),
            new: ModelFacts::of(new),
            breaking: changes.iter().any(|c| c.breaking),
            changes,
            rows,
        }
    }

    /// The changes that break clients.
    pub fn breaking_changes(&self) -> impl Iterator<Item = &ChangeEntry> {
        self.changes.iter().filter(|c| c.breaking)
    }
}

/// `old` against `new`, on `n` synthetic rows drawn from the new export's
/// training profile ([`synthetic_rows`]); on none when it has no profile.
pub fn diff_synthetic(old: &Model, new: &Model, n: usize) -> DiffReport {
    let map = FeatureMap::new(old, new);
    let rows = match synthetic_rows(old, new, &map, n) {
        Some((rows, missing)) => {
            let rows = rows.map(Ok::<_, std::convert::Infallible>);
            match compare_rows(old, new, rows, RowSource::Synthetic, missing) {
                Ok(agreement) => agreement,
                Err(never) => match never {},
            }
        }
        None => Agreement::none(),
    };
    DiffReport::new(old, new, &map, rows)
}

/// `old` against `new` on the rows of a CSV file ([`CsvRows`]); the first
/// error reading it ends the comparison.
pub fn diff_csv<'a>(
    old: &Model,
    new: &Model,
    input: impl std::io::Read + Send + 'a,
    delimiter: Option<u8>,
) -> Result<DiffReport, super::csv_pipeline::BatchError> {
    let map = FeatureMap::new(old, new);
    let rows = CsvRows::new(old, new, input, delimiter)?;
    let missing = rows.missing_features();
    let agreement = compare_rows(old, new, rows, RowSource::File, missing)?;
    Ok(DiffReport::new(old, new, &map, agreement))
}
