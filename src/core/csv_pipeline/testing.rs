//! What the pipeline's tests share: scoring bytes with the embedded model,
//! and reading an output column by its name.

use super::{score_csv_with, BatchCounts, BatchError, ScoreOptions};
use crate::core::model::Model;

pub(super) const HEADER: &str = "id,mean concave points,worst radius,worst texture,worst area,worst concave points";

/// Scores `input` with the default options: the output as text and the counts.
pub(super) fn score(input: &[u8]) -> Result<(String, BatchCounts), BatchError> {
    score_with(input, None)
}

/// Scores `input` with `delimiter` given (or detected when `None`).
pub(super) fn score_with(input: &[u8], delimiter: Option<u8>) -> Result<(String, BatchCounts), BatchError> {
    let model = Model::embedded().unwrap();
    let mut out = Vec::new();
    let options = ScoreOptions { delimiter, ..ScoreOptions::default() };
    let outcome = score_csv_with(&model, input, &mut out, &options, |_| {})?;
    Ok((String::from_utf8(out).expect("the output is UTF-8"), outcome.counts))
}

/// The cells of a `,`-separated output's column `name`, row by row. The last
/// column of that name: a result column comes after any input column named
/// like it.
pub(super) fn column(out: &str, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader.headers().expect("a header").clone();
    let at = header.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i).last();
    let at = at.unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    reader.records().map(|r| r.expect("a CSV record")[at].to_owned()).collect()
}
