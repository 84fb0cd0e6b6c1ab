//! Converts openapi.yaml (the HTTP contract, written by hand as YAML) into
//! JSON: the template src/contract/openapi.rs rewrites for the loaded model
//! (for the shipped model, unchanged), which `GET /openapi.json` serves. Done
//! here rather than at run time so the server parses no YAML and the template
//! cannot fail to parse in production; tests/openapi_check.py checks the
//! served JSON equals what PyYAML (an independent reader) makes of the file.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=openapi.yaml");
    let yaml = std::fs::read_to_string("openapi.yaml").expect("openapi.yaml is readable");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("openapi.yaml is valid YAML");
    let json = serde_json::to_string(&doc).expect("the document serializes as JSON");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    std::fs::write(out, json).expect("OUT_DIR is writable");
}
