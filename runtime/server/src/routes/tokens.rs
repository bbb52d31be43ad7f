//! Credentials and sessions: a user's long-lived credential (issued with
//! the account, rotated by its user, reissued or revoked by the authority
//! or the agency), and the short-lived token a login exchanges it for. The
//! first authority credential works once, at login, which replaces it.

use axum::extract::State;

use keyong_model::Role;
use keyong_model::api::{CreatedUser, Login, Session};
use keyong_store::{Bearer, UserRow};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path};

/// A new credential or session token: (token, its hash, when it expires).
fn issue(st: &AppState, ttl: std::time::Duration) -> ApiResult<(String, String, String)> {
    let token = keyong_crypto::random_hex32()?;
    let hash = st.keys.token_hash(&token);
    let expires = crate::schedule::now() + ttl;
    Ok((token, hash, keyong_store::timestamp(expires)))
}

/// A new credential for `user` (the old one and every session stop), in
/// `tx`; with `replacing`, only if the user's credential is still that one.
async fn new_credential(
    st: &AppState,
    tx: &mut keyong_store::Tx,
    user: &UserRow,
    replacing: Option<&str>,
) -> ApiResult<CreatedUser> {
    let (token, hash, expires_at) = issue(st, st.settings.server.credential_ttl)?;
    if !tx.set_credential(&user.id, replacing, (&hash, &expires_at)).await? {
        return Err(match replacing {
            Some(_) => ApiError::Unauthenticated,
            None => ApiError::NotFound(format!("no user `{}`", user.id)),
        });
    }
    Ok(CreatedUser { user: user.api(), token, expires_at })
}

/// A new credential with its expiry, for a user being created: (token, hash, expires_at).
pub(crate) fn credential(st: &AppState) -> ApiResult<(String, String, String)> {
    issue(st, st.settings.server.credential_ttl)
}

/// Exchanges a credential for a short-lived token. Needs no bearer token.
#[utoipa::path(post, path = "/login", tag = "organisations and users", request_body = Login, responses((status = OK, body = Session)), security(()))]
pub(crate) async fn login(State(st): State<AppState>, Json(req): Json<Login>) -> ApiResult<Json<Session>> {
    let now = keyong_store::timestamp(crate::schedule::now());
    let credential = st.keys.token_hash(req.credential.trim());
    let (user, bootstrap, credential_expires) =
        st.store.user_by_credential(&credential, &now).await?.ok_or(ApiError::Unauthenticated)?;
    if user.role == Role::Reviewer && user.confirmed_by.is_none() {
        return Err(ApiError::Forbidden("this reviewer account takes effect when the authority confirms it".into()));
    }
    let (token, hash, expires_at) = issue(&st, st.settings.server.session_ttl)?;
    let mut tx = st.store.begin().await?;
    // The bootstrap credential is replaced (once: of two logins with it,
    // one wins); the session then rests on the new one.
    let (credential, holder, session_ends) = if bootstrap {
        let new = new_credential(&st, &mut tx, &user, Some(&credential)).await?;
        let hash = st.keys.token_hash(&new.token);
        let ends = new.expires_at.clone();
        (Some(new), hash, ends)
    } else {
        (None, credential, credential_expires)
    };
    // Never past the credential it rests on.
    let expires_at = expires_at.min(session_ends);
    if !tx.insert_session(&hash, &user.id, &holder, &expires_at).await? {
        return Err(ApiError::Unauthenticated);
    }
    tx.audit(
        &user.id,
        "session.login",
        &user.id,
        serde_json::json!({ "bootstrap": bootstrap, "expires_at": expires_at }),
    )
    .await?;
    tx.commit().await?;
    if bootstrap {
        // It works no more; the file would only mislead.
        let _ = st.root.remove_file(crate::BOOTSTRAP_TOKEN_FILE);
    }
    Ok(Json(Session { token, expires_at, user: user.api(), credential }))
}

