//! The commands that talk to a server, noun first (`keyong jobs list`),
//! one per step of the role guides. Each prints a table or a sentence, or
//! with `--json` the API's own JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;

use keyong_client::Client;
use keyong_model::api::{DecisionRequest, JobView, ScenarioRequest, SubmitJob};
use keyong_model::{Decision, Loss};

use crate::profile::Connection;

#[derive(Subcommand)]
pub(crate) enum Scenarios {
    /// Scenarios you may see (operators: your organisation's).
    List {
        #[arg(long)]
        status: Option<String>,
    },
    /// One scenario: its purpose, status and budget.
    Show { id: String },
    /// Apply for a scenario (一场景一审核) with the request in a JSON file.
    Apply {
        #[arg(long)]
        file: PathBuf,
    },
    /// The scenario's budget, its datasets' budgets and every charge.
    Budget { id: String },
}

#[derive(Subcommand)]
pub(crate) enum Modules {
    /// Modules as you may see them (operators: your organisation's).
    List {
        #[arg(long)]
        scenario: Option<String>,
    },
    /// One module: its manifest, mode and scenario.
    Show { id: String },
    /// Sign a module with your SM2 key and upload it, in one step.
    Submit {
        #[command(flatten)]
        files: ModuleFiles,
    },
}

/// A module to sign: the key, the component and its manifest.
#[derive(clap::Args)]
pub(crate) struct ModuleFiles {
    /// Key file written by `keyong keygen`.
    #[arg(long)]
    key: PathBuf,
    /// The component (.wasm) built for wasm32-wasip2 (none for an sql-mode manifest).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// The manifest JSON (its `scenario` names the approved scenario).
    #[arg(long)]
    manifest: PathBuf,
}

impl ModuleFiles {
    pub(crate) fn signed(&self) -> anyhow::Result<keyong_model::api::SubmitModule> {
        signed_module(&self.key, self.wasm.as_deref(), &self.manifest)
    }
}

/// A job's budget: zCDP ρ or pure ε.
#[derive(clap::Args)]
pub(crate) struct BudgetArgs {
    #[arg(long, conflicts_with = "epsilon", required_unless_present = "epsilon")]
    rho: Option<f64>,
    #[arg(long)]
    epsilon: Option<f64>,
}

