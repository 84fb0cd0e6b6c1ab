//! The layering docs/architecture.md promises, checked on the source: each
//! layer names only the layers below it (core < contract < adapters <
//! handler < lambda, cli), so no arrow runs back up. Each file is parsed with
//! `syn`; every `use` tree (nested groups, renames, globs), every path in the
//! code and every `crate::` in a macro's tokens is resolved from the file's
//! module (`crate::`, `super::`, `self::`, a child module) to a path from the
//! crate root, whose first module is what the rule looks at.

use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::helpers::root;

/// Crates core must never name: core does no I/O and knows no cloud.
const CLOUD_CRATES: [&str; 3] = ["aws_", "lambda_", "hyper"];

/// What one file names.
#[derive(Debug, Default, PartialEq)]
struct Names {
    /// Paths inside this crate, from its root (`["core", "model", "Model"]`).
    internal: Vec<Vec<String>>,
    /// The first segment of every other multi-segment path (`serde`, `aws_sdk_s3`).
    external: Vec<String>,
}

/// A path as written, with the module it is written in.
struct Written {
    module: Vec<String>,
    segments: Vec<String>,
    leading_colon: bool,
}

struct Collector {
    module: Vec<String>,
    /// Every module this file declares (`mod x;` or `mod x { … }`), from the crate root.
    declared: Vec<Vec<String>>,
    written: Vec<Written>,
}

impl Collector {
    fn record(&mut self, segments: Vec<String>, leading_colon: bool) {
        self.written.push(Written { module: self.module.clone(), segments, leading_colon });
    }
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => out.push([prefix.as_slice(), &[n.ident.to_string()]].concat()),
        syn::UseTree::Rename(r) => out.push([prefix.as_slice(), &[r.ident.to_string()]].concat()),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_paths(t, prefix, out)),
    }
}

/// `crate :: name` sequences in a macro's tokens (`format!("{}", crate::x::y())`).
fn macro_crate_paths(tokens: proc_macro2::TokenStream, out: &mut Vec<Vec<String>>) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Group(g) => macro_crate_paths(g.stream(), out),
            TokenTree::Ident(id) if id == "crate" => {
                if let [TokenTree::Punct(a), TokenTree::Punct(b), TokenTree::Ident(name), ..] = &tokens[i + 1..] {
                    if a.as_char() == ':' && b.as_char() == ':' {
                        out.push(vec!["crate".into(), name.to_string()]);
                    }
                }
            }
            _ => {}
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.module.push(item.ident.to_string());
        self.declared.push(self.module.clone());
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        use_paths(&item.tree, &mut Vec::new(), &mut paths);
        for segments in paths {
            self.record(segments, item.leading_colon.is_some());
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.record(path.segments.iter().map(|s| s.ident.to_string()).collect(), path.leading_colon.is_some());
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let mut paths = Vec::new();
        macro_crate_paths(mac.tokens.clone(), &mut paths);
        for segments in paths {
            self.record(segments, false);
        }
        syn::visit::visit_macro(self, mac);
    }
}

/// What the source of module `module` (`["core", "drift"]`) names.
fn names(text: &str, module: &[&str]) -> Names {
    let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{}: {e}", module.join("::")));
    let module: Vec<String> = module.iter().map(|m| (*m).to_owned()).collect();
    let mut collector = Collector { module: module.clone(), declared: Vec::new(), written: Vec::new() };
    collector.visit_file(&file);
    let mut names = Names::default();
    for Written { module, segments, leading_colon } in collector.written {
        let Some(first) = segments.first() else { continue };
        let mut resolved = match first.as_str() {
            _ if leading_colon => {
                names.external.push(first.clone());
                continue;
            }
            "crate" => Vec::new(),
            "self" | "super" => module.clone(),
            _ if collector.declared.contains(&[module.as_slice(), std::slice::from_ref(first)].concat()) => {
                module.clone()
            }
            _ => {
                if segments.len() > 1 {
                    names.external.push(first.clone());
                }
                continue;
            }
        };
        let mut rest = segments.iter().skip(usize::from(first == "crate")).peekable();
        while let Some(step) = rest.next_if(|s| *s == "self" || *s == "super") {
            if step == "super" {
                resolved.pop();
            }
        }
        resolved.extend(rest.filter(|s| *s != "self").cloned());
        if !resolved.is_empty() {
            names.internal.push(resolved);
        }
    }
    names
}

/// `src/core/drift/html.rs` → `["core", "drift", "html"]`; `mod.rs` is its directory.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut module: Vec<String> = relative.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if module.last().is_some_and(|m| m == "mod" || m == "lib") {
        module.pop();
    }
    module
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
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

/// The rules: the top-level modules each layer may name, and whether it may
/// name a cloud crate.
const LAYERS: [(&str, &[&str], bool); 3] = [
    ("core", &["core"], false),
    ("contract", &["core", "contract"], true),
    ("adapters", &["core", "contract", "adapters", "config", "telemetry"], true),
];

