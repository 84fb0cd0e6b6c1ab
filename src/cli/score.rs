//! `scorer score IN.csv [-o OUT.csv] [--report REPORT.json] [--html REPORT.html]`:
//! the batch pipeline on local files, with the summary and drift page the S3
//! path writes beside its outputs.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::contract::file::{file_error_text, unusable_file_reason, FileReport, FileStatus};
use crate::core::csv_pipeline::{
    available_workers, parse_workers, score_csv_shadowed, BatchCounts, BatchError, ScoreOptions, ScoreOutcome,
};
use crate::core::csv_reader::Dialect;
use crate::core::drift::DriftOptions;
use crate::core::model::Model;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input CSV with a header row ('-' for stdin). Feature columns are found by
    /// name (worstArea or "worst area", any case); other columns pass through.
    input: PathBuf,
    /// Output CSV ('-' or absent for stdout). Written to a temporary file and
    /// renamed at the end, so a failed run leaves no partial file.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Never show a progress bar.
    #[arg(long)]
    quiet: bool,
    /// Add each scored row's explanation: base_value and contribution_<apiName>
    /// columns (log-odds) after the result columns.
    #[arg(long)]
    explain: bool,
    /// Write the file's summary here: the JSON the S3 path writes as
    /// <output>.summary.json (status, counts, reasons, model version, drift).
    #[arg(long, value_name = "REPORT.json")]
    report: Option<PathBuf>,
    /// Write the drift report here as a self-contained HTML page (the S3
    /// path's <output>.report.html).
    #[arg(long, value_name = "REPORT.html", conflicts_with = "no_drift")]
    html: Option<PathBuf>,
    /// Do not gather the drift statistics (as DRIFT=off does).
    #[arg(long)]
    no_drift: bool,
    /// The field delimiter: ',', ';' or tab (written `tab` or `\t`). Detected
    /// from the header when absent; a decimal comma is read in ';' files.
    #[arg(long, value_parser = Dialect::parse_delimiter)]
    delimiter: Option<u8>,
    /// Parse and score on this many workers (the output is the same, in
    /// order, whatever the count); 1 reads and scores on one thread. Default:
    /// the cores this process may use.
    #[arg(long, value_parser = parse_workers, default_value_t = available_workers())]
    workers: usize,
}

