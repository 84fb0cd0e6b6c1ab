//! The model on hand-made and hostile exports.

use super::*;

/// A hand-made export: `trees` is a JSON array of tree objects.
fn export_with(trees: &str) -> String {
    let features: Vec<String> = crate::core::features::testing::shipped()
        .iter()
        .map(|f| format!(r#"{{"name":"{}","dataset_name":"{}","min":0.0,"max":10.0}}"#, f.api_name, f.dataset_name))
        .collect();
    format!(
        r#"{{"format":"scorer-gbdt","format_version":1,"name":"t","sklearn_version":"1.2.1",
        "classes":[{{"label":0,"name":"benign"}},{{"label":1,"name":"malignant"}}],
        "features":[{}],"init_raw_score":-0.5,"learning_rate":0.1,"trees":{trees}}}"#,
        features.join(",")
    )
}

const STUMP: &str =
    r#"{"left":[1,-1,-1],"right":[2,-1,-1],"feature":[3,-1,-1],"threshold":[2.5,0,0],"value":[0,-1.0,3.0]}"#;
// depth 2: root on feature 0 at 1.0; left child splits feature 1 at 5.0.
const DEEP: &str = r#"{"left":[1,2,-1,-1,-1],"right":[4,3,-1,-1,-1],"feature":[0,1,-1,-1,-1],"threshold":[1.0,5.0,0,0,0],"value":[0,0,2.0,-2.0,7.0]}"#;

fn obs(v: [f64; 5]) -> Observation {
    Observation::from_values(v).unwrap()
}

#[test]
fn the_embedded_model_loads() {
    let m = Model::embedded().unwrap();
    assert!(m.info().tree_count > 0);
    assert!(m.info().version.starts_with("breast-cancer-gbc-"));
}

#[test]
fn the_version_names_the_artifact_by_the_lowercase_hex_of_its_sha256() {
    let m = Model::from_json_bytes(export_with(&format!("[{STUMP}]")).as_bytes()).unwrap();
    let digest = Sha256::digest(export_with(&format!("[{STUMP}]")).as_bytes());
    let sha = &m.info().sha256;
    assert_eq!(sha.len(), 64);
    for (i, byte) in digest.iter().enumerate() {
        assert_eq!(u8::from_str_radix(&sha[2 * i..2 * i + 2], 16).unwrap(), *byte);
    }
    assert_eq!(sha.to_ascii_lowercase(), *sha);
    assert_eq!(m.info().version, format!("t-{}", &sha[..12]));
}

#[test]
fn stumps_and_deep_trees_predict_like_the_tree_walk() {
    let m = Model::from_json_bytes(export_with(&format!("[{STUMP},{DEEP},{STUMP}]")).as_bytes()).unwrap();
    assert_eq!(m.info().max_depth, 2);
    // x0 <= 1, x1 <= 5: deep leaf 2.0; x3 <= 2.5: stumps -1 each.
    let raw = -0.5 - 0.1 + 0.1 * 2.0 - 0.1;
    let o = obs([0.5, 4.0, 0.0, 2.5, 0.0]);
    assert_eq!(m.raw_score_exact(&o), raw);
    assert_eq!(m.predict(&o), m.predict_exact(&o));
    for x in [[2.0, 0.0, 0.0, 2.6, 0.0], [0.0, 6.0, 0.0, 0.0, 0.0], [1.0, 5.0, 0.0, 9.0, 9.0]] {
        let o = obs(x);
        let (fast, exact) = (m.predict(&o), m.predict_exact(&o));
        assert_eq!(fast.label, exact.label);
        assert!((fast.probability - exact.probability).abs() < 1e-15);
    }
}

#[test]
fn compares_the_float32_value_with_the_float64_threshold() {
    // 2.5000001 rounds to float32 2.5: it goes left like sklearn's.
    let m = Model::from_json_bytes(export_with(&format!("[{STUMP}]")).as_bytes()).unwrap();
    let left = m.predict(&obs([0.0, 0.0, 0.0, 2.5, 0.0]));
    assert_eq!(m.predict(&obs([0.0, 0.0, 0.0, 2.500_000_01, 0.0])), left);
    assert_ne!(m.predict(&obs([0.0, 0.0, 0.0, 2.500_001, 0.0])), left);
}

