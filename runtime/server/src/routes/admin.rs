//! Organisations, users, signing keys and audit verification.

use keyong_crypto::audit::{self, attestation_message};
use keyong_model::api::{
    AuditCheckpoint, AuditEntry, AuditExport, AuditVerification, CreateOrg, CreateUser, CreatedUser, Filing, Health,
    Org, Page, PlatformKey, SetSigningKey, User,
};
use keyong_model::{OrgKind, Role};

use super::{PageQuery, check_text, new_id, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use axum::extract::State;

/// Whether the server is up. Needs no token.
#[utoipa::path(get, path = "/health", tag = "organisations and users", responses((status = OK, body = Health)), security(()))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// The platform's public key, for verifying receipts and audit checkpoints
/// offline. Needs no token.
#[utoipa::path(get, path = "/platform-key", tag = "organisations and users", responses((status = OK, body = PlatformKey)), security(()))]
pub(crate) async fn platform_key(State(st): State<AppState>) -> ApiResult<Json<PlatformKey>> {
    let hex = st.keys.platform.public_key_hex();
    Ok(Json(PlatformKey {
        public_key_pem: keyong_crypto::public_key_pem(&hex)?,
        public_key_hex: hex,
        sm2_user_id: keyong_crypto::SM2_DIST_ID.into(),
        receipt_message_prefix: keyong_model::api::RECEIPT_MESSAGE_PREFIX.into(),
    }))
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "organisations and users", responses((status = OK, body = User)))]
pub(crate) async fn me(caller: Caller) -> Json<User> {
    Json(caller.0.api())
}

/// The authority or the agency creates an organisation (the agency: operators and providers only).
#[utoipa::path(post, path = "/orgs", tag = "organisations and users", request_body = CreateOrg, responses((status = CREATED, body = Org, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn create_org(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateOrg>,
) -> ApiResult<Created<Org>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    check_text("name", &req.name, 100)?;
    if caller.role() == Role::Agency && matches!(req.kind, OrgKind::Authority | OrgKind::Agency) {
        return Err(ApiError::Forbidden("the agency may admit operators and providers only".into()));
    }
    // An operator organisation starts as an applicant: its users act only
    // once an admission concludes with its agreement (`routes/agreements.rs`).
    let org = Org { id: new_id(), name: req.name.trim().to_string(), kind: req.kind };
    let mut tx = st.store.begin().await?;
    tx.insert_org(&org).await.map_err(|e| match e {
        keyong_store::Error::Conflict => ApiError::Conflict(format!("an organisation named `{}` exists", org.name)),
        other => other.into(),
    })?;
    tx.audit(caller.id(), "org.create", &org.id, serde_json::json!({ "kind": org.kind })).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/orgs/{}", org.id), org))
}

fn role_fits(role: Role, kind: OrgKind) -> bool {
    matches!(
        (role, kind),
        (Role::Authority, OrgKind::Authority)
            | (Role::Agency | Role::Reviewer, OrgKind::Agency)
            | (Role::Operator, OrgKind::Operator)
            | (Role::Provider, OrgKind::Provider)
    )
}

/// The authority or the agency creates a user and returns its token once (authority users: the authority only).
#[utoipa::path(post, path = "/users", tag = "organisations and users", request_body = CreateUser, responses((status = CREATED, body = CreatedUser, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn create_user(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateUser>,
) -> ApiResult<Created<CreatedUser>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    check_text("name", &req.name, 100)?;
    let org = st
        .store
        .org(&req.org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organisation `{}`", req.org_id)))?;
    if !role_fits(req.role, org.kind) {
        return Err(ApiError::BadRequest(format!("a {} cannot belong to a {} organisation", req.role, org.kind)));
    }
    if caller.role() == Role::Agency && req.role == Role::Authority {
        return Err(ApiError::Forbidden("the agency cannot create authority users".into()));
    }
    // Creation and confirmation sit in two organisations: the agency creates
    // its reviewers, the authority confirms them.
    if req.role == Role::Reviewer && caller.role() != Role::Agency {
        return Err(ApiError::Forbidden(
            "reviewers are agency staff: the agency creates their accounts and the authority confirms them".into(),
        ));
    }
    let (token, hash, expires_at) = super::tokens::credential(&st)?;
    let user = User { id: new_id(), org_id: org.id.clone(), name: req.name.trim().to_string(), role: req.role };
    let mut tx = st.store.begin().await?;
    if tx.has_exited(&org.id).await? {
        return Err(ApiError::PolicyDenied(format!("`{}` has exited: it has no users any more", org.name)));
    }
    tx.insert_user(&user.id, &user.org_id, &user.name, user.role, (&hash, &expires_at), caller.id()).await?;
    let detail = serde_json::json!({ "org": user.org_id, "role": user.role, "created_by": caller.id() });
    tx.audit(caller.id(), "user.create", &user.id, detail).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/users/{}", user.id), CreatedUser { user, token, expires_at }))
}

