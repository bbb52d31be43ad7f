//! Where `keyong serve` and `keyong config show` take their settings from.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

/// Where `serve` and `config show` take their settings from.
#[derive(clap::Args)]
pub(crate) struct SettingsArgs {
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
    /// PEM certificate chain to serve HTTPS with (overrides `server.tls_cert`; needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key, mode 0600 (overrides `server.tls_key`).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl SettingsArgs {
    /// Defaults → the file → the environment → these flags, validated.
    pub(crate) fn load(&self) -> anyhow::Result<keyong_server::Settings> {
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
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            (server.tls_cert, server.tls_key) = (Some(cert.clone()), Some(key.clone()));
        }
        Ok(settings)
    }
}
