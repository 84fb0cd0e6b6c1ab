//! The compiled form of a model (`scorer model compile`, core/model/compiled.rs):
//! what a cold start loads instead of the JSON export. It must answer exactly
//! as the export does (bit for bit, every golden row, every example export),
//! and a form that does not belong to its export, or is damaged, is refused
//! with a message that says which file and what to do.

use std::path::Path;

use scorer::core::model::{compiled_path_for, Model};
use scorer::core::observation::Observation;

use crate::goldens::Export;
use crate::helpers::{root, scorer};

/// Every answer of `a` and `b` on `rows`, compared bit for bit.
fn assert_same_answers(what: &str, a: &Model, b: &Model, rows: &[Vec<f64>]) {
    assert_eq!(a.info().version, b.info().version, "{what}");
    assert_eq!(a.info().sha256, b.info().sha256, "{what}");
    assert_eq!(a.info().base_value.map(f64::to_bits), b.info().base_value.map(f64::to_bits), "{what}");
    assert_eq!(a.info().parameters, b.info().parameters, "{what}");
    assert_eq!(a.info().metrics, b.info().metrics, "{what}");
    assert_eq!(a.info().ranges, b.info().ranges, "{what}");
    assert_eq!((a.info().tree_count, a.info().max_depth), (b.info().tree_count, b.info().max_depth), "{what}");
    assert_eq!(a.features(), b.features(), "{what}");
    assert_eq!((a.class_name(0), a.class_name(1)), (b.class_name(0), b.class_name(1)), "{what}");
    assert_eq!(a.training_profile(), b.training_profile(), "{what}");
    for f in 0..a.features().len() {
        assert_eq!(a.bin_edges(f), b.bin_edges(f), "{what}: bin edges of feature {f}");
    }
    assert!(rows.len() >= 100, "{what}: {} rows prove little", rows.len());
    for (i, values) in rows.iter().enumerate() {
        let obs = Observation::from_values(values).unwrap();
        let (pa, ba) = a.predict_with_bins(&obs);
        let (pb, bb) = b.predict_with_bins(&obs);
        assert_eq!((pa.label, pa.probability.to_bits()), (pb.label, pb.probability.to_bits()), "{what} row {i}");
        assert_eq!(ba, bb, "{what} row {i}: bins");
        assert_eq!(a.raw_score_exact(&obs).to_bits(), b.raw_score_exact(&obs).to_bits(), "{what} row {i}");
        match (a.explain(&obs), b.explain(&obs)) {
            (Ok(ea), Ok(eb)) => {
                assert_eq!(ea.base_value.to_bits(), eb.base_value.to_bits(), "{what} row {i}");
                let bits = |c: &[f64]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&ea.contributions), bits(&eb.contributions), "{what} row {i}: contributions");
            }
            (Err(ea), Err(eb)) => assert_eq!(ea, eb, "{what} row {i}"),
            (ea, eb) => panic!("{what} row {i}: {ea:?} vs {eb:?}"),
        }
    }
}

fn compiled(export: &[u8]) -> Vec<u8> {
    Model::from_json_bytes(export).unwrap().to_compiled_bytes()
}

