//! `keyong` — the server and the operator's command line.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Parser, Subcommand};

use keyong_client::walkthrough;
use keyong_model::Manifest;

mod dev;

#[derive(Parser)]
#[command(
    name = "keyong",
    version,
    about = "keyong (可用): run untrusted analysis modules on public data that can be used but not seen (数据可用不可见)."
)]
struct Cli {
    /// How log lines are written to stderr: `text` or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Where `serve` and `config show` take their settings from.
#[derive(clap::Args)]
struct SettingsArgs {
    /// A TOML settings file (`[server]`, `[sandbox]`, `[run]`, `[schedule]`,
    /// `[quotas]`); `KEYONG__SECTION__KEY` environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where keyong keeps its database, keys, landing zone and datasets
    /// (overrides `server.data_root`).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Directory of policy files (overrides `server.policies`).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (overrides `server.listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

impl SettingsArgs {
    /// Defaults → the file → the environment → these flags, validated.
    fn load(&self) -> anyhow::Result<keyong_server::Settings> {
        let file = match &self.config {
            Some(path) => {
                Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?)
            }
            None => None,
        };
        // Only keyong's own variables are read, and must be UTF-8; others are never looked at.
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with("KEYONG")).map(str::to_string) else { continue };
            let value = value.into_string().map_err(|_| anyhow::anyhow!("environment variable {name} is not UTF-8"))?;
            env.push((name, value));
        }
        let mut settings = keyong_server::Settings::layered(file.as_deref(), env)
            .map_err(|e| anyhow::anyhow!(keyong_model::error_chain(&e)))?;
        let server = &mut settings.server;
        if let Some(p) = &self.data_root {
            server.data_root.clone_from(p);
        }
        if let Some(p) = &self.policies {
            server.policies.clone_from(p);
        }
        if let Some(a) = self.listen {
            server.listen = a;
        }
        Ok(settings)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the keyong server (HTTP API under /v1) on the embedded default: SQLite + a local data root.
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// The server's settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Export and verify the audit log (全程可记录).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Simulated city data (datasets-sim).
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Develop modules offline (安全开发环境): run them against synthetic twins.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Ingest (初步脱敏) a raw feed from the server's landing zone into the catalog (agency role).
    Ingest {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:7878")]
        server: String,
        /// File holding the token of an agency user or of the dataset's provider.
        #[arg(long)]
        token_file: PathBuf,
        /// Dataset policy under `policies/datasets/` (e.g. electricity_bills); its
        /// name is the confirmed catalog entry's.
        #[arg(long)]
        policy: String,
        /// Raw feed in the landing zone, Parquet or `.csv` (e.g. electricity_bills.parquet).
        #[arg(long)]
        source: String,
        /// Total δ for the dataset across all scenarios and versions (first version only).
        #[arg(long)]
        delta: Option<f64>,
        /// Total zCDP ρ for the dataset across all scenarios and versions: required with the
        /// first version, refused with a later one.
        #[arg(long)]
        rho: Option<f64>,
    },
    /// Release an approved job (operator role) and write its bundle into a new
    /// directory: result.parquet, result.csv, report.json (what the operator
    /// may see of the checks), receipt.json and receipt.sig (SM2, verified).
    Release {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:7878")]
        server: String,
        /// File holding an operator user's token.
        #[arg(long)]
        token_file: PathBuf,
        /// The job to release.
        #[arg(long)]
        job: String,
        /// Directory to create for the bundle (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate an SM2 key pair for signing modules; writes JSON with the secret and public key.
    Keygen {
        /// Output file (created; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a module and its manifest; writes the JSON body for POST /v1/modules.
    Sign {
        /// Key file written by `keyong keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The component (.wasm) built for wasm32-wasip2.
        #[arg(long)]
        wasm: PathBuf,
        /// The manifest JSON (its `scenario` must be the approved scenario's id).
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Drive the whole life of a job against a running server, as its users would, and print the release.
    /// The operator's admission has 2 s of publicity: start the server with
    /// KEYONG__GOVERNANCE__MIN_PUBLICITY=1s (as `cargo xtask demo` does).
    Walkthrough {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:7878")]
        server: String,
        /// File holding the first authority credential (`<data-root>/bootstrap-token`; it works once).
        #[arg(long)]
        token_file: PathBuf,
        /// The module to run.
        #[arg(long)]
        wasm: PathBuf,
        /// The module's manifest (the scenario id is filled in).
        #[arg(long)]
        manifest: PathBuf,
        /// Raw feed in the server's landing zone.
        #[arg(long, default_value = "electricity_bills.parquet")]
        source: String,
        /// Dataset policy to ingest it with.
        #[arg(long, default_value = "electricity_bills")]
        policy: String,
        /// zCDP ρ the job spends.
        #[arg(long, default_value_t = 0.5)]
        rho: f64,
        /// Go on, after the release, with the rest of the plan's story (catalog update
        /// request, objection, this second feed of the dataset as its next version, a
        /// second operator's renewal and exit).
        #[arg(long)]
        next_feed: Option<String>,
    },
    /// Print the API's OpenAPI 3.1 document (as `GET /v1/openapi.json` serves it).
    Openapi,
    /// (Internal) compile a module read on stdin under the compile limits; `serve` runs it.
    #[command(hide = true)]
    CompileWorker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective settings (defaults, the file, the environment,
    /// the flags) as TOML, after validating them.
    Show {
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Download the whole audit log and its signed checkpoints as JSON (authority or agency).
    Export {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:7878")]
        server: String,
        /// File holding an authority or agency user's token.
        #[arg(long)]
        token_file: PathBuf,
        /// Where to write the export (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export offline: the SM3 chain, every checkpoint's SM2
    /// signature, and the chain against its latest checkpoint.
    Verify {
        /// The export written by `keyong audit export`.
        file: PathBuf,
        /// The platform's SM2 public key (hex) as you obtained it independently;
        /// without it, the key named in the export is used (which proves only
        /// that the file agrees with itself).
        #[arg(long)]
        public_key: Option<String>,
        /// An older export you kept: the new one must contain all its entries
        /// and checkpoints unchanged (catches a rewrite since then).
        #[arg(long)]
        against: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Generate raw feeds (with the identifiers a real feed has) as Parquet or CSV.
    Generate {
        /// One feed (e.g. electricity_bills; the ten are listed in datasets-sim's FEEDS); all of them when omitted.
        #[arg(long)]
        dataset: Option<String>,
        /// Number of privacy units per feed (households, cards, patients).
        #[arg(long, default_value_t = 2000)]
        scale: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// `parquet`, or `csv` for small samples (at most a million rows).
        #[arg(long, default_value = "parquet")]
        format: String,
        /// Output directory; each feed is `<dir>/<dataset>.<format>`.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Run a module locally against a synthetic twin of its input and print
    /// what would be submitted for review (clearly marked as synthetic).
    Run {
        /// The component (.wasm) to run.
        wasm: PathBuf,
        /// Use a synthetic twin (generated, desensitised with the real policy). `dev run` never sees real rows.
        #[arg(long, required = true)]
        mock: bool,
        /// The module's manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Directory of policy files.
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
        /// Privacy units in the twin.
        #[arg(long, default_value_t = 2000)]
        scale: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// zCDP ρ for the simulated release.
        #[arg(long, default_value_t = 1.0)]
        rho: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    secret_hex: String,
    public_key_hex: String,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write_new(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CompileWorker { .. } => unreachable!("handled in main"),
        Command::Config { command: ConfigCommand::Show { settings } } => {
            print!("{}", settings.load()?.to_toml().map_err(|e| anyhow::anyhow!(keyong_model::error_chain(&e)))?);
            Ok(())
        }
        Command::Serve { settings } => {
            let mut settings = settings.load()?;
            // This binary compiles modules as `keyong compile-worker`.
            let program = std::env::current_exe().context("cannot locate the keyong binary (the compile worker)")?;
            settings.sandbox.compile_worker =
                Some(keyong_sandbox::CompileWorker { program, args: vec!["compile-worker".into()] });
            let data_root = settings.server.data_root.clone();
            let server =
                keyong_server::start(settings).await.map_err(|e| anyhow::anyhow!(keyong_model::error_chain(&e)))?;
            // The first line is machine-read (`cargo xtask demo`). Write errors (a closed
            // pipe) are ignored: the server keeps serving.
            use std::io::Write as _;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "keyong listening on http://{}", server.addr);
            let _ = writeln!(
                out,
                "first authority credential (works once, at POST /v1/login): {}",
                data_root.join(keyong_server::BOOTSTRAP_TOKEN_FILE).display()
            );
            let _ = out.flush();
            tokio::select! {
                () = server.wait() => bail!("server stopped"),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Openapi => {
            print!("{}", keyong_server::openapi_document());
            Ok(())
        }
        Command::Sim { command: SimCommand::Generate { dataset, scale, seed, format, out } } => {
            if !matches!(format.as_str(), "parquet" | "csv") {
                bail!("unknown format `{format}`; use parquet or csv");
            }
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let feeds: Vec<&str> = match &dataset {
                Some(d) => vec![d.as_str()],
                None => keyong_datasets_sim::FEEDS.to_vec(),
            };
            for feed in feeds {
                let (schema, batches) = keyong_datasets_sim::generate(feed, scale, seed)?;
                let path = out.join(format!("{feed}.{format}"));
                let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
                let file = std::io::BufWriter::new(file);
                let rows = match format.as_str() {
                    "csv" => keyong_datasets_sim::write_csv(batches, file),
                    _ => keyong_datasets_sim::write_parquet(schema, batches, file),
                };
                let rows = rows.inspect_err(|_| {
                    let _ = std::fs::remove_file(&path);
                })?;
                println!("wrote {rows} rows to {}", path.display());
            }
            Ok(())
        }
        Command::Ingest { server, token_file, policy, source, delta, rho } => {
            let token = String::from_utf8(read(&token_file)?)?.trim().to_string();
            let client = keyong_client::Client::new(&server).as_user(&token);
            let request = keyong_model::api::IngestRequest { policy, source, rho_budget: rho, delta_budget: delta };
            let entry = client.ingest(&request).await?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
            Ok(())
        }
        Command::Dev { command: DevCommand::Run { wasm, mock: _, manifest, policies, scale, seed, rho, json } } => {
            dev::run(dev::DevRun { wasm, manifest, policies, scale, seed, rho, json }).await
        }
        Command::Release { server, token_file, job, out } => {
            let token = String::from_utf8(read(&token_file)?)?.trim().to_string();
            let bundle = keyong_client::Client::new(&server).as_user(&token).release(&job).await?;
            keyong_client::verify_bundle(&bundle).context("the bundle's receipt does not verify")?;
            let parquet = base64::engine::general_purpose::STANDARD
                .decode(&bundle.parquet_base64)
                .context("the bundle's Parquet is not base64")?;
            std::fs::create_dir(&out)
                .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
            write_new(&out.join("result.parquet"), &parquet)?;
            write_new(&out.join("result.csv"), bundle.csv.as_bytes())?;
            write_new(&out.join("report.json"), serde_json::to_string_pretty(&bundle.report)?.as_bytes())?;
            write_new(&out.join("receipt.json"), serde_json::to_string(&bundle.receipt)?.as_bytes())?;
            write_new(&out.join("manifest.json"), serde_json::to_string(&bundle.manifest)?.as_bytes())?;
            let sig = format!("{}\n{}\n", bundle.signature_hex, bundle.platform_public_key_hex);
            write_new(&out.join("receipt.sig"), sig.as_bytes())?;
            println!(
                "released job {job}: {} rows ({} cells suppressed); receipt {} verifies; bundle in {}",
                bundle.table.rows.len(),
                bundle.report.suppressed_cells,
                bundle.receipt.id,
                out.display()
            );
            Ok(())
        }
        Command::Audit { command: AuditCommand::Export { server, token_file, out } } => {
            let token = String::from_utf8(read(&token_file)?)?.trim().to_string();
            let export = keyong_client::Client::new(&server).as_user(&token).export_audit().await?;
            write_new(&out, serde_json::to_string(&export)?.as_bytes())?;
            println!(
                "wrote {} audit entries and {} checkpoints to {}",
                export.entries.len(),
                export.checkpoints.len(),
                out.display()
            );
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { file, public_key, against } } => {
            let load = |path: &PathBuf| -> anyhow::Result<keyong_model::api::AuditExport> {
                serde_json::from_slice(&read(path)?)
                    .with_context(|| format!("{} is not a keyong audit export", path.display()))
            };
            let export = load(&file)?;
            if let Some(older) = &against {
                keyong_client::audit_extends(&load(older)?, &export)
                    .map_err(|e| anyhow::anyhow!("{} does not extend {}: {e}", file.display(), older.display()))?;
            }
            let key = public_key.unwrap_or_else(|| {
                eprintln!("warning: no --public-key: checking against the key the export names");
                export.platform_public_key_hex.clone()
            });
            let v = keyong_client::verify_audit_export(&export, &key);
            match v.first_bad_seq {
                None => {
                    println!(
                        "audit log verifies: {} entries, head {}, {} signed checkpoints (the last vouches for entry {})",
                        v.entries,
                        v.head,
                        export.checkpoints.len(),
                        v.vouched
                    );
                    Ok(())
                }
                Some(seq) => {
                    bail!("the audit log does not verify from entry {seq} on (altered, missing or re-chained)")
                }
            }
        }
        Command::Keygen { out } => {
            let k = keyong_crypto::SigningKey::generate()?;
            let file = KeyFile { secret_hex: k.secret_hex(), public_key_hex: k.public_key_hex() };
            write_new(&out, serde_json::to_string_pretty(&file)?.as_bytes())?;
            println!("public key: {}", file.public_key_hex);
            Ok(())
        }
        Command::Sign { key, wasm, manifest, out } => {
            let key: KeyFile =
                serde_json::from_slice(&read(&key)?).context("the key file is not keyong keygen JSON")?;
            let key = keyong_crypto::SigningKey::from_hex(&key.secret_hex)?;
            let manifest: Manifest =
                serde_json::from_slice(&read(&manifest)?).context("the manifest does not parse")?;
            manifest.validate()?;
            let body = keyong_client::sign_module(&key, &read(&wasm)?, &manifest)?;
            write_new(&out, serde_json::to_string(&body)?.as_bytes())?;
            println!("signed; POST {} to /v1/modules", out.display());
            Ok(())
        }
        Command::Walkthrough { server, token_file, wasm, manifest, source, policy, rho, next_feed } => {
            let token = String::from_utf8(read(&token_file)?)?.trim().to_string();
            let manifest: Manifest =
                serde_json::from_slice(&read(&manifest)?).context("the manifest does not parse")?;
            let inputs = walkthrough::Inputs {
                base: server,
                bootstrap_token: token,
                source,
                policy,
                wasm: read(&wasm)?,
                manifest,
                rho,
                story: next_feed,
            };
            let mut step = 0;
            let outcome = walkthrough::run(inputs, &mut |msg| {
                step += 1;
                println!("[{step:>2}] {msg}");
            })
            .await?;
            println!("\nreleased table (differentially private; zCDP ρ = {:.4}):\n", outcome.bundle.receipt.rho_spent);
            print!("{}", walkthrough::render_table(&outcome.bundle.table));
            println!("\nreceipt id: {}", outcome.bundle.receipt.id);
            if !outcome.audit.ok {
                bail!("the audit chain does not verify");
            }
            println!("audit chain verified: {} entries, head {}", outcome.audit.entries, outcome.audit.head_hash);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The compile worker is a short-lived child of `serve`: no runtime, no threads.
    if let Command::CompileWorker { args } = &cli.command {
        return keyong_sandbox::compile::worker_main(args);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYONG_LOG").unwrap_or_else(|_| "warn".into());
    // Spans log when they close, with their durations (`time.busy`, `time.idle`).
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => log.json().init(),
        LogFormat::Text => log.init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
