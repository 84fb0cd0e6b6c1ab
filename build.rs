//! Two things the binary embeds, prepared here so a cold start does neither:
//!
//! * openapi.yaml (the HTTP contract, written by hand as YAML) as JSON: the
//!   template src/contract/openapi.rs rewrites for the loaded model (for the
//!   shipped model, unchanged), which `GET /openapi.json` serves. The server
//!   parses no YAML and the template cannot fail to parse in production;
//!   tests/openapi_check.py checks the served JSON equals what PyYAML (an
//!   independent reader) makes of the file.
//! * The shipped model's sha256, and its compiled form
//!   (models/breast-cancer-gbc.json.compiled, written by `scorer model
//!   compile`; core/model/compiled.rs) when that form records this export's
//!   sha256. A build script cannot call the crate it builds, so the form is
//!   written by the binary and committed; a stale one is left out here (with
//!   a warning: the binary then loads the JSON export, correct but slower),
//!   and a test fails until it is compiled again.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

const EXPORT: &str = "models/breast-cancer-gbc.json";
const COMPILED: &str = "models/breast-cancer-gbc.json.compiled";
/// Where the compiled form records its export's sha256: after the 16-byte
/// magic and the 4-byte format version (core/model/compiled.rs); then its
/// payload's sha256, then the payload.
const RECORDED_SHA: std::ops::Range<usize> = 20..52;
const PAYLOAD_SHA: std::ops::Range<usize> = 52..84;

fn main() {
    println!("cargo::rerun-if-changed=openapi.yaml");
    println!("cargo::rerun-if-changed={EXPORT}");
    println!("cargo::rerun-if-changed={COMPILED}");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let yaml = std::fs::read_to_string("openapi.yaml").expect("openapi.yaml is readable");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("openapi.yaml is valid YAML");
    let json = serde_json::to_string(&doc).expect("the document serializes as JSON");
    std::fs::write(out_dir.join("openapi.json"), json).expect("OUT_DIR is writable");

    let sha = Sha256::digest(std::fs::read(EXPORT).expect("the shipped export is readable"));
    std::fs::write(out_dir.join("embedded.sha256"), sha).expect("OUT_DIR is writable");
    let compiled = std::fs::read(COMPILED).unwrap_or_default();
    // The binary trusts the embedded payload (Model::embedded does not
    // digest it at start-up): it is checked here, once.
    let whole = compiled
        .get(PAYLOAD_SHA)
        .is_some_and(|recorded| recorded == Sha256::digest(&compiled[PAYLOAD_SHA.end..]).as_slice());
    let current = whole && compiled.get(RECORDED_SHA) == Some(sha.as_slice());
    if !current {
        println!(
            "cargo::warning={COMPILED} is missing, damaged or was compiled from another export: the binary will \
             parse the JSON export at start-up; run `scorer model compile {EXPORT}`"
        );
    }
    // No relative relocations for the dynamic loader to apply at every
    // start: a position-dependent executable (measured in docs/testing.md,
    // "Cold start"). The executable's own code then loads at a fixed
    // address (shared libraries and the stack stay randomised).
    // SCORER_PIE=1 at build time keeps the usual position-independent
    // executable, for an operator who prefers its address randomisation to
    // the faster start (docs/deploying.md).
    println!("cargo::rerun-if-env-changed=SCORER_PIE");
    let pie = std::env::var("SCORER_PIE").is_ok_and(|v| v == "1");
    if !pie && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
    std::fs::write(out_dir.join("embedded.compiled"), if current { &compiled[..] } else { &[] })
        .expect("OUT_DIR is writable");
}
