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
use crate::core::observation::{Observation, FEATURES};
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
    let submission = match parse_observation_json(text.as_bytes()) {
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
    let Some(explanation) = answer.explanation.map(|e| e.0) else { return String::new() };
    let probability = answer.probability.unwrap_or(f64::NAN);
    let label = answer.label.unwrap_or("");
    let mut order: Vec<usize> = (0..FEATURES.len()).collect();
    order.sort_by(|&a, &b| explanation.contributions[b].abs().total_cmp(&explanation.contributions[a].abs()));
    let largest = explanation.contributions.iter().fold(0.0_f64, |m, c| m.max(c.abs()));
    let raw = explanation.raw_score();

    let mut out = String::new();
    let _ = writeln!(out, "{label} ({}), probability of malignancy {probability:.4}", u8::from(label == "malignant"));
    let _ = writeln!(out, "model {}\n", model.info().version);
    let _ = writeln!(out, "How each value moved the score (log-odds) away from the training average:\n");
    let _ = writeln!(out, "  {:<20} {:>9} {:>9}  {:>w$}│malignant →", "", "value", "log-odds", "← benign", w = HALF);
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
            FEATURES[f].api_name,
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
        let e = answer.explanation.unwrap().0;
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("malignant (1), probability of malignancy 0.9726"), "{text}");
        let rows: Vec<&str> =
            lines.iter().copied().filter(|l| FEATURES.iter().any(|f| l.trim_start().starts_with(f.api_name))).collect();
        assert_eq!(rows.len(), 5, "{text}");
        // Largest |contribution| first: worstConcavePoints (+2.60), then worstArea (+2.56), worstTexture (-2.48).
        assert!(
            rows[0].contains("worstConcavePoints") && rows[1].contains("worstArea") && rows[2].contains("worstTexture")
        );
        // The largest gets the full bar right of the axis; a negative one lies left of it.
        assert!(rows[0].ends_with(&format!("│{}", "█".repeat(HALF))), "{}", rows[0]);
        let (left, right) = rows[2].split_once('│').unwrap();
        assert!(left.ends_with('█') && right.is_empty(), "{}", rows[2]);
        assert!(rows[2].contains("-2.4835"), "{}", rows[2]);
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
            let values: [f64; 5] = std::array::from_fn(|f| number(FEATURES[f].api_name));
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
            for feature in FEATURES {
                let row = text.lines().find(|l| l.trim_start().starts_with(feature.api_name)).unwrap();
                let phi = number(&format!("contribution_{}", feature.api_name));
                assert!(row.contains(&format!("{phi:+.4}")), "golden {phi}: {row}");
            }
            checked += 1;
        }
        assert_eq!(checked, 25);
    }
}
