//! The layering docs/architecture.md promises, checked on the source: each
//! layer names only the layers below it (core < contract < adapters <
//! handler < lambda, cli), so no arrow runs back up.

use std::path::Path;

use crate::helpers::root;

/// The top-level modules a file under `src/<dir>/` names through `crate::`,
/// comments left out (`use crate::{a, b::c}` names `a` and `b`).
fn named_modules(text: &str) -> Vec<String> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').filter_map(|p| p.trim().split("::").next()).map(str::to_owned));
        } else {
            names.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    let layers: [(&str, &[&str]); 3] = [
        ("core", &["core"]),
        ("contract", &["core", "contract"]),
        ("adapters", &["core", "contract", "adapters", "config", "telemetry"]),
    ];
    let mut checked = 0;
    for (dir, allowed) in layers {
        for file in rust_files(&root().join("src").join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for name in named_modules(&text) {
                assert!(allowed.contains(&name.as_str()), "{} names crate::{name}, above its layer", file.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} files checked");
}

#[test]
fn the_layer_check_sees_grouped_and_nested_paths() {
    let text = "use crate::{core::model::Model, handler};\n// crate::cli in a comment\nlet x = crate::lambda::run;";
    assert_eq!(named_modules(text), ["core", "handler", "lambda"]);
}
