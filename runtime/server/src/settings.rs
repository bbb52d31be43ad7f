//! The server's settings: one [`Settings`] struct, layered as compiled
//! defaults → a TOML file (`keyong serve --config keyong.toml`) →
//! `KEYONG__SECTION__KEY` environment variables, and validated once before
//! anything starts. Each default is documented beside its field, here and
//! in the section types ([`Limits`], [`RunSettings`], [`Schedule`],
//! [`Quotas`]); `keyong config show` prints the effective values.
//!
//! Nothing here is a secret: the platform keys live in `keys/` under the
//! data root, never in settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use keyong_engine::{RunSettings, Schedule};
use keyong_sandbox::Limits;

use crate::Quotas;

/// Prefix of the environment variables that override settings:
/// `KEYONG__SANDBOX__POOL_INSTANCES=8` sets `[sandbox] pool_instances`.
pub const ENV_PREFIX: &str = "KEYONG__";

/// Environment variables of earlier versions and what replaced them.
const RENAMED: [(&str, &str); 4] = [
    ("KEYONG_DATA_ROOT", "KEYONG__SERVER__DATA_ROOT"),
    ("KEYONG_POLICIES", "KEYONG__SERVER__POLICIES"),
    ("KEYONG_LISTEN", "KEYONG__SERVER__LISTEN"),
    ("KEYONG_MIN_CONTRIBUTORS", "KEYONG__RUN__MIN_CONTRIBUTORS"),
];

/// Everything a keyong server can be told.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    /// Sandbox limits (`[sandbox]`; see [`Limits`] for each default).
    pub sandbox: Limits,
    /// How runs are made (`[run]`).
    pub run: RunSettings,
    /// When operators see decisions (`[schedule]`).
    pub schedule: Schedule,
    /// Limits on the work one operator or scenario may ask for (`[quotas]`).
    pub quotas: Quotas,
    /// The plan's procedures (`[governance]`).
    pub governance: GovernanceSettings,
}

/// The plan's procedures (`[governance]`). Each default is documented on its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovernanceSettings {
    /// Shortest publicity period (公示期) of an admission's result (default
    /// 7 days). The plan sets no length; the tests and the demo set seconds.
    #[serde(with = "humantime_serde")]
    pub min_publicity: std::time::Duration,
}

impl Default for GovernanceSettings {
    fn default() -> Self {
        Self { min_publicity: std::time::Duration::from_secs(7 * 24 * 3600) }
    }
}

