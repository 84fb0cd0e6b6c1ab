//! Every relative link in the documentation resolves: README.md, docs/*.md,
//! models/README.md and fuzz/README.md link to files that exist and, with
//! `#anchor`, to a heading of the target as GitHub names it (lowercase,
//! spaces become `-`, punctuation other than `-` and `_` dropped; a repeated
//! heading gets `-1`, `-2`). Links in code blocks and code spans are not
//! links; http(s) and mailto links are not followed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::helpers::root;

/// The pages whose links are checked.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|dir| dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect())
        .unwrap_or_default();
    docs.sort();
    pages.extend(docs);
    pages.extend(["models/README.md", "fuzz/README.md"].iter().map(|p| root.join(p)).filter(|p| p.exists()));
    pages
}

/// The text outside fenced code blocks, with code spans blanked (newlines
/// kept, so positions still give line numbers). Fenced lines become empty.
fn prose(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<(char, usize)> = None;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match fence {
            Some((m, n)) => {
                if marker == Some(m) && run >= n && trimmed[run..].trim().is_empty() {
                    fence = None;
                }
                out.push('\n');
                continue;
            }
            None if indent <= 3 && run >= 3 => {
                fence = marker.map(|m| (m, run));
                out.push('\n');
                continue;
            }
            None => out.push_str(line),
        }
    }
    blank_code_spans(&out)
}

/// Replaces each code span (a run of n backticks up to the next run of
/// exactly n, within a paragraph) by spaces.
fn blank_code_spans(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let run_at = |i: usize| bytes[i..].iter().take_while(|b| **b == b'`').count();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let paragraph_end = text[i..].find("\n\n").map_or(bytes.len(), |e| i + e);
        let mut j = i + n;
        let mut close = None;
        while j < paragraph_end {
            if bytes[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j + m);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                for b in &mut out[i..end] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                i = end;
            }
            None => i += n,
        }
    }
    // Only ASCII bytes were replaced by ASCII spaces, whole code spans at a time.
    String::from_utf8(out).expect("code spans blanked on whole characters")
}

/// Every link target in a page, with its line: inline links and images
/// (`[text](target)`, `![alt](target "title")`) and reference definitions
/// (`[label]: target`).
fn links(markdown: &str) -> Vec<(usize, String)> {
    let text = prose(markdown);
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in text.match_indices("](") {
        let rest = text[at + 2..].trim_start_matches([' ', '\t']);
        let target = if let Some(angle) = rest.strip_prefix('<') {
            angle.split('>').next().unwrap_or("").to_owned()
        } else {
            let mut depth = 0usize;
            rest.chars()
                .take_while(|c| match c {
                    '(' => {
                        depth += 1;
                        true
                    }
                    ')' if depth == 0 => false,
                    ')' => {
                        depth -= 1;
                        true
                    }
                    c => !c.is_whitespace(),
                })
                .collect()
        };
        found.push((line_of(at), target));
    }
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start_matches(' ');
        if line.len() - t.len() <= 3 && t.starts_with('[') {
            if let Some(close) = t.find(']').filter(|c| t[c + 1..].starts_with(':')) {
                let target = t[close + 2..].split_whitespace().next().unwrap_or("");
                found.push((line_of(offset), target.trim_matches(['<', '>']).to_owned()));
            }
        }
        offset += line.len();
    }
    found
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    // A link in a heading counts by its text only.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find("](") {
        let close = rest[open..].find(')').map_or(rest.len(), |c| open + c + 1);
        text.push_str(&rest[..open]);
        rest = &rest[close..];
    }
    text.push_str(rest);
    text.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a page offers: its ATX headings' slugs (repeats numbered as
