//! `Idempotency-Key` on POST: a client that sends a key may retry the
//! request (a timeout, a lost answer) and get the first answer again
//! instead of a second effect. The first request with a user's key runs;
//! its success (any 2xx) is kept for a day, its failure frees the key. A
//! retry with the same key and the same request gets the kept answer with
//! `Idempotent-Replayed: true`; with another request, 422
//! `idempotency_key_reused`; while the first is still running, 409
//! `conflict`. Token endpoints take no key: credentials are never kept.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use keyong_store::{Answer, Claim};

use crate::AppState;
use crate::error::ApiError;
use crate::routes::MAX_BODY_BYTES;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";
/// The header a replayed answer carries.
const REPLAYED: &str = "idempotent-replayed";
/// How long an answer is kept.
const KEPT: time::Duration = time::Duration::days(1);
/// Endpoints that mint or end credentials: never replayed.
pub(crate) const REFUSED: [&str; 4] = ["/v1/login", "/v1/logout", "/v1/me/credential", "/v1/users/{id}/credential"];

/// A key: 1 to 255 visible ASCII characters (a UUID is typical).
fn valid(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) async fn layer(State(st): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(HEADER) {
        return next.run(request).await;
    }
    match keyed(&st, request, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn keyed(st: &AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    if route.as_deref().is_some_and(|r| REFUSED.contains(&r)) {
        return Err(ApiError::BadRequest(
            "token endpoints take no Idempotency-Key: a credential or session is never kept for a retry".into(),
        ));
    }
    let key = request.headers().get(HEADER).and_then(|v| v.to_str().ok()).filter(|k| valid(k)).map(str::to_owned);
    let key = key.ok_or_else(|| {
        ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters (e.g. a UUID)".into())
    })?;
    // Keys belong to the user a token stands for; an unknown token goes
    // on to the handler, which refuses it as it refuses any.
    let user = match crate::auth::bearer_of(request.headers()) {
        Some(token) => {
            let now = keyong_store::timestamp(crate::schedule::now());
            st.store.user_by_token(&st.keys.token_hash(token), &now).await?.map(|(u, _)| u.id)
        }
        None => None,
    };
    let Some(user) = user else { return Ok(next.run(request).await) };

    let (parts, body) = request.into_parts();
    let body =
        axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES))?;
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = keyong_crypto::sm3_hex(&[target.as_bytes(), b"\n", &body].concat());
    let now = crate::schedule::now();
    let claim = st
        .store
        .claim_idempotent(
            &user,
            &key,
            &fingerprint,
            &keyong_store::timestamp(now),
            &keyong_store::timestamp(now - KEPT),
        )
        .await?;
    let aad = format!("idempotency:{user}:{key}");
    match claim {
        Claim::Done { fingerprint: first, .. } | Claim::InProgress { fingerprint: first } if first != fingerprint => {
            Err(ApiError::IdempotencyKeyReused)
        }
        Claim::InProgress { .. } => Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still running; retry when it has answered".into(),
        )),
        Claim::Done { answer, .. } => {
            let body = st.keys.seal.open(&answer.body_sealed, aad.as_bytes())?;
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            if let Some(location) = answer.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                headers.insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Claim::New => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            if !response.status().is_success() {
                st.store.release_idempotent(&user, &key).await?;
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| ApiError::Internal(Box::new(e)))?;
            let answer = Answer {
                status: parts.status.as_u16(),
                location: parts.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned),
                body_sealed: st.keys.seal.seal(&body, aad.as_bytes())?,
            };
            st.store.finish_idempotent(&user, &key, &answer).await?;
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}
