//! Why a whole file could not be scored. The messages give facts (counts,
//! the dialect, a line or row number) and never quote a cell; they name no
//! setting either: how a user gives a delimiter is the route's word (a CLI
//! flag, an environment variable), added by the edge that reports the error
//! when [`BatchError::suggests_delimiter`] says so.

use std::io;

use super::MAX_COLUMNS;
use crate::core::csv_reader::{Dialect, RecordError, MAX_RECORD_BYTES};
use crate::core::explain::NoExplanation;

/// Why a whole file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the file is empty: a header row is needed")]
    Empty,
    #[error("the header has no column for: {0}")]
    MissingColumns(HeaderMismatch),
    #[error("the header has more than one column for {0} (duplicate): columns name a feature whatever their case, spaces, '_' or '-' and a unit in brackets")]
    DuplicateColumn(String),
    #[error("the header has {0} columns; at most {MAX_COLUMNS} are accepted")]
    TooManyColumns(usize),
    #[error("the record starting on line {line} is longer than {MAX_RECORD_BYTES} bytes: this is not a CSV of measurements (or a quote is never closed)")]
    RecordTooLong { line: u64 },
    #[error(
        "the record starting on line {line} opens a quote that never closes: the rest of the file would be one field"
    )]
    UnterminatedQuote { line: u64 },
    #[error("{0}")]
    NoExplanation(#[from] NoExplanation),
    /// Code of ours panicked while scoring this file: the pipeline's, or the
    /// `Read` or `Write` it was handed. `row` counts the rows after the
    /// header, from 1, when the reading thread knows it.
    ///
    /// A file that fails so is not retried (see [`BatchError::is_bad_input`]):
    /// the pipeline is deterministic (the same bytes and the same model take
    /// the same path), so a retry panics on the same row again: on S3 and SQS,
    /// `failed` meant retries until the dead-letter queue and nothing said to
    /// the lab. Rejected, the file gets a summary
    /// that says it is our fault, where, and to report it. A transient fault
    /// (S3 unavailable, a reset connection) is an `io::Error` (`Read`,
    /// `Write`), never a panic. The panic's message is never part of the
    /// error: it could quote a cell.
    #[error("{}", internal_error_text(*row))]
    Internal { row: Option<u64> },
    #[error("reading the input failed: {0}")]
    Read(#[source] io::Error),
    #[error("writing the output failed: {0}")]
    Write(#[source] io::Error),
}

fn internal_error_text(row: Option<u64>) -> String {
    let at = row.map(|r| format!(" at row {r} after the header")).unwrap_or_default();
    format!(
        "an internal error (a fault of the scorer, not of the file) stopped the scoring{at}; scoring the same file \
         again stops the same way: report it"
    )
}

impl BatchError {
    /// True when retrying cannot help: the file is unusable as a whole, or it
    /// makes our code panic ([`BatchError::Internal`], deterministic). False
    /// for a read or write error (S3 unavailable, a deadline's stop): a retry
    /// may succeed.
    pub fn is_bad_input(&self) -> bool {
        match self {
            BatchError::Empty
            | BatchError::MissingColumns(_)
            | BatchError::DuplicateColumn(_)
            | BatchError::TooManyColumns(_)
            | BatchError::RecordTooLong { .. }
            | BatchError::UnterminatedQuote { .. }
            | BatchError::NoExplanation(_)
            | BatchError::Internal { .. } => true,
            BatchError::Read(_) | BatchError::Write(_) => false,
        }
    }

    /// True when the header was read as one column with a delimiter that was
    /// detected, not given: the file is likely separated by another
    /// character, and whoever reports the error should say how its user gives
    /// the delimiter (a flag, a setting of the function).
    pub fn suggests_delimiter(&self) -> bool {
        matches!(self, BatchError::MissingColumns(m) if m.columns == 1 && !m.forced)
    }
}

impl From<RecordError> for BatchError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::TooLong { line } => BatchError::RecordTooLong { line },
            RecordError::UnterminatedQuote { line } => BatchError::UnterminatedQuote { line },
            RecordError::Read(e) => BatchError::Read(e),
        }
    }
}

/// What a header that lacks a feature's column looked like: counts and the
/// dialect, never its cells (a file without a header row has data there).
#[derive(Debug)]
pub struct HeaderMismatch {
    pub missing: Vec<String>,
    /// Columns the header was read as.
    pub columns: usize,
    /// Columns that name a feature.
    pub found: usize,
    pub dialect: Dialect,
    /// The delimiter was given by the caller ([`super::ScoreOptions::delimiter`]), not detected.
    pub forced: bool,
}

