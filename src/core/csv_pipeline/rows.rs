//! Rows in: reading records into a block and scoring each with the file's
//! [`Scorer`] (the one that scores every route's observations). A row that
//! cannot be scored is a rejected row with its reason, never a failed file.

use std::io::Read;

use super::block::{Block, Row, RowOutcome};
use super::error::BatchError;
use crate::core::csv_reader::{Record, RecordReader, RecordSpan};
use crate::core::observation::{FieldInput, Observation, PerFeatureInputs};
use crate::core::scoring::{write_range_names, Scorer};

/// The reason code of a row whose field count is not the header's.
pub const WRONG_FIELD_COUNT: &str = "wrong_field_count";

/// How the rows of one file are read: where each feature's column is, the
/// header's width, whether `;` files' decimal commas are read.
pub(super) struct Rules<'a> {
    /// One per feature of the model, in its order.
    pub(super) columns: &'a [usize],
    pub(super) width: usize,
    pub(super) decimal_comma: bool,
}

/// Reads rows into `block` until it is full (by rows or bytes) and scores
/// them with the file's `scorer` (which explains them and counts them into
/// the drift statistics when asked to). Ok(false) at the end of input.
pub(super) fn fill<R: Read>(
    reader: &mut RecordReader<R>,
    block: &mut Block,
    scorer: &mut Scorer<'_>,
    rules: &Rules<'_>,
) -> Result<bool, BatchError> {
    let width = rules.width;
    let features = scorer.model().features();
    block.clear();
    while block.has_room() {
        // Header width + 1 fields: enough to see a trailing empty field; a
        // longer row is rejected and its extra fields are never output.
        let Some(span) = reader.read_record(&mut block.fields, width + 1)? else { return Ok(false) };
        block.bytes = reader.bytes_read();
        let record = block.fields.record(&span);
        let outcome = if !fits_header(&record, &span, width) {
            use std::fmt::Write as _;
            let _ = write!(block.reasons, "the row has {} fields but the header has {width}", span.fields);
            scorer.reject(WRONG_FIELD_COUNT);
            RowOutcome::Rejected(WRONG_FIELD_COUNT)
        } else {
            let inputs: PerFeatureInputs =
                rules.columns.iter().map(|&c| cell(record.get(c), rules.decimal_comma)).collect();
            // Validated and scored in place (score_input would move the
            // observation, a MAX_FEATURES-wide array, once more a row).
            let observation = Observation::from_inputs(&inputs);
            let scored = match &observation {
                Ok(observation) => Ok(scorer.score(observation)),
                Err(rejection) => {
                    scorer.reject(rejection.code());
                    Err(rejection)
                }
            };
            match scored {
                Ok(scored) => {
                    // A scored row's text in `reasons` is its warnings.
                    let _ = write_range_names(features, scored.out_of_range, &mut block.reasons);
                    if let Some(e) = scored.explanation {
                        block.contributions.extend_from_slice(&e.contributions);
                    }
                    RowOutcome::Scored(scored.prediction)
                }
                Err(rejection) => {
                    rejection.write_field_messages(features, &mut block.reasons);
                    RowOutcome::Rejected(rejection.code())
                }
            }
        };
        block.rows.push(Row { span, outcome, reason_end: block.reasons.len() });
    }
    Ok(true)
}

/// A row fits the header when it has its width, or one more field that is
/// empty: a trailing delimiter, as spreadsheets sometimes write.
pub fn fits_header(record: &Record<'_>, span: &RecordSpan, width: usize) -> bool {
    span.fields == width || (span.fields == width + 1 && record.get(width) == Some(b""))
}

