//! Where the command line finds its server and its token: flags, then the
//! environment (`KEYONG_SERVER`, `KEYONG_TOKEN`, `KEYONG_PROFILE`), then the
//! profile `keyong login` wrote to the config file (`KEYONG_CONFIG`, else
//! `$XDG_CONFIG_HOME/keyong/config.toml`, else `~/.config/keyong/config.toml`;
//! created 0600). A profile keeps the credential and the session token a
//! login gave for it, and the CA file an `https` server is checked against;
//! an expired session is renewed from the credential.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The server the command line talks to when nothing says otherwise.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// How to reach the server and as whom (global flags).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Connection {
    /// Base URL of the server (default: the profile's, else http://127.0.0.1:7878).
    #[arg(long, global = true, env = "KEYONG_SERVER")]
    pub(crate) server: Option<String>,
    /// The profile in the config file to use (and that `login` writes).
    #[arg(long, global = true, env = "KEYONG_PROFILE", default_value = "default")]
    pub(crate) profile: String,
    /// A file holding the token to use (overrides KEYONG_TOKEN and the profile).
    #[arg(long, global = true)]
    pub(crate) token_file: Option<PathBuf>,
    /// PEM file of the CA an https server's certificate must chain to
    /// (default: the profile's, else the system's roots).
    #[arg(long, global = true, env = "KEYONG_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Print JSON (the API's own shapes) instead of tables and sentences.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// One profile of the config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Profile {
    pub(crate) server: String,
    /// The long-lived credential (`POST /v1/login` exchanges it).
    pub(crate) credential: String,
    /// When it expires, if the server said (empty: unknown).
    #[serde(default)]
    pub(crate) credential_expires_at: String,
    #[serde(default)]
    pub(crate) session: String,
    #[serde(default)]
    pub(crate) session_expires_at: String,
    /// The CA file given at login (absolute; empty: the system's roots).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) ca_cert: String,
}

impl Profile {
    fn ca(&self) -> Option<&Path> {
        (!self.ca_cert.is_empty()).then(|| Path::new(&self.ca_cert))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Config {
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, Profile>,
}

/// The config file's path.
pub(crate) fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KEYONG_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").context("neither KEYONG_CONFIG nor HOME is set")?).join(".config"),
    };
    Ok(base.join("keyong/config.toml"))
}

