//! Differential privacy for keyong.
//!
//! The host, not the module, bounds every privacy unit's contribution
//! ([`Reducer`]); OpenDP's mechanisms add the noise ([`Reducer::release`]);
//! budgets are zCDP ρ ([`rho_to_epsilon`] converts for display).
//!
//! Architecture invariant: no I/O. The only randomness is OpenDP's CSPRNG
//! (OpenSSL `RAND_priv_bytes`, the `use-openssl` feature).

pub mod audit;
mod blocks;
mod fixed;
mod grouped;
#[cfg(test)]
mod neighbours;
mod noise;
mod reducer;

pub use blocks::{BlockAggregator, FastHasher, FastMap, block_of, unit_digest, unit_seed};
pub use fixed::{FixedBounds, SUM_RESOLUTION, sensitivities, to_fixed};
pub use grouped::{AggKind, Aggregate, Bounded, Grouped, GroupedSpec, QUANTILE_CANDIDATES, SELECTION_DELTA};
pub use noise::{Calibrated, Loss, Quantile, Selection, linspace};
pub use reducer::{Measured, Planned, Reducer, Release};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something no mechanism can provide (e.g. ρ ≤ 0).
    #[error("invalid privacy parameters: {0}")]
    InvalidParameters(String),
    /// A mechanism would be unsound (a zero noise scale) or could not be
    /// calibrated.
    #[error("differential privacy mechanism failed: {0}")]
    Mechanism(String),
    /// OpenDP itself refused or failed; its error (variant, message,
    /// backtrace) is the cause.
    #[error("OpenDP failed: {}", .0.message.as_deref().unwrap_or("no message"))]
    OpenDp(#[source] Box<opendp::error::Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<opendp::error::Error> for Error {
    fn from(e: opendp::error::Error) -> Self {
        Error::OpenDp(Box::new(e))
    }
}

/// The δ at which budgets are displayed as (ε, δ).
pub const DISPLAY_DELTA: f64 = 1e-6;

/// ε such that ρ-zCDP implies (ε, δ)-DP: ε = ρ + 2·sqrt(ρ·ln(1/δ))
/// (Bun & Steinke 2016, Prop. 1.3).
pub fn rho_to_epsilon(rho: f64, delta: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_conversion() {
        assert_eq!(rho_to_epsilon(0.0, 1e-6), 0.0);
        let e = rho_to_epsilon(0.5, 1e-6);
        assert!((e - (0.5 + 2.0 * (0.5f64 * 1e6f64.ln()).sqrt())).abs() < 1e-12);
        assert!(rho_to_epsilon(1.0, 1e-6) > rho_to_epsilon(0.5, 1e-6));
    }
}
