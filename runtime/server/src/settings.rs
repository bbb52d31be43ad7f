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
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            data_root: PathBuf::from("keyong-data"),
            policies: PathBuf::from("policies"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
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
    /// A value is out of its range.
    #[error("{key} {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Settings {
    /// The defaults, overlaid by the settings file's text (when given), then
    /// by every `KEYONG__SECTION__KEY` pair in `env` (other names are
    /// ignored), then validated. Values in the environment are TOML
    /// (`8`, `true`, `"60s"`); a value that is not TOML is taken as a string.
    pub fn layered(file: Option<&str>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let mut merged = toml::Table::try_from(Settings::default()).expect("the defaults serialise");
        if let Some(text) = file {
            merge(&mut merged, text.parse::<toml::Table>().map_err(SettingsError::File)?);
        }
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else { continue };
            let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            if keys.len() != 2 || keys.iter().any(String::is_empty) {
                let reason = "use KEYONG__SECTION__KEY, e.g. KEYONG__SANDBOX__POOL_INSTANCES".to_string();
                return Err(SettingsError::Env { name, reason });
            }
            let value = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let mut section = toml::Table::new();
            section.insert(keys[1].clone(), value);
            let mut layer = toml::Table::new();
            layer.insert(keys[0].clone(), toml::Value::Table(section));
            merge(&mut merged, layer);
        }
        let settings: Settings = merged.try_into().map_err(SettingsError::Shape)?;
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
        if s.compile_memory_bytes < 64 << 20 {
            let reason = "must be at least 64 MiB: a compiler needs room".into();
            return Err(SettingsError::Invalid { key: "sandbox.compile_memory_bytes", reason });
        }
        positive("run.min_contributors", self.run.min_contributors)?;
        if self.run.view_memory_bytes < 16 << 20 {
            let reason = "must be at least 16 MiB".into();
            return Err(SettingsError::Invalid { key: "run.view_memory_bytes", reason });
        }
        let t = &self.schedule;
        positive("schedule.fuel_per_second", t.fuel_per_second)?;
        positive("schedule.sql_rows_per_second", t.sql_rows_per_second)?;
        if t.max_period.is_zero() {
            return Err(SettingsError::Invalid { key: "schedule.max_period", reason: "must be positive".into() });
        }
        let q = &self.quotas;
        positive("quotas.jobs_in_flight_per_operator", q.jobs_in_flight_per_operator)?;
        positive("quotas.jobs_in_flight_per_scenario", q.jobs_in_flight_per_scenario)?;
        Ok(())
    }

    /// The effective settings as TOML (what `keyong config show` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("settings serialise")
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
        assert!(refused(None, &[("KEYONG__SANDBOX__CALL_FUEL", "\"lots\"")]).contains("do not fit"));
        assert!(refused(None, &[("KEYONG__SCHEDULE__FUEL_PER_SECOND", "0")]).contains("fuel_per_second"));
    }

    #[test]
    fn the_printed_settings_read_back_as_they_were() {
        let s = Settings::layered(None, env(&[("KEYONG__RUN__MIN_CONTRIBUTORS", "12")])).unwrap();
        let again = Settings::layered(Some(&s.to_toml()), Vec::new()).unwrap();
        assert_eq!(again.to_toml(), s.to_toml());
        assert_eq!(again.run.min_contributors, 12);
    }
}
