//! Tidy: invariants of the workspace that a test can hold, as rust-analyzer
//! does. For now the crate graph: every internal dependency edge in
//! `Cargo.toml` is the one `docs/ARCHITECTURE.md`'s table states, and the
//! table names no edge the manifests lack.

use std::collections::{BTreeMap, BTreeSet};
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
