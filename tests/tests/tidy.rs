//! Tidy: invariants of the workspace that a test can hold, as rust-analyzer
//! does: the crate graph is `docs/ARCHITECTURE.md`'s table; every module
//! opens with a `//!` header; no test is ignored or expected to panic; no
//! library function returns `Result<_, String>`; ambient authority
//! (clippy.toml's bans) is allowed only where ARCHITECTURE.md lists it;
//! no source file grows past the size where it should be split.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use keyong_tests::workspace;

/// The table's rows: crate → internal crates it depends on.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let mut edges = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `keyong")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].split('`').nth(1).unwrap().to_string();
        if name == "keyong-tests" {
            continue; // "as needed"
        }
        let deps = cells[2]
            .split(',')
            .map(|d| d.split_whitespace().next().unwrap_or_default())
            .filter(|d| !d.is_empty() && *d != "—")
            .map(|d| format!("keyong-{d}"))
            .collect();
        edges.insert(name, deps);
    }
    edges
}

/// The manifests' internal normal (not dev, not build) dependencies.
fn actual() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null() && names.contains(d["name"].as_str().unwrap()))
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn the_crate_graph_is_the_documented_one() {
    let documented = documented();
    assert!(documented.len() >= 12, "the table was not found: {documented:?}");
    let actual = actual();
    for (name, deps) in &documented {
        let Some(real) = actual.get(name) else { panic!("ARCHITECTURE.md names `{name}`, which is not a package") };
        assert_eq!(deps, real, "`{name}`: ARCHITECTURE.md says {deps:?}, Cargo.toml says {real:?}");
    }
    // Every runtime crate is in the table (examples, guests, benches and xtask are not).
    for name in actual.keys().filter(|n| n.starts_with("keyong") && !n.contains("example") && !n.contains("guest")) {
        if !["keyong-tests", "keyong-benches"].contains(&name.as_str()) {
            assert!(documented.contains_key(name), "`{name}` is missing from ARCHITECTURE.md's table");
        }
    }
}

/// Every Rust source file of the workspace (not `target/`), relative to it.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if !(name == "target" || name.starts_with('.') || name == "node_modules") {
                    walk(&path, root, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let root = workspace();
    let mut out = Vec::new();
    for top in ["runtime", "udf-sdk", "datasets-sim", "tests", "benches", "xtask"] {
        walk(&root.join(top), &root, &mut out);
    }
    out.sort();
    assert!(out.len() > 50, "the sources were not found: {out:?}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap()
}

/// Files of library crates: what may not return `Result<_, String>`.
fn is_library(path: &Path) -> bool {
    let p = path.to_string_lossy();
    let runtime_lib = p.starts_with("runtime/") && p.contains("/src/") && !p.starts_with("runtime/cli/");
    runtime_lib || p.starts_with("udf-sdk/src/") || p.starts_with("datasets-sim/src/")
}

#[test]
fn every_module_opens_with_a_header() {
    let missing: Vec<_> = sources().into_iter().filter(|p| !read(p).starts_with("//!")).collect();
    assert!(missing.is_empty(), "these files lack a `//!` header saying what they are: {missing:?}");
}

/// Lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.starts_with("//"))
}

/// The identifier-like tokens of a line.
fn tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|t| !t.is_empty())
}

#[test]
fn no_test_is_ignored_or_expected_to_panic() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|p| !p.ends_with("tests/tidy.rs"))
        .flat_map(|p| {
            let text = read(&p);
            code_lines(&text)
                .filter(|l| l.starts_with("#[") || l.starts_with("#!["))
                .filter(|l| tokens(l).any(|t| t == "ignore" || t == "should_panic"))
                .map(|l| format!("{}: {l}", p.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(found.is_empty(), "a test that cannot fail hides a red one: {found:?}");
}

/// The last top-level generic argument of every `Result<...>` in `text`,
/// without spaces.
fn result_error_types(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("Result<") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "Result<".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `IoResult<`, `ApiResult<`: another name
        }
        let (mut depth, mut last_comma, mut end, mut prev) = (1, None, None, ' ');
        for (j, c) in rest.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                // The `>` of `->` closes nothing.
                '>' if prev == '-' => {}
                '>' | ')' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                ',' if depth == 1 => last_comma = Some(j),
                _ => {}
            }
            prev = c;
        }
        if let (Some(comma), Some(end)) = (last_comma, end) {
            // `E = String` in an alias is the default error type.
            let e: String = rest[comma + 1..end].chars().filter(|c| !c.is_whitespace()).collect();
            out.push(e.rsplit('=').next().unwrap_or(&e).to_string());
        }
    }
    out
}