impl BudgetArgs {
    fn loss(&self) -> Loss {
        match (self.rho, self.epsilon) {
            (Some(rho), _) => Loss::Zcdp { rho },
            (None, Some(epsilon)) => Loss::Pure { epsilon },
            (None, None) => unreachable!("clap requires one"),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Jobs {
    /// Jobs as you may see them, newest first.
    List {
        #[arg(long)]
        scenario: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// One job as you may see it.
    Show { id: String },
    /// Submit a job: run a module with a zCDP ρ (or a pure ε) budget.
    Submit {
        #[arg(long)]
        module: String,
        #[command(flatten)]
        budget: BudgetArgs,
    },
    /// What a job would cost and the noise each output would get; nothing is charged.
    Preview {
        #[arg(long)]
        module: String,
        #[command(flatten)]
        budget: BudgetArgs,
    },
    /// Wait until the job is decided (as you may see it), showing its status on stderr.
    Wait {
        id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Withdraw a job before its release (the budget stays spent).
    Withdraw { id: String },
    /// Release an approved job and write its bundle into a new directory:
    /// result.parquet, result.csv, report.json (what you may see of the
    /// checks), manifest.json, receipt.json and receipt.sig (SM2, verified).
    Release {
        id: String,
        /// Directory to create for the bundle (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum Reviews {
    /// Jobs waiting for your vote (the authority: for its sign-off), oldest first.
    Queue,
    /// What a reviewer sees of a job: both tables, the findings, the votes.
    Show { id: String },
    /// Vote on a job's output.
    Vote {
        id: String,
        /// approve, request_changes or reject.
        #[arg(long)]
        decision: String,
        /// Seen by the other reviewers (after they vote), the agency and the authority.
        #[arg(long, default_value = "")]
        comment: String,
        /// Shown to the operator once the job is decided.
        #[arg(long, default_value = "")]
        public_comment: String,
    },
}

/// Prints `value` as JSON, or as `text` says.
fn emit<T: Serialize>(conn: &Connection, value: &T, text: impl FnOnce(&T) -> String) -> anyhow::Result<()> {
    if conn.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        let t = text(value);
        if !t.is_empty() {
            println!("{}", t.trim_end());
        }
    }
    Ok(())
}

/// Columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let set: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))).collect();
    if set.is_empty() { String::new() } else { format!("?{}", set.join("&")) }
}

fn job_rows(jobs: &[JobView]) -> String {
    let rows = jobs
        .iter()
        .map(|j| {
            vec![j.id.clone(), j.status.to_string(), format!("{:.4}", j.rho), j.scenario.clone(), j.created_at.clone()]
        })
        .collect();
    table(&["id", "status", "rho", "scenario", "created"], rows)
}

pub(crate) async fn scenarios(conn: &Connection, command: Scenarios) -> anyhow::Result<()> {
    let client = conn.client().await?;
    match command {
        Scenarios::List { status } => {
            let list: Vec<keyong_model::api::Scenario> =
                client.all(&format!("/v1/scenarios{}", query(&[("status", &status)]))).await?;
            emit(conn, &list, |l| {
                let rows = l
                    .iter()
                    .map(|s| vec![s.id.clone(), s.status.to_string(), s.title.clone(), s.valid_until.clone()])
                    .collect();
                table(&["id", "status", "title", "valid until"], rows)
            })
        }
        Scenarios::Show { id } => emit(conn, &client.scenario(&id).await?, |s| {
            format!(
                "{} ({})\nstatus: {}\npurpose: {}\nρ {} (spent {}), δ {:e}",
                s.title, s.id, s.status, s.purpose, s.budget.rho_total, s.budget.rho_spent, s.budget.delta_total
            )
        }),
        Scenarios::Apply { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let req: ScenarioRequest =
                serde_json::from_str(&text).with_context(|| format!("{} is not a scenario request", file.display()))?;
            emit(conn, &client.apply_scenario(&req).await?, |s| format!("applied: scenario {} is {}", s.id, s.status))
        }
        Scenarios::Budget { id } => emit(conn, &client.scenario_budget(&id).await?, |b| {
            format!(
                "ρ {:.6} of {:.6} left; δ {:e} of {:e} left",
                b.budget.rho_total - b.budget.rho_spent,
                b.budget.rho_total,
                b.budget.delta_total - b.budget.delta_spent,
                b.budget.delta_total
            )
        }),
    }
}

pub(crate) async fn modules(conn: &Connection, command: Modules) -> anyhow::Result<()> {
    let client = conn.client().await?;
    match command {
        Modules::List { scenario } => {
            let list: Vec<keyong_model::api::ModuleInfo> =
                client.all(&format!("/v1/modules{}", query(&[("scenario", &scenario)]))).await?;
            emit(conn, &list, |l| {
                let rows = l
                    .iter()
                    .map(|m| {
                        vec![m.id.clone(), m.name.clone(), format!("{:?}", m.mode).to_lowercase(), m.scenario.clone()]
                    })
                    .collect();
                table(&["id", "name", "mode", "scenario"], rows)
            })
        }
        Modules::Show { id } => emit(conn, &client.module(&id).await?, |m| {
            format!("{} ({}): {} bytes, scenario {}", m.name, m.id, m.size_bytes, m.scenario)
        }),
        Modules::Submit { files } => {
            let body = files.signed()?;
            emit(conn, &client.submit_module(&body).await?, |m| {
                format!("submitted module {} ({}, {} bytes)", m.id, m.name, m.size_bytes)
            })
        }
    }
}

pub(crate) async fn jobs(conn: &Connection, command: Jobs) -> anyhow::Result<()> {
    let client = conn.client().await?;
    match command {
        Jobs::List { scenario, status } => {
            let list: Vec<JobView> =
                client.all(&format!("/v1/jobs{}", query(&[("scenario", &scenario), ("status", &status)]))).await?;
            emit(conn, &list, |l| job_rows(l))
        }
        Jobs::Show { id } => emit(conn, &client.job(&id).await?, |j| job_rows(std::slice::from_ref(j))),
        Jobs::Submit { module, budget } => {
            let job = client.submit_job(&SubmitJob { module_id: module, budget: budget.loss() }).await?;
            emit(conn, &job, |j| {
                format!("submitted job {} ({}); `keyong jobs wait {}` follows it", j.id, j.status, j.id)
            })
        }
        Jobs::Preview { module, budget } => {
            let preview = client.preview(&SubmitJob { module_id: module, budget: budget.loss() }).await?;
            emit(conn, &preview, |p| serde_json::to_string_pretty(p).unwrap_or_default())
        }
        Jobs::Wait { id, timeout } => {
            let job = wait(&client, &id, Duration::from_secs(timeout)).await?;
            emit(conn, &job, |j| format!("job {} is {}", j.id, j.status))
        }
        Jobs::Withdraw { id } => emit(conn, &client.withdraw(&id).await?, |j| format!("job {} is {}", j.id, j.status)),
        Jobs::Release { id, out } => release(conn, &client, &id, &out).await,
    }
}

async fn release(conn: &Connection, client: &Client, id: &str, out: &std::path::Path) -> anyhow::Result<()> {
    use base64::Engine as _;
    let bundle = client.release(id).await?;
    keyong_client::verify_bundle(&bundle).context("the bundle's receipt does not verify")?;
    let parquet = base64::engine::general_purpose::STANDARD
        .decode(&bundle.parquet_base64)
        .context("the bundle's Parquet is not base64")?;
    std::fs::create_dir(out).with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
    let write = crate::write_new;
    write(&out.join("result.parquet"), &parquet)?;
    write(&out.join("result.csv"), bundle.csv.as_bytes())?;
    // Exactly the bytes the receipt's `result_hash` covers.
    write(&out.join("result.json"), &serde_json::to_vec(&bundle.table)?)?;
    write(&out.join("report.json"), serde_json::to_string_pretty(&bundle.report)?.as_bytes())?;
    write(&out.join("receipt.json"), serde_json::to_string(&bundle.receipt)?.as_bytes())?;
    write(&out.join("manifest.json"), serde_json::to_string(&bundle.manifest)?.as_bytes())?;
    write(
        &out.join("receipt.sig"),
        format!("{}\n{}\n", bundle.signature_hex, bundle.platform_public_key_hex).as_bytes(),
    )?;
    emit(conn, &bundle.receipt, |r| {
        format!(
            "released job {id}: {} rows ({} cells suppressed); receipt {} verifies; bundle in {}",
            bundle.table.rows.len(),
            bundle.report.suppressed_cells,
            r.id,
            out.display()
        )
    })
}

/// `keyong verify DIR`: a release bundle checked offline, file by file,
/// against the platform key (given, or fetched once from the server's
/// public endpoint — never the copy inside the bundle).
pub(crate) async fn verify(conn: &Connection, dir: &std::path::Path, public_key: Option<String>) -> anyhow::Result<()> {
    let file = |name: &str| crate::read(&dir.join(name));
    let receipt_bytes = file("receipt.json")?;
    let receipt: keyong_model::api::Receipt =
        serde_json::from_slice(&receipt_bytes).context("receipt.json is not a keyong receipt")?;
    let sig = String::from_utf8(file("receipt.sig")?).context("receipt.sig is not text")?;
    let (signature, bundled_key) =
        sig.trim().split_once('\n').context("receipt.sig holds the signature, then the key")?;
    let key = match public_key {
        Some(k) => k,
        None => {
            let config = crate::profile::Config::load()?;
            let server = conn.server(&config);
            conn.anonymous(&config)?
                .platform_key()
                .await
                .with_context(|| format!("cannot fetch the platform key from {server}"))?
                .public_key_hex
        }
    };
    let mut failed = Vec::new();
    let mut check = |what: &str, ok: bool| {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failed.push(what.to_string());
        }
    };
    check("the bundle names the platform key", bundled_key.trim() == key.trim());
    let message = keyong_model::api::receipt_signing_message(
        std::str::from_utf8(&receipt_bytes).context("receipt.json is not UTF-8")?,
    );
    check(
        "receipt.sig is the platform's SM2 signature of receipt.json",
        keyong_crypto::verify(&key, &message, signature).is_ok(),
    );
    let result = file("result.json")?;
    check("result.json is the table the receipt names (SM3)", keyong_crypto::sm3_hex(&result) == receipt.result_hash);
    check(
        "manifest.json is the manifest the receipt names (SM3)",
        keyong_crypto::sm3_hex(&file("manifest.json")?) == receipt.manifest_sm3,
    );
    let table: keyong_model::api::ResultTable =
        serde_json::from_slice(&result).context("result.json is not a result table")?;
    check("result.csv is result.json as CSV", file("result.csv")? == keyong_data::table_to_csv(&table).into_bytes());
    check(
        "result.parquet is result.json as Parquet",
        file("result.parquet")? == keyong_data::table_to_parquet(&table)?,
    );
    anyhow::ensure!(failed.is_empty(), "the bundle does not verify: {}", failed.join("; "));
    println!("bundle verifies: job {}, receipt {}, released {}", receipt.job_id, receipt.id, receipt.released_at);
    Ok(())
}

/// Polls a job until a decision is visible, writing each status it passes to stderr.
async fn wait(client: &Client, id: &str, timeout: Duration) -> anyhow::Result<JobView> {
    use keyong_model::JobStatus;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        let job = client.job(id).await?;
        if last != Some(job.status) {
            eprintln!("{} job {id}: {}", time::OffsetDateTime::now_utc().time(), job.status);
            last = Some(job.status);
        }
        let settled = !matches!(
            job.status,
            JobStatus::Pending
                | JobStatus::Queued
                | JobStatus::Running
                | JobStatus::UnderReview
                | JobStatus::AwaitingSignoff
        );
        if settled {
            return Ok(job);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "job {id} is still {} after {timeout:?}", job.status);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub(crate) async fn reviews(conn: &Connection, command: Reviews) -> anyhow::Result<()> {
    let client = conn.client().await?;
    match command {
        Reviews::Queue => emit(conn, &client.review_queue().await?, |l| job_rows(l)),
        Reviews::Show { id } => emit(conn, &client.review(&id).await?, |r| {
            let findings = r.report.findings.iter().map(|f| {
                let cell = f.cell.as_ref().map_or("the whole output".to_string(), |c| format!("{c:?}"));
                vec![f.rule.clone(), format!("{:?}", f.outcome).to_lowercase(), cell, f.reason.clone()]
            });
            format!(
                "job {} ({}), verdict {:?}\n\nas it would be released:\n{}\nbefore protection:\n{}\nfindings:\n{}",
                r.job.id,
                r.manifest.name,
                r.report.verdict,
                keyong_client::walkthrough::render_table(&r.protected),
                keyong_client::walkthrough::render_table(&r.output),
                table(&["rule", "outcome", "cell", "reason"], findings.collect())
            )
        }),
        Reviews::Vote { id, decision, comment, public_comment } => {
            let decision: Decision =
                decision.parse().map_err(|e| anyhow::anyhow!("{e}: use approve, request_changes or reject"))?;
            let job = client.vote(&id, &DecisionRequest { decision, comment, public_comment }).await?;
            emit(conn, &job, |j| format!("voted; job {} is {}", j.id, j.status))
        }
    }
}

/// The signed body of `POST /v1/modules`: the manifest must name its
/// scenario and the file must be a component (wasm32-wasip2), not a core module.
fn signed_module(
    key: &std::path::Path,
    wasm: Option<&std::path::Path>,
    manifest: &std::path::Path,
) -> anyhow::Result<keyong_model::api::SubmitModule> {
    let key: crate::KeyFile =
        serde_json::from_slice(&crate::read(key)?).context("the key file is not keyong keygen JSON")?;
    let key = keyong_crypto::SigningKey::from_hex(&key.secret_hex)?;
    let manifest_path = manifest;
    let manifest: keyong_model::Manifest =
        serde_json::from_slice(&crate::read(manifest)?).context("the manifest does not parse")?;
    manifest.validate()?;
    if manifest.scenario.trim().is_empty() {
        bail!("{} names no scenario: set `scenario` to the approved scenario's id", manifest_path.display());
    }
    let bytes = match (wasm, manifest.mode) {
        (None, keyong_model::Mode::Sql) => Vec::new(),
        (Some(_), keyong_model::Mode::Sql) => bail!("an sql-mode manifest has no code: leave out --wasm"),
        (None, mode) => bail!("a {} module needs its component: --wasm MODULE.wasm", mode.as_str()),
        (Some(wasm), _) => {
            let bytes = crate::read(wasm)?;
            // A component's preamble: `\0asm`, then version 0x0d and layer 1.
            if bytes.get(..8) != Some(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00][..]) {
                bail!("{} is not a WebAssembly component: build it for wasm32-wasip2", wasm.display());
            }
            bytes
        }
    };
    Ok(keyong_client::sign_module(&key, &bytes, &manifest)?)
}

pub(crate) fn method(name: &str) -> anyhow::Result<keyong_client::Method> {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Ok(keyong_client::Method::GET),
        "POST" => Ok(keyong_client::Method::POST),
        "PUT" => Ok(keyong_client::Method::PUT),
        other => bail!("the API has no {other} operations: use GET, POST or PUT"),
    }
}

/// The exit status of a failure: 2 usage (clap), 3 authentication, 4 not
/// found, 5 conflict or wrong state, 6 refused by policy, 7 the server or
/// the network failed, 1 anything else (a bad input, a local file).
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    use keyong_model::ErrorCode as C;
    if e.chain().any(|c| c.is::<crate::profile::NotSignedIn>()) {
        return 3;
    }
    let Some(client) = e.chain().find_map(|c| c.downcast_ref::<keyong_client::Error>()) else { return 1 };
    match client {
        keyong_client::Error::Transport(_) => 7,
        keyong_client::Error::Api { status, error } => match error.code {
            C::Unauthenticated => 3,
            C::NotFound => 4,
            C::Conflict | C::InvalidState | C::IdempotencyKeyReused => 5,
            C::Forbidden | C::PolicyDenied | C::BudgetExhausted | C::QuotaExceeded | C::IdentifierDetected => 6,
            C::Internal | C::ResourceExhausted => 7,
            _ if *status >= 500 => 7,
            _ => 1,
        },
        _ => 1,
    }
}
