//! The stable wire error codes, and how an error and its causes are written.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes returned by the API.
///
/// The string form (`snake_case`) is part of the public contract: clients may
/// match on it. Messages that accompany a code never contain row-level data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or a parameter is malformed.
    BadRequest,
    /// No valid bearer token was presented.
    Unauthenticated,
    /// The caller's role or organisation may not perform this action.
    Forbidden,
    /// The named object does not exist (or is not visible to the caller).
    NotFound,
    /// The object is not in a state that allows this action.
    InvalidState,
    /// The module's SM2 signature does not verify against the operator's key.
    BadSignature,
    /// The WASM module failed validation (not a component, bad imports, too big).
    InvalidModule,
    /// The manifest is inconsistent with itself, the scenario or the dataset.
    InvalidManifest,
    /// A policy forbids the action (grade gate, scope, agreement expired).
    PolicyDenied,
    /// The privacy budget cannot cover the request.
    BudgetExhausted,
    /// Desensitisation left a direct identifier in the output.
    IdentifierDetected,
    /// The object already exists.
    Conflict,
    /// A server-side resource limit was hit.
    ResourceExhausted,
    /// A per-operator or per-scenario quota (jobs in flight, run or compile
    /// time per day, reviewed jobs) would be exceeded.
    QuotaExceeded,
    /// No endpoint answers this method at this path.
    MethodNotAllowed,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The request body is not `application/json`.
    UnsupportedMediaType,
    /// An `Idempotency-Key` was sent again with another request.
    IdempotencyKeyReused,
    /// A bug or an unexpected server-side failure.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidState => "invalid_state",
            Self::BadSignature => "bad_signature",
            Self::InvalidModule => "invalid_module",
            Self::InvalidManifest => "invalid_manifest",
            Self::PolicyDenied => "policy_denied",
            Self::BudgetExhausted => "budget_exhausted",
            Self::IdentifierDetected => "identifier_detected",
            Self::Conflict => "conflict",
            Self::ResourceExhausted => "resource_exhausted",
            Self::QuotaExceeded => "quota_exceeded",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_as_str() {
        for code in [ErrorCode::BadRequest, ErrorCode::BudgetExhausted, ErrorCode::PayloadTooLarge, ErrorCode::Internal]
        {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}

/// An error and its causes, outermost first, joined by `: `: how a failure
/// is written to the log and the audit (the wire gets the safe message).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod chain_tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_written() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(super::chain(&e), "outer: inner");
    }
}
