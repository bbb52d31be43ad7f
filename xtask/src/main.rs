//! `cargo xtask` — the project's commands:
//!
//! - `cargo xtask demo`  — set up, start keyong on the embedded default and
//!   walk one job from raw feed to signed release.
//! - `cargo xtask test`  — set up (guest target, Python venvs with ACRO for
//!   the cross-check and schemathesis for the API contract, cargo-machete),
//!   then fmt check, clippy `-D warnings`
//!   with `clippy.toml`'s bans, unused dependencies, all tests (the tidy
//!   test among them).
//! - `cargo xtask bench <name>` — run a benchmark; figures go to `target/bench/<name>.json`.
//! - `cargo xtask openapi` — regenerate `docs/openapi.json` from the code.
//! - `cargo xtask guests` — build the example modules for wasm32-wasip2.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

const GUEST_TARGET: &str = "wasm32-wasip2";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace());
    c
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cargo-machete that finds unused dependencies (from crates.io).
const MACHETE_VERSION: &str = "0.9.2";

/// cargo-machete, run as itself (where `cargo install` put it, on the PATH
/// beside cargo) over the workspace.
fn machete() -> Command {
    let mut c = Command::new("cargo-machete");
    c.current_dir(workspace());
    c
}

/// Installs what the build needs: the guest target, the rustfmt/clippy
/// components, and cargo-machete.
fn setup() -> anyhow::Result<()> {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !targets.lines().any(|l| l.trim() == GUEST_TARGET) {
        run(Command::new("rustup").args(["target", "add", GUEST_TARGET]))?;
    }
    let components = output(Command::new("rustup").args(["component", "list", "--installed"]))?;
    for c in ["rustfmt", "clippy"] {
        if !components.lines().any(|l| l.starts_with(c)) {
            run(Command::new("rustup").args(["component", "add", c]))?;
        }
    }
    let machete = output(machete().arg("--version")).unwrap_or_default();
    if !machete.contains(MACHETE_VERSION) {
        run(cargo().args(["install", "--locked", "cargo-machete", "--version", MACHETE_VERSION]))?;
    }
    Ok(())
}

/// Package names of the example modules under `udf-sdk/examples/`.
fn guest_packages() -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace().join("udf-sdk/examples"))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").exists() {
            names.push(format!("keyong-example-{}", entry.file_name().to_string_lossy()));
        }
    }
    names.sort();
    Ok(names)
}

fn build_guests() -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--target", GUEST_TARGET, "--profile", "guest"]);
    for p in guest_packages()? {
        cmd.args(["-p", &p]);
    }
    run(&mut cmd)
}

fn guest_wasm(name: &str) -> PathBuf {
    target_dir().join(GUEST_TARGET).join("guest").join(format!("keyong_example_{name}.wasm"))
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo() -> anyhow::Result<()> {
    setup()?;
    build_guests()?;
    run(cargo().args(["build", "-p", "keyong"]))?;
    let keyong = target_dir().join("debug/keyong");
    let root = target_dir().join("demo");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("cannot clear {}", root.display()))?;
    }
    println!("== simulating the city's raw electricity feed (with real-looking identifiers)");
    run(Command::new(&keyong)
        .args(["sim", "generate", "--dataset", "electricity_bills", "--scale", "2000", "--out"])
        .arg(root.join("landing")))?;
    // Next month's feed of the same dataset, as CSV: its next version.
    run(Command::new(&keyong)
        .args(["sim", "generate", "--dataset", "electricity_bills", "--scale", "2000", "--seed", "43"])
        .args(["--format", "csv", "--out"])
        .arg(root.join("landing")))?;
    println!("== starting keyong on the embedded default (SQLite + local data root, loopback)");
    let mut child = Command::new(&keyong)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-root"])
        .arg(&root)
        .arg("--policies")
        .arg(workspace().join("policies"))
        // The admission's publicity period (公示期) lasts seconds, not the default 7 days.
        .env("KEYONG__GOVERNANCE__MIN_PUBLICITY", "1s")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start keyong serve")?;
    let stdout = child.stdout.take().expect("piped");
    let server = ServerProcess(child);
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    // Keep draining the server's stdout: closing the pipe would break its next write.
    std::thread::spawn(move || reader.lines().map_while(Result::ok).for_each(drop));
    let url = first
        .trim()
        .strip_prefix("keyong listening on ")
        .with_context(|| format!("unexpected server output: {first}"))?
        .to_string();
    println!("   keyong is listening on {url}");
    println!("== walking one job through its whole life, as its users would\n");
    run(Command::new(&keyong)
        .args(["walkthrough", "--server", &url, "--token-file"])
        .arg(root.join("bootstrap-token"))
        .arg("--wasm")
        .arg(guest_wasm("electricity"))
        .arg("--manifest")
        .arg(workspace().join("udf-sdk/examples/electricity/manifest.json"))
        .args(["--next-feed", "electricity_bills.csv"]))?;
    drop(server);
    println!("\ndemo finished: data root kept in {}", root.display());
    Ok(())
}