/// Every way `text`, the source of module `module`, breaks its layer's rule.
fn violations(module: &[&str], text: &str) -> Vec<String> {
    let Some((layer, allowed, cloud)) = LAYERS.iter().find(|(layer, ..)| module.first() == Some(layer)) else {
        return Vec::new();
    };
    let names = names(text, module);
    let mut found: Vec<String> = names
        .internal
        .iter()
        .filter(|path| !allowed.contains(&path[0].as_str()))
        .map(|path| format!("{layer} names crate::{}", path.join("::")))
        .collect();
    if !cloud {
        found.extend(
            names
                .external
                .iter()
                .filter(|c| CLOUD_CRATES.iter().any(|p| c.starts_with(p)))
                .map(|c| format!("{layer} names the crate {c}")),
        );
    }
    found
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    let src = root().join("src");
    let mut checked = 0;
    let mut found = Vec::new();
    for (dir, ..) in LAYERS {
        for file in rust_files(&src.join(dir)) {
            let module = module_of(&src, &file);
            let module: Vec<&str> = module.iter().map(String::as_str).collect();
            let text = std::fs::read_to_string(&file).unwrap();
            found.extend(violations(&module, &text).into_iter().map(|v| format!("{}: {v}", file.display())));
            checked += 1;
        }
    }
    assert!(found.is_empty(), "arrows running back up:\n{}", found.join("\n"));
    assert!(checked >= 20, "only {checked} files checked");
}

#[test]
fn the_layer_check_resolves_every_kind_of_use_tree_and_path() {
    let resolved = |module: &[&str], text: &str| -> Vec<String> {
        names(text, module).internal.iter().map(|p| p.join("::")).collect()
    };
    // Nested groups: everything after the first `}` too; renames and globs.
    let text = "use crate::{core::{model::Model, drift::{self, DriftStats as Stats}}, handler::*, cli};";
    assert_eq!(
        resolved(&["core", "x"], text),
        ["core::model::Model", "core::drift", "core::drift::DriftStats", "handler", "cli"]
    );
    // super and self, from the file's module and from an inline module.
    let text = "use super::model::Model;\nuse super::super::handler::App;\nuse self::inner::Y;\n\
                mod inner { use super::super::super::lambda; pub struct Y; }\nmod tests { use super::*; }";
    assert_eq!(
        resolved(&["core", "drift", "html"], text),
        [
            "core::drift::model::Model",
            "core::handler::App",
            "core::drift::html::inner::Y",
            "core::lambda",
            "core::drift::html"
        ]
    );
    assert_eq!(resolved(&["core", "x"], "use super::super::handler::App;"), ["handler::App"]);
    // Paths in code and in macros, a child module named without `self::`; comments are not code.
    let text = "mod child;\nuse child::Thing;\n// crate::cli in a comment\n\
                fn f() { let _ = crate::lambda::run; let _: crate::handler::App; println!(\"{}\", crate::config::X); }";
    assert_eq!(
        resolved(&["adapters", "s3"], text),
        ["adapters::s3::child::Thing", "lambda::run", "handler::App", "config"]
    );
}

#[test]
fn the_layer_check_catches_arrows_hidden_in_nested_groups_and_super_paths() {
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["core", "batch"],
            "use crate::{core::{model::{Model}, drift}, handler::App};",
            "core names crate::handler::App",
        ),
        (&["contract", "answer"], "use crate::{core::{a, b}, adapters::sqs};", "contract names crate::adapters::sqs"),
        (&["core", "drift", "html"], "use super::super::super::adapters::s3;", "core names crate::adapters::s3"),
        (
            &["adapters", "sqs"],
            "use super::super::{config, handler::{App as A}};",
            "adapters names crate::handler::App",
        ),
        (&["core", "model"], "mod tests { use super::super::super::contract::*; }", "core names crate::contract"),
        (&["adapters", "s3"], "fn f() { crate::cli::main(); }", "adapters names crate::cli::main"),
        (&["core", "batch"], "use aws_sdk_s3::Client;", "core names the crate aws_sdk_s3"),
    ];
    for (module, text, expected) in cases {
        assert_eq!(violations(module, text), [expected], "{text}");
    }
    // What the layers may name is not a violation.
    assert!(violations(&["adapters", "sqs"], "use super::super::{config, core::model, telemetry::Metrics};").is_empty());
    assert!(violations(&["core", "drift"], "use super::{model::Model, observation::*};").is_empty());
}

/// Method calls and function paths a file makes (`handle_json`, `serde_json::to_string`).
fn calls(text: &str) -> Vec<String> {
    struct Calls(Vec<String>);
    impl<'ast> Visit<'ast> for Calls {
        fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
            self.0.push(call.method.to_string());
            syn::visit::visit_expr_method_call(self, call);
        }
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            if let syn::Expr::Path(p) = &*call.func {
                let path: Vec<String> = p.path.segments.iter().map(|s| s.ident.to_string()).collect();
                self.0.push(path.join("::"));
            }
            syn::visit::visit_expr_call(self, call);
        }
    }
    let mut calls = Calls(Vec::new());
    calls.visit_file(&syn::parse_file(text).unwrap());
    calls.0
}

#[test]
fn the_worker_and_serve_hand_the_handler_typed_events_not_json_they_made() {
    for file in ["src/cli/worker.rs", "src/cli/serve.rs"] {
        let calls = calls(&std::fs::read_to_string(root().join(file)).unwrap());
        for round_trip in ["handle_json", "serde_json::to_string", "serde_json::to_vec", "serde_json::to_value"] {
            assert!(!calls.iter().any(|c| c == round_trip), "{file} calls {round_trip}");
        }
    }
    // The check sees such a call.
    let made = calls(
        "async fn f(app: &App) { let json = serde_json::to_string(&e).unwrap(); app.handle_json(&json, i).await; }",
    );
    assert!(made.contains(&"handle_json".to_owned()) && made.contains(&"serde_json::to_string".to_owned()), "{made:?}");
}
