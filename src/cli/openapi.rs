//! `scorer openapi`: the HTTP contract (OpenAPI 3.1) for the loaded model, the
//! document `GET /openapi.json` serves, as YAML (or JSON with `--json`).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;

use crate::contract::openapi::{contract_of, document};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON (what `GET /openapi.json` serves) instead of YAML.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = crate::model_file::load_model()?;
    let doc = document(&contract_of(&model));
    let text = if args.json { serde_json::to_string_pretty(&doc)? + "\n" } else { yaml(&doc)? };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The document as YAML that YAML 1.1 readers read as well as YAML 1.2 ones.
fn yaml(doc: &serde_json::Value) -> anyhow::Result<String> {
    let text = serde_yaml_ng::to_string(doc).context("cannot write the document as YAML")?;
    Ok(portable_floats(&text))
}

/// serde_yaml_ng writes a float as ryu does (`3.4028234663852886e38`,
/// `1e-7`): a number in YAML 1.2, but a string to YAML 1.1 readers (PyYAML,
/// so most Python OpenAPI tools), which need a `.` and a signed exponent
/// (`3.4028234663852886e+38`, `1.0e-7`). Rewrites such plain scalars (a
/// string that looks like a number is always quoted), outside block scalars.
fn portable_floats(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 16);
    // The indentation of the line that opened a block scalar (`key: |`).
    let mut block: Option<usize> = None;
    for line in yaml.split_inclusive('\n') {
        let content = line.trim_end_matches('\n');
        let indent = content.len() - content.trim_start().len();
        if let Some(opened) = block {
            if content.trim().is_empty() || indent > opened {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let (head, tail) = content.rsplit_once(' ').unwrap_or(("", content));
        let after_key = head.ends_with(':') || head.trim_start() == "-" || head.ends_with(" -");
        if after_key && tail.starts_with(['|', '>']) {
            block = Some(indent);
        }
        match portable_float(tail).filter(|_| after_key) {
            Some(float) => {
                out.push_str(head);
                out.push(' ');
                out.push_str(&float);
                out.push_str(&line[content.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// `1e-7` -> `1.0e-7`, `3.4e38` -> `3.4e+38`; `None` for anything that is
/// not a float in exponent form.
fn portable_float(s: &str) -> Option<String> {
    let (mantissa, exponent) = s.split_once('e')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = mantissa.strip_prefix('-').unwrap_or(mantissa).split_once('.').unwrap_or((mantissa, ""));
    let int = int.strip_prefix('-').unwrap_or(int);
    let (sign, power) = match exponent.strip_prefix('-') {
        Some(p) => ("-", p),
        None => ("+", exponent.strip_prefix('+').unwrap_or(exponent)),
    };
    if !digits(int) || !(frac.is_empty() || digits(frac)) || !digits(power) {
        return None;
    }
    let mantissa = if mantissa.contains('.') { mantissa.to_owned() } else { format!("{mantissa}.0") };
    Some(format!("{mantissa}e{sign}{power}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_in_exponent_form_get_a_point_and_a_signed_exponent() {
        for (ryu, portable) in
            [("3.4028234663852886e38", "3.4028234663852886e+38"), ("1e-7", "1.0e-7"), ("-2e5", "-2.0e+5")]
        {
            assert_eq!(portable_float(ryu).as_deref(), Some(portable));
        }
        for other in ["0.5", "12", "e5", "1e", "abc", "1e5x"] {
            assert_eq!(portable_float(other), None, "{other}");
        }
    }

    #[test]
    fn the_yaml_reads_back_as_the_document_and_has_no_bare_exponent() {
        let doc = serde_json::json!({
            "maximum": 3.4028234663852886e38,
            "small": [1e-7, 0.25],
            "text": "a\nline: 1e5\n",
            "quoted": "1e5",
            "nested": {"x": -2e20},
        });
        let text = yaml(&doc).unwrap();
        assert!(text.contains("maximum: 3.4028234663852886e+38\n"), "{text}");
        assert!(text.contains("- 1.0e-7\n"), "{text}");
        assert!(text.contains("  line: 1e5\n"), "block scalars are left alone: {text}");
        let back: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, doc);
    }
}