/// How a file's delimiter is given here: the advice a file read as one column gets.
const GIVE_DELIMITER: &str = "Give it with --delimiter (',', ';' or tab).";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = crate::model_file::load_model()?;
    // CHALLENGER_MODEL_PATH as on Lambda: its comparison goes into --report.
    let challenger = crate::model_file::load_challenger()?;
    let models = Models { model: &model, challenger: challenger.as_ref() };
    // DRIFT and DRIFT_PSI_THRESHOLD as on Lambda; --no-drift wins.
    let drift = if args.no_drift { None } else { crate::config::drift_from_env()? };
    if args.html.is_some() && drift.is_none() {
        anyhow::bail!("--html needs the drift statistics, which DRIFT=off turns off");
    }
    let options = ScoreOptions {
        explain: args.explain,
        drift: drift.is_some(),
        delimiter: args.delimiter,
        workers: args.workers,
    };
    let started = Instant::now();
    let stdin = args.input.as_os_str() == "-";
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if stdin {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = progress_bar(size, args.quiet);
    let on_progress = |bytes: u64| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    };

    let to_stdout = args.output.as_ref().is_none_or(|o| o.as_os_str() == "-");
    // Devices and pipes (/dev/null, a FIFO) cannot be replaced by a rename: write to them directly.
    let special = args.output.as_deref().and_then(|p| std::fs::metadata(p).ok()).is_some_and(|m| !m.is_file());
    let result = if to_stdout {
        let stdout = io::stdout().lock();
        models.score(input, stdout, &options, on_progress).map(|c| (c, "stdout".to_owned()))
    } else if special {
        let path = args.output.as_deref().unwrap_or(Path::new("-"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        models.score(input, file, &options, on_progress).map(|c| (c, path.display().to_string()))
    } else {
        let path = args.output.as_deref().unwrap_or(Path::new("-"));
        score_to_file(models, input, path, &options, on_progress)?
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = file_report(models, &result, drift.as_ref(), seconds);
    if let Some(path) = &args.report {
        std::fs::write(path, report.summary_json()?).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(path), Some(page)) = (&args.html, report.drift_page(Some(&args.input.display().to_string()))) {
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    match result {
        Ok((outcome, destination)) => {
            eprintln!("{}", summary_line(&outcome.counts, model.class_name(1), seconds, &destination));
            if let Some(drift) = report.drift.as_ref().filter(|d| d.alert) {
                let features = drift.alert_features.join(", ");
                eprintln!("drift alert: {features} (PSI above {}; see the report)", drift.psi_threshold);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {}: {}", args.input.display(), file_error_text(&e, GIVE_DELIMITER));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The model and the challenger in shadow, if any.
#[derive(Clone, Copy)]
struct Models<'m> {
    model: &'m Model,
    challenger: Option<&'m Model>,
}

impl Models<'_> {
    fn score<R: Read + Send, W: Write>(
        self,
        input: R,
        output: W,
        options: &ScoreOptions,
        progress: impl FnMut(u64),
    ) -> Result<ScoreOutcome, BatchError> {
        score_csv_shadowed(self.model, self.challenger, input, output, options, progress)
    }
}

/// The summary the S3 path writes for the same file (no bucket locations,
/// no ETag: a local file has neither).
fn file_report(models: Models<'_>, result: &Scored, drift: Option<&DriftOptions>, seconds: f64) -> FileReport {
    let model = models.model;
    let (status, reason, counts, outcome) = match result {
        Ok((outcome, _)) => (FileStatus::Scored, None, Some(outcome.counts.clone()), Some(outcome)),
        Err(e) if e.is_bad_input() => (FileStatus::Rejected, Some(unusable_file_reason(e, GIVE_DELIMITER)), None, None),
        Err(e) => (FileStatus::Failed, Some(e.to_string()), None, None),
    };
    let stats = outcome.and_then(|o| o.drift.as_ref());
    let challenger = outcome.and_then(|o| o.challenger.as_ref()).zip(models.challenger);
    FileReport {
        status,
        failure: None,
        input: None,
        output: None,
        reason,
        counts,
        model_version: model.info().version.clone(),
        input_etag: None,
        duration_ms: (seconds * 1e3) as u64,
        drift: stats.zip(drift).map(|(stats, options)| stats.report(model, options)),
        challenger: challenger.map(|(stats, challenger)| stats.report(challenger)),
    }
}

type Scored = Result<(ScoreOutcome, String), BatchError>;

/// Scores into a temporary file beside `path` and renames it into place only on success.
fn score_to_file(
    models: Models<'_>,
    input: Box<dyn Read + Send>,
    path: &Path,
    options: &ScoreOptions,
    on_progress: impl FnMut(u64),
) -> anyhow::Result<Scored> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".scorer-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let result = models.score(input, temp.as_file_mut(), options, on_progress);
    match result {
        Ok(counts) => {
            temp.as_file_mut().flush()?;
            temp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Ok((counts, path.display().to_string())))
        }
        // The temporary file is removed when dropped.
        Err(e) => Ok(Err(e)),
    }
}

fn progress_bar(size: Option<u64>, quiet: bool) -> Option<ProgressBar> {
    let size = size?;
    if quiet || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// `positive`: the model's name of label 1 (the shipped model's: malignant).
fn summary_line(c: &BatchCounts, positive: &str, seconds: f64, destination: &str) -> String {
    let rate = if seconds > 0.0 { c.rows as f64 / seconds } else { 0.0 };
    format!(
        "{} rows: {} scored ({} {positive}), {} rejected, in {seconds:.2} s ({rate:.0} rows/s) -> {destination}",
        c.rows, c.scored, c.malignant, c.rejected
    )
}
