//! `scorer model diff OLD.json NEW.json [--rows FILE.csv] [--allow-breaking] [--json]`:
//! checks a new export against the one in service before it ships. Reads
//! the files and prints; the comparison is `core::model_diff`.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::contract::file::file_error_text;
use crate::core::csv_reader::Dialect;
use crate::core::model::Model;
use crate::core::model_diff::{
    diff_csv, diff_synthetic, Agreement, DiffReport, ReasonCount, RowSource, DEFAULT_SAMPLE_ROWS, NOT_SAMPLED,
    NO_COLUMN,
};

/// Exit status when a change breaks clients and `--allow-breaking` is not given
/// (2 is clap's, for a command line it cannot parse).
pub const EXIT_BREAKING: u8 = 3;

/// Most synthetic rows (each feature's values are held until they are compared).
const MAX_SAMPLES: usize = 1_000_000;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ModelCommand {
    /// Compare a new export with the old one before shipping it: what changes for clients, and how
    /// differently the two label rows (a CSV file's, or a synthetic sample of the new training profile).
    Diff(DiffArgs),
    /// Write the compiled form of an export beside it (EXPORT.compiled): what a cold start loads instead
    /// of parsing and compiling the JSON. Run it at package time for MODEL_PATH and CHALLENGER_MODEL_PATH
    /// files; a compiled form that does not match its export is refused at start-up.
    Compile(CompileArgs),
}

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The export (JSON) to compile; it is checked as at start-up.
    export: PathBuf,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 when no change breaks clients (or --allow-breaking); 3 when one does \
(a feature added or renamed, a dataset name clients' headers no longer match, class names changed, \
explanations lost); 1 when a file cannot be read or is not a model export; 2 for a command line that cannot \
be parsed.\n\nWithout --rows, the rows are synthetic: each feature's values drawn from the NEW export's \
training profile (bins in proportion to the training counts, inside the bin's edges and the training range), \
features independently. A sample of the marginals, not the training rows.\n\nExamples:\n  \
scorer model diff models/breast-cancer-gbc.json new.json\n  \
scorer model diff models/breast-cancer-gbc.json new.json --rows samples/wdbc.csv --json")]
pub struct DiffArgs {
    /// The export in service now.
    old: PathBuf,
    /// The export to ship.
    new: PathBuf,
    /// Compare predictions on this CSV file's rows (a header row; each model finds its columns by
    /// name, as `scorer score` does) instead of synthetic rows.
    #[arg(long, value_name = "FILE.csv")]
    rows: Option<PathBuf>,
    /// Synthetic rows to draw from the new export's training profile when --rows is not given.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SAMPLE_ROWS, conflicts_with = "rows",
          value_parser = parse_samples)]
    samples: usize,
    /// The field delimiter of --rows: ',', ';' or tab. Detected from the header when absent.
    #[arg(long, value_parser = Dialect::parse_delimiter, requires = "rows")]
    delimiter: Option<u8>,
    /// Exit 0 even when a change breaks clients (the changes are still printed).
    #[arg(long)]
    allow_breaking: bool,
    /// Print the report as JSON (for CI) instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_samples(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_SAMPLES).contains(&n) => Ok(n),
        _ => Err(format!("a number of rows from 1 to {MAX_SAMPLES}")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelCommand::Diff(args) => diff(args),
        ModelCommand::Compile(args) => compile(args),
    }
}

fn compile(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let model = load("exported", &args.export)?;
    let out = crate::core::model::compiled_path_for(&args.export);
    let bytes = model.to_compiled_bytes();
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} ({} bytes): the compiled form of {} ({})",
        out.display(),
        bytes.len(),
        args.export.display(),
        model.info().version
    );
    Ok(ExitCode::SUCCESS)
}