/// A cell as the one validation path takes it (an empty one is missing there).
#[inline]
pub fn cell(field: Option<&[u8]>, decimal_comma: bool) -> FieldInput<'_> {
    match field {
        None => FieldInput::Missing,
        // Not UTF-8 cannot be a number; the cell's text is never echoed.
        Some(bytes) if decimal_comma => FieldInput::DecimalCommaText(std::str::from_utf8(bytes).unwrap_or("\u{fffd}")),
        Some(bytes) => FieldInput::Cell(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{column, score, HEADER};
    use super::super::MAX_COLUMNS;
    use super::*;
    use crate::core::csv_reader::{Dialect, Fields};
    use crate::core::model::Model;
    use crate::core::scoring::Wants;

    #[test]
    fn bad_rows_become_400_rows_in_place() {
        let input = format!(
            "{HEADER}\nA,0.1,20,20,900,0.1\nB,0.1,,20,900,0.1\nC,0.1,20,abc,900,0.1\nD,0.1,20,20,-5,0.1\n\
             E,0.1,20\nF,0.1,20,20,900,0.1,extra\nG,NaN,20,20,900,inf\nH,0.1,20,20,1e39,0.1\nI,0.1,20,20,900,0.1\n"
        );
        let (out, counts) = score(input.as_bytes()).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
        assert_eq!(ids, ["A", "B", "C", "D", "E", "F", "G", "H", "I"]);
        let status: Vec<&str> = rows.iter().map(|r| &r[8]).collect();
        assert_eq!(status, ["200", "400", "400", "400", "400", "400", "400", "400", "200"]);
        assert_eq!(&rows[1][9], "'worstRadius' is missing");
        assert_eq!(&rows[2][9], "'worstTexture' is not a number");
        assert_eq!(&rows[3][9], "'worstArea' must not be negative");
        assert_eq!(&rows[4][9], "the row has 3 fields but the header has 6");
        assert_eq!(rows[4].iter().skip(1).take(5).collect::<Vec<_>>(), ["0.1", "20", "", "", ""]);
        assert_eq!(&rows[5][9], "the row has 7 fields but the header has 6");
        assert!(rows[6][9].contains("'meanConcavePoints' must be a finite number"));
        assert!(rows[6][9].contains("'worstConcavePoints' must be a finite number"));
        assert!(rows[7][9].contains("too large"));
        assert_eq!((&rows[1][6], &rows[1][7]), ("", ""));
        assert_eq!((counts.rows, counts.scored, counts.rejected), (9, 2, 7));
        assert_eq!(counts.rejected_by_reason["wrong_field_count"], 2);
    }

    #[test]
    fn a_row_with_a_trailing_comma_scores() {
        let input = format!("{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654,\nB,0.1471,25.38,17.33,2019.0,0.2654\n");
        let (out, counts) = score(input.as_bytes()).unwrap();
        assert_eq!((counts.rows, counts.scored, counts.rejected), (2, 2, 0), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], lines[2].replacen('B', "A", 1));
        // One extra field only, and only an empty one.
        for extra in [",,", ",x", ",\" \""] {
            let input = format!("{HEADER}\nA,0.1471,25.38,17.33,2019.0,0.2654{extra}\n");
            let (_, counts) = score(input.as_bytes()).unwrap();
            assert_eq!(counts.rejected_by_reason.get("wrong_field_count"), Some(&1), "{extra}");
        }
    }

    #[test]
    fn a_row_of_a_million_commas_is_one_rejected_row_and_its_fields_are_not_stored() {
        let mut input = format!("{HEADER}\n").into_bytes();
        input.extend(std::iter::repeat_n(b',', 1_000_000));
        input.extend(b"\nA,0.1471,25.38,17.33,2019.0,0.2654\n");
        let model = Model::embedded().unwrap();
        let mut reader = RecordReader::new(&input[..], Dialect::default());
        reader.read_record(&mut Fields::default(), MAX_COLUMNS + 1).unwrap();
        let mut block = Block::default();
        let rules = Rules { columns: &[1, 2, 3, 4, 5], width: 6, decimal_comma: false };
        let mut scorer = Scorer::new(&model, Wants::default()).unwrap();
        assert!(!fill(&mut reader, &mut block, &mut scorer, &rules).unwrap());
        assert_eq!(block.rows.len(), 2);
        assert_eq!(block.rows[0].span.fields, 1_000_001);
        assert!(block.fields.allocated_bytes() < 64 * 1024, "{}", block.fields.allocated_bytes());
        assert_eq!(block.reason(0), "the row has 1000001 fields but the header has 6");

        let (out, counts) = score(&input).unwrap();
        assert_eq!((counts.rows, counts.scored, counts.rejected), (2, 1, 1));
        assert!(out.lines().nth(1).unwrap().starts_with(",,,,,,,,400,the row has 1000001 fields"));
    }

    #[test]
    fn out_of_range_features_are_named_in_the_warnings_column_as_http_names_them() {
        let input = format!(
            "{HEADER}\nA,0.1471,25.38,17.33,9000,0.2654\nB,0.1471,25.38,17.33,2019.0,0.2654\nC,x,1,1,1,1\nD,0.1471,99,17.33,9000,0.2654\n"
        );
        let (out, _) = score(input.as_bytes()).unwrap();
        let model = Model::embedded().unwrap();
        // The features the one out-of-range rule (HTTP's warnings) finds, by name, in model order.
        let far = Observation::from_values([0.1471, 99.0, 17.33, 9000.0, 0.2654]).unwrap();
        let names: Vec<&str> = model.out_of_range(&far).map(|i| model.features().api_name(i)).collect();
        assert_eq!(names, ["worstRadius", "worstArea"]);
        assert_eq!(column(&out, "status"), ["200", "200", "400", "200"]);
        assert_eq!(column(&out, "warnings"), ["worstArea", "", "", "worstRadius; worstArea"]);
    }

    #[test]
    fn semicolon_files_with_decimal_commas_units_and_crlf_score_like_the_comma_file() {
        let (want, _) = score(format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\n").as_bytes()).unwrap();
        let want_row = want.lines().nth(1).unwrap().split_once(",0.2654,").unwrap().1.to_owned();
        let input = "id;Mean Concave Points;worst_radius (mm);WORST-TEXTURE;worst area (\u{b5}m\u{b2});worst concave points\r\n\
                     S1;0,1471;25,38;17,33;2019,0;0,2654\r\nS2;1.234,5;25,38;17,33;2019;0,2654\r\nS3;0,1;1,234,5;1;1;1\r\n";
        let (out, counts) = score(input.as_bytes()).unwrap();
        assert_eq!((counts.scored, counts.rejected), (1, 2), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with(";prediction;probability;status;reason;warnings"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            format!("S1;0,1471;25,38;17,33;2019,0;0,2654;{}", want_row.replace(',', ";").replace('.', ","))
        );
        assert!(lines[2].contains(";400;'meanConcavePoints' has a thousands separator"), "{}", lines[2]);
        assert!(lines[3].contains(";400;'worstRadius' has a thousands separator"), "{}", lines[3]);
        assert_eq!(counts.rejected_by_reason["ambiguous_number"], 2);
        // Tab files read commas as text: a decimal comma there is not a number.
        let tab = format!("{}\nS1\t0,1471\t25.38\t17.33\t2019.0\t0.2654\n", HEADER.replace(',', "\t"));
        let (out, counts) = score(tab.as_bytes()).unwrap();
        assert_eq!(counts.rejected_by_reason["not_a_number"], 1, "{out}");
    }

    #[test]
    fn rows_never_echo_bad_values_in_reasons() {
        let input = format!("{HEADER}\nA,0.1,20,secret-1234,900,0.1\nB,0.1,20,20,-5,0.1\n");
        let (out, _) = score(input.as_bytes()).unwrap();
        // Read by name: the reason column, not whichever column is last.
        let reasons = column(&out, "reason");
        assert_eq!(reasons, ["'worstTexture' is not a number", "'worstArea' must not be negative"]);
        assert!(reasons.iter().all(|r| !r.contains("secret") && !r.contains("-5")), "{reasons:?}");
    }
}