#[test]
fn no_library_function_returns_a_string_error() {
    assert_eq!(result_error_types("fn f() -> Result<Vec<(u8, u8)>, String> {"), ["String"]);
    assert_eq!(result_error_types("fn f() -> ApiResult<()> { Result<u8, E> }"), ["E"]);
    assert_eq!(result_error_types("Result<Box<dyn Fn() -> u8>, String>"), ["String"]);
    assert_eq!(result_error_types("type Result<T, E = String> = std::result::Result<T, E>;"), ["String", "E"]);
    let found: Vec<_> = sources()
        .into_iter()
        .filter(|p| is_library(p))
        .filter(|p| {
            let code: String = code_lines(&read(p)).collect::<Vec<_>>().join("\n");
            let flat: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            result_error_types(&code).iter().any(|e| e == "String" || e == "std::string::String")
                || flat.contains("typeErr=String")
                || flat.contains("typeError=String")
        })
        .collect();
    assert!(found.is_empty(), "errors are typed (a thiserror enum with its cause), never a String: {found:?}");
}

/// The files ARCHITECTURE.md's "Ambient authority" section lists, and
/// whether each may allow it crate-wide.
fn ambient_allowed() -> BTreeMap<String, bool> {
    let text = read(Path::new("docs/ARCHITECTURE.md"));
    let section = text.split("### Ambient authority").nth(1).expect("ARCHITECTURE.md has an Ambient authority section");
    let section = section.split("\n#").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("- `"))
        .map(|l| (l.split('`').nth(1).unwrap().to_string(), l.contains("` — crate-wide:")))
        .collect()
}

#[test]
fn ambient_authority_is_allowed_only_where_the_architecture_says() {
    let allowed = ambient_allowed();
    assert!(allowed.len() >= 5, "the list was not found: {allowed:?}");
    let tests_only = format!("#![cfg_attr(test, allow(clippy::{}))]", "disallowed_methods");
    let mut using = BTreeSet::new();
    for p in sources() {
        let text = read(&p);
        let name = p.to_string_lossy().to_string();
        for line in code_lines(&text) {
            let lints: Vec<&str> = tokens(line).collect();
            // The groups that hold the bans may not be switched off either.
            let silences_group = (line.starts_with("#[") || line.starts_with("#!["))
                && lints.windows(2).any(|w| w[0] == "clippy" && (w[1] == "style" || w[1] == "all"));
            assert!(!silences_group, "{name}: `{line}` silences clippy's bans with their whole group");
            if !lints.iter().any(|t| *t == "disallowed_methods" || *t == "disallowed_types") || line == tests_only {
                continue;
            }
            if !(line.starts_with("#[") || line.starts_with("#![")) {
                continue; // a mention in a string
            }
            let Some(&crate_wide) = allowed.get(&name) else {
                panic!("{name} allows ambient authority (`{line}`); ARCHITECTURE.md does not list it")
            };
            assert!(
                crate_wide || !line.starts_with("#!["),
                "{name} allows ambient authority crate-wide; ARCHITECTURE.md allows it only where it says why"
            );
            using.insert(name.clone());
        }
    }
    for p in allowed.keys() {
        assert!(using.contains(p), "ARCHITECTURE.md lists {p}, which allows nothing: remove it from the list");
    }
}

#[test]
fn no_source_file_outgrows_a_split() {
    const MAX_LINES: usize = 650;
    let long: Vec<_> =
        sources().into_iter().map(|p| (read(&p).lines().count(), p)).filter(|(n, _)| *n > MAX_LINES).collect();
    assert!(long.is_empty(), "split these along their seams (at most {MAX_LINES} lines): {long:?}");
}