/// How the synthetic rows are made, in a sentence.
const SYNTHETIC_NOTE: &str = "synthetic rows: each feature's values drawn from the new export's training profile \
(bins in proportion to the training counts, inside the bin's edges and the training range), features \
independently; a sample of the marginals, not the training rows";
/// [`SYNTHETIC_NOTE`] for a terminal.
const SYNTHETIC_TEXT: &str = "  a sample of the marginals of the new export's training profile, NOT the training rows:
  each feature's values drawn per bin in proportion to the training counts, inside the bin's edges
  and the training range, features independently (rows from a file: --rows FILE.csv)";
const NO_ROWS_NOTE: &str = "no rows: the new export has no training profile (format version 1) to draw rows \
from; give --rows FILE.csv";

fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let old = match load("old", &args.old) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let new = match load("new", &args.new) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let report = match &args.rows {
        Some(path) => {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) => return failed(anyhow::anyhow!("cannot open the rows file {}: {e}", path.display())),
            };
            match diff_csv(&old, &new, std::io::BufReader::new(file), args.delimiter) {
                Ok(report) => report,
                Err(e) => {
                    let text = file_error_text(&e, "Give it with --delimiter (',', ';' or tab).");
                    return failed(anyhow::anyhow!("the rows file {}: {text}", path.display()));
                }
            }
        }
        None => diff_synthetic(&old, &new, args.samples),
    };
    let code = if report.breaking && !args.allow_breaking { EXIT_BREAKING } else { 0 };
    let rows_note = match report.rows.source {
        RowSource::File => None,
        RowSource::Synthetic => Some(SYNTHETIC_NOTE),
        RowSource::None => Some(NO_ROWS_NOTE),
    };
    if args.json {
        let out = JsonReport {
            old_file: args.old.display().to_string(),
            new_file: args.new.display().to_string(),
            rows_file: args.rows.as_ref().map(|p| p.display().to_string()),
            rows_note,
            allow_breaking: args.allow_breaking,
            exit_code: code,
            report: &report,
        };
        print_out(serde_json::to_string_pretty(&out)? + "\n")?;
    } else {
        print_out(text(&report, &args, rows_note, code))?;
    }
    Ok(ExitCode::from(code))
}

/// Writes to stdout; a reader that stopped reading (`| head`) is no error.
fn print_out(text: String) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write the report"),
        _ => Ok(()),
    }
}

fn failed(e: anyhow::Error) -> anyhow::Result<ExitCode> {
    eprintln!("error: {e:#}");
    Ok(ExitCode::FAILURE)
}

/// One export, its errors naming which one and the file.
fn load(which: &str, path: &Path) -> anyhow::Result<Model> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the {which} model {}", path.display()))?;
    Model::from_json_bytes(&bytes).with_context(|| format!("the {which} model {} cannot be used", path.display()))
}

/// `--json`: the report, with the files it compared and the exit status.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    old_file: String,
    new_file: String,
    rows_file: Option<String>,
    /// What the rows are when they are not a file's.
    rows_note: Option<&'static str>,
    allow_breaking: bool,
    exit_code: u8,
    #[serde(flatten)]
    report: &'a DiffReport,
}

/// The report for a person.
fn text(report: &DiffReport, args: &DiffArgs, rows_note: Option<&str>, code: u8) -> String {
    let mut out = String::new();
    for (which, path, facts) in [("old", &args.old, &report.old), ("new", &args.new, &report.new)] {
        let _ = writeln!(out, "{which}  {}", path.display());
        let _ = writeln!(
            out,
            "     {}: format {}, {} trees (depth {}), {} features, classes {} / {}, {}",
            facts.version,
            facts.format_version,
            facts.trees,
            facts.max_depth,
            facts.features.len(),
            facts.classes[0],
            facts.classes[1],
            if facts.explanations { "explains" } else { "cannot explain" },
        );
    }
    let breaking: Vec<&str> = report.breaking_changes().map(|c| c.message.as_str()).collect();
    let other: Vec<&str> = report.changes.iter().filter(|c| !c.breaking).map(|c| c.message.as_str()).collect();
    let _ = writeln!(out);
    if report.changes.is_empty() {
        let _ = writeln!(out, "Changes: none");
    }
    if !breaking.is_empty() {
        let _ = writeln!(out, "Changes that break clients ({}):", breaking.len());
        for m in &breaking {
            let _ = writeln!(out, "  ! {m}");
        }
    }
    if !other.is_empty() {
        let _ = writeln!(out, "Other changes ({}), nothing that breaks clients:", other.len());
        for m in &other {
            let _ = writeln!(out, "  - {m}");
        }
    }
    let _ = writeln!(out);
    rows_text(&mut out, &report.rows, args, rows_note);
    let _ = writeln!(out);
    let verdict = match (breaking.len(), code) {
        (0, _) => "no change breaks clients (exit 0)".to_owned(),
        (n, 0) => format!("{n} change(s) break clients, allowed by --allow-breaking (exit 0)"),
        (n, code) => format!("{n} change(s) break clients (exit {code}; --allow-breaking accepts them)"),
    };
    let _ = writeln!(out, "Result: {verdict}");
    out
}

