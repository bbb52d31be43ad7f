//! Router tests without a socket: requests go straight into the router
//! (`tower::ServiceExt::oneshot`) over a server state on a fresh data root.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use crate::{AppState, Settings};

/// A fresh server state (the repository's policies, a temporary data
/// root) and the bootstrap token.
async fn state() -> (AppState, String, std::path::PathBuf) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("keyong-router-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut settings = Settings::default();
    settings.server.data_root = root.clone();
    settings.server.policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    settings.sandbox.pool_instances = 2;
    let state = crate::open(settings).await.expect("the state opens");
    let token = std::fs::read_to_string(root.join(crate::BOOTSTRAP_TOKEN_FILE)).unwrap();
    (state, token, root)
}

/// Sends one request through the router: the status and the JSON body.
async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = crate::routes::router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_router_answers_every_request_with_a_stable_code() {
    let (st, token, root) = state().await;
    let (status, body) = send(&st, get("/v1/health", None)).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));

    let (status, body) = send(&st, get("/v2/nothing", None)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    for bad in [None, Some("not-a-token")] {
        let (status, body) = send(&st, get("/v1/me", bad)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")), "{bad:?}");
    }
    let (status, body) = send(&st, get("/v1/me", Some(token.trim()))).await;
    assert_eq!((status, body["role"].as_str()), (StatusCode::OK, Some("authority")));

    let malformed = Request::post("/v1/orgs")
        .header("authorization", format!("Bearer {}", token.trim()))
        .header("content-type", "application/json")
        .body(Body::from("{\"id\": "))
        .unwrap();
    let (status, body) = send(&st, malformed).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));

    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn an_internal_error_answers_safely_and_keeps_its_cause_for_the_log() {
    use axum::response::IntoResponse;
    let cause = std::io::Error::other("disk /srv/keyong is full");
    let response = crate::ApiError::Internal(Box::new(cause)).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.extensions().get::<crate::error::Cause>().is_some(), "the log layer gets the cause");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "internal");
    assert!(!body["message"].as_str().unwrap().contains("disk"), "the caller never sees the cause");
}
