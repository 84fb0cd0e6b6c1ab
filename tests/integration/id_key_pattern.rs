//! openapi.yaml's `Observation` leaves out, by a pattern (`propertyNames`),
//! every spelling of the id but `id` itself (JSON Schema cannot say that at
//! most one of them may be given): Schemathesis sends keys that do not match
//! it, expecting them to be ignored, so a key the pattern misses but the
//! service reads as the id (`iD` holding an object: a 400) is a finding, and a
//! key it matches that the service ignores hides a spelling. The pattern and the service's one rule
//! (`columns::names_reserved`) must agree on every key, both ways: keys made
//! from the pattern, and keys made from the characters the rule treats
//! specially (marks, white space, separators, units, case, look-alikes).

use std::sync::LazyLock;

use proptest::prelude::*;
use scorer::core::columns::names_reserved;

use crate::helpers::root;

fn id_pattern() -> String {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("openapi.yaml")).unwrap()).unwrap();
    let names = &doc["components"]["schemas"]["Observation"]["propertyNames"]["anyOf"];
    assert_eq!(names[0]["const"].as_str(), Some("id"), "`id` itself is allowed: {names:?}");
    names[1]["not"]["pattern"].as_str().expect("every other spelling of the id is left out by a pattern").to_owned()
}

static PATTERN: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(&id_pattern()).unwrap());

/// Strings the pattern matches whole (proptest generates from a pattern without anchors).
fn unanchored(pattern: &str) -> impl Strategy<Value = String> {
    let inner = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("an anchored pattern");
    proptest::string::string_regex(inner).unwrap()
}

/// What a key is made of: the characters the rule looks at, and a few it must not.
fn tricky_key() -> impl Strategy<Value = String> {
    let parts = prop::sample::select(vec![
        "i", "I", "d", "D", "id", "ID", "-", "_", " ", "\t", "\n", "\u{a0}", "\u{3000}", "\u{1c}", "\u{feff}", "(",
        ")", "[", "]", "(lab)", "[u]", "x", "İ", "ı", "\u{200b}",
    ]);
    prop::collection::vec(parts, 1..7).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn keys_the_pattern_matches_are_the_id_and_no_others(key in tricky_key()) {
        prop_assert_eq!(PATTERN.is_match(&key), names_reserved(&key, "id"), "key {:?}", key);
    }

    #[test]
    fn keys_made_from_the_pattern_are_the_id(key in unanchored(&id_pattern())) {
        prop_assert!(names_reserved(&key, "id"), "key {:?} matches the document's pattern", key);
    }
}

#[test]
fn the_pattern_reads_the_documented_spellings() {
    let pattern = &*PATTERN;
    for key in ["id", "Id", "ID", "iD", " i_d ", "ID (lab)", "\u{feff}id", "I-D [u]"] {
        assert!(pattern.is_match(key) && names_reserved(key, "id"), "{key:?}");
    }
    for key in ["idx", "identifier", "(x)id", "_ \tid", "id (a)(b)", "ıd", ""] {
        assert!(!pattern.is_match(key) && !names_reserved(key, "id"), "{key:?}");
    }
}