impl Config {
    pub(crate) fn load() -> anyhow::Result<Config> {
        let path = config_path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("{} is not a keyong config file", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the file whole (through a temporary file), readable by its owner only.
    pub(crate) fn save(&self) -> anyhow::Result<PathBuf> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = config_path()?;
        let dir = path.parent().context("the config path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = path.with_extension("toml.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(toml::to_string(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// Whether an RFC 3339 time is still ahead (a minute's margin).
fn ahead(at: &str) -> bool {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(at, &format)
        .is_ok_and(|t| t > time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
}

impl Connection {
    /// The server's base URL.
    pub(crate) fn server(&self, config: &Config) -> String {
        self.server
            .clone()
            .or_else(|| config.profiles.get(&self.profile).map(|p| p.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.into())
    }

    /// The CA file the flags, the environment or the profile name.
    fn ca_cert(&self, config: &Config) -> Option<PathBuf> {
        self.ca_cert.clone().or_else(|| config.profiles.get(&self.profile)?.ca().map(Path::to_path_buf))
    }

    /// A client without a token, for the server and CA these settings name.
    pub(crate) fn anonymous(&self, config: &Config) -> anyhow::Result<keyong_client::Client> {
        connect(&self.server(config), self.ca_cert(config).as_deref())
    }

    /// A client with the token the flags, the environment or the profile give.
    pub(crate) async fn client(&self) -> anyhow::Result<keyong_client::Client> {
        let mut config = Config::load()?;
        let base = self.anonymous(&config)?;
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(base.as_user(token.trim()));
        }
        if let Ok(token) = std::env::var("KEYONG_TOKEN") {
            return Ok(base.as_user(token.trim()));
        }
        let Some(profile) = config.profiles.get_mut(&self.profile) else {
            return Err(NotSignedIn(format!(
                "not signed in: run `keyong login` (profile `{}`), or set KEYONG_TOKEN, or pass --token-file",
                self.profile
            ))
            .into());
        };
        if self.server.is_some()
            && self.server.as_deref().map(|s| s.trim_end_matches('/')) != Some(profile.server.trim_end_matches('/'))
        {
            bail!("profile `{}` is for {}, not {}", self.profile, profile.server, self.server(&Config::default()));
        }
        // A session the server ended early (a rotation, a logout elsewhere)
        // is renewed from the credential, once.
        if ahead(&profile.session_expires_at) && base.as_user(&profile.session).me().await.is_ok() {
            return Ok(base.as_user(&profile.session));
        }
        if !profile.credential_expires_at.is_empty() && !ahead(&profile.credential_expires_at) {
            return Err(NotSignedIn(format!(
                "the credential of profile `{}` has expired: ask for a new one and `keyong login` again",
                self.profile
            ))
            .into());
        }
        let session = base.login(&profile.credential).await?;
        (profile.session, profile.session_expires_at) = (session.token.clone(), session.expires_at);
        config.save()?;
        Ok(base.as_user(&session.token))
    }
}

/// A client for `server`, trusting only the CA in `ca` when one is given.
fn connect(server: &str, ca: Option<&Path>) -> anyhow::Result<keyong_client::Client> {
    let pem = match ca {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read the CA file {}", path.display()))?),
        None => None,
    };
    keyong_client::Client::trusting(server, pem.as_deref())
        .with_context(|| format!("cannot set up the connection to {server}"))
}

/// The command line holds no working token (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotSignedIn(String);

/// `keyong login`: exchanges the credential for a session and keeps both
/// in the profile (for the bootstrap credential, the new one it gives).
pub(crate) async fn login(conn: &Connection, credential: &str) -> anyhow::Result<String> {
    let mut config = Config::load()?;
    // The bootstrap credential works once: make sure its replacement can be kept.
    config.save()?;
    let server = conn.server(&config);
    // The CA given now (not one an earlier profile kept for another server).
    let ca_cert = match &conn.ca_cert {
        Some(path) => std::path::absolute(path)?.display().to_string(),
        None => String::new(),
    };
    let session = connect(&server, conn.ca_cert.as_deref())?.login(credential.trim()).await?;
    // A credential the server just issued comes with its expiry; for one
    // the user brought, the server alone knows it (empty: unknown).
    let (credential, credential_expires_at, replaced) = match &session.credential {
        Some(new) => (new.token.clone(), new.expires_at.clone(), true),
        None => (credential.trim().to_string(), String::new(), false),
    };
    let profile = Profile {
        server,
        credential,
        credential_expires_at,
        session: session.token,
        session_expires_at: session.expires_at.clone(),
        ca_cert,
    };
    config.profiles.insert(conn.profile.clone(), profile);
    let path = config.save()?;
    let mut said = format!(
        "signed in as {} ({}, {}); profile `{}` in {}",
        session.user.name,
        session.user.role,
        session.user.id,
        conn.profile,
        path.display()
    );
    if replaced {
        said.push_str("\nthe first credential works no more: the profile holds the authority's own, which the server showed this once");
    }
    Ok(said)
}

/// `keyong logout`: ends the profile's session and forgets its tokens.
pub(crate) async fn logout(conn: &Connection) -> anyhow::Result<String> {
    let mut config = Config::load()?;
    let Some(profile) = config.profiles.remove(&conn.profile) else {
        bail!("profile `{}` is not signed in", conn.profile);
    };
    if ahead(&profile.session_expires_at) {
        // Ended on the server too; a server that is gone cannot keep us here.
        if let Ok(client) = connect(&profile.server, conn.ca_cert.as_deref().or(profile.ca())) {
            let _ = client.as_user(&profile.session).logout().await;
        }
    }
    config.save()?;
    Ok(format!("signed out of profile `{}`", conn.profile))
}

/// `keyong rotate`: a new credential for the profile's user; the old one
/// and every session stop.
pub(crate) async fn rotate(conn: &Connection) -> anyhow::Result<String> {
    let mut config = Config::load()?;
    config.save()?;
    let Some(profile) = config.profiles.get_mut(&conn.profile) else {
        return Err(NotSignedIn(format!("profile `{}` is not signed in", conn.profile)).into());
    };
    let client = connect(&profile.server, conn.ca_cert.as_deref().or(profile.ca()))?;
    let new = client.as_user(&profile.credential).rotate_credential().await?;
    let session = client.login(&new.token).await?;
    *profile = Profile {
        server: profile.server.clone(),
        credential: new.token,
        credential_expires_at: new.expires_at.clone(),
        session: session.token,
        session_expires_at: session.expires_at,
        ca_cert: profile.ca_cert.clone(),
    };
    let path = config.save()?;
    Ok(format!(
        "rotated: the new credential (until {}) is in {}; the old one works no more",
        new.expires_at,
        path.display()
    ))
}
