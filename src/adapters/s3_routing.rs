//! Which S3 objects the batch routes score, and where each one's output
//! goes: the one rule for every route that writes scored files (S3
//! notifications, SQS, EventBridge, S3 Batch Operations), and the words a
//! record that is not scored is logged and summarised with.

use crate::config::BatchConfig;

/// Where the output of `bucket/key` goes, or why it must not be scored:
/// the one rule for every route that writes scored files. The output key
/// is the input key with INPUT_PREFIX replaced by OUTPUT_PREFIX; our own
/// outputs are never scored, and nothing is written where inputs are read.
/// `scope` is the one difference between the routes.
pub fn output_for(config: &BatchConfig, bucket: &str, key: &str, scope: Scope) -> Result<(String, String), Skip> {
    let out_bucket = config.output_bucket.clone().unwrap_or_else(|| bucket.to_owned());
    if out_bucket == bucket && key.starts_with(&config.output_prefix) && !config.output_prefix.is_empty() {
        return Err(Skip::OwnOutput);
    }
    let rest = match (key.strip_prefix(&config.input_prefix), scope) {
        (Some(rest), _) => rest,
        (None, Scope::Manifest) => key,
        (None, Scope::InputPrefix) => return Err(Skip::OutsideInputPrefix),
    };
    if scope == Scope::InputPrefix && !is_scored_name(rest) {
        return Err(if rest.is_empty() || rest.ends_with('/') { Skip::Folder } else { Skip::NotCsv });
    }
    let out_key = format!("{}{}", config.output_prefix, rest);
    // Even with OUTPUT_BUCKET set, never write where inputs are read.
    if out_bucket == bucket && out_key.starts_with(&config.input_prefix) {
        return Err(Skip::OwnOutput);
    }
    Ok((out_bucket, out_key))
}

/// Name endings scored under INPUT_PREFIX (any case): what spreadsheets
/// save delimited text as (`.txt` is Excel's "Unicode Text").
pub const SCORED_EXTENSIONS: [&str; 3] = [".csv", ".tsv", ".txt"];

/// The output name a folder marker's summary takes, in the mirrored folder:
/// `incoming/lab1/` -> `scored/lab1/_folder.summary.json`.
pub const FOLDER_OUTPUT_NAME: &str = "_folder";

fn is_scored_name(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SCORED_EXTENSIONS
        .iter()
        .any(|ext| lower.ends_with(ext) && lower.len() > ext.len() && !lower.ends_with(&format!("/{ext}")))
}

/// Where the summary of an object under INPUT_PREFIX that is not scored
/// ([`Skip::NotCsv`], [`Skip::Folder`]) goes: as a scored file's would
/// (`<output key>.summary.json`), a folder marker's at
/// `<mirrored folder>/_folder.summary.json`. `None` if that is not
/// ours to write (outside the prefix, or among the inputs).
pub fn unscored_output(config: &BatchConfig, bucket: &str, key: &str) -> Option<(String, String)> {
    let out_bucket = config.output_bucket.clone().unwrap_or_else(|| bucket.to_owned());
    let rest = key.strip_prefix(&config.input_prefix)?;
    let name = if rest.is_empty() || rest.ends_with('/') { FOLDER_OUTPUT_NAME } else { "" };
    let out_key = format!("{}{rest}{name}", config.output_prefix);
    let among_inputs = out_bucket == bucket && out_key.starts_with(&config.input_prefix);
    (!among_inputs).then_some((out_bucket, out_key))
}

/// Which objects a route scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// S3 notifications (direct, through SQS or EventBridge): the trigger
    /// fires for every object dropped under INPUT_PREFIX, so only the
    /// [`SCORED_EXTENSIONS`] keys there are scored; the rest get a summary
    /// saying why not.
    InputPrefix,
    /// S3 Batch Operations: every key the manifest names, which an operator
    /// chose; one outside INPUT_PREFIX keeps its whole key under OUTPUT_PREFIX.
    Manifest,
}

