//! Rows scored by both models: how often and how far their predictions
//! differ ([`Agreement`]), and the rows of a CSV file as each model reads
//! them ([`CsvRows`]).

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;

use crate::core::columns::match_names;
use crate::core::csv_pipeline::{
    cell_input, fits_header, open_csv, BatchError, CsvInput, HeaderMismatch, WRONG_FIELD_COUNT,
};
use crate::core::csv_reader::{Dialect, Fields};
use crate::core::features::Features;
use crate::core::model::Model;
use crate::core::observation::{Observation, PerFeatureInputs};

/// The file has no column for a feature the model needs.
pub const NO_COLUMN: &str = "no_column";
/// The synthetic rows have no value for a feature the old model needs: the
/// new export's profile does not describe it.
pub const NOT_SAMPLED: &str = "not_sampled";

/// One row as each model reads it: its observation, or the reason code it
/// cannot be scored (a rejection's code: `missing`, `negative`, …; or
/// [`NO_COLUMN`], [`NOT_SAMPLED`], `wrong_field_count`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowPair {
    pub old: Result<Observation, &'static str>,
    pub new: Result<Observation, &'static str>,
}

/// Where the rows came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RowSource {
    /// A CSV file's rows.
    File,
    /// Rows drawn from the new export's training profile (see `sample.rs`).
    Synthetic,
    /// No rows: the new export has no training profile and no file was given.
    None,
}

/// Why rows were not compared: each model's reason (`None`: that model could score them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reason {
    pub old: Option<&'static str>,
    pub new: Option<&'static str>,
}

/// A [`Reason`] and how many rows it kept out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub old: Option<&'static str>,
    pub new: Option<&'static str>,
    pub rows: u64,
}

/// Features a model needs that the rows do not give (by API name): the
/// file's missing columns, or the old features the synthetic rows lack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MissingFeatures {
    pub old: Vec<String>,
    pub new: Vec<String>,
}

/// Label flips among the compared rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flips {
    /// Rows labelled differently.
    pub rows: u64,
    /// `rows` / compared rows; `None` when nothing was compared.
    pub share: Option<f64>,
    /// Old label 0, new label 1.
    pub zero_to_one: u64,
    /// Old label 1, new label 0.
    pub one_to_zero: u64,
}

/// |p_new − p_old| over the compared rows, p being the probability of label 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeltaP {
    pub mean: Option<f64>,
    pub max: Option<f64>,
}

/// The share of compared rows each model labels 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PositiveShare {
    pub old: Option<f64>,
    pub new: Option<f64>,
}

/// How the two models' predictions compare on the rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    pub source: RowSource,
    /// Rows looked at.
    pub rows: u64,
    /// Rows both models scored.
    pub compared: u64,
    /// Rows at least one model could not score.
    pub not_comparable: u64,
    /// `not_comparable` by reason, most rows first.
    pub not_comparable_by_reason: Vec<ReasonCount>,
    pub missing_features: MissingFeatures,
    pub flips: Flips,
    pub abs_delta_p: DeltaP,
    pub positive_share: PositiveShare,
}

impl Agreement {
    /// No rows at all.
    pub fn none() -> Self {
        Tally::default().finish(RowSource::None, MissingFeatures::default())
    }
}

/// Running sums of [`Agreement`].
#[derive(Default)]
struct Tally {
    rows: u64,
    compared: u64,
    reasons: BTreeMap<Reason, u64>,
    flips: [u64; 2],
    positive: [u64; 2],
    sum_dp: f64,
    max_dp: f64,
}

impl Tally {
    fn add(&mut self, old: &Model, new: &Model, row: RowPair) {
        self.rows += 1;
        match (row.old, row.new) {
            (Ok(a), Ok(b)) => {
                let (a, b) = (old.predict(&a), new.predict(&b));
                self.compared += 1;
                if a.label != b.label {
                    // [0→1, 1→0]
                    self.flips[usize::from(a.label)] += 1;
                }
                self.positive[0] += u64::from(a.label);
                self.positive[1] += u64::from(b.label);
                let dp = (b.probability - a.probability).abs();
                self.sum_dp += dp;
                self.max_dp = self.max_dp.max(dp);
            }
            (a, b) => *self.reasons.entry(Reason { old: a.err(), new: b.err() }).or_default() += 1,
        }
    }

