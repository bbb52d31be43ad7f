//! Bearer-token authentication and role checks.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use keyong_model::Role;
use keyong_store::{Bearer, UserRow};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated user making a request, and how: with a credential
/// or a session token (its hash, for logout).
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) UserRow, pub(crate) Bearer, pub(crate) String);

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

/// The bearer token in `headers`, if there is one.
pub(crate) fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    Some(header.strip_prefix("Bearer ")?.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let hash = state.keys.token_hash(token);
        let now = keyong_store::timestamp(crate::schedule::now());
        let (user, kind) = state.store.user_by_token(&hash, &now).await?.ok_or(ApiError::Unauthenticated)?;
        // Two-person rules bind people, not accounts: a reviewer account does
        // nothing until an authority user other than its creator confirms it
        // (and confirmation replaces the token its creator was given).
        if user.role == Role::Reviewer && user.confirmed_by.is_none() {
            return Err(ApiError::Forbidden(
                "this reviewer account takes effect when the authority confirms it (POST /v1/users/{id}/confirm)"
                    .into(),
            ));
        }
        tracing::Span::current().record("role", user.role.as_str());
        Ok(Caller(user, kind, hash))
    }
}

impl Caller {
    /// Fails unless the caller has one of `roles`.
    pub(crate) fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "this action needs the role {}; you are {}",
                names.join(" or "),
                self.0.role
            )))
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.0.id
    }

    pub(crate) fn org(&self) -> &str {
        &self.0.org_id
    }

    pub(crate) fn role(&self) -> Role {
        self.0.role
    }
}