/// Why an S3 object is not scored (logged; nothing to retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The object is one of our outputs: scoring it would loop.
    OwnOutput,
    OutsideInputPrefix,
    NotCsv,
    /// A folder marker (the console's "Create folder": a key ending in `/`).
    Folder,
    NotObjectCreated,
    TestEvent,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::OwnOutput => {
                "refused: the object is in the output location, scoring it would trigger the function again"
            }
            Skip::OutsideInputPrefix => "ignored: the key is not under INPUT_PREFIX",
            Skip::NotCsv => {
                "not scored: only keys ending in .csv, .tsv or .txt are scored (comma, semicolon or tab separated text)"
            }
            Skip::Folder => {
                "not scored: a folder marker; drop .csv, .tsv or .txt files into the folder to have them scored"
            }
            Skip::NotObjectCreated => "ignored: not an ObjectCreated event",
            Skip::TestEvent => "ignored: s3:TestEvent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    fn cfg(input: &str, output: &str, bucket: Option<&str>) -> Result<BatchConfig, ConfigError> {
        BatchConfig::new(input.into(), output.into(), bucket.map(Into::into), None)
    }

    #[test]
    fn outputs_mirror_the_input_key_under_the_output_prefix() {
        let c = cfg("incoming/", "scored/", None).unwrap();
        let output_for = |bucket, key| super::output_for(&c, bucket, key, Scope::InputPrefix);
        assert_eq!(output_for("b", "incoming/lab 1/ä.CSV").unwrap(), ("b".into(), "scored/lab 1/ä.CSV".into()));
        assert_eq!(output_for("b", "scored/x.csv"), Err(Skip::OwnOutput));
        assert_eq!(output_for("b", "other/x.csv"), Err(Skip::OutsideInputPrefix));
        assert_eq!(output_for("b", "incoming/x.json"), Err(Skip::NotCsv));
        assert_eq!(output_for("b", "incoming/lab/x.TSV").unwrap(), ("b".into(), "scored/lab/x.TSV".into()));
        assert_eq!(output_for("b", "incoming/x.txt").unwrap(), ("b".into(), "scored/x.txt".into()));
        for not_scored in ["incoming/x.csv.gz", "incoming/x.xlsx", "incoming/.csv", "incoming/lab/.txt", "incoming/csv"]
        {
            assert_eq!(output_for("b", not_scored), Err(Skip::NotCsv), "{not_scored}");
        }
        assert_eq!(output_for("b", "incoming/"), Err(Skip::Folder));
        assert_eq!(output_for("b", "incoming/lab 1/"), Err(Skip::Folder));
        // Their summaries go where a scored file's would, a folder's inside the mirrored folder.
        assert_eq!(unscored_output(&c, "b", "incoming/x.json"), Some(("b".into(), "scored/x.json".into())));
        assert_eq!(unscored_output(&c, "b", "incoming/"), Some(("b".into(), "scored/_folder".into())));
        assert_eq!(unscored_output(&c, "b", "incoming/lab/"), Some(("b".into(), "scored/lab/_folder".into())));
        assert_eq!(unscored_output(&c, "b", "other/x.json"), None);
        let c = cfg("", "", Some("out")).unwrap();
        assert_eq!(super::output_for(&c, "in", "x.csv", Scope::InputPrefix).unwrap(), ("out".into(), "x.csv".into()));
        assert_eq!(super::output_for(&c, "out", "x.csv", Scope::InputPrefix), Err(Skip::OwnOutput));
    }

    #[test]
    fn a_manifest_may_name_any_key_but_never_our_outputs_nor_make_us_write_among_the_inputs() {
        let c = cfg("incoming/", "scored/", None).unwrap();
        let output_for = |bucket, key| super::output_for(&c, bucket, key, Scope::Manifest);
        assert_eq!(output_for("b", "incoming/lab/a.csv").unwrap(), ("b".into(), "scored/lab/a.csv".into()));
        assert_eq!(output_for("b", "archive/2019/a.txt").unwrap(), ("b".into(), "scored/archive/2019/a.txt".into()));
        assert_eq!(output_for("b", "scored/a.csv"), Err(Skip::OwnOutput));
        // OUTPUT_BUCKET naming the input bucket, prefixes that nest: refused
        // for both scopes rather than written where the trigger reads.
        let c = cfg("in/", "", Some("b")).unwrap();
        for scope in [Scope::InputPrefix, Scope::Manifest] {
            assert_eq!(super::output_for(&c, "b", "in/in/a.csv", scope), Err(Skip::OwnOutput), "{scope:?}");
            assert_eq!(
                super::output_for(&c, "b", "in/a.csv", scope).unwrap(),
                ("b".into(), "a.csv".into()),
                "{scope:?}"
            );
        }
    }
}
