//! API errors: the one place where failures become HTTP responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use keyong_model::ErrorCode;
use keyong_model::api::ApiError as Body;

/// Every way an API call can fail. Variants say whose fault it is; messages
/// are safe to show the caller and never contain row-level data.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required (this one is unknown, expired or revoked, or none was sent)")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("the module's SM2 signature does not verify against your registered key")]
    BadSignature,
    #[error("{0}")]
    InvalidModule(String),
    #[error("{0}")]
    InvalidManifest(String),
    #[error("{0}")]
    PolicyDenied(String),
    #[error("{0}")]
    BudgetExhausted(String),
    #[error("{0}")]
    IdentifierDetected(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("this endpoint does not answer that method")]
    MethodNotAllowed,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("this Idempotency-Key was first sent with another request (method, path or body); use a new key")]
    IdempotencyKeyReused,
    #[error("the request body must be JSON, sent with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// A fault of the platform, not the caller. The cause goes to the
    /// server log only (by the request layer, [`trace`]).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::InvalidState(_) => (StatusCode::CONFLICT, ErrorCode::InvalidState),
            ApiError::BadSignature => (StatusCode::BAD_REQUEST, ErrorCode::BadSignature),
            ApiError::InvalidModule(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidModule),
            ApiError::InvalidManifest(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidManifest),
            ApiError::PolicyDenied(_) => (StatusCode::FORBIDDEN, ErrorCode::PolicyDenied),
            ApiError::BudgetExhausted(_) => (StatusCode::CONFLICT, ErrorCode::BudgetExhausted),
            ApiError::IdentifierDetected(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::IdentifierDetected),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::ResourceExhausted(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ResourceExhausted),
            ApiError::QuotaExceeded(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::QuotaExceeded),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            ApiError::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::IdempotencyKeyReused),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        };
        let message = match &self {
            ApiError::Internal(_) => "internal error; the operator of this keyong instance has the details".to_string(),
            other => other.to_string(),
        };
        let mut response = (status, axum::Json(Body { code, message })).into_response();
        if let ApiError::Internal(cause) = &self {
            response.extensions_mut().insert(Cause(keyong_model::error_chain(cause.as_ref())));
        }
        response
    }
}

/// An internal error's cause, kept on the response for [`trace`].
#[derive(Clone)]
pub(crate) struct Cause(String);

/// The request layer: one span per request (method, matched route, the
/// caller's role once known — never a token, never a path parameter),
/// one event when it ends, and internal errors logged once with their
/// causes (the caller only ever gets the safe message).
pub(crate) async fn trace(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        route = route.as_deref().unwrap_or("unmatched"),
        role = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let _entered = span.enter();
    if let Some(Cause(cause)) = response.extensions().get::<Cause>() {
        tracing::error!(error = %cause, "internal error");
    }
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(status = response.status().as_u16(), elapsed_us, "request");
    response
}

impl From<keyong_store::Error> for ApiError {
    fn from(e: keyong_store::Error) -> Self {
        match e {
            keyong_store::Error::Conflict => ApiError::Conflict("the object already exists".into()),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

/// Platform faults of the crates below: internal errors, with their causes.
macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::Internal(Box::new(e))
            }
        }
    )*};
}

internal_from!(
    keyong_engine::Error,
    keyong_crypto::Error,
    keyong_data::Error,
    serde_json::Error,
    tokio::task::JoinError
);

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::routes::MAX_BODY_BYTES),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            _ => ApiError::BadRequest(format!("malformed JSON body: {}", r.body_text())),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        match r {
            axum::extract::rejection::PathRejection::FailedToDeserializePathParams(e) => {
                ApiError::BadRequest(format!("bad path parameter: {}", e.body_text()))
            }
            // A route and its handler disagree: the server's bug.
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(format!("bad query parameter: {}", r.body_text()))
    }
}

/// A created object (201, or 202 for work accepted) and where it lives
/// (`Location`).
pub(crate) struct Created<T> {
    pub(crate) status: StatusCode,
    pub(crate) location: String,
    pub(crate) body: T,
}

/// 201 Created: `body`, which lives at `location`.
pub(crate) fn created<T>(location: String, body: T) -> Created<T> {
    Created { status: StatusCode::CREATED, location, body }
}

impl<T: serde::Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (self.status, [(axum::http::header::LOCATION, self.location)], axum::Json(self.body)).into_response()
    }
}

/// `Path` whose rejections are [`ApiError::BadRequest`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

/// `Query` whose rejections are [`ApiError::BadRequest`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub(crate) T);

/// `Json` whose rejections are [`ApiError`]s with a stable code.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