/// Ends the session whose token this request carries (a credential is
/// rotated instead: `POST /v1/me/credential`).
#[utoipa::path(post, path = "/logout", tag = "organisations and users", responses((status = OK, body = keyong_model::api::User)))]
pub(crate) async fn logout(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<keyong_model::api::User>> {
    if caller.1 != Bearer::Session {
        return Err(ApiError::InvalidState(
            "this request carries a credential, not a session token; rotate it with POST /v1/me/credential".into(),
        ));
    }
    let mut tx = st.store.begin().await?;
    tx.delete_session(&caller.2).await?;
    tx.audit(caller.id(), "session.logout", caller.id(), serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(Json(caller.0.api()))
}

/// Rotates the caller's own credential: the new one is shown once; the old
/// one and every session stop working.
#[utoipa::path(post, path = "/me/credential", tag = "organisations and users", responses((status = OK, body = CreatedUser)))]
pub(crate) async fn rotate(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<CreatedUser>> {
    // A session is short-lived on purpose: it never becomes a credential.
    if caller.1 != Bearer::Credential {
        return Err(ApiError::Forbidden("rotate with the credential itself, not a session token".into()));
    }
    let mut tx = st.store.begin().await?;
    let created = new_credential(&st, &mut tx, &caller.0, Some(&caller.2)).await?;
    tx.audit(
        caller.id(),
        "user.credential",
        caller.id(),
        serde_json::json!({ "by": "self", "expires_at": created.expires_at }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(created))
}

/// Loads a user whose credentials `caller` may reissue or revoke: the
/// authority anyone's; the agency anyone's but the authority's and
/// reviewers' (a reviewer's new credential must not reach the agency that
/// created the account: the two-person rule binds people).
async fn managed(st: &AppState, caller: &Caller, id: &str) -> ApiResult<UserRow> {
    caller.require(&[Role::Authority, Role::Agency])?;
    if id == caller.id() {
        return Err(ApiError::InvalidState(
            "not your own account: rotate your credential with POST /v1/me/credential".into(),
        ));
    }
    let user = st.store.user(id).await?.ok_or_else(|| ApiError::NotFound(format!("no user `{id}`")))?;
    if caller.role() == Role::Agency && matches!(user.role, Role::Authority | Role::Reviewer) {
        return Err(ApiError::Forbidden(format!("the authority manages {} credentials", user.role)));
    }
    if user.role == Role::Reviewer && user.created_by == caller.id() {
        return Err(ApiError::PolicyDenied("you created this reviewer account; another authority user must".into()));
    }
    Ok(user)
}

/// Issues a user a new credential (the old one and every session stop),
/// shown once to the caller: the authority or the agency, as [`managed`] says.
#[utoipa::path(post, path = "/users/{id}/credential", tag = "organisations and users", params(("id" = String, Path)), responses((status = OK, body = CreatedUser)))]
pub(crate) async fn reissue(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CreatedUser>> {
    let user = managed(&st, &caller, &id).await?;
    if user.role == Role::Reviewer && user.confirmed_by.is_none() {
        return Err(ApiError::InvalidState(
            "confirm the reviewer account instead (POST /v1/users/{id}/confirm)".into(),
        ));
    }
    let mut tx = st.store.begin().await?;
    let created = new_credential(&st, &mut tx, &user, None).await?;
    tx.audit(
        caller.id(),
        "user.credential",
        &id,
        serde_json::json!({ "by": caller.id(), "expires_at": created.expires_at }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(created))
}

/// Revokes a user's credential and sessions at once, until a new
/// credential is issued.
#[utoipa::path(post, path = "/users/{id}/revoke", tag = "organisations and users", params(("id" = String, Path)), responses((status = OK, body = keyong_model::api::User)))]
pub(crate) async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<keyong_model::api::User>> {
    let user = managed(&st, &caller, &id).await?;
    let mut tx = st.store.begin().await?;
    tx.revoke_credentials(&id).await?;
    tx.audit(caller.id(), "user.revoke", &id, serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(Json(user.api()))
}