    fn finish(self, source: RowSource, missing_features: MissingFeatures) -> Agreement {
        let n = self.compared;
        let share = |k: u64| (n > 0).then(|| k as f64 / n as f64);
        let mut reasons: Vec<ReasonCount> =
            self.reasons.into_iter().map(|(r, rows)| ReasonCount { old: r.old, new: r.new, rows }).collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.rows));
        let flipped = self.flips[0] + self.flips[1];
        Agreement {
            source,
            rows: self.rows,
            compared: n,
            not_comparable: self.rows - n,
            not_comparable_by_reason: reasons,
            missing_features,
            flips: Flips {
                rows: flipped,
                share: share(flipped),
                zero_to_one: self.flips[0],
                one_to_zero: self.flips[1],
            },
            abs_delta_p: DeltaP { mean: (n > 0).then(|| self.sum_dp / n as f64), max: (n > 0).then_some(self.max_dp) },
            positive_share: PositiveShare { old: share(self.positive[0]), new: share(self.positive[1]) },
        }
    }
}

/// Scores every row with both models and compares them. The first error
/// the rows give (a file that stops being readable) ends it.
pub fn compare_rows<E>(
    old: &Model,
    new: &Model,
    rows: impl IntoIterator<Item = Result<RowPair, E>>,
    source: RowSource,
    missing_features: MissingFeatures,
) -> Result<Agreement, E> {
    let mut tally = Tally::default();
    for row in rows {
        tally.add(old, new, row?);
    }
    Ok(tally.finish(source, missing_features))
}

/// Where one model's features are in the file, or the features it lacks.
type Columns = Result<Vec<usize>, Vec<String>>;

/// The rows of a CSV file, as each model reads them: each finds its
/// columns by the column-name rule in the one header, and reads its cells
/// by the one validation path (as `scorer score` does). The file is opened
/// as every file route opens one (encodings, delimiter detection).
pub struct CsvRows<'a> {
    input: CsvInput<'a>,
    fields: Fields,
    old: Columns,
    new: Columns,
}

impl<'a> CsvRows<'a> {
    /// Reads the header. A model that lacks a column gets [`NO_COLUMN`] on
    /// every row; a header with no column for any feature of either model
    /// (not a file of measurements, or another delimiter) is an error, and so
    /// are two columns that name one feature.
    pub fn new(
        old: &Model,
        new: &Model,
        input: impl Read + Send + 'a,
        delimiter: Option<u8>,
    ) -> Result<Self, BatchError> {
        let input = open_csv(input, delimiter)?;
        let columns = |features: &Features| -> Result<Columns, BatchError> {
            let found = match_names(features, input.names.iter().map(|n| Some(n.as_ref())))
                .map_err(|d| BatchError::DuplicateColumn(features.api_name(d.feature).to_owned()))?;
            let missing: Vec<String> =
                (0..features.len()).filter(|&f| found[f].is_none()).map(|f| features.api_name(f).to_owned()).collect();
            Ok(if missing.is_empty() { Ok(found.into_iter().flatten().collect()) } else { Err(missing) })
        };
        let (old_columns, new_columns) = (columns(old.features())?, columns(new.features())?);
        if let (Err(a), Err(b)) = (&old_columns, &new_columns) {
            if a.len() == old.features().len() && b.len() == new.features().len() {
                return Err(BatchError::MissingColumns(HeaderMismatch {
                    missing: b.clone(),
                    columns: input.width,
                    found: 0,
                    dialect: input.dialect,
                    forced: delimiter.is_some(),
                }));
            }
        }
        Ok(CsvRows { input, fields: Fields::default(), old: old_columns, new: new_columns })
    }

    /// The features each model needs that the file has no column for.
    pub fn missing_features(&self) -> MissingFeatures {
        let missing = |c: &Columns| c.as_ref().err().cloned().unwrap_or_default();
        MissingFeatures { old: missing(&self.old), new: missing(&self.new) }
    }

    /// The dialect the file was read in.
    pub fn dialect(&self) -> Dialect {
        self.input.dialect
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Result<RowPair, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let width = self.input.width;
        self.fields.clear();
        let span = match self.input.reader.read_record(&mut self.fields, width + 1) {
            Ok(Some(span)) => span,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        let record = self.fields.record(&span);
        if !fits_header(&record, &span, width) {
            return Some(Ok(RowPair { old: Err(WRONG_FIELD_COUNT), new: Err(WRONG_FIELD_COUNT) }));
        }
        let decimal_comma = self.input.dialect.decimal_comma();
        let read = |columns: &Columns| match columns {
            Err(_) => Err(NO_COLUMN),
            Ok(columns) => {
                let inputs: PerFeatureInputs =
                    columns.iter().map(|&c| cell_input(record.get(c), decimal_comma)).collect();
                Observation::from_inputs(&inputs).map_err(|r| r.code())
            }
        };
        Some(Ok(RowPair { old: read(&self.old), new: read(&self.new) }))
    }
}
