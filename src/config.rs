//! Settings from the environment, checked once at start-up.

use crate::core::csv_pipeline::{available_workers, parse_workers, ScoreOptions};
use crate::core::csv_reader::Dialect;
use crate::core::drift::DriftOptions;

/// Where batch input is read and scored output written.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// Keys under this prefix ending in `.csv`, `.tsv` or `.txt` are inputs
    /// (`INPUT_PREFIX`, default `incoming/`); other objects there get a summary
    /// saying why they were not scored.
    pub input_prefix: String,
    /// Outputs go under this prefix (`OUTPUT_PREFIX`, default `scored/`).
    pub output_prefix: String,
    /// Output bucket (`OUTPUT_BUCKET`); `None` means the input's bucket.
    pub output_bucket: Option<String>,
    /// Where to announce results (`RESULT_QUEUE_URL`), if anywhere.
    pub result_queue_url: Option<String>,
    /// The fastest one invocation could possibly read and score an S3 object,
    /// in MB/s (`MAX_THROUGHPUT_MB_PER_S`, default [`DEFAULT_MAX_THROUGHPUT_MB_PER_S`]).
    /// A file whose notified size needs longer than the time left at this
    /// speed is refused as `timed_out` before it is read. The bound is
    /// deliberately optimistic, so only files that certainly cannot finish
    /// are refused; the rest are stopped cleanly if the deadline comes.
    pub max_throughput_mb_per_s: u64,
    /// Add the explanation columns to scored S3 files (`EXPLAIN=true`).
    pub explain: bool,
    /// The drift report of every file and batch, and what makes its alert
    /// ([`drift_from_env`]); `None` when `DRIFT=off`.
    pub drift: Option<DriftOptions>,
    /// The CSV delimiter (`CSV_DELIMITER`: `,`, `;` or `tab`); `None` detects it from each file's header.
    pub delimiter: Option<u8>,
    /// Workers that score a file in parallel (`BATCH_WORKERS`, default the
    /// function's vCPUs: [`available_workers`]).
    pub workers: usize,
}

/// Memory (MB) that buys one vCPU's worth of CPU time on Lambda: "at 1,769
/// MB, a function has the equivalent of one vCPU (one vCPU-second of credits
/// per second)" (AWS Lambda Developer Guide, "Configuring Lambda function memory").
pub const MB_PER_VCPU: u64 = 1769;

/// The batch function's default worker count: the vCPUs its memory pays for
/// (rounded up), at most the cores it sees. Lambda shows a function more
/// cores than its memory pays for (two at 1,769 MB, measured by others): a
/// second worker there would share one vCPU's time with the first.
/// `memory_mb` is Lambda's AWS_LAMBDA_FUNCTION_MEMORY_SIZE; without it (not
/// on Lambda) every core counts.
pub fn lambda_workers(memory_mb: Option<u64>, cores: usize) -> usize {
    let paid = memory_mb.map_or(cores, |mb| mb.div_ceil(MB_PER_VCPU).max(1) as usize);
    paid.min(cores).max(1)
}

/// How a file's delimiter is given to the function: the advice a rejected
/// file's reason ends with when its header was read as one column.
pub const GIVE_DELIMITER: &str = "Give it with CSV_DELIMITER (',', ';' or tab).";

/// 1,000 MB/s: about three times the fastest the pipeline alone runs on a
/// full core (321 MB/s for `scorer score` on a local file, docs/testing.md
/// "Measured"), before S3's own transfer limits.
pub const DEFAULT_MAX_THROUGHPUT_MB_PER_S: u64 = 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "OUTPUT_PREFIX {output:?} and INPUT_PREFIX {input:?} overlap in the same bucket: scored files would trigger \
         the function again. Use prefixes that do not contain each other (e.g. incoming/ and scored/) or set OUTPUT_BUCKET"
    )]
    Recursive { input: String, output: String },
    #[error("MAX_THROUGHPUT_MB_PER_S must be a whole number of MB/s above 0, not {0:?}")]
    Throughput(String),
    #[error("EXPLAIN must be true or false (any case), or 1 or 0, not {0:?}")]
    Explain(String),
    #[error("CSV_DELIMITER: {0}")]
    Delimiter(String),
    #[error("DRIFT must be on or off, not {0:?}")]
    Drift(String),
    #[error("DRIFT_PSI_THRESHOLD must be a number above 0, not {0:?}")]
    PsiThreshold(String),
    #[error("BATCH_WORKERS: {0}")]
    Workers(String),
}

/// The drift settings every path reads (Lambda, worker, `scorer score`):
/// `DRIFT` (`on`, the default, or `off`) and `DRIFT_PSI_THRESHOLD` (the PSI
/// above which a feature raises the alert, default 0.25). `None` means off.
pub fn drift_from_env() -> Result<Option<DriftOptions>, ConfigError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    drift_options(var("DRIFT").as_deref(), var("DRIFT_PSI_THRESHOLD").as_deref())
}

fn drift_options(drift: Option<&str>, threshold: Option<&str>) -> Result<Option<DriftOptions>, ConfigError> {
    match drift.map(|d| d.trim().to_ascii_lowercase()).as_deref() {
        None | Some("on") => {}
        Some("off") => return Ok(None),
        Some(_) => return Err(ConfigError::Drift(drift.unwrap_or_default().to_owned())),
    }
    let mut options = DriftOptions::default();
    if let Some(t) = threshold {
        options.psi_threshold = t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| ConfigError::PsiThreshold(t.to_owned()))?;
    }
    Ok(Some(options))
}

