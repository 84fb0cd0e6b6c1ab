//! The one column-name rule: which feature a CSV header cell, a JSON key or a
//! Distributed Map item key names. Every path that finds features by name
//! calls [`feature_by_name`].
//!
//! A name matches a feature when, after
//! - leading byte-order marks and surrounding white space are dropped,
//! - one trailing unit in parentheses or brackets is dropped
//!   (`worst area (µm²)`, `worst_area [mm2]`),
//! - `_`, `-` and spaces are dropped and ASCII letters lower-cased,
//!
//! it equals the API name (`worstArea`) or the dataset name (`worst area`)
//! treated the same way. So `worstArea`, `WorstArea`, `worst_area`,
//! `Worst-Area`, ` worst area (mm²) ` all name `worstArea`.

use arrayvec::ArrayVec;

use super::csv_reader::without_bom;
use super::features::Features;
use super::observation::FieldInput;

/// Longest name (after dropping separators and a unit) that can name a
/// feature; a model whose names are longer is refused at load.
const MAX_NAME: usize = 64;

/// Keys the contract gives their own meaning on every path; no feature may
/// be named so (by the rule).
pub const RESERVED_KEYS: [&str; 2] = ["id", "explain"];

/// Whether `name` names the reserved key `reserved` (one of
/// [`RESERVED_KEYS`]) by the rule: `Id`, `ID` and ` id ` name `id`, as
/// `WorstArea` names `worstArea`. The one check every path makes (a JSON
/// body's keys, a queue message's, a feature's names at load).
pub fn names_reserved(name: &str, reserved: &str) -> bool {
    normalized(name).is_some_and(|key| key.as_slice() == reserved.as_bytes())
}

/// `name` treated by the rule (marks, white space, one unit and separators
/// dropped, ASCII lower-cased); `None` when nothing is left or it is longer
/// than any feature name can be.
pub fn normalized(name: &str) -> Option<ArrayVec<u8, MAX_NAME>> {
    // A mark is whole UTF-8 characters: what is left is still a str.
    let marks = name.len() - without_bom(name.as_bytes()).len();
    let core = without_unit(name[marks..].trim());
    let mut key = ArrayVec::new();
    for b in core.bytes().filter(|b| !is_separator(*b)) {
        key.try_push(b.to_ascii_lowercase()).ok()?;
    }
    (!key.is_empty()).then_some(key)
}

/// The feature a column name or key names, by the rule above.
pub fn feature_by_name(features: &Features, name: &str) -> Option<usize> {
    let key = normalized(name)?;
    features.iter().position(|f| same(&f.api_name, &key) || same(&f.dataset_name, &key))
}

fn is_separator(b: u8) -> bool {
    matches!(b, b'_' | b'-' | b' ')
}

/// `name` (a feature's own name) treated by the rule equals `key`. The
/// feature's name goes through the whole rule, its unit too: a dataset name
/// such as `Cell Size (um)` is matched by itself, as the load-time check that
/// names can be told apart ([`super::features::Features::new`]) compares them.
fn same(name: &str, key: &[u8]) -> bool {
    normalized(name).is_some_and(|n| n.as_slice() == key)
}

/// `name` without one trailing `(unit)` or `[unit]`, if something is left before it.
fn without_unit(name: &str) -> &str {
    let open = match name.as_bytes().last() {
        Some(b')') => '(',
        Some(b']') => '[',
        _ => return name,
    };
    match name.rfind(open) {
        Some(i) if !name[..i].trim().is_empty() => name[..i].trim_end(),
        _ => name,
    }
}

/// Which input column (or key) each feature is in, checking that no two name
/// the same one: the duplicate rule every path shares. `Err` names the
/// feature and the positions of its first two columns.
pub fn match_names<'a>(
    features: &Features,
    names: impl Iterator<Item = Option<&'a str>>,
) -> Result<Vec<Option<usize>>, Duplicate> {
    let mut columns = vec![None; features.len()];
    for (i, name) in names.enumerate() {
        let Some(f) = name.and_then(|n| feature_by_name(features, n)) else { continue };
        if let Some(first) = columns[f] {
            return Err(Duplicate { feature: f, first, second: i });
        }
        columns[f] = Some(i);
    }
    Ok(columns)
}