#[test]
fn rejects_broken_exports_with_a_clear_error() {
    let cases = [
        (export_with("[]"), "no trees"),
        (
            export_with(r#"[{"left":[1,-1],"right":[0,-1],"feature":[0,-1],"threshold":[1,0],"value":[0,0]}]"#),
            "later node",
        ),
        (
            export_with(
                r#"[{"left":[1,-1,-1],"right":[2,-1,-1],"feature":[7,-1,-1],"threshold":[1,0,0],"value":[0,0,0]}]"#,
            ),
            "feature 7",
        ),
        (
            export_with(r#"[{"left":[1,-1],"right":[2,-1],"feature":[0,-1],"threshold":[1,0],"value":[0,0]}]"#),
            "later node",
        ),
        (
            export_with(r#"[{"left":[1],"right":[2,-1,-1],"feature":[0,-1,-1],"threshold":[1,0,0],"value":[0,0,0]}]"#),
            "different lengths",
        ),
        (
            export_with(
                r#"[{"left":[1,-1,-1,-1],"right":[2,-1,-1,-1],"feature":[0,-1,-1,-1],"threshold":[1,0,0,0],"value":[0,0,0,0]}]"#,
            ),
            "unreachable",
        ),
        (export_with(&format!("[{STUMP}]")).replace("\"format_version\":1", "\"format_version\":4"), "format_version"),
        (
            export_with(&format!("[{STUMP}]")).replace("\"format_version\":1", "\"format_version\":3"),
            "needs an api_name",
        ),
        (export_with(&format!("[{STUMP}]")).replace("worstArea", "worstRadius"), "cannot tell apart"),
        (export_with(&format!("[{STUMP}]")).replace("worstArea", "id"), "reserves"),
        (export_with(&format!("[{STUMP}]")).replace("\"name\":\"malignant\"", "\"name\":\"benign\""), "classes"),
        (String::from("{\"format\":"), "not a valid model export"),
    ];
    for (text, expected) in cases {
        let err = Model::from_json_bytes(text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }
}

// ---- hostile exports: the shape rules, and the depth cap ---------------------------

/// The embedded export with tree `k` replaced, or `tree` appended when `k`
/// is past the last (every one of its thresholds then stays in the model, so
/// the training profile still matches).
fn embedded_with_tree(k: usize, tree: serde_json::Value) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(EMBEDDED_MODEL).unwrap();
    let trees = doc["trees"].as_array_mut().unwrap();
    match trees.get_mut(k) {
        Some(t) => *t = tree,
        None => trees.push(tree),
    }
    serde_json::to_vec(&doc).unwrap()
}

/// A tree `depth` splits deep, valid in every other way: split `k` (node
/// `2k`) sends one side to a leaf (node `2k + 1`) and the other to the next
/// split (node `2k + 2`); the last node is a leaf. Each split uses one of the
/// embedded model's own thresholds (so the training profile still matches),
/// alternating sides so that the walk for small and large values goes deep.
/// Covers add up.
fn chain(depth: usize) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(EMBEDDED_MODEL).unwrap();
    let edges: Vec<Vec<f64>> = (0..5)
        .map(|f| serde_json::from_value(doc["training_profile"]["features"][f]["thresholds"].clone()).unwrap())
        .collect();
    let n = 2 * depth + 1;
    let (mut left, mut right, mut feature) = (vec![-1i64; n], vec![-1i64; n], vec![-1i64; n]);
    let (mut threshold, mut value, mut cover) = (vec![0.0; n], vec![0.0; n], vec![1.0; n]);
    for k in 0..depth {
        let i = 2 * k;
        let (leaf, next) = ((i + 1) as i64, (i + 2) as i64);
        (left[i], right[i]) = if k % 2 == 0 { (leaf, next) } else { (next, leaf) };
        let f = k % 5;
        feature[i] = f as i64;
        threshold[i] = edges[f][k % edges[f].len()];
        cover[i] = (depth - k + 1) as f64;
        value[i + 1] = if k % 2 == 0 { 0.5 } else { -0.5 };
    }
    value[n - 1] = 1.0;
    serde_json::json!({"left": left, "right": right, "feature": feature, "threshold": threshold,
        "value": value, "cover": cover})
}

/// Runs `f` on a thread with a 256 KiB stack: a recursion that grows with
/// the input overflows it (and aborts the test binary) long before 100,000 levels.
fn on_a_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap()
}

#[test]
fn a_tree_deeper_than_the_cap_is_a_model_error_not_a_stack_overflow() {
    for depth in [MAX_TREE_DEPTH + 1, 100_000] {
        let bytes = embedded_with_tree(7, chain(depth));
        let err = on_a_small_stack(move || Model::from_json_bytes(&bytes).unwrap_err().to_string());
        assert!(err.contains("tree 7") && err.contains(&format!("at most {MAX_TREE_DEPTH}")), "{err}");
    }
}

#[test]
fn a_tree_at_the_cap_loads_predicts_and_explains_on_a_small_stack() {
    let bytes = embedded_with_tree(usize::MAX, chain(MAX_TREE_DEPTH));
    on_a_small_stack(move || {
        let m = Model::from_json_bytes(&bytes).unwrap();
        assert_eq!(m.info().max_depth, MAX_TREE_DEPTH);
        assert_eq!(m.compiled.deep, [m.info().tree_count - 1]);
        for x in [[0.0; 5], [0.2, 40.0, 50.0, 4000.0, 0.3], [0.05, 16.0, 25.0, 800.0, 0.1]] {
            let o = obs(x);
            assert_eq!(m.predict(&o).label, m.predict_exact(&o).label);
            let (e, exact) = (m.explain(&o).unwrap(), m.explain_exact(&o).unwrap());
            assert!((e.raw_score() - m.raw_score_exact(&o)).abs() < 1e-9);
            for (a, b) in e.contributions.iter().zip(&exact.contributions) {
                assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    });
}

#[test]
fn malformed_trees_are_errors_that_name_the_tree_and_the_rule() {
    use serde_json::json;
    let tree = |left: &[i64], right: &[i64], feature: &[i64]| {
        let n = left.len();
        json!({"left": left, "right": right, "feature": feature, "threshold": vec![0.5; n],
            "value": vec![0.0; n], "cover": vec![1.0; n]})
    };
    let cases = [
        // node 1 points back at the root: a cycle
        (tree(&[1, 0, -1], &[2, 2, -1], &[0, 1, -1]), "node 1 has children 0 and 2; each must be a later node"),
        // a child past the end of the arrays
        (tree(&[1, -1, -1], &[99_999, -1, -1], &[0, -1, -1]), "node 0 has children 1 and 99999"),
        // node 3 reachable twice (from 1 and from 2); node 4 from both too
        (tree(&[1, 3, 3, -1, -1], &[2, 4, 4, -1, -1], &[0, 1, 2, -1, -1]), "a node is shared or unreachable"),
        // half a leaf: one child -1, the other a node
        (tree(&[-1, -1, -1], &[2, -1, -1], &[0, -1, -1]), "node 0 has children -1 and 2"),
        // a leaf that names a feature
        (tree(&[1, -1, -1], &[2, -1, -1], &[0, 4, -1]), "node 1 is a leaf (children -1 and -1) but names feature 4"),
        // a split on a feature the model does not have
        (tree(&[1, -1, -1], &[2, -1, -1], &[5, -1, -1]), "node 0 splits on feature 5"),
    ];
    for (t, rule) in cases {
        let err = Model::from_json_bytes(&embedded_with_tree(3, t)).unwrap_err().to_string();
        assert!(err.starts_with("the model export is not usable: tree 3: "), "{err}");
        assert!(err.contains(rule), "{err:?} should mention {rule:?}");
    }
}

#[test]
fn model_errors_name_no_environment_variable_flag_or_readme() {
    let err = Model::from_json_bytes(&embedded_with_tree(0, chain(MAX_TREE_DEPTH + 1))).unwrap_err().to_string();
    let json = Model::from_json_bytes(b"{").unwrap_err().to_string();
    for text in [err, json] {
        for word in ["MODEL_PATH", "README", "--"] {
            assert!(!text.contains(word), "{text:?} names {word:?}");
        }
    }
}

#[test]
fn the_build_embedded_a_current_compiled_form_and_embedded_loads_it() {
    // build.rs leaves the form out (and `embedded` parses the JSON) unless it
    // records the embedded export's sha256: a cold start would pay the parse.
    let from_compiled = Model::from_compiled_bytes(EMBEDDED_COMPILED, &EMBEDDED_SHA256).expect(
        "models/breast-cancer-gbc.json.compiled is current: run `scorer model compile models/breast-cancer-gbc.json`",
    );
    assert_eq!(EMBEDDED_SHA256.as_slice(), Sha256::digest(EMBEDDED_MODEL).as_slice());
    assert_eq!(from_compiled.info().sha256, Model::embedded().unwrap().info().sha256);
    assert_eq!(from_compiled.info().version, Model::from_json_bytes(EMBEDDED_MODEL).unwrap().info().version);
}
