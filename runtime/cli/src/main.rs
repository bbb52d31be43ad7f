//! `keyong` — the server and the operator's command line.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use keyong_client::walkthrough;
use keyong_model::Manifest;

mod audit;
mod dev;
mod new;
mod ops;
mod profile;
mod remote;
mod settings;

use settings::SettingsArgs;

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
    #[command(flatten)]
    conn: profile::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the keyong server (HTTP API under /v1) on the embedded default: SQLite + a local data root.
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Start a module: `keyong new module --mode aggregate NAME`.
    New {
        #[command(subcommand)]
        command: NewCommand,
    },
    /// The server's settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Export and verify the audit log (全程可记录).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
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
    /// Sign in: exchange a credential for a session and keep both in the
    /// profile (`--profile`, default `default`) of the config file (0600).
    Login {
        /// A file holding the credential; read from stdin when omitted.
        #[arg(long)]
        credential_file: Option<PathBuf>,
    },
    /// Sign out: end the profile's session and forget its tokens.
    Logout,
    /// Rotate the profile's credential: the new one replaces it in the
    /// profile; the old one and every session stop.
    Rotate,
    /// Register the SM2 public key of a `keyong keygen` key file as the one
    /// your modules are signed with (operators).
    RegisterKey {
        #[arg(long)]
        key: PathBuf,
    },
    /// Who the current token signs in as.
    Whoami,
    /// Call any operation of the API (`GET /v1/openapi.json` lists them) and print its JSON answer.
    Api {
        /// GET, POST or PUT.
        method: String,
        /// The path, e.g. /v1/catalog-requests (query string included).
        path: String,
        /// The JSON body, or @FILE to read it from a file.
        #[arg(long)]
        data: Option<String>,
    },
    /// Scenarios (一场景一审核): list, show, apply, budget; review (agency), approve (authority).
    Scenarios {
        #[command(subcommand)]
        command: remote::Scenarios,
    },
    /// Modules: list, show, submit (sign and upload in one step).
    Modules {
        #[command(subcommand)]
        command: remote::Modules,
    },
    /// Jobs: list, show, submit, preview, wait, withdraw, release; close (agency), signoff (authority).
    Jobs {
        #[command(subcommand)]
        command: remote::Jobs,
    },
    /// The reviewers' airlock: queue, show, vote.
    Reviews {
        #[command(subcommand)]
        command: remote::Reviews,
    },
    /// Verify a release bundle offline (the directory `keyong jobs release`
    /// wrote): the receipt's SM2 signature against the platform key, and
    /// the SM3 of every file it binds.
    Verify {
        dir: PathBuf,
        /// The platform's SM2 public key (hex) as you obtained it; without
        /// it, it is fetched from the server's public `GET /v1/platform-key`.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Generate an SM2 key pair for signing modules; writes JSON with the secret and public key.
    Keygen {
        /// Output file (created; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a module and its manifest; writes the JSON body for POST /v1/modules.
    Sign {
        #[command(flatten)]
        files: remote::ModuleFiles,
        #[arg(long)]
        out: PathBuf,
    },
    /// Drive the whole life of a job against a running server, as its users would, and print the release.
    /// The operator's admission has 2 s of publicity: start the server with
    /// KEYONG__GOVERNANCE__MIN_PUBLICITY=1s (as `cargo xtask demo` does).
    /// Give it the first authority credential with `--token-file
    /// <data-root>/bootstrap-token` (it works once).
    Walkthrough {
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
enum NewCommand {
    /// Write a standalone module crate (the SDK as a path dependency, a
    /// manifest, a test and a README) into DIR/NAME; for `--mode sql`, the
    /// manifest and a README (sql mode has no code).
    Module {
        #[arg(long, value_enum)]
        mode: new::Mode,
        name: String,
        /// Where to create NAME/ (default: here).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
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
        /// The component (.wasm) to run; none for an sql-mode manifest.
        wasm: Option<PathBuf>,
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
pub(crate) struct KeyFile {
    secret_hex: String,
    public_key_hex: String,
}

/// A `--data` argument: JSON, or `@FILE` to read it from a file.
pub(crate) fn json_arg(data: &str) -> anyhow::Result<serde_json::Value> {
    let text = match data.strip_prefix('@') {
        Some(file) => String::from_utf8(read(std::path::Path::new(file))?).context("--data @FILE is not UTF-8")?,
        None => data.to_string(),
    };
    serde_json::from_str(&text).context("--data is not JSON")
}

pub(crate) fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) fn write_new(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
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
            let _ = writeln!(out, "keyong listening on {}", server.url());
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
        Command::New { command: NewCommand::Module { mode, name, dir } } => {
            let root = new::module(mode, &name, &dir)?;
            println!("wrote {}; see its README.md", root.display());
            Ok(())
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
        Command::Ingest { policy, source, delta, rho } => {
            let client = cli.conn.client().await?;
            let request = keyong_model::api::IngestRequest { policy, source, rho_budget: rho, delta_budget: delta };
            let entry = client.ingest(&request).await?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
            Ok(())
        }
        Command::Dev { command: DevCommand::Run { wasm, mock: _, manifest, policies, scale, seed, rho, json } } => {
            dev::run(dev::DevRun { wasm, manifest, policies, scale, seed, rho, json }).await
        }
        Command::Login { credential_file } => {
            let credential = match credential_file {
                Some(path) => String::from_utf8(read(&path)?)?,
                None => {
                    eprintln!("paste the credential and press Enter:");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            println!("{}", profile::login(&cli.conn, &credential).await?);
            Ok(())
        }
        Command::Logout => {
            println!("{}", profile::logout(&cli.conn).await?);
            Ok(())
        }
        Command::Rotate => {
            println!("{}", profile::rotate(&cli.conn).await?);
            Ok(())
        }
        Command::RegisterKey { key } => {
            let key: KeyFile =
                serde_json::from_slice(&read(&key)?).context("the key file is not keyong keygen JSON")?;
            let me = cli.conn.client().await?.set_signing_key(&key.public_key_hex).await?;
            println!("registered the signing key of {} ({})", me.name, me.id);
            Ok(())
        }
        Command::Api { method, path, data } => {
            let method = remote::method(&method)?;
            if !path.starts_with("/v1/") {
                bail!("the path must start with /v1/ (e.g. /v1/catalog-requests)");
            }
            if matches!(path.split('?').next(), Some("/v1/login" | "/v1/me/credential" | "/v1/logout")) {
                bail!("use `keyong login`, `keyong rotate` or `keyong logout`: they keep the profile right");
            }
            let body = data.as_deref().map(json_arg).transpose()?;
            let answer = cli.conn.client().await?.call_json(method, &path, body).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Whoami => {
            let me = cli.conn.client().await?.me().await?;
            if cli.conn.json {
                println!("{}", serde_json::to_string_pretty(&me)?);
            } else {
                println!("{} ({}, {}) of {}", me.name, me.role, me.id, me.org_id);
            }
            Ok(())
        }
        Command::Verify { dir, public_key } => remote::verify(&cli.conn, &dir, public_key).await,
        Command::Scenarios { command } => remote::scenarios(&cli.conn, command).await,
        Command::Modules { command } => remote::modules(&cli.conn, command).await,
        Command::Jobs { command } => remote::jobs(&cli.conn, command).await,
        Command::Reviews { command } => remote::reviews(&cli.conn, command).await,
        Command::Audit { command } => audit::run(&cli.conn, command).await,
        Command::Keygen { out } => {
            let k = keyong_crypto::SigningKey::generate()?;
            let file = KeyFile { secret_hex: k.secret_hex(), public_key_hex: k.public_key_hex() };
            write_new(&out, serde_json::to_string_pretty(&file)?.as_bytes())?;
            println!("public key: {}", file.public_key_hex);
            Ok(())
        }
        Command::Sign { files, out } => {
            let body = files.signed()?;
            write_new(&out, serde_json::to_string(&body)?.as_bytes())?;
            println!("signed; POST {} to /v1/modules", out.display());
            Ok(())
        }
        Command::Walkthrough { wasm, manifest, source, policy, rho, next_feed } => {
            let token_file =
                cli.conn.token_file.clone().context("give the first authority credential with --token-file")?;
            let token = String::from_utf8(read(&token_file)?)?.trim().to_string();
            let manifest: Manifest =
                serde_json::from_slice(&read(&manifest)?).context("the manifest does not parse")?;
            let inputs = walkthrough::Inputs {
                base: cli.conn.server(&profile::Config::default()),
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

/// A reader that stopped reading (`keyong jobs list | head`) ends the
/// command quietly: printing to a closed pipe panics in Rust, and that
/// panic alone exits at once, with nothing on stderr.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    // The compile worker is a short-lived child of `serve`: no runtime, no
    // threads, no command line to build.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).is_some_and(|a| a == "compile-worker") {
        return keyong_sandbox::compile::worker_main(&argv[2..]);
    }
    // The hand-written commands, and one for every other operation of the
    // API (made from the OpenAPI document this binary serves).
    let ops = ops::Ops::load();
    let matches = ops.augment(Cli::command()).get_matches();
    let generated = matches.subcommand().filter(|(noun, sub)| ops.owns(noun, sub.subcommand_name()));
    let (cli, log_format) = match generated {
        Some((_, sub)) => {
            // Global flags are propagated to the verb's own matches.
            let leaf = sub.subcommand().map_or(sub, |(_, m)| m);
            (None, *leaf.get_one::<LogFormat>("log_format").expect("defaulted"))
        }
        None => {
            let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
            let format = cli.log_format;
            (Some(cli), format)
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYONG_LOG").unwrap_or_else(|_| "warn".into());
    // Spans log when they close, with their durations (`time.busy`, `time.idle`).
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    match log_format {
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
    let done = match (cli, generated) {
        (Some(cli), _) => runtime.block_on(run(cli)),
        (None, Some((noun, sub))) => {
            let leaf = sub.subcommand().map_or(sub, |(_, m)| m);
            match profile::Connection::from_arg_matches(leaf) {
                Ok(conn) => runtime.block_on(ops.run(&conn, noun, sub)),
                Err(e) => e.exit(),
            }
        }
        (None, None) => unreachable!("one of the two parsed"),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(remote::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests;
