//! How long a run can take, from public quantities only: the mode, the
//! module's declared fuel per call, the input's row count and the sandbox
//! limits. The server's release schedule gives every job a period no
//! shorter than this bound (see `docs/privacy.md`); the engine holds the
//! run itself to it as a backstop.

use std::time::Duration;

use keyong_model::{Manifest, Mode};
use keyong_sandbox::{Limits, Metering};

/// How the schedule turns declared limits into time. Each default is
/// documented on its field.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    /// Fuel the slowest machine keyong runs on burns per second (default
    /// 100,000,000, about a third of what this project's 2-core machine
    /// measures; `cargo xtask bench sandbox` prints the rate). A machine
    /// slower than this could let a run outlast its period.
    pub fuel_per_second: u64,
    /// Host work per call that fuel does not meter (instantiation, copying
    /// rows), in microseconds (default 1,000).
    pub per_call_us: u64,
    /// Rows per second the slowest machine's sql mode reads, filters and
    /// bounds (default 1,000,000; `cargo xtask bench privacy` measures about
    /// 5.5 million on this project's 2-core machine).
    pub sql_rows_per_second: u64,
    /// Added to every period for loading the view, the checks and queueing
    /// (default 60 s).
    #[serde(with = "humantime_serde")]
    pub allowance: Duration,
    /// Longest period a job may have (default 7 days): a module whose
    /// declared fuel over the input's rows would need more is refused at
    /// submission (declare a smaller `fuel_per_call`).
    #[serde(with = "humantime_serde")]
    pub max_period: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            fuel_per_second: 100_000_000,
            per_call_us: 1_000,
            sql_rows_per_second: 1_000_000,
            allowance: Duration::from_secs(60),
            max_period: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Schedule {
    /// The longest a run of `manifest` over an input of `rows` rows can take:
    /// in the sandbox, calls × (declared fuel ÷ the fuel rate, at most the
    /// call's wall-clock backstop, plus host work per call); in sql mode,
    /// the rows at the sql rate. Public.
    pub fn run_bound(&self, limits: &Limits, manifest: &Manifest, rows: u64) -> Duration {
        let (calls, limit, backstop_ms) = match manifest.mode {
            Mode::Aggregate => (rows, limits.call_fuel, limits.call_deadline_ms),
            Mode::Blocks => (u64::from(manifest.blocks), limits.call_fuel, limits.call_deadline_ms),
            Mode::Reviewed => (1, limits.transform_fuel, limits.job_deadline_ms),
            Mode::Sql => {
                let us = u128::from(rows) * 1_000_000 / u128::from(self.sql_rows_per_second.max(1));
                return Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX));
            }
        };
        let fuel = if manifest.fuel_per_call == 0 { limit } else { manifest.fuel_per_call.min(limit) };
        let fuel_us = u128::from(fuel) * 1_000_000 / u128::from(self.fuel_per_second.max(1));
        // Without fuel metering, only the wall-clock backstop bounds a call.
        let call_us = if limits.metering == Metering::Fuel {
            fuel_us.min(u128::from(backstop_ms) * 1000)
        } else {
            u128::from(backstop_ms) * 1000
        };
        let per_call_us = call_us + u128::from(self.per_call_us);
        let total_us = per_call_us.saturating_mul(u128::from(calls.max(1)));
        Duration::from_micros(u64::try_from(total_us).unwrap_or(u64::MAX))
    }

    /// The job's period: its run bound, the allowance (view, checks), and
    /// `queued` — the run bounds of the jobs already in flight shared over
    /// the job slots (booked figures, so public): the longest it can wait
    /// to start.
    pub fn period(&self, limits: &Limits, manifest: &Manifest, rows: u64, queued: Duration) -> Duration {
        self.run_bound(limits, manifest, rows).saturating_add(self.allowance).saturating_add(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_bound_follows_declared_fuel_and_rows_only() {
        let s = Schedule { fuel_per_second: 1_000_000, per_call_us: 0, ..Schedule::default() };
        let limits = Limits::default();
        let mut m: keyong_model::Manifest =
            serde_json::from_str(include_str!("../../../udf-sdk/examples/electricity/manifest.json")).unwrap();
        m.fuel_per_call = 2_000_000;
        assert_eq!(s.run_bound(&limits, &m, 10), Duration::from_secs(20));
        // Declared fuel above the platform's is the platform's; its
        // wall-clock backstop caps a call.
        m.fuel_per_call = u64::MAX;
        assert_eq!(s.run_bound(&limits, &m, 1), Duration::from_millis(limits.call_deadline_ms));
        m.mode = Mode::Sql;
        let s = Schedule { sql_rows_per_second: 500_000, ..s };
        assert_eq!(s.period(&limits, &m, 1_000_000, Duration::ZERO), s.allowance + Duration::from_secs(2));
        assert_eq!(
            s.period(&limits, &m, 1_000_000, Duration::from_secs(5)),
            s.allowance + Duration::from_secs(7),
            "work queued ahead lengthens the period"
        );
    }
}
