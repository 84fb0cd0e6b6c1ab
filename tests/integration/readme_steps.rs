//! The README's steps work as a newcomer reads them (issue 21): the quick
//! start is two commands on a fresh machine (one serves, one tests: the
//! project's rule); every other example calls `scorer`, after the README has
//! said how to get it; the quick start's server runs alone in its block and
//! the client "in another terminal"; the
//! environments the test command installs are each listed with their size;
//! the deployment pages name one stack, `scorer`, and validate before they
//! deploy. Commands are read from fenced code blocks: every line of a `sh`
//! block that is not a comment, the `$ ` lines of a `console` block.

use std::path::Path;

use crate::helpers::root;

/// A fenced code block: its commands, and the prose between it and the previous block.
struct Block {
    commands: Vec<String>,
    before: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut open: Option<(String, Vec<String>)> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().starts_with("```");
        match open.take() {
            Some((lang, lines)) if fence => {
                let commands = lines
                    .iter()
                    .filter_map(|l| match lang.as_str() {
                        "console" => l.strip_prefix("$ ").map(str::to_owned),
                        _ => Some(l.split(" #").next().unwrap_or("").trim().to_owned()),
                    })
                    .filter(|c| !c.is_empty() && !c.starts_with('#'))
                    .collect();
                out.push(Block { commands, before: std::mem::take(&mut prose) });
            }
            Some((lang, mut lines)) => {
                lines.push(line.to_owned());
                open = Some((lang, lines));
            }
            None if fence => open = Some((line.trim_start().trim_start_matches('`').trim().to_owned(), Vec::new())),
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `command` runs the `scorer` binary (after any `NAME=value` settings).
fn runs_scorer(command: &str) -> bool {
    command.split_whitespace().find(|w| !w.contains('=')) == Some("scorer")
}

#[test]
fn every_readme_example_calls_scorer_after_the_readme_says_how_to_get_it() {
    let readme = read(&root().join("README.md"));
    let blocks = blocks(&readme);
    let commands: Vec<&String> = blocks.iter().flat_map(|b| &b.commands).collect();
    // The quick start alone runs the service by `cargo run` (a fresh machine has no binary yet).
    let cargo_run: Vec<&&String> =
        commands.iter().filter(|c| c.starts_with("cargo run") && **c != QUICK_START_SERVE).collect();
    assert!(cargo_run.is_empty(), "examples call `scorer`, not cargo run: {cargo_run:?}");
    let install = commands.iter().position(|c| *c == "cargo install --locked --path .");
    let first_call = commands.iter().position(|c| runs_scorer(c));
    assert!(first_call.is_some(), "no README example calls scorer");
    assert!(
        install.is_some_and(|i| Some(i) < first_call),
        "`cargo install --locked --path .` must come before the first `scorer` example ({:?})",
        first_call.map(|i| commands[i])
    );
    assert!(commands.contains(&&"cargo build --release".to_owned()), "the release build is a step of its own");
    assert!(readme.contains("`target/release/scorer`"), "the README names the release binary's path");
}

/// The quick start's first command: serves on a fresh machine, no binary installed.
const QUICK_START_SERVE: &str = "cargo run --locked --release -- serve";

#[test]
fn the_quick_start_is_two_commands_one_serves_one_tests() {
    let readme = read(&root().join("README.md"));
    let start = readme.find("## Quick start\n").expect("the README has a quick start");
    let end = readme[start + 1..].find("\n## ").map_or(readme.len(), |i| start + 1 + i);
    let blocks = blocks(&readme[start..end]);
    // A `console` block shows a call and its answer (the curl); `sh` blocks are what a newcomer runs.
    let run: Vec<&String> = blocks.iter().flat_map(|b| &b.commands).filter(|c| !c.starts_with("curl")).collect();
    assert_eq!(run, [QUICK_START_SERVE, "bash tests/run.sh"], "the quick start: one command serves, one tests");
    assert!(readme.starts_with("# scorer\n") && start < readme.find("## ").unwrap() + 1, "the quick start comes first");
}

#[test]
fn the_quick_start_serves_in_its_own_block_and_calls_it_from_another_terminal() {
    let blocks = blocks(&read(&root().join("README.md")));
    let serve = blocks.iter().position(|b| b.commands.iter().any(|c| c == QUICK_START_SERVE));
    let serve = serve.expect("the README's quick start runs scorer serve");
    assert_eq!(
        blocks[serve].commands.len(),
        1,
        "serve never returns: alone in its block: {:?}",
        blocks[serve].commands
    );
    let next = blocks.get(serve + 1).expect("a block after serve");
    assert!(next.commands.iter().any(|c| c.starts_with("curl")), "the block after serve calls it: {:?}", next.commands);
    assert!(next.before.contains("another terminal"), "the call is in another terminal: {:?}", next.before);
}

/// The venvs tests/run.sh and tests/fuzz_openapi.sh create (`tool_venv NAME`, or a `for tool in …` loop).
fn test_environments(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for script in ["tests/run.sh", "tests/fuzz_openapi.sh"] {
        for line in read(&root.join(script)).lines() {
            let line = line.trim();
            let listed: Vec<&str> = if let Some(rest) = line.strip_prefix("for tool in ") {
                rest.split(';').next().unwrap_or("").split_whitespace().collect()
            } else if let Some(name) = line.strip_prefix("tool_venv ") {
                vec![name].into_iter().filter(|n| !n.starts_with('$')).collect()
            } else {
                Vec::new()
            };
            for name in listed {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn every_environment_the_test_command_installs_is_listed_with_its_size() {
    let root = root();
    let names = test_environments(&root);
    assert!(names.len() >= 5, "{names:?}");
    let testing = read(&root.join("docs/testing.md"));
    for name in &names {
        assert!(root.join(format!(".ci/requirements-{name}.txt")).exists(), "{name}: no .ci/requirements-{name}.txt");
        let row = testing.lines().find(|l| l.starts_with(&format!("| `target/test-tools/{name}/` |")));
        let row = row.unwrap_or_else(|| panic!("docs/testing.md has no table row for target/test-tools/{name}/"));
        assert!(row.contains(" MB"), "{name}: its size: {row}");
    }
    let rows = testing.lines().filter(|l| l.starts_with("| `target/test-tools/")).count();
    assert_eq!(rows, names.len(), "docs/testing.md lists other environments than {names:?}");
    const WORDS: [&str; 10] = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let count = format!("{} Python environments under `target/test-tools/`", WORDS[names.len()]);
    assert!(read(&root.join("README.md")).contains(&count), "the README says \"{count}\"");
}

#[test]
fn the_deployment_names_one_stack_and_validates_before_deploying() {
    let root = root();
    let mut pages = vec![root.join("README.md")];
    pages.extend(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    for page in &pages {
        let text = read(page);
        for (i, _) in text.match_indices("--stack-name") {
            let rest = text[i + "--stack-name".len()..].trim_start().trim_start_matches(['=', '"', '\'']);
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || "-_<>${}".contains(*c)).collect();
            assert_eq!(name, "scorer", "{}: --stack-name {name}", page.display());
        }
        for block in blocks(&text) {
            for c in block.commands.iter().filter(|c| c.contains("sam deploy --guided")) {
                assert!(
                    c.contains("--stack-name scorer"),
                    "{}: {c}: the guided deploy names the stack",
                    page.display()
                );
            }
        }
    }
    let deploying = blocks(&read(&root.join("docs/deploying.md")));
    let commands: Vec<&String> = deploying.iter().flat_map(|b| &b.commands).collect();
    let validate = commands.iter().position(|c| c.starts_with("sam validate --lint"));
    let deploy = commands.iter().position(|c| c.starts_with("sam deploy"));
    assert!(deploy.is_some(), "docs/deploying.md deploys with sam deploy");
    assert!(validate.is_some_and(|v| Some(v) < deploy), "`sam validate --lint` is a step before `sam deploy`");
}