/// A Python venv under the target dir built from `requirements` (rebuilt
/// when they change): the directory.
fn venv(name: &str, requirements: &str) -> anyhow::Result<PathBuf> {
    let venv = target_dir().join(name);
    let python = venv.join("bin/python");
    let requirements = workspace().join(requirements);
    let wanted = std::fs::read_to_string(&requirements)?;
    let stamp = venv.join("requirements.txt");
    if !python.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        run(Command::new(&python).args(["-m", "pip", "install", "-q", "-r"]).arg(&requirements))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv)
}

/// A Python with ACRO for the cross-check test: `KEYONG_ACRO_PYTHON` if
/// set, else a venv from `tests/acro/requirements.txt`.
fn acro_python() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KEYONG_ACRO_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    Ok(venv("acro-venv", "tests/acro/requirements.txt")?.join("bin/python"))
}

/// schemathesis for the API contract test: `KEYONG_SCHEMATHESIS` if set,
/// else a venv from `tests/api/requirements.txt`.
fn schemathesis() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KEYONG_SCHEMATHESIS") {
        return Ok(PathBuf::from(p));
    }
    Ok(venv("api-venv", "tests/api/requirements.txt")?.join("bin/schemathesis"))
}

fn test() -> anyhow::Result<()> {
    setup()?;
    build_guests()?;
    let acro = acro_python()?;
    let schemathesis = schemathesis()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    // Unused dependencies fail the build.
    run(&mut machete())?;
    run(cargo()
        .args(["test", "--workspace", "--locked"])
        .env("KEYONG_ACRO_PYTHON", acro)
        .env("KEYONG_SCHEMATHESIS", schemathesis))?;
    Ok(())
}

/// Writes the API's OpenAPI document to `docs/openapi.json`, where a test
/// checks that it is current.
fn openapi() -> anyhow::Result<()> {
    let document = output(cargo().args(["run", "-q", "--locked", "-p", "keyong", "--", "openapi"]))?;
    if !document.starts_with('{') {
        bail!("`keyong openapi` printed no document");
    }
    let path = workspace().join("docs/openapi.json");
    std::fs::write(&path, document).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn bench(name: &str) -> anyhow::Result<()> {
    setup()?;
    build_guests()?;
    let out = target_dir().join("bench");
    std::fs::create_dir_all(&out)?;
    run(cargo()
        .args(["run", "--release", "--locked", "-p", "keyong-benches", "--", name, "--out"])
        .arg(out.join(format!("{name}.json"))))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["demo"] => demo(),
        ["test"] => test(),
        ["bench", name] => bench(name),
        ["openapi"] => openapi(),
        ["guests"] => {
            setup()?;
            build_guests()
        }
        _ => {
            eprintln!("usage: cargo xtask <demo | test | bench <name> | openapi | guests>");
            std::process::exit(2);
        }
    }
}