/// The duplicate rule for the keys of one object (a JSON body, an SQS
/// message, a Distributed Map item), the counterpart of [`match_names`] for
/// a header: a feature named a second time, by any form of its name, is
/// [`FieldInput::Duplicate`] (a field error, not a whole-file error).
pub fn put_value<'a>(inputs: &mut [FieldInput<'a>], feature: usize, value: FieldInput<'a>) {
    let slot = &mut inputs[feature];
    *slot = if *slot == FieldInput::Missing { value } else { FieldInput::Duplicate };
}

/// Two columns (or keys) that name the same feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    pub feature: usize,
    /// 0-based positions of the two columns.
    pub first: usize,
    pub second: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::testing::shipped;

    fn feature_by_name(name: &str) -> Option<usize> {
        super::feature_by_name(&shipped(), name)
    }

    #[test]
    fn api_and_dataset_names_match_whatever_their_case_separators_spaces_and_unit() {
        for name in [
            "worstArea",
            "WorstArea",
            "WORSTAREA",
            "worstarea",
            "worst area",
            "Worst Area",
            "worst_area",
            "WORST_AREA",
            "worst-area",
            "  worst area  ",
            "worst area (µm²)",
            "worst_area [mm2]",
            "worst_area[mm2]",
            "Worst Area (px)",
            "\u{feff}worst area",
            "\u{feff}\u{feff} Worst Area",
        ] {
            assert_eq!(feature_by_name(name), Some(3), "{name:?}");
        }
        assert_eq!(feature_by_name("  Mean Concave Points "), Some(0));
        assert_eq!(feature_by_name("mean_concave_points (ratio)"), Some(0));
        assert_eq!(feature_by_name("MeanConcavePoints"), Some(0));
        assert_eq!(feature_by_name("worst-concave-points"), Some(4));
        assert_eq!(feature_by_name("worst radius"), Some(1));
        assert_eq!(feature_by_name("worst texture"), Some(2));
    }

    #[test]
    fn other_names_match_nothing() {
        for name in [
            "",
            "id",
            "area",
            "worst",
            "worst area 2",
            "worst area (mm2) (x)",
            "(worst area)",
            "[worst area]",
            "worst.area",
            "worstArea:",
            "mean area",
            "wörst area",
            "worst area (",
            &"worst area".repeat(10),
        ] {
            assert_eq!(feature_by_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn a_dataset_name_with_a_unit_is_matched_by_itself_and_without_its_unit() {
        use crate::core::features::{Feature, Features};
        let f = |api: &str, dataset: &str| Feature { api_name: api.into(), dataset_name: dataset.into() };
        let features = Features::new(vec![
            f("cellSizeUm", "Cell Size (um)"),
            f("bloodPressure", "blood-pressure"),
            f("f2ndOpinionScore", "2nd opinion score"),
        ])
        .unwrap();
        for (name, want) in [
            ("Cell Size (um)", Some(0)),
            ("cell size", Some(0)),
            ("Cell_Size [um]", Some(0)),
            ("cellSizeUm", Some(0)),
            ("cell size um", Some(0)),
            ("blood-pressure", Some(1)),
            ("Blood Pressure (mmHg)", Some(1)),
            ("2nd opinion score", Some(2)),
            ("f2ndOpinionScore", Some(2)),
            ("cell", None),
            ("size (um)", None),
            ("(um)", None),
        ] {
            assert_eq!(super::feature_by_name(&features, name), want, "{name:?}");
        }
    }

    #[test]
    fn two_names_for_one_feature_are_a_duplicate_naming_both_positions() {
        let names = ["id", "worst area", "worstRadius", "worst_area (mm2)"];
        let err = match_names(&shipped(), names.iter().map(|n| Some(*n))).unwrap_err();
        assert_eq!(err, Duplicate { feature: 3, first: 1, second: 3 });
        let ok = match_names(&shipped(), ["worstArea", "x", "WORST RADIUS"].iter().map(|n| Some(*n))).unwrap();
        assert_eq!(ok, [None, Some(2), None, Some(0), None]);
        // A column that is not text names nothing.
        assert_eq!(match_names(&shipped(), [None, Some("worstArea")].into_iter()).unwrap()[3], Some(1));
    }
}