/// The authority confirms a reviewer account (filed): only then can it
/// review, and only with the fresh token returned here — the one its
/// creator received stops working. Whoever created the account cannot
/// confirm it, so no single officer ever holds a working reviewer account
/// they made themselves.
#[utoipa::path(post, path = "/users/{id}/confirm", tag = "organisations and users", params(("id" = String, Path)), responses((status = OK, body = CreatedUser)))]
pub(crate) async fn confirm_reviewer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CreatedUser>> {
    caller.require(&[Role::Authority])?;
    let user = st.store.user(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no user `{id}`")))?;
    if user.role != Role::Reviewer {
        return Err(ApiError::BadRequest(format!("user `{id}` is a {}, not a reviewer", user.role)));
    }
    if user.confirmed_by.is_some() {
        return Err(ApiError::InvalidState(format!("reviewer `{id}` is already confirmed")));
    }
    if user.created_by == caller.id() {
        return Err(ApiError::PolicyDenied(
            "you created this reviewer account; another authority user must confirm it".into(),
        ));
    }
    let (token, hash, expires_at) = super::tokens::credential(&st)?;
    let mut tx = st.store.begin().await?;
    if !tx.confirm_reviewer(&id, caller.id(), (&hash, &expires_at)).await? {
        return Err(ApiError::InvalidState("the account changed; try again".into()));
    }
    let detail = serde_json::json!({ "org": user.org_id, "created_by": user.created_by, "confirmed_by": caller.id() });
    tx.audit_and_file(caller.id(), "user.confirm_reviewer", "filing.reviewer", &id, detail).await?;
    tx.commit().await?;
    Ok(Json(CreatedUser { user: user.api(), token, expires_at }))
}

/// An operator registers the SM2 public key its modules are signed with.
#[utoipa::path(put, path = "/me/signing-key", tag = "organisations and users", request_body = SetSigningKey, responses((status = OK, body = User)))]
pub(crate) async fn set_signing_key(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SetSigningKey>,
) -> ApiResult<Json<User>> {
    caller.require(&[Role::Operator])?;
    keyong_crypto::check_public_key(&req.public_key_hex).map_err(|_| {
        ApiError::BadRequest("public_key_hex must be an uncompressed SM2 public key in hex (04 ‖ x ‖ y)".into())
    })?;
    let mut tx = st.store.begin().await?;
    tx.set_public_key(caller.id(), req.public_key_hex.trim()).await?;
    tx.audit(
        caller.id(),
        "user.signing_key",
        caller.id(),
        serde_json::json!({ "sm3": keyong_crypto::sm3_hex(req.public_key_hex.trim().as_bytes()) }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(caller.0.api()))
}

/// The filings (备案) in the audit log (authority, agency).
#[utoipa::path(get, path = "/filings", tag = "organisations and users", params(PageQuery), responses((status = OK, body = Page<Filing>)))]
pub(crate) async fn filings(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Filing>>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    paged!(st, query, |p| st.store.filings_page(&p).await?, |e| Some(Filing {
        seq: e.seq,
        detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
        at: e.at,
        actor: e.actor,
        action: e.action,
        subject: e.subject,
        hash: e.hash,
    }))
}

/// `GET /v1/orgs` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OrgFilter {
    /// Only organisations of this kind.
    kind: Option<OrgKind>,
}

/// The organisations (authority, agency).
#[utoipa::path(get, path = "/orgs", tag = "organisations and users", params(OrgFilter, PageQuery), responses((status = OK, body = Page<Org>)))]
pub(crate) async fn list_orgs(
    State(st): State<AppState>,
    caller: Caller,
    Query(filter): Query<OrgFilter>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Org>>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    paged!(st, query, |p| st.store.orgs_page(filter.kind, &p).await?, |org| Some(org))
}

/// An organisation (authority, agency; anyone their own).
#[utoipa::path(get, path = "/orgs/{id}", tag = "organisations and users", params(("id" = String, Path)), responses((status = OK, body = Org)))]
pub(crate) async fn get_org(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Org>> {
    let missing = || ApiError::NotFound(format!("no organisation `{id}`"));
    if !matches!(caller.role(), Role::Authority | Role::Agency) && caller.org() != id {
        return Err(missing());
    }
    st.store.org(&id).await?.map(Json).ok_or_else(missing)
}

/// A user (authority, agency; anyone themselves).
#[utoipa::path(get, path = "/users/{id}", tag = "organisations and users", params(("id" = String, Path)), responses((status = OK, body = User)))]
pub(crate) async fn get_user(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let missing = || ApiError::NotFound(format!("no user `{id}`"));
    if !matches!(caller.role(), Role::Authority | Role::Agency) && caller.id() != id {
        return Err(missing());
    }
    st.store.user(&id).await?.map(|u| Json(u.api())).ok_or_else(missing)
}

/// `GET /v1/users` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserFilter {
    /// Only users of this organisation.
    org: Option<String>,
    /// Only users with this role.
    role: Option<Role>,
}

/// The users (authority, agency); never their tokens.
#[utoipa::path(get, path = "/users", tag = "organisations and users", params(UserFilter, PageQuery), responses((status = OK, body = Page<User>)))]
pub(crate) async fn list_users(
    State(st): State<AppState>,
    caller: Caller,
    Query(filter): Query<UserFilter>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    paged!(st, query, |p| st.store.users_page(filter.org.as_deref(), filter.role, &p).await?, |u| Some(u.api()))
}

/// Verifies the audit chain and holds it to every stored checkpoint, with
/// one required at every filing (so truncation, re-chaining and deleted
/// checkpoints are caught, not only alteration).
#[utoipa::path(get, path = "/audit/verify", tag = "organisations and users", responses((status = OK, body = AuditVerification)))]
pub(crate) async fn verify_audit(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<AuditVerification>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    let public_key = st.keys.platform.public_key_hex();
    let (v, latest) = st.store.verify_audit(&public_key).await?;
    let ok = v.first_bad_seq.is_none();
    let checkpoint_signature_hex = if ok {
        let msg = attestation_message(v.entries, &v.head);
        Some(st.keys.platform.sign(&msg)?)
    } else {
        None
    };
    Ok(Json(AuditVerification {
        ok,
        entries: v.entries,
        head_hash: v.head,
        first_bad_seq: v.first_bad_seq,
        vouched_entries: v.vouched,
        checkpoint: latest.map(api_checkpoint),
        checkpoint_signature_hex,
        platform_public_key_hex: public_key,
    }))
}

fn api_checkpoint(c: audit::Checkpoint) -> AuditCheckpoint {
    AuditCheckpoint { entries: c.entries, head_hash: c.head, at: c.at, signature_hex: c.signature_hex }
}

/// The whole audit log and its checkpoints, for `keyong audit verify`.
#[utoipa::path(get, path = "/audit/export", tag = "organisations and users", responses((status = OK, body = AuditExport)))]
pub(crate) async fn export_audit(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<AuditExport>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    let entries = st
        .store
        .audit_entries()
        .await?
        .into_iter()
        .map(|e| AuditEntry {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
            prev_hash: e.prev_hash,
            hash: e.hash,
        })
        .collect();
    let checkpoints = st.store.audit_checkpoints().await?.into_iter().map(api_checkpoint).collect();
    Ok(Json(AuditExport { entries, checkpoints, platform_public_key_hex: st.keys.platform.public_key_hex() }))
}
