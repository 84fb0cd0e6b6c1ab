//! The report in plain words, decided once for the JSON and the page alike:
//! what a feature's PSI says ([`Shift`]), which way its values moved
//! ([`Direction`]), the one sentence a lab person reads ([`sentence`]), and
//! the name the lab's own file gave the feature ([`shown_column`]).
//!
//! Every wording names the feature by a name handed in (the file's header or
//! the export's API name): no feature name is written here.

use serde::Serialize;

/// PSI above this is a moderate shift (the usual convention), at most this stable.
pub const MODERATE_PSI: f64 = 0.1;

/// Longest header text shown: a header matches a feature by its name, but
/// its trailing unit may be any text; the rest is cut at a character boundary.
const MAX_SHOWN_COLUMN: usize = 60;

/// What a feature's PSI says. `not_assessed` below `minRowsForAlert` scored
/// rows or without a training profile: the PSI (if any) is then sampling
/// noise, and neither the JSON nor the page grades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shift {
    NotAssessed,
    /// PSI at most [`MODERATE_PSI`].
    Stable,
    /// Above [`MODERATE_PSI`], at most the threshold.
    Moderate,
    /// Above the threshold: the feature is in `alertFeatures`.
    Major,
}

impl Shift {
    /// The grade of `psi` against `threshold`, when the file was assessed.
    pub fn of(psi: Option<f64>, assessed: bool, threshold: f64) -> Shift {
        match psi.filter(|_| assessed) {
            None => Shift::NotAssessed,
            Some(p) if p > threshold => Shift::Major,
            Some(p) if p > MODERATE_PSI => Shift::Moderate,
            Some(_) => Shift::Stable,
        }
    }
}

/// Which way a feature's values moved, from the file's mean against the
/// training split's range and mean (aggregates only: the side, never a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The file's mean is below the training minimum.
    FarBelow,
    /// The file's mean is above the training maximum.
    FarAbove,
    /// Inside the range, lower than the training mean by more than 5 % of the range.
    Lower,
    Higher,
    /// Neither: the values are spread over the bins differently.
    Spread,
}

/// A mean closer to the training mean than this share of the training range
/// is "neither higher nor lower".
const SAME_MEAN: f64 = 0.05;

impl Direction {
    /// `None` without a scored row.
    pub fn of(mean: Option<f64>, (min, max): (f64, f64), training_mean: Option<f64>) -> Option<Direction> {
        let mean = mean?;
        Some(if mean < min {
            Direction::FarBelow
        } else if mean > max {
            Direction::FarAbove
        } else {
            match training_mean {
                Some(t) if max > min && (mean - t) / (max - min) < -SAME_MEAN => Direction::Lower,
                Some(t) if max > min && (mean - t) / (max - min) > SAME_MEAN => Direction::Higher,
                _ => Direction::Spread,
            }
        })
    }

    /// Outside the whole training range: a fact whatever the number of rows
    /// (unlike a PSI, it is no sampling noise).
    pub fn is_outside(self) -> bool {
        matches!(self, Direction::FarBelow | Direction::FarAbove)
    }
}

/// The one sentence for a feature, or `None` when there is nothing to say:
/// a major shift (by its direction), or values whose mean lies outside the
/// training range even when the file is too small to assess.
pub fn sentence(name: &str, shift: Shift, direction: Option<Direction>) -> Option<String> {
    let direction = direction?;
    if shift != Shift::Major && !direction.is_outside() {
        return None;
    }
    Some(match direction {
        Direction::FarBelow => {
            format!("The values of {name} are far below anything seen in training: check the units.")
        }
        Direction::FarAbove => {
            format!("The values of {name} are far above anything seen in training: check the units.")
        }
        Direction::Lower => format!(
            "The values of {name} are mostly lower than in training: check the instrument's calibration and \
             the measuring protocol."
        ),
        Direction::Higher => format!(
            "The values of {name} are mostly higher than in training: check the instrument's calibration and \
             the measuring protocol."
        ),
        Direction::Spread => format!(
            "The values of {name} are spread differently from training, though not simply higher or lower: check \
             how they were measured."
        ),
    })
}

/// A header cell as the page and the JSON show it: at most
/// [`MAX_SHOWN_COLUMN`] characters (then `…`), white space trimmed.
pub fn shown_column(header: &str) -> String {
    let header = header.trim();
    match header.char_indices().nth(MAX_SHOWN_COLUMN) {
        Some((cut, _)) => format!("{}…", &header[..cut]),
        None => header.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grade_needs_an_assessed_file() {
        assert_eq!(Shift::of(Some(2.5), false, 0.25), Shift::NotAssessed);
        assert_eq!(Shift::of(None, true, 0.25), Shift::NotAssessed);
        assert_eq!(Shift::of(Some(2.5), true, 0.25), Shift::Major);
        assert_eq!(Shift::of(Some(0.25), true, 0.25), Shift::Moderate);
        assert_eq!(Shift::of(Some(0.1), true, 0.25), Shift::Stable);
    }

    #[test]
    fn the_direction_is_the_means_side() {
        let range = (10.0, 110.0);
        assert_eq!(Direction::of(None, range, Some(50.0)), None);
        assert_eq!(Direction::of(Some(5.0), range, Some(50.0)), Some(Direction::FarBelow));
        assert_eq!(Direction::of(Some(120.0), range, Some(50.0)), Some(Direction::FarAbove));
        assert_eq!(Direction::of(Some(40.0), range, Some(50.0)), Some(Direction::Lower));
        assert_eq!(Direction::of(Some(60.0), range, Some(50.0)), Some(Direction::Higher));
        assert_eq!(Direction::of(Some(52.0), range, Some(50.0)), Some(Direction::Spread));
        assert_eq!(Direction::of(Some(60.0), range, None), Some(Direction::Spread));
    }

    #[test]
    fn one_sentence_for_a_major_shift_or_values_outside_the_range() {
        let s = sentence("Worst Area", Shift::Major, Some(Direction::FarBelow)).unwrap();
        assert_eq!(s, "The values of Worst Area are far below anything seen in training: check the units.");
        assert!(sentence("x", Shift::NotAssessed, Some(Direction::FarAbove)).unwrap().contains("far above"));
        assert!(sentence("x", Shift::Major, Some(Direction::Higher)).unwrap().contains("higher than in training"));
        assert_eq!(sentence("x", Shift::NotAssessed, Some(Direction::Higher)), None);
        assert_eq!(sentence("x", Shift::Moderate, Some(Direction::Lower)), None);
        assert_eq!(sentence("x", Shift::Major, None), None);
    }

    #[test]
    fn a_long_header_is_cut() {
        assert_eq!(shown_column(" Worst Area (mm²) "), "Worst Area (mm²)");
        let long = format!("worst area ({})", "é".repeat(100));
        let shown = shown_column(&long);
        assert_eq!(shown.chars().count(), MAX_SHOWN_COLUMN + 1);
        assert!(shown.ends_with('…'));
    }
}
