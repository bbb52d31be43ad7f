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
    #[error("a valid bearer token is required")]
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
    /// Details go to the server log only.
    #[error("internal error: {0}")]
    Internal(String),
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
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
        };
        let message = match &self {
            ApiError::Internal(_) => "internal error; the operator of this keyong instance has the details".to_string(),
            other => other.to_string(),
        };
        (status, axum::Json(Body { code, message })).into_response()
    }
}

impl From<keyong_store::Error> for ApiError {
    fn from(e: keyong_store::Error) -> Self {
        match e {
            keyong_store::Error::Conflict => ApiError::Conflict("the object already exists".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::BadRequest(format!("malformed JSON body: {}", r.body_text()))
    }
}

/// `Json` whose rejections are [`ApiError::BadRequest`] with a stable code.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
