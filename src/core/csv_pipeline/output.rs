//! Rows out: the output's shape (the input's columns, then the result
//! columns, then the explanation's) and the writing thread's loop, which
//! formats scored blocks in order and hands their buffers back.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender};

use super::block::{Block, RowOutcome};
use super::counts::BatchCounts;
use super::error::BatchError;
use crate::core::csv_text::RowText;
use crate::core::features::Features;
use crate::core::status::Status;
use crate::core::text::field_text;

/// Columns appended to every row (and, by the same names, to every
/// Distributed Map item): the CSV answer's shape. `warnings` names the
/// features outside the training range (the HTTP answer's `warnings`, joined
/// with "; "), empty when there is none.
pub const RESULT_COLUMNS: [&str; 5] = ["prediction", "probability", "status", "reason", "warnings"];
/// With [`super::ScoreOptions::explain`], after the result columns: `base_value`, then
/// `contribution_<apiName>` per feature in model order; empty on rejected rows.
pub const BASE_VALUE_COLUMN: &str = "base_value";
pub const CONTRIBUTION_PREFIX: &str = "contribution_";

/// The output's header: the input's column names as they were, the result
/// columns, and with `explain` the explanation's.
pub(super) fn write_header(text: &mut RowText, names: &[std::borrow::Cow<'_, str>], explain: Option<&Features>) {
    for name in names {
        text.field(name.as_bytes());
    }
    for name in RESULT_COLUMNS {
        text.field(name.as_bytes());
    }
    if let Some(features) = explain {
        text.field(BASE_VALUE_COLUMN.as_bytes());
        for name in features.api_names() {
            text.field(format!("{CONTRIBUTION_PREFIX}{name}").as_bytes());
        }
    }
    text.end_row();
}

/// With `explain`: the base value written on every scored row, and how many
/// contributions follow it (the model's features).
#[derive(Debug, Clone, Copy)]
pub(super) struct ExplainColumns {
    pub(super) base_value: f64,
    pub(super) features: usize,
}

/// Every number the output writes (probability, base value, contributions)
/// as its dialect writes numbers: the shortest text that reads back to the
/// same f64 (ryu), with a decimal comma in a `;` file
/// ([`crate::core::csv_reader::Dialect::decimal_comma`], the rule the reader
/// uses), so a spreadsheet that wrote `0,1471` reads `0,972636006802156` as a
/// number too, not as text or as 972 trillion.
pub(super) struct NumberText {
    ryu: ryu::Buffer,
    /// The decimal-comma copy (ryu writes at most 24 bytes).
    comma: [u8; 24],
    decimal_comma: bool,
}

impl NumberText {
    pub(super) fn new(decimal_comma: bool) -> Self {
        NumberText { ryu: ryu::Buffer::new(), comma: [0; 24], decimal_comma }
    }

    #[inline]
    pub(super) fn format(&mut self, x: f64) -> &[u8] {
        let text = self.ryu.format_finite(x).as_bytes();
        if !self.decimal_comma {
            return text;
        }
        let out = &mut self.comma[..text.len()];
        out.copy_from_slice(text);
        if let Some(point) = out.iter().position(|&b| b == b'.') {
            out[point] = b',';
        }
        out
    }
}

/// Output text held before it is written (the csv writer's buffer size);
/// between writes the text buffer keeps at most twice this.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// How each scored row is written: the input's columns padded to the
/// header's width, the result columns, the explanation's, as text by
/// [`RowText`] (the csv writer's quoting, with one copy of each field). Both
/// pipelines (one writing thread, or each worker into its own buffer) write
/// rows with it.
pub(super) struct RowFormat {
    width: usize,
    number: NumberText,
    features: usize,
    /// With an explanation: the base value, the same on every row, formatted once.
    base_text: Option<Vec<u8>>,
    /// Rows formatted and not yet written.
    text: RowText,
}

impl RowFormat {
    pub(super) fn new(width: usize, mut number: NumberText, explained: Option<ExplainColumns>, text: RowText) -> Self {
        let features = explained.map_or(0, |e| e.features);
        let base_text = explained.map(|e| number.format(e.base_value).to_owned());
        RowFormat { width, number, features, base_text, text }
    }

    /// Writes `block`'s rows and counts them (the text is written to
    /// `writer` in pieces of about [`OUTPUT_BUFFER`]; [`RowFormat::finish`]
    /// writes the rest).
    pub(super) fn write_block<W: Write>(
        &mut self,
        writer: &mut W,
        block: &Block,
        counts: &mut BatchCounts,
    ) -> Result<(), BatchError> {
        let (width, features) = (self.width, self.features);
        let text = &mut self.text;
        // All ASCII (one fast pass a block): every field is UTF-8 as it is.
        // Otherwise each field is checked on its own (a check of a whole row
        // would let a character split across two fields through).
        let ascii = block.fields.as_bytes().is_ascii();
        // And no field of the block needs quotes (a second pass): each is copied as it is.
        let plain = ascii && !text.needs_quotes(block.fields.as_bytes());
        // `features` contributions a scored row (with an explanation).
        let mut contributions = block.contributions.chunks_exact(features.max(1));
        for (i, row) in block.rows.iter().enumerate() {
            // Original columns, padded to the header's width so the output stays
            // rectangular (a longer row's extra fields cannot be placed).
            let record = block.fields.record(&row.span);
            for j in 0..width {
                let field = record.get(j).unwrap_or(b"");
                if plain {
                    text.plain(field);
                } else if ascii {
                    text.field(field);
                } else {
                    // A field that is not UTF-8 is Windows-1252 (see core::text).
                    text.field(field_text(field).as_bytes());
                }
            }
            match row.outcome {
                RowOutcome::Scored(p) => {
                    counts.count_scored(&p);
                    text.field(if p.label == 1 { b"1" } else { b"0" });
                    text.field(self.number.format(p.probability));
                    text.field(Status::Ok.as_str().as_bytes());
                    text.field(Status::Ok.reason_phrase().as_bytes());
                    text.field(block.reason(i).as_bytes());
                    if let (Some(base), Some(phi)) = (self.base_text.as_deref(), contributions.next()) {
                        text.field(base);
                        for &c in phi {
                            text.field(self.number.format(c));
                        }
                    }
                }
                RowOutcome::Rejected(code) => {
                    counts.count_rejected(code);
                    text.field(b"");
                    text.field(b"");
                    text.field(Status::BadRequest.as_str().as_bytes());
                    text.field(block.reason(i).as_bytes());
                    text.field(b"");
                    if self.base_text.is_some() {
                        (0..=features).for_each(|_| text.field(b""));
                    }
                }
            }
            text.end_row();
            if text.len() >= OUTPUT_BUFFER {
                write_text(writer, text)?;
            }
        }
        Ok(())
    }

    /// Writes the rows' text formatted so far.
    pub(super) fn finish<W: Write>(&mut self, writer: &mut W) -> Result<(), BatchError> {
        write_text(writer, &mut self.text)
    }
}

/// Writes the rows' text ended so far.
fn write_text<W: Write>(writer: &mut W, text: &mut RowText) -> Result<(), BatchError> {
    writer.write_all(text.as_bytes()).map_err(BatchError::Write)?;
    text.clear(2 * OUTPUT_BUFFER);
    Ok(())
}

/// Writes scored blocks in order and returns their buffers to the reader.
/// The rows before an error are written too, as they were by the csv writer.
pub(super) fn write_blocks<W: Write>(
    writer: &mut W,
    full: &Receiver<Result<Block, BatchError>>,
    empty: &SyncSender<Block>,
    format: &mut RowFormat,
    counts: &mut BatchCounts,
    progress: &mut impl FnMut(u64),
) -> Result<(), BatchError> {
    for block in full.iter() {
        let mut block = match block {
            Ok(block) => block,
            Err(e) => {
                let _ = format.finish(writer);
                return Err(e);
            }
        };
        format.write_block(writer, &block, counts)?;
        progress(block.bytes);
        block.recycle();
        // The reader makes a new block if this one cannot be returned.
        let _ = empty.try_send(block);
    }
    format.finish(writer)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{column, score, HEADER};

    #[test]
    fn scores_valid_rows_and_passes_other_columns_through() {
        let input = format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\nS2,0.04781,15.11,26.5,711.2,0.07431\n");
        let (out, counts) = score(input.as_bytes()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("{HEADER},prediction,probability,status,reason,warnings"));
        assert!(lines[1].starts_with("S1,0.1471,25.38,17.33,2019.0,0.2654,1,0.9"), "{}", lines[1]);
        assert!(lines[1].ends_with(",200,OK,"));
        assert!(lines[2].starts_with("S2,0.04781,15.11,26.5,711.2,0.07431,0,0.0"), "{}", lines[2]);
        assert_eq!((counts.rows, counts.scored, counts.rejected, counts.malignant), (2, 2, 0, 1));
    }

    #[test]
    fn a_header_only_file_gives_a_header_only_output() {
        let (out, counts) = score(format!("{HEADER}\n").as_bytes()).unwrap();
        assert_eq!(out.lines().count(), 1);
        assert_eq!(counts.rows, 0);
    }

    #[test]
    fn input_columns_named_like_results_are_kept_and_the_results_are_appended() {
        let input = format!("{HEADER},status,reason\nA,0.1471,25.38,17.33,2019.0,0.2654,pending,screening\n");
        let (out, _) = score(input.as_bytes()).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!("{HEADER},status,reason,prediction,probability,status,reason,warnings")
        );
        let row = lines.next().unwrap();
        assert!(row.starts_with("A,0.1471,25.38,17.33,2019.0,0.2654,pending,screening,1,0.9"), "{row}");
        assert!(row.ends_with(",200,OK,"), "{row}");
        // `column` reads the results', the last of each name.
        assert_eq!((column(&out, "status"), column(&out, "reason")), (vec!["200".into()], vec!["OK".into()]));
    }

    #[test]
    fn windows_1252_fields_come_out_as_utf8_and_utf8_fields_are_kept() {
        let mut input = format!("{HEADER},note\n").into_bytes();
        input.extend(b"Biopsia-Mu\xf1oz,0.1471,25.38,17.33,2019.0,0.2654,caf\xe9\n");
        input.extend("Biopsia-Muñoz,0.1471,25.38,17.33,2019.0,0.2654,µm²\n".as_bytes());
        let (out, counts) = score(&input).unwrap();
        assert_eq!(counts.scored, 2);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].starts_with("Biopsia-Muñoz,0.1471,25.38,17.33,2019.0,0.2654,café,1,"), "{}", lines[1]);
        assert!(lines[2].starts_with("Biopsia-Muñoz,0.1471,25.38,17.33,2019.0,0.2654,µm²,1,"), "{}", lines[2]);
        assert!(out.starts_with('\u{feff}'), "Windows-1252 in: a mark, so Excel reads the UTF-8 output as UTF-8");
        // A UTF-8 character split across two fields is two Windows-1252 fields, not passed through.
        let mut split = format!("{HEADER},a,b\n").into_bytes();
        split.extend(b"S,0.1471,25.38,17.33,2019.0,0.2654,x\xc3,\xa9y\n");
        let (out, _) = score(&split).unwrap();
        assert!(out.lines().nth(1).unwrap().starts_with("S,0.1471,25.38,17.33,2019.0,0.2654,xÃ,©y,1,"), "{out}");
        // A 1252 header names its columns too.
        let mut header = b"id;worst area (\xb5m\xb2);".to_vec();
        header.extend(b"mean concave points;worst radius;worst texture;worst concave points\n1;2019;0,1;25;17;0,2\n");
        let (out, counts) = score(&header).unwrap();
        assert_eq!(counts.scored, 1, "{out}");
        assert!(out.starts_with("\u{feff}id;worst area (µm²);"), "{out}");
    }

    #[test]
    fn a_semicolon_file_gets_a_decimal_comma_in_every_number_written_and_a_comma_file_a_point() {
        use super::super::{score_csv_with, ScoreOptions};
        use crate::core::model::Model;
        let model = Model::embedded().unwrap();
        let options = ScoreOptions { explain: true, ..ScoreOptions::default() };
        let run = |input: &str| {
            let mut out = Vec::new();
            score_csv_with(&model, input.as_bytes(), &mut out, &options, |_| {}).unwrap();
            String::from_utf8(out).unwrap()
        };
        let semicolon = run(&format!("{}\nS1;0,1471;25,38;17,33;2019,0;0,2654\n", HEADER.replace(',', ";")));
        let comma = run(&format!("{HEADER}\nS1,0.1471,25.38,17.33,2019.0,0.2654\n"));
        let cells =
            |out: &str, d: char| out.lines().nth(1).unwrap().split(d).skip(6).map(str::to_owned).collect::<Vec<_>>();
        let (semi, plain) = (cells(&semicolon, ';'), cells(&comma, ','));
        // prediction, probability, status, reason, warnings, base_value, 5 contributions
        assert_eq!(semi.len(), 11, "{semicolon}");
        for i in [1, 5, 6, 7, 8, 9, 10] {
            assert!(semi[i].contains(',') && !semi[i].contains('.'), "{i}: {semicolon}");
            assert!(plain[i].contains('.') && !plain[i].contains(','), "{i}: {comma}");
            assert_eq!(semi[i].replace(',', "."), plain[i], "the same number");
        }
        assert_eq!((semi[0].as_str(), semi[2].as_str()), ("1", "200"));
        assert!(!comma.starts_with('\u{feff}'), "a plain ASCII comma file gets no mark");
    }
}
