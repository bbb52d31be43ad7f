//! `keyong new module`: a standalone module crate (or, for sql mode, a
//! manifest) that builds outside keyong's repository. The SDK travels with
//! the binary: the crate gets a copy of the SDK this keyong was built with,
//! as a path dependency, so its WIT is the interface this server offers.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The SDK's files, as this binary was built with them.
const SDK_LIB: &str = include_str!("../../../udf-sdk/src/lib.rs");
const SDK_WIT: &str = include_str!("../../../udf-sdk/wit/keyong-udf.wit");
/// The wit-bindgen the SDK is built with (the workspace's; a test keeps them equal).
pub(crate) const WIT_BINDGEN: &str = "0.61";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    Aggregate,
    Blocks,
    Reviewed,
    Sql,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Aggregate => "aggregate",
            Mode::Blocks => "blocks",
            Mode::Reviewed => "reviewed",
            Mode::Sql => "sql",
        }
    }

    /// The manifest, its name `{{name}}`: the repository's example of the
    /// mode where there is one (built and tested with the workspace).
    fn manifest(self) -> String {
        let (text, name) = match self {
            Mode::Aggregate => (include_str!("../../../udf-sdk/examples/electricity/manifest.json"), "kwh-by-district"),
            Mode::Blocks => return include_str!("../templates/blocks.json").to_string(),
            Mode::Reviewed => {
                (include_str!("../../../udf-sdk/examples/district_table/manifest.json"), "district-table")
            }
            Mode::Sql => (include_str!("../../../udf-sdk/examples/sql_district_mean/manifest.json"), "mean-kwh-sql"),
        };
        text.replacen(&format!("\"name\": \"{name}\""), "\"name\": \"{{name}}\"", 1)
    }

    /// The module's source and its test; sql mode has none.
    fn source(self) -> Option<String> {
        let (source, test) = match self {
            Mode::Aggregate => (
                include_str!("../../../udf-sdk/examples/electricity/src/lib.rs"),
                include_str!("../templates/aggregate_test.rs.in"),
            ),
            Mode::Blocks => return Some(include_str!("../templates/blocks.rs").to_string()),
            Mode::Reviewed => (
                include_str!("../../../udf-sdk/examples/district_table/src/lib.rs"),
                include_str!("../templates/reviewed_test.rs.in"),
            ),
            Mode::Sql => return None,
        };
        Some(format!("{source}{test}"))
    }
}

/// A crate name cargo takes and a manifest name keyong takes: a lowercase
/// letter, then lowercase letters, digits, `-` or `_`, at most 64 in all.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if !ok {
        bail!("`{name}` is not a module name: start with a lowercase letter, then use a-z, 0-9, - or _ (at most 64)");
    }
    Ok(())
}

/// Writes the module `name` of `mode` into `dir/name` (which must not
/// exist) and returns that directory. Nothing is left behind on failure.
pub(crate) fn module(mode: Mode, name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let root = dir.join(name);
    let shown = std::path::absolute(&root).unwrap_or_else(|_| root.clone());
    if root.exists() {
        bail!("{} exists: choose another name or --dir", shown.display());
    }
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{mode}}", mode.name())
            .replace("{{keyong_version}}", env!("CARGO_PKG_VERSION"))
            .replace("{{wit_bindgen}}", WIT_BINDGEN)
    };
    let mut files: Vec<(&str, String)> = vec![("manifest.json", fill(&mode.manifest()))];
    match mode.source() {
        Some(source) => files.extend([
            ("README.md", fill(include_str!("../templates/README.md.in"))),
            ("Cargo.toml", fill(include_str!("../templates/Cargo.toml.in"))),
            (".gitignore", "/target\nCargo.lock\n".to_string()),
            ("src/lib.rs", fill(&source)),
            ("keyong-udf-sdk/Cargo.toml", fill(include_str!("../templates/sdk.Cargo.toml.in"))),
            ("keyong-udf-sdk/src/lib.rs", SDK_LIB.to_string()),
            ("keyong-udf-sdk/wit/keyong-udf.wit", SDK_WIT.to_string()),
        ]),
        None => files.push(("README.md", fill(include_str!("../templates/README.sql.md.in")))),
    }
    let written = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::create_dir(&root).with_context(|| format!("cannot create {}", shown.display()))?;
        for (path, text) in &files {
            let path = root.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&root);
        return Err(e);
    }
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_manifest_is_valid() {
        for mode in [Mode::Aggregate, Mode::Blocks, Mode::Reviewed, Mode::Sql] {
            let text = mode.manifest().replace("{{name}}", "m");
            let manifest: keyong_model::Manifest = serde_json::from_str(&text).unwrap();
            manifest.validate().unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            assert_eq!(manifest.name, "m", "{mode:?}: the name is the new module's");
            assert_eq!(manifest.mode.as_str(), mode.name());
        }
    }

    #[test]
    fn the_sdk_copy_uses_the_workspace_wit_bindgen() {
        let workspace = include_str!("../../../Cargo.toml");
        assert!(workspace.contains(&format!("wit-bindgen = {{ version = \"{WIT_BINDGEN}\"")), "update WIT_BINDGEN");
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "Kwh", "1kwh", "kwh by district", "../x", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("kwh-by_district2").unwrap();
    }
}