impl BatchConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = Self::new(
            var("INPUT_PREFIX").unwrap_or_else(|| "incoming/".into()),
            var("OUTPUT_PREFIX").unwrap_or_else(|| "scored/".into()),
            var("OUTPUT_BUCKET"),
            var("RESULT_QUEUE_URL"),
        )?;
        if let Some(v) = var("MAX_THROUGHPUT_MB_PER_S") {
            config.max_throughput_mb_per_s =
                v.trim().parse().ok().filter(|n: &u64| *n > 0).ok_or(ConfigError::Throughput(v))?;
        }
        if let Some(v) = var("EXPLAIN") {
            config.explain = crate::contract::answer::explain_flag(v.trim()).map_err(|_| ConfigError::Explain(v))?;
        }
        config.drift = drift_from_env()?;
        // Not trimmed: a tab is white space.
        if let Some(v) = std::env::var("CSV_DELIMITER").ok().filter(|v| !v.is_empty()) {
            config.delimiter = Some(Dialect::parse_delimiter(&v).map_err(ConfigError::Delimiter)?);
        }
        let memory_mb = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|v| v.trim().parse().ok());
        config.workers = match var("BATCH_WORKERS") {
            Some(v) => parse_workers(v.trim()).map_err(ConfigError::Workers)?,
            None => lambda_workers(memory_mb, available_workers()),
        };
        Ok(config)
    }

    /// How every file of this deployment is scored.
    pub fn score_options(&self) -> ScoreOptions {
        ScoreOptions {
            explain: self.explain,
            delimiter: self.delimiter,
            drift: self.drift.is_some(),
            workers: self.workers,
        }
    }

    /// Refuses settings under which the function's output would trigger it
    /// again (same bucket and prefixes that contain one another).
    pub fn new(
        input_prefix: String,
        output_prefix: String,
        output_bucket: Option<String>,
        result_queue_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        let config = BatchConfig {
            input_prefix,
            output_prefix,
            output_bucket,
            result_queue_url,
            max_throughput_mb_per_s: DEFAULT_MAX_THROUGHPUT_MB_PER_S,
            explain: false,
            drift: Some(DriftOptions::default()),
            delimiter: None,
            workers: available_workers(),
        };
        let overlap = config.output_prefix.starts_with(&config.input_prefix)
            || config.input_prefix.starts_with(&config.output_prefix);
        if config.output_bucket.is_none() && overlap {
            return Err(ConfigError::Recursive { input: config.input_prefix, output: config.output_prefix });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_function_runs_as_many_workers_as_its_memory_pays_vcpus_for_and_it_has_cores() {
        assert_eq!(lambda_workers(Some(1769), 2), 1, "two cores seen, one vCPU paid for");
        assert_eq!(lambda_workers(Some(1024), 2), 1);
        assert_eq!(lambda_workers(Some(128), 2), 1);
        assert_eq!(lambda_workers(Some(3008), 2), 2);
        assert_eq!(lambda_workers(Some(3538), 2), 2);
        assert_eq!(lambda_workers(Some(3539), 3), 3);
        assert_eq!(lambda_workers(Some(10240), 6), 6);
        assert_eq!(lambda_workers(Some(10240), 2), 2, "never more than the cores");
        assert_eq!(lambda_workers(None, 4), 4, "off Lambda, every core");
        assert_eq!(lambda_workers(None, 1), 1);
        assert_eq!(parse_workers("3"), Ok(3));
        for bad in ["0", "65", "x", "", "1.5", "-1"] {
            let e = parse_workers(bad).unwrap_err();
            assert_eq!(e, format!("the worker count must be a whole number from 1 to 64, not {bad:?}"));
            assert_eq!(ConfigError::Workers(e.clone()).to_string(), format!("BATCH_WORKERS: {e}"));
        }
    }

    fn cfg(input: &str, output: &str, bucket: Option<&str>) -> Result<BatchConfig, ConfigError> {
        BatchConfig::new(input.into(), output.into(), bucket.map(Into::into), None)
    }

    #[test]
    fn drift_is_on_by_default_off_by_name_and_its_threshold_must_be_a_positive_number() {
        assert_eq!(drift_options(None, None), Ok(Some(DriftOptions::default())));
        assert_eq!(drift_options(Some(" ON "), None), Ok(Some(DriftOptions::default())));
        assert_eq!(drift_options(Some("off"), Some("0.1")), Ok(None));
        assert_eq!(drift_options(Some("Off"), None), Ok(None));
        assert_eq!(drift_options(None, Some("0.1")).unwrap().unwrap().psi_threshold, 0.1);
        assert_eq!(drift_options(Some("no"), None), Err(ConfigError::Drift("no".into())));
        for bad in ["0", "-1", "NaN", "inf", "x"] {
            assert_eq!(drift_options(None, Some(bad)), Err(ConfigError::PsiThreshold(bad.into())), "{bad}");
        }
    }

    #[test]
    fn overlapping_prefixes_in_one_bucket_are_refused() {
        assert!(cfg("incoming/", "scored/", None).is_ok());
        assert!(cfg("incoming/", "incoming/scored/", None).is_err());
        assert!(cfg("data/in/", "data/", None).is_err());
        assert!(cfg("", "scored/", None).is_err());
        assert!(cfg("incoming/", "incoming/", None).is_err());
        assert!(cfg("", "", Some("other-bucket")).is_ok());
    }
}