/// GitHub numbers them) and any HTML `id`/`name` attribute.
fn anchors(markdown: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for (original, visible) in markdown.lines().zip(prose(markdown).lines()) {
        let t = visible.trim_start_matches(' ');
        if visible.len() - t.len() > 3 {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && (t.len() == level || t[level..].starts_with([' ', '\t'])) {
            // The heading's own text, code spans included (prose() blanked them).
            let o = original.trim_start_matches(' ');
            let text = o[level..].trim().trim_end_matches('#').trim_end();
            let base = slug(text);
            let mut anchor = base.clone();
            let mut n = 0;
            while !set.insert(anchor.clone()) {
                n += 1;
                anchor = format!("{base}-{n}");
            }
        }
        for attr in ["id=\"", "name=\""] {
            for (at, _) in visible.match_indices(attr) {
                let value = &visible[at + attr.len()..];
                set.insert(value[..value.find('"').unwrap_or(value.len())].to_owned());
            }
        }
    }
    set
}

/// `%20` and the like, as a browser decodes a link's path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        if let (b'%', Some(hex)) = (bytes[i], hex) {
            let digit = |h: u8| (h as char).to_digit(16).unwrap() as u8;
            out.push(digit(hex[0]) * 16 + digit(hex[1]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What is wrong with the relative links of `pages` (paths shown relative to
/// `root`), and how many relative links were checked.
fn broken_links(root: &Path, pages: &[PathBuf]) -> (Vec<String>, usize) {
    let root = root.canonicalize().unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages {
        let shown = page.strip_prefix(&root).unwrap_or(page).display().to_string();
        let markdown = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{shown}: {e}"));
        for (line, target) in links(&markdown) {
            let lower = target.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let at = format!("{shown}:{line}: ({target})");
            if target.is_empty() {
                broken.push(format!("{at}: an empty link"));
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let path = path.split('?').next().unwrap_or("");
            let file = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(percent_decode(path)) };
            let Ok(file) = file.canonicalize() else {
                broken.push(format!("{at}: no such file"));
                continue;
            };
            if !file.starts_with(&root) {
                broken.push(format!("{at}: outside the repository"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("md")) {
                let target_text = std::fs::read_to_string(&file).unwrap();
                if !anchors(&target_text).contains(&percent_decode(anchor)) {
                    broken.push(format!("{at}: no heading there has the anchor #{anchor}"));
                }
            } else if !is_line_anchor(anchor) {
                broken
                    .push(format!("{at}: #{anchor} in a file that is not Markdown (only #L12 or #L12-L20 work there)"));
            }
        }
    }
    (broken, checked)
}

/// GitHub's line anchors in a source file: `L12`, `L12-L20`.
fn is_line_anchor(anchor: &str) -> bool {
    let line = |s: &str| s.strip_prefix('L').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    match anchor.split_once('-') {
        Some((a, b)) => line(a) && line(b),
        None => line(anchor),
    }
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = root();
    let pages = pages(&root);
    assert!(pages.len() >= 12, "only {} pages found: {pages:?}", pages.len());
    let (broken, checked) = broken_links(&root, &pages);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 50, "only {checked} relative links checked: is the link parser finding them?");
}

#[test]
fn a_missing_file_a_missing_anchor_and_a_link_out_of_the_repository_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("code.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.path().join("outside.md"), "# Outside\n").unwrap();
    std::fs::write(
        root.join("docs/page.md"),
        "# The page\n\n## Limits (and `caveats`)\n\n## Limits (and `caveats`)\n\n<a id=\"custom\"></a>\n",
    )
    .unwrap();
    let readme = "\
# Front door

Good: [page](docs/page.md), [limits](docs/page.md#limits-and-caveats),
[again](docs/page.md#limits-and-caveats-1), [custom](docs/page.md#custom),
[self](#front-door), [dir](docs/), [line](code.rs#L1-L2), ![img](docs/page.md \"t\"),
[web](https://example.com/nothing), [mail](mailto:a@b.c), [spaced](docs%2Fpage.md).

Broken: [gone](docs/gone.md), [bad anchor](docs/page.md#limits), [bad self](#nowhere),
[rs anchor](code.rs#main), [out](../outside.md),
[split
text](docs/missing-too.md).

[ref]: docs/ref-missing.md

Not links: `[code](docs/none.md)` and ``[code `x`](docs/none.md)``.

```md
[fenced](docs/none.md)
```
";
    std::fs::write(root.join("README.md"), readme).unwrap();
    let (broken, checked) = broken_links(&root, &pages(&root));
    let reported: Vec<&str> =
        broken.iter().map(|b| b.split(": (").nth(1).unwrap().split(')').next().unwrap()).collect();
    assert_eq!(
        reported,
        [
            "docs/gone.md",
            "docs/page.md#limits",
            "#nowhere",
            "code.rs#main",
            "../outside.md",
            "docs/missing-too.md",
            "docs/ref-missing.md"
        ],
        "{broken:#?}"
    );
    assert!(broken[0].starts_with("README.md:8: "), "{}", broken[0]);
    assert_eq!(checked, 9 + 7, "{broken:#?}");
}

#[test]
fn headings_get_github_anchors() {
    assert_eq!(slug("HTTP contract (Function URL)"), "http-contract-function-url");
    assert_eq!(slug("The `drift` object"), "the-drift-object");
    assert_eq!(
        slug("Huge files: Step Functions Distributed Map and S3 Batch Operations"),
        "huge-files-step-functions-distributed-map-and-s3-batch-operations"
    );
    assert_eq!(
        slug("Export format (`format: \"scorer-gbdt\"`, `format_version: 2`)"),
        "export-format-format-scorer-gbdt-format_version-2"
    );
    assert_eq!(slug("See [the card](models/README.md) — Ünits"), "see-the-card--ünits");
}
