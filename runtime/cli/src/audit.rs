//! `keyong audit`: export the audit log, have the server verify it, and
//! verify an export offline (全程可记录).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::profile::Connection;
use crate::{read, write_new};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Download the whole audit log and its signed checkpoints as JSON (authority or agency).
    Export {
        /// Where to write the export (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Ask the server to verify the audit chain against every stored
    /// checkpoint (GET /v1/audit/verify; authority or agency).
    Check,
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

pub(crate) async fn run(conn: &Connection, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export { out } => {
            let export = conn.client().await?.export_audit().await?;
            write_new(&out, serde_json::to_string(&export)?.as_bytes())?;
            println!(
                "wrote {} audit entries and {} checkpoints to {}",
                export.entries.len(),
                export.checkpoints.len(),
                out.display()
            );
            Ok(())
        }
        AuditCommand::Check => {
            let v = conn.client().await?.verify_audit().await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            match v.first_bad_seq {
                None if !conn.json => println!(
                    "audit log verifies on the server: {} entries, head {}, signed checkpoints vouch for {}",
                    v.entries, v.head_hash, v.vouched_entries
                ),
                None => {}
                Some(seq) => bail!("the audit log does not verify from entry {seq} on"),
            }
            Ok(())
        }
        AuditCommand::Verify { file, public_key, against } => {
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
    }
}
