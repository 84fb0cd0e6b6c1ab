//! `scorer explain '{"meanConcavePoints": …}'`: one observation's prediction
//! and, for a person at a terminal, a waterfall of how each value moved it —
//! from the training average (the base value) to the final score, largest
//! contribution first, as signed text bars.

use std::fmt::Write as _;
use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::contract::answer::Answer;
use crate::core::model::Model;
use crate::core::observation::Observation;
use crate::core::observation_json::parse_observation_json;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  scorer explain '{\"meanConcavePoints\":0.1471,\"worstRadius\":25.38,\"worstTexture\":17.33,\"worstArea\":2019.0,\"worstConcavePoints\":0.2654}'\n  scorer explain - < observation.json"
)]
pub struct Args {
    /// The observation as a JSON object (the HTTP body), '-' for stdin, or a file holding it.
    observation: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = read_observation(&args.observation)?;
    let model = crate::model_file::load_model()?;
    let submission = match parse_observation_json(model.features(), text.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let observation = submission.observation.as_ref().ok().copied();
    let answer = Answer::with(&model, submission.observation, true);
    match (observation, answer.explanation.is_some()) {
        (Some(observation), true) => {
            print!("{}", waterfall(&model, &observation, &answer));
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("error: {}", answer.reason);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The argument itself when it is a JSON object, stdin for '-', else a file.
fn read_observation(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read the observation from stdin")?;
        return Ok(s);
    }
    if arg.trim_start().starts_with('{') {
        return Ok(arg.to_owned());
    }
    std::fs::read_to_string(arg).with_context(|| format!("cannot read {arg} (expected a JSON object, '-' or a file)"))
}

/// Characters of bar on each side of the axis for the largest contribution.
const HALF: usize = 24;

/// The text a person reads: prediction, base value, one signed bar per
/// feature (largest |contribution| first), the final score and probability.
pub fn waterfall(model: &Model, observation: &Observation, answer: &Answer) -> String {
    let Some(explanation) = answer.explanation.as_ref().map(|e| &e.explanation) else { return String::new() };
    let probability = answer.probability.unwrap_or(f64::NAN);
    let label = answer.label.unwrap_or("");
    let mut order: Vec<usize> = (0..explanation.contributions.len()).collect();
    order.sort_by(|&a, &b| explanation.contributions[b].abs().total_cmp(&explanation.contributions[a].abs()));
    let largest = explanation.contributions.iter().fold(0.0_f64, |m, c| m.max(c.abs()));
    let raw = explanation.raw_score();

    let mut out = String::new();
    let (negative, positive) = (model.class_name(0), model.class_name(1));
    let predicted = answer.prediction_label().unwrap_or_default();
    let _ = writeln!(out, "{label} ({predicted}), probability of {positive} {probability:.4}");
    let _ = writeln!(out, "model {}\n", model.info().version);
    let _ = writeln!(out, "How each value moved the score (log-odds) away from the training average:\n");
    let _ = writeln!(
        out,
        "  {:<20} {:>9} {:>9}  {:>w$}│{positive} →",
        "",
        "value",
        "log-odds",
        format!("← {negative}"),
        w = HALF
    );
    let _ = writeln!(
        out,
        "  {:<30} {:>9.4}  {:>w$}│",
        "base value (training average)",
        explanation.base_value,
        "",
        w = HALF
    );
    for &f in &order {
        let phi = explanation.contributions[f];
        let n = if largest > 0.0 { (phi.abs() / largest * HALF as f64).round() as usize } else { 0 };
        let bar = if n == 0 && phi != 0.0 { "·".to_owned() } else { "█".repeat(n) };
        let (left, right) = if phi < 0.0 { (bar, String::new()) } else { (String::new(), bar) };
        let value = observation.values()[f];
        let _ = writeln!(
            out,
            "  {:<20} {:>9} {:>+9.4}  {:>w$}│{}",
            model.features().api_name(f),
            format!("{value}"),
            phi,
            left,
            right,
            w = HALF
        );
    }
    let _ = writeln!(out, "  {:<30} {:>+9.4}  = probability {probability:.4} ({label})", "score", raw);
    for warning in &answer.warnings {
        let _ = writeln!(out, "\nnote: {warning}");
    }
    let _ = writeln!(
        out,
        "\nA contribution is how much this value moved the model's score relative to the training average\n\
         (exact TreeSHAP); it describes the model, not a cause in the patient."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waterfall_lists_the_largest_contribution_first_with_signed_bars_and_adds_up() {
        let model = Model::embedded().unwrap();
        let observation = Observation::from_values([0.1471, 25.38, 17.33, 2019.0, 0.2654]).unwrap();
        let answer = Answer::with(&model, Ok(observation), true);
        let text = waterfall(&model, &observation, &answer);
        let e = answer.explanation.clone().unwrap().explanation;
        let lines: Vec<&str> = text.lines().collect();
        let p = answer.probability.unwrap();
        let label = model.class_name(answer.prediction_label().unwrap());
        let first = format!("{label} ({}), probability of {} {p:.4}", u8::from(p > 0.5), model.class_name(1));
        assert!(lines[0].starts_with(&first), "{text}");
        let names: Vec<&str> = model.features().api_names().collect();
        let rows: Vec<&str> =
            lines.iter().copied().filter(|l| names.iter().any(|n| l.trim_start().starts_with(n))).collect();
        assert_eq!(rows.len(), names.len(), "{text}");
        // Largest |contribution| first (whatever the model): the printed
        // log-odds column, read back, is in decreasing magnitude.
        let printed: Vec<f64> = rows.iter().map(|r| r.split_whitespace().nth(2).unwrap().parse().unwrap()).collect();
        assert!(printed.windows(2).all(|w| w[0].abs() >= w[1].abs()), "{text}");
        // The largest gets the full bar on its side of the axis; a negative one lies left of it.
        let (left, right) = rows[0].split_once('│').unwrap();
        let full = "█".repeat(HALF);
        assert!(
            if printed[0] > 0.0 { right == full } else { left.ends_with(&full) && right.is_empty() },
            "{}",
            rows[0]
        );
        for (row, phi) in rows.iter().zip(&printed) {
            let (left, right) = row.split_once('│').unwrap();
            if *phi < 0.0 {
                assert!(right.is_empty() && (left.ends_with('█') || left.ends_with('·')), "{row}");
            }
        }
        assert!(text.contains(&format!("{:.4}", e.base_value)));
        assert!(text.contains("not a cause"));
    }

    /// The figures printed are sklearn's and shap's, not this crate's own sums:
    /// tests/golden/explanations.csv (shap.TreeExplainer on the exported
    /// model, see explanations.meta.json) gives each row's raw score, base
    /// value and contributions.
    #[test]
    fn the_waterfall_prints_the_scores_and_contributions_shap_and_sklearn_give() {
        let model = Model::embedded().unwrap();
        let golden = include_str!("../../tests/golden/explanations.csv");
        let mut lines = golden.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let mut checked = 0;
        for line in lines.filter(|l| l.starts_with("dataset,")).take(25) {
            let cells: Vec<&str> = line.split(',').collect();
            let number = |name: &str| cells[column(name)].parse::<f64>().unwrap();
            let values: Vec<f64> = model.features().api_names().map(number).collect();
            let observation = Observation::from_values(values).unwrap();
            let answer = Answer::with(&model, Ok(observation), true);
            let text = waterfall(&model, &observation, &answer);
            let raw = number("raw_score");
            let score = text.lines().find(|l| l.trim_start().starts_with("score")).unwrap();
            assert!(score.contains(&format!("{raw:+.4}")), "golden raw score {raw}: {score}");
            let probability = 1.0 / (1.0 + (-raw).exp());
            assert!(score.contains(&format!("probability {probability:.4}")), "{score}");
            let base = text.lines().find(|l| l.trim_start().starts_with("base value")).unwrap();
            assert!(base.contains(&format!("{:.4}", number("base_value"))), "{base}");
            for name in model.features().api_names() {
                let row = text.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
                let phi = number(&format!("contribution_{name}"));
                assert!(row.contains(&format!("{phi:+.4}")), "golden {phi}: {row}");
            }
            checked += 1;
        }
        assert_eq!(checked, 25);
    }
}