fn rows_text(out: &mut String, rows: &Agreement, args: &DiffArgs, rows_note: Option<&str>) {
    match (&args.rows, rows_note) {
        (Some(path), _) => {
            let _ = writeln!(out, "Predictions on the rows of {} ({} rows):", path.display(), rows.rows);
        }
        (None, _) if rows.source == RowSource::Synthetic => {
            let _ = writeln!(out, "Predictions on {} synthetic rows:\n{SYNTHETIC_TEXT}", rows.rows);
        }
        (None, note) => {
            let _ = writeln!(out, "Predictions: {}", note.unwrap_or_default());
        }
    }
    if rows.source == RowSource::None {
        return;
    }
    let percent = |share: Option<f64>| share.map_or_else(|| "-".to_owned(), |s| format!("{:.2} %", 100.0 * s));
    let number = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.6}"));
    let _ = writeln!(out, "  compared              {}", rows.compared);
    let _ = writeln!(out, "  not comparable        {}", rows.not_comparable);
    for r in &rows.not_comparable_by_reason {
        let _ = writeln!(out, "    {:>8}  {}", r.rows, reason_text(r));
    }
    for (which, missing) in [("old", &rows.missing_features.old), ("new", &rows.missing_features.new)] {
        if !missing.is_empty() {
            let what = if rows.source == RowSource::File { "the file has no column for" } else { "no values for" };
            let _ = writeln!(out, "    {what} the {which} model's {}", missing.join(", "));
        }
    }
    let f = &rows.flips;
    let _ = writeln!(
        out,
        "  label flips           {} ({}): 0 -> 1 {}, 1 -> 0 {}",
        f.rows,
        percent(f.share),
        f.zero_to_one,
        f.one_to_zero
    );
    let _ = writeln!(out, "  mean |dp|             {}", number(rows.abs_delta_p.mean));
    let _ = writeln!(out, "  max |dp|              {}", number(rows.abs_delta_p.max));
    let _ = writeln!(
        out,
        "  predicted 1 (old/new) {} / {}",
        percent(rows.positive_share.old),
        percent(rows.positive_share.new)
    );
    let _ = writeln!(out, "  (p: probability of label 1; dp = p_new - p_old; flips and shares among compared rows)");
}

/// Why rows were not compared, in words.
fn reason_text(r: &ReasonCount) -> String {
    let words = |code: &str| match code {
        NO_COLUMN => "no column for a feature it needs".to_owned(),
        NOT_SAMPLED => "a feature it needs is not in the sample".to_owned(),
        "wrong_field_count" => "the row's field count is not the header's".to_owned(),
        code => format!("rejected: {code}"),
    };
    match (r.old, r.new) {
        (Some(a), Some(b)) if a == b => format!("both models: {}", words(a)),
        (Some(a), Some(b)) => format!("old model: {}; new model: {}", words(a), words(b)),
        (Some(a), None) => format!("old model: {}", words(a)),
        (None, Some(b)) => format!("new model: {}", words(b)),
        (None, None) => String::new(),
    }
}