/// Where the server keeps its state and listens (`[server]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Root of everything the server stores: `keyong.db`, `keys/`,
    /// `landing/` (raw feeds), `datasets/` (desensitised Parquet) (default
    /// `keyong-data`).
    pub data_root: PathBuf,
    /// Directory of policy files (default `policies`).
    pub policies: PathBuf,
    /// Address to listen on (default `127.0.0.1:7878`; loopback only unless
    /// changed; port 0 picks a free port).
    pub listen: SocketAddr,
    /// How long a user's credential works from when it is issued (default
    /// 90 days); rotate it before then (`POST /v1/me/credential`).
    #[serde(with = "humantime_serde")]
    pub credential_ttl: std::time::Duration,
    /// How long a token from `POST /v1/login` works (default 1 hour).
    #[serde(with = "humantime_serde")]
    pub session_ttl: std::time::Duration,
    /// How long a connection may take to send a request's head (default
    /// 30 s): from when it opens, and again after each answer, so a silent
    /// or idle connection is closed then.
    #[serde(with = "humantime_serde")]
    pub header_timeout: std::time::Duration,
    /// A PEM certificate chain (leaf first): with `tls_key`, the server
    /// speaks HTTPS only (TLS 1.3 and 1.2; default none: plain HTTP, for
    /// loopback or behind a gateway that terminates TLS or TLCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key, readable by its owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            data_root: PathBuf::from("keyong-data"),
            policies: PathBuf::from("policies"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            credential_ttl: std::time::Duration::from_secs(90 * 24 * 3600),
            session_ttl: std::time::Duration::from_secs(3600),
            header_timeout: std::time::Duration::from_secs(30),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Settings that cannot be used. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file is not TOML.
    #[error("the settings file does not parse")]
    File(#[source] toml::de::Error),
    /// An environment variable names no setting or holds no usable value.
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
    /// A layer names an unknown setting or gives one a value of the wrong type.
    #[error("the settings do not fit")]
    Shape(#[source] toml::de::Error),
    /// The settings cannot be written as TOML (a path that is not UTF-8).
    #[error("the settings cannot be printed as TOML")]
    Print(#[source] toml::ser::Error),
    /// A value is out of its range.
    #[error("{key} {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Settings {
    /// The defaults, overlaid by the settings file's text (when given), then
    /// by every `KEYONG__SECTION__KEY` pair in `env` (other names are
    /// ignored), then validated. An environment value is taken as a string
    /// where the setting is one (a path, an address, a duration such as
    /// `60s`), and as TOML otherwise (`8`, `true`). The variables of earlier
    /// versions (`KEYONG_DATA_ROOT`, …) are refused, not ignored.
    pub fn layered(file: Option<&str>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let defaults = toml::Table::try_from(Settings::default()).expect("the defaults serialise");
        let mut merged = defaults.clone();
        if let Some(text) = file {
            merge(&mut merged, text.parse::<toml::Table>().map_err(SettingsError::File)?);
            merged.clone().try_into::<Settings>().map_err(SettingsError::Shape)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in env {
            if let Some(new) = RENAMED.iter().find(|(old, _)| *old == name).map(|(_, new)| new) {
                let reason = format!("is no longer read; set {new} (or use the settings file)");
                return Err(SettingsError::Env { name, reason });
            }
            let Some(path) = name.strip_prefix(ENV_PREFIX) else { continue };
            let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            if keys.len() != 2 || keys.iter().any(String::is_empty) {
                let reason = "use KEYONG__SECTION__KEY, e.g. KEYONG__SANDBOX__POOL_INSTANCES".to_string();
                return Err(SettingsError::Env { name, reason });
            }
            if !seen.insert(keys.clone()) {
                let reason = "sets the same setting as another variable (names differ only in case)".to_string();
                return Err(SettingsError::Env { name, reason });
            }
            let is_string = defaults.get(&keys[0]).and_then(|t| t.get(&keys[1])).is_some_and(toml::Value::is_str);
            let typed = || format!("v = {value}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"));
            let value = if is_string { None } else { typed() }.unwrap_or(toml::Value::String(value.clone()));
            let mut section = toml::Table::new();
            section.insert(keys[1].clone(), value);
            let mut layer = toml::Table::new();
            layer.insert(keys[0].clone(), toml::Value::Table(section));
            merge(&mut merged, layer);
            // Each variable is checked as it lands, so an error names it.
            if let Err(e) = merged.clone().try_into::<Settings>() {
                return Err(SettingsError::Env { name, reason: e.message().to_string() });
            }
        }
        let settings = merged.try_into::<Settings>().map_err(SettingsError::Shape)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses values the server cannot work with (a pool of 0 instances
    /// would hang every job; a fuel rate of 0 would make every period
    /// infinite).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let positive = |key: &'static str, value: u64| {
            if value == 0 { Err(SettingsError::Invalid { key, reason: "must be at least 1".into() }) } else { Ok(()) }
        };
        let s = &self.sandbox;
        positive("sandbox.pool_instances", u64::from(s.pool_instances))?;
        positive("sandbox.max_module_bytes", s.max_module_bytes as u64)?;
        positive("sandbox.memory_bytes", s.memory_bytes as u64)?;
        positive("sandbox.wasm_stack_bytes", s.wasm_stack_bytes as u64)?;
        positive("sandbox.call_fuel", s.call_fuel)?;
        positive("sandbox.transform_fuel", s.transform_fuel)?;
        positive("sandbox.call_deadline_ms", s.call_deadline_ms)?;
        positive("sandbox.job_deadline_ms", s.job_deadline_ms)?;
        positive("sandbox.compile_timeout_ms", s.compile_timeout_ms)?;
        positive("sandbox.compiled_modules", s.compiled_modules as u64)?;
        positive("sandbox.table_elements", s.table_elements as u64)?;
        positive("sandbox.hostcall_bytes", s.hostcall_bytes as u64)?;
        positive("sandbox.max_functions", u64::from(s.max_functions))?;
        positive("sandbox.max_locals_per_function", u64::from(s.max_locals_per_function))?;
        positive("sandbox.max_function_bytes", u64::from(s.max_function_bytes))?;
        if s.compile_memory_bytes < 64 << 20 {
            let reason = "must be at least 64 MiB: a compiler needs room".into();
            return Err(SettingsError::Invalid { key: "sandbox.compile_memory_bytes", reason });
        }
        positive("run.min_contributors", self.run.min_contributors)?;
        if self.run.view_memory_bytes < 16 << 20 {
            let reason = "must be at least 16 MiB".into();
            return Err(SettingsError::Invalid { key: "run.view_memory_bytes", reason });
        }
        let (credential, session) = (self.server.credential_ttl, self.server.session_ttl);
        if session < std::time::Duration::from_secs(60) || session > credential {
            let reason = "must be at least 1 minute and at most server.credential_ttl".into();
            return Err(SettingsError::Invalid { key: "server.session_ttl", reason });
        }
        if credential > std::time::Duration::from_secs(3 * 366 * 24 * 3600) {
            let reason = "must be at most 3 years".into();
            return Err(SettingsError::Invalid { key: "server.credential_ttl", reason });
        }
        let header = self.server.header_timeout;
        if header < std::time::Duration::from_secs(1) || header > std::time::Duration::from_secs(600) {
            let reason = "must be between 1 second and 10 minutes".into();
            return Err(SettingsError::Invalid { key: "server.header_timeout", reason });
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            let reason = "and server.tls_key go together: set both, or neither".into();
            return Err(SettingsError::Invalid { key: "server.tls_cert", reason });
        }
        let t = &self.schedule;
        positive("schedule.fuel_per_second", t.fuel_per_second)?;
        positive("schedule.sql_rows_per_second", t.sql_rows_per_second)?;
        if t.max_period <= t.allowance {
            let reason =
                format!("must be longer than schedule.allowance ({:?}): no job could be scheduled", t.allowance);
            return Err(SettingsError::Invalid { key: "schedule.max_period", reason });
        }
        let q = &self.quotas;
        positive("quotas.jobs_in_flight_per_operator", q.jobs_in_flight_per_operator)?;
        positive("quotas.jobs_in_flight_per_scenario", q.jobs_in_flight_per_scenario)?;
        positive("quotas.run_seconds_per_day_per_operator", q.run_seconds_per_day_per_operator)?;
        positive("quotas.run_seconds_per_day_per_scenario", q.run_seconds_per_day_per_scenario)?;
        positive("quotas.compile_seconds_per_day_per_operator", q.compile_seconds_per_day_per_operator)?;
        Ok(())
    }

    /// The effective settings as TOML (what `keyong config show` prints);
    /// fails only for a path that is not UTF-8, which TOML cannot hold.
    pub fn to_toml(&self) -> Result<String, SettingsError> {
        toml::to_string(self).map_err(SettingsError::Print)
    }
}

/// Overlays `layer` on `base`, table by table.
fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let file = "[sandbox]\npool_instances = 4\ncall_fuel = 1000\n[schedule]\nallowance = \"5s\"\n";
        let s =
            Settings::layered(Some(file), env(&[("KEYONG__SANDBOX__POOL_INSTANCES", "8"), ("PATH", "/bin")])).unwrap();
        assert_eq!(s.sandbox.pool_instances, 8, "the environment overrides the file");
        assert_eq!(s.sandbox.call_fuel, 1000, "the file overrides the default");
        assert_eq!(s.schedule.allowance, std::time::Duration::from_secs(5));
        assert_eq!(s.sandbox.memory_bytes, Limits::default().memory_bytes, "the rest stays default");
        let s = Settings::layered(None, env(&[("KEYONG__SERVER__LISTEN", "127.0.0.1:0")])).unwrap();
        assert_eq!(s.server.listen.port(), 0, "a value that is not TOML is a string");
        let s = Settings::layered(None, env(&[("KEYONG__SERVER__DATA_ROOT", "2026")])).unwrap();
        assert_eq!(
            s.server.data_root,
            std::path::Path::new("2026"),
            "a path stays a string even when it reads as TOML"
        );
    }

    #[test]
    fn unusable_settings_are_refused_by_name() {
        let refused =
            |file: Option<&str>, pairs: &[(&str, &str)]| Settings::layered(file, env(pairs)).unwrap_err().to_string();
        assert_eq!(
            refused(None, &[("KEYONG__SANDBOX__POOL_INSTANCES", "0")]),
            "sandbox.pool_instances must be at least 1"
        );
        assert!(refused(Some("[sandbox]\npool_size = 3\n"), &[]).contains("do not fit"));
        assert!(refused(Some("[sandbox"), &[]).contains("does not parse"));
        assert!(refused(None, &[("KEYONG__POOL", "3")]).contains("KEYONG__SECTION__KEY"));
        let wrong_type = refused(None, &[("KEYONG__SANDBOX__CALL_FUEL", "\"lots\"")]);
        assert!(wrong_type.starts_with("environment variable KEYONG__SANDBOX__CALL_FUEL"), "{wrong_type}");
        assert!(refused(None, &[("KEYONG_DATA_ROOT", "/srv")]).contains("KEYONG__SERVER__DATA_ROOT"));
        assert!(
            refused(None, &[("KEYONG__RUN__MIN_CONTRIBUTORS", "5"), ("KEYONG__run__min_contributors", "9")])
                .contains("only in case")
        );
        assert!(refused(None, &[("KEYONG__SCHEDULE__MAX_PERIOD", "30s")]).contains("longer than schedule.allowance"));
        assert!(refused(None, &[("KEYONG__SCHEDULE__FUEL_PER_SECOND", "0")]).contains("fuel_per_second"));
    }

    #[test]
    fn the_printed_settings_read_back_as_they_were() {
        let s = Settings::layered(None, env(&[("KEYONG__RUN__MIN_CONTRIBUTORS", "12")])).unwrap();
        let again = Settings::layered(Some(&s.to_toml().unwrap()), Vec::new()).unwrap();
        assert_eq!(again.to_toml().unwrap(), s.to_toml().unwrap());
        assert_eq!(again.run.min_contributors, 12);
    }
}