impl std::fmt::Display for HeaderMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, delimiter) = (self.columns, self.dialect.delimiter_name());
        let how = if self.forced { "as given" } else { "detected" };
        write!(
            f,
            "{}; columns are matched by API name (e.g. worstArea) or dataset name (e.g. \"worst area\"), ignoring \
             case, spaces, '_' or '-' and a unit in brackets. The header was read as {n} column{} separated by \
             {delimiter} ({how}): ",
            self.missing.join(", "),
            if n == 1 { "" } else { "s" },
        )?;
        match (n, self.found, self.forced) {
            // The edge adds how its user gives the delimiter (BatchError::suggests_delimiter).
            (1, _, false) => f.write_str("the header is one column: is the file separated by another character?"),
            (1, _, true) => f.write_str("the header is one column: is the delimiter given the file's?"),
            (_, 0, _) => f.write_str("no column names a feature: is the first row a header?"),
            (_, found, _) => write!(f, "{found} of the {n} columns name a feature; the others are passed through"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{score, score_with, HEADER};
    use super::*;

    #[test]
    fn a_header_without_the_needed_columns_fails_the_file() {
        let err = score(b"id,worst area\n1,2\n").unwrap_err();
        assert!(err.is_bad_input());
        let text = err.to_string();
        assert!(
            text.starts_with(
                "the header has no column for: meanConcavePoints, worstRadius, worstTexture, worstConcavePoints;"
            ),
            "{text}"
        );
        assert!(matches!(score(b"").unwrap_err(), BatchError::Empty));
        assert!(matches!(score(b"\x1f\x8b\x08\x00\x00\x00binary").unwrap_err(), BatchError::MissingColumns(_)));
        let dup = format!("{HEADER},worstArea\n");
        assert!(matches!(score(dup.as_bytes()).unwrap_err(), BatchError::DuplicateColumn(f) if f == "worstArea"));
    }

    #[test]
    fn a_given_delimiter_wins_over_detection_and_a_wrong_one_says_what_was_seen() {
        let input = format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\n");
        let err = score_with(input.as_bytes(), Some(b';')).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("The header was read as 1 column separated by ';' (as given)"), "{text}");
        assert!(text.contains("is the delimiter given the file's?"), "{text}");
        assert!(!err.suggests_delimiter(), "a delimiter was given: no advice to give one");
        let (_, counts) = score_with(input.as_bytes(), Some(b',')).unwrap();
        assert_eq!(counts.scored, 1);
        // A `|`-separated file is one column to the detector: the error points at the delimiter.
        let err = score(input.replace(',', "|").as_bytes()).unwrap_err();
        assert!(err.suggests_delimiter());
        let text = err.to_string();
        assert!(text.starts_with("the header has no column for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints;"), "{text}");
        assert!(
            text.ends_with(
                "read as 1 column separated by ',' (detected): the header is one column: is the file separated by \
                 another character?"
            ),
            "{text}"
        );
        // A headerless file: no cell of the first row is echoed.
        let err = score(b"Patient-Secret,0.1,20,20,900,0.1\n").unwrap_err();
        assert!(!err.suggests_delimiter());
        let err = err.to_string();
        assert!(
            err.contains(
                "6 columns separated by ',' (detected): no column names a feature: is the first row a header?"
            ),
            "{err}"
        );
        assert!(!err.contains("Secret") && !err.contains("900"), "{err}");
        let err = score(b"id,worst_area,worst radius,x\n").unwrap_err().to_string();
        assert!(err.contains("2 of the 4 columns name a feature"), "{err}");
    }

    #[test]
    fn the_core_names_no_flag_and_no_setting_in_any_file_error() {
        let one_column = score(format!("{HEADER}\n").replace(',', "|").as_bytes()).unwrap_err();
        let errors = [
            one_column,
            score_with(format!("{HEADER}\n").as_bytes(), Some(b';')).unwrap_err(),
            score(b"id,x\n1,2\n").unwrap_err(),
            score(b"").unwrap_err(),
            BatchError::Internal { row: Some(3) },
            BatchError::Internal { row: None },
        ];
        for err in errors {
            let text = err.to_string();
            for word in ["--", "CSV_DELIMITER", "MODEL_PATH", "EXPLAIN", "README", "OUTPUT_PREFIX", "env"] {
                assert!(!text.contains(word), "{word} in {text}");
            }
        }
    }

    #[test]
    fn two_columns_naming_one_feature_by_the_rule_are_a_duplicate() {
        for extra in ["worst_area", "WORST-AREA (mm2)", "WorstArea"] {
            let input = format!("{HEADER},{extra}\n");
            let err = score(input.as_bytes()).unwrap_err();
            assert!(matches!(&err, BatchError::DuplicateColumn(f) if f == "worstArea"), "{extra}: {err:?}");
            assert!(err.to_string().contains("(duplicate)"));
        }
    }

    #[test]
    fn only_read_and_write_errors_are_worth_a_retry() {
        let retried = [BatchError::Read(io::Error::other("reset")), BatchError::Write(io::Error::other("reset"))];
        assert!(retried.iter().all(|e| !e.is_bad_input()));
        let internal = BatchError::Internal { row: Some(7) };
        assert!(internal.is_bad_input(), "a panic recurs on every retry");
        assert_eq!(
            internal.to_string(),
            "an internal error (a fault of the scorer, not of the file) stopped the scoring at row 7 after the \
             header; scoring the same file again stops the same way: report it"
        );
    }
}