#[test]
fn the_compiled_form_answers_bit_for_bit_as_the_export_on_every_golden_row() {
    let shipped = Export::shipped();
    let shipped_rows: Vec<Vec<f64>> = shipped.golden_rows().into_iter().map(|g| g.values).collect();
    let mut exports: Vec<(Export, Vec<Vec<f64>>)> = vec![(shipped, shipped_rows.clone())];
    for name in ["breast-cancer-seven", "clinic-outcomes-gbc"] {
        let export = Export::example(name);
        let rows = export.golden_rows().into_iter().map(|g| g.values).collect();
        exports.push((export, rows));
    }
    for name in ["gbc-depth2", "gbc-depth3"] {
        // Deep trees (walked node by node, TreeSHAP per row) on the shipped features.
        exports.push((Export::at(root().join(format!("models/testdata/{name}.json")), root()), shipped_rows.clone()));
    }
    for (export, rows) in &exports {
        let from_json = Model::from_json_bytes(&export.bytes).unwrap();
        let from_compiled = Model::from_export_and_compiled(&export.bytes, &from_json.to_compiled_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", export.name));
        assert_same_answers(&export.name, &from_json, &from_compiled, rows);
    }
}

#[test]
fn the_committed_compiled_form_of_the_shipped_model_is_what_this_build_compiles() {
    let export = std::fs::read(root().join("models/breast-cancer-gbc.json")).unwrap();
    let committed = std::fs::read(root().join("models/breast-cancer-gbc.json.compiled")).unwrap_or_default();
    assert!(
        committed == compiled(&export),
        "models/breast-cancer-gbc.json.compiled is stale: run `scorer model compile models/breast-cancer-gbc.json` \
         (until then the binary parses the JSON export at every cold start)"
    );
}

/// The error loading `compiled` beside `export` gives.
fn refusal(export: &[u8], compiled: &[u8]) -> String {
    Model::from_export_and_compiled(export, compiled).expect_err("a form that must be refused").to_string()
}

#[test]
fn a_damaged_truncated_or_foreign_compiled_form_is_refused() {
    let export = std::fs::read(root().join("models/breast-cancer-gbc.json")).unwrap();
    let good = compiled(&export);
    assert!(Model::from_export_and_compiled(&export, &good).is_ok());
    // One flipped bit anywhere in the payload (its first and last bytes, a
    // float in the middle): the checksum no longer matches.
    for at in [84, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let err = refusal(&export, &bad);
        assert!(err.contains("damaged"), "byte {at}: {err}");
    }
    // The payload's recorded checksum itself.
    let mut bad = good.clone();
    bad[60] ^= 0x80;
    assert!(refusal(&export, &bad).contains("damaged"));
    for cut in [0, 10, 84, good.len() - 1] {
        let err = refusal(&export, &good[..cut]);
        assert!(err.contains("truncated") || err.contains("damaged"), "cut at {cut}: {err}");
    }
    assert!(refusal(&export, &export).contains("does not start like one"));
    let mut other_version = good.clone();
    other_version[16] = other_version[16].wrapping_add(1);
    let err = refusal(&export, &other_version);
    assert!(err.contains("format version") && err.contains("compile it again"), "{err}");
}

#[test]
fn a_compiled_form_of_another_export_is_refused_as_stale() {
    let export = std::fs::read(root().join("models/breast-cancer-gbc.json")).unwrap();
    let other = std::fs::read(root().join("models/testdata/gbc-depth2.json")).unwrap();
    // Beside another export: the sha256 it records is not that export's.
    let err = refusal(&export, &compiled(&other));
    assert!(err.contains("stale") && err.contains("compiled from another export"), "{err}");
    // The other export's sha256 written into the header: the export is not the one recorded.
    let mut swapped = compiled(&export);
    let other_sha = Model::from_json_bytes(&other).unwrap().info().sha256.clone();
    swapped[20..52].copy_from_slice(&hex::decode(other_sha).unwrap());
    assert!(refusal(&export, &swapped).contains("stale"));
    // The same model, its export reformatted (one byte more): another export, so stale too.
    let mut reformatted = export.clone();
    reformatted.push(b'\n');
    assert!(refusal(&reformatted, &compiled(&export)).contains("stale"));
}

fn write_model(dir: &Path, export: &[u8], compiled: Option<&[u8]>) -> std::path::PathBuf {
    let path = dir.join("model.json");
    std::fs::write(&path, export).unwrap();
    if let Some(c) = compiled {
        std::fs::write(compiled_path_for(&path), c).unwrap();
    }
    path
}

#[test]
fn model_compile_writes_the_form_start_up_loads_and_refuses_once_the_export_changes() {
    let dir = tempfile::tempdir().unwrap();
    let export = std::fs::read(root().join("models/testdata/gbc-depth2.json")).unwrap();
    let path = write_model(dir.path(), &export, None);
    let out = scorer().args(["model", "compile"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read(compiled_path_for(&path)).unwrap();
    assert_eq!(written, compiled(&export));

    let score = |variable: &str| {
        let mut c = scorer();
        c.env(variable, &path).args(["score", "-", "-o", "-", "--quiet"]);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n0.05,15,25,700,0.1\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    for variable in ["MODEL_PATH", "CHALLENGER_MODEL_PATH"] {
        let ok = score(variable);
        assert!(ok.status.success(), "{variable}: {}", String::from_utf8_lossy(&ok.stderr));
    }
    // The export changes (retrained, or only reformatted) and the form is not compiled again.
    let mut changed = export.clone();
    changed.extend_from_slice(b"\n");
    std::fs::write(&path, &changed).unwrap();
    for variable in ["MODEL_PATH", "CHALLENGER_MODEL_PATH"] {
        let refused = score(variable);
        assert!(!refused.status.success(), "{variable}: a stale compiled form must stop start-up");
        let err = String::from_utf8_lossy(&refused.stderr);
        for words in ["model.json.compiled", "stale", variable, "scorer model compile", "delete it"] {
            assert!(err.contains(words), "{variable}: {err:?} should say {words:?}");
        }
    }
    // Without the form, the export alone loads (parsed and compiled at start-up).
    std::fs::remove_file(compiled_path_for(&path)).unwrap();
    assert!(score("MODEL_PATH").status.success());
}
