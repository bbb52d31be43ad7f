//! Router tests without a socket: requests go straight into the router
//! (`tower::ServiceExt::oneshot`) over a server state on a fresh data root.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use crate::{AppState, Settings};

/// A fresh server state (the repository's policies, a temporary data
/// root) and its bootstrap credential, unused.
async fn fresh() -> (AppState, String, std::path::PathBuf) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("keyong-router-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut settings = Settings::default();
    settings.server.data_root = root.clone();
    settings.server.policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    settings.sandbox.pool_instances = 2;
    let state = crate::open(settings).await.expect("the state opens");
    let bootstrap = std::fs::read_to_string(root.join(crate::BOOTSTRAP_TOKEN_FILE)).unwrap().trim().to_string();
    (state, bootstrap, root)
}

/// A fresh server state and the authority's credential (the bootstrap one exchanged).
async fn state() -> (AppState, String, std::path::PathBuf) {
    let (state, bootstrap, root) = fresh().await;
    let (status, session) =
        send(&state, post_json("/v1/login", None, &serde_json::json!({ "credential": bootstrap }))).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["credential"]["token"].as_str().expect("a new credential").to_string();
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

fn post_json(path: &str, token: Option<&str>, body: &serde_json::Value) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(body.to_string())).unwrap()
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

    let bearer = format!("Bearer {}", token.trim());
    let post = |path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut r = Request::post(path).header("authorization", &bearer);
        if let Some(t) = content_type {
            r = r.header("content-type", t);
        }
        r.body(Body::from(body)).unwrap()
    };
    let wrong_method = Request::delete("/v1/orgs").header("authorization", &bearer).body(Body::empty()).unwrap();
    let too_big = vec![b' '; crate::routes::MAX_BODY_BYTES + 1];
    for (request, want, code) in [
        (wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (
            post("/v1/orgs", Some("text/plain"), b"{}".to_vec()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (post("/v1/orgs", None, b"{}".to_vec()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (post("/v1/orgs", Some("application/json"), too_big), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (
            get("/v1/datasets/x/versions/not-a-number/withdraw", Some(token.trim())),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (post("/v1/datasets/x/versions/not-a-number/withdraw", None, vec![]), StatusCode::BAD_REQUEST, "bad_request"),
        (get("/v1/orgs?limit=0", Some(token.trim())), StatusCode::BAD_REQUEST, "bad_request"),
        (get("/v1/orgs?limit=lots", Some(token.trim())), StatusCode::BAD_REQUEST, "bad_request"),
        (get("/v1/orgs?after=garbage", Some(token.trim())), StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, body) = send(&st, request).await;
        assert_eq!((status, body["code"].as_str()), (want, Some(code)), "{what}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }

    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn lists_come_a_page_at_a_time_newest_first_without_gaps_or_repeats() {
    let (st, token, root) = state().await;
    let bearer = format!("Bearer {}", token.trim());
    let mut created = Vec::new();
    for n in 0..7 {
        let body = serde_json::json!({ "name": format!("provider {n}"), "kind": "provider" }).to_string();
        let request = Request::post("/v1/orgs")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, org) = send(&st, request).await;
        assert!(status.is_success(), "{org}");
        created.push(org["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/orgs?kind=provider&limit=3".to_string();
    loop {
        let (status, page) = send(&st, get(&path, Some(token.trim()))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/orgs?kind=provider&limit=3&after={next}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "every provider once, newest first");
    let (_, agencies) = send(&st, get("/v1/orgs?kind=agency", Some(token.trim()))).await;
    assert!(agencies["items"].as_array().unwrap().iter().all(|o| o["kind"] == "agency"));
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

#[tokio::test]
async fn a_page_says_nothing_of_the_rows_it_left_out() {
    use crate::routes::{PageQuery, paged};
    use keyong_model::api::Page as ApiPage;
    use keyong_store::{Cursor, Page, PageRequest};
    let (st, _, root) = state().await;
    // Twelve rows, newest first; the caller may see rows 3 and 9 only.
    let cursor = |n: u32| Cursor::from_bytes(format!("t{n:02}\n{n}").as_bytes()).unwrap();
    let fetch = |p: &PageRequest| -> Page<u32> {
        let start = match &p.after {
            None => 12,
            Some(c) => (0..12).find(|n| cursor(*n) == *c).unwrap(),
        };
        let rows: Vec<u32> = (0..start).rev().take(p.limit as usize).collect();
        let more = rows.last().is_some_and(|last| *last > 0);
        Page { rows: rows.into_iter().map(|n| (cursor(n), n)).collect(), more }
    };
    let list = |query: PageQuery, visible: &'static [u32]| -> crate::error::ApiResult<ApiPage<u32>> {
        let page: crate::error::ApiResult<_> =
            (|| paged!(st, query, |p| fetch(&p), |n| visible.contains(&n).then_some(n)))();
        page.map(|json| json.0)
    };
    let first = list(PageQuery { limit: Some(1), after: None }, &[3, 9]).unwrap();
    assert_eq!(first.items, [9]);
    let next = first.next.expect("row 3 follows");
    let sealed = hex::decode(&next).unwrap();
    assert!(!sealed.windows(3).any(|w| w == b"t09"), "the cursor is sealed");
    let second = list(PageQuery { limit: Some(1), after: Some(next) }, &[3, 9]).unwrap();
    assert_eq!(second.items, [3]);
    assert_eq!(second.next, None, "no visible row follows, whatever else does");
    let empty = list(PageQuery { limit: Some(5), after: None }, &[]).unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
    let all = list(PageQuery { limit: Some(200), after: None }, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).unwrap();
    assert_eq!(all.items, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    let forged = hex::encode(b"t05\n5");
    let refused = list(PageQuery { limit: Some(1), after: Some(forged) }, &[3, 9]);
    assert!(matches!(refused, Err(crate::ApiError::BadRequest(_))), "a forged cursor is refused");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn credentials_expire_rotate_and_revoke_and_the_first_works_once() {
    let (st, authority, root) = state().await;
    assert!(!root.join(crate::BOOTSTRAP_TOKEN_FILE).exists(), "the spent bootstrap credential's file is gone");
    let me = |t: &str| get("/v1/me", Some(t));
    assert_eq!(send(&st, me(&authority)).await.0, StatusCode::OK, "the new credential works as a bearer token");

    // A session: works until logout, which a credential cannot do.
    let (status, session) =
        send(&st, post_json("/v1/login", None, &serde_json::json!({ "credential": authority }))).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert!(session.get("credential").is_none(), "only the bootstrap login hands out a credential");
    let token = session["token"].as_str().unwrap().to_string();
    assert_eq!(send(&st, me(&token)).await.0, StatusCode::OK);
    let logout = |t: &str| {
        Request::post("/v1/logout").header("authorization", format!("Bearer {t}")).body(Body::empty()).unwrap()
    };
    assert_eq!(send(&st, logout(&authority)).await.1["code"], "invalid_state");
    assert_eq!(send(&st, logout(&token)).await.0, StatusCode::OK);
    assert_eq!(send(&st, me(&token)).await.1["code"], "unauthenticated", "logged out");
    for bad in ["", "nonsense", &token] {
        let (status, body) = send(&st, post_json("/v1/login", None, &serde_json::json!({ "credential": bad }))).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")), "{bad}");
    }

    // An agency user: rotation stops the old credential and its sessions.
    let (_, org) =
        send(&st, post_json("/v1/orgs", Some(&authority), &serde_json::json!({ "name": "agency", "kind": "agency" })))
            .await;
    let body = serde_json::json!({ "org_id": org["id"], "name": "officer", "role": "agency" });
    let (status, created) = send(&st, post_json("/v1/users", Some(&authority), &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["expires_at"].as_str().is_some_and(|e| e > "2026"), "{created}");
    let (old, id) =
        (created["token"].as_str().unwrap().to_string(), created["user"]["id"].as_str().unwrap().to_string());
    let (_, session) = send(&st, post_json("/v1/login", None, &serde_json::json!({ "credential": old }))).await;
    let old_session = session["token"].as_str().unwrap().to_string();
    let rotate = Request::post("/v1/me/credential")
        .header("authorization", format!("Bearer {old}"))
        .body(Body::empty())
        .unwrap();
    let (status, rotated) = send(&st, rotate).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["token"].as_str().unwrap().to_string();
    assert_eq!(send(&st, me(&old)).await.1["code"], "unauthenticated", "the rotated credential stops");
    assert_eq!(send(&st, me(&old_session)).await.1["code"], "unauthenticated", "and its sessions");
    assert_eq!(send(&st, me(&new)).await.0, StatusCode::OK);

    // Revocation by the authority; reissue gives a working one again.
    let call = |path: String, t: &str| {
        Request::post(path).header("authorization", format!("Bearer {t}")).body(Body::empty()).unwrap()
    };
    let by_agency = send(&st, call("/v1/users/authority-admin/revoke".into(), &new)).await;
    assert_eq!(by_agency.1["code"], "forbidden", "the agency cannot revoke the authority");
    assert_eq!(send(&st, call(format!("/v1/users/{id}/revoke"), &authority)).await.0, StatusCode::OK);
    assert_eq!(send(&st, me(&new)).await.1["code"], "unauthenticated", "revoked");
    let (status, reissued) = send(&st, call(format!("/v1/users/{id}/credential"), &authority)).await;
    assert_eq!(status, StatusCode::OK, "{reissued}");
    assert_eq!(send(&st, me(reissued["token"].as_str().unwrap())).await.0, StatusCode::OK);

    // An expired credential stops, whatever else is true of it.
    let token = reissued["token"].as_str().unwrap();
    let mut tx = st.store.begin().await.unwrap();
    tx.set_credential(&id, None, (&st.keys.token_hash(token), "2000-01-01T00:00:00.000000000Z")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(send(&st, me(token)).await.1["code"], "unauthenticated", "expired");
    let (status, _) = send(&st, post_json("/v1/login", None, &serde_json::json!({ "credential": token }))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an expired credential cannot log in");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn the_first_credential_works_once_at_login_and_sessions_never_outlive_their_credential() {
    let (st, bootstrap, root) = fresh().await;
    let login = |credential: &str| post_json("/v1/login", None, &serde_json::json!({ "credential": credential }));
    assert_eq!(send(&st, get("/v1/me", Some(&bootstrap))).await.0, StatusCode::UNAUTHORIZED, "not as a bearer token");
    let (first, second) = tokio::join!(send(&st, login(&bootstrap)), send(&st, login(&bootstrap)));
    let wins: Vec<_> = [&first, &second].into_iter().filter(|(s, _)| *s == StatusCode::OK).collect();
    assert_eq!(wins.len(), 1, "one of two logins with it wins: {first:?} {second:?}");
    let authority = wins[0].1["credential"]["token"].as_str().unwrap().to_string();
    let (_, session) = send(&st, login(&authority)).await;
    assert!(session["expires_at"].as_str() <= wins[0].1["credential"]["expires_at"].as_str(), "{session}");
    let session = session["token"].as_str().unwrap().to_string();
    let post = |path: &str, t: &str| {
        Request::post(path).header("authorization", format!("Bearer {t}")).body(Body::empty()).unwrap()
    };
    let (status, body) = send(&st, post("/v1/me/credential", &session)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "a session never becomes a credential"
    );
    assert_eq!(
        send(&st, post("/v1/users/authority-admin/revoke", &authority)).await.1["code"],
        "invalid_state",
        "not oneself"
    );

    // The agency gets no working credential of an authority user or a reviewer.
    let (_, org) =
        send(&st, post_json("/v1/orgs", Some(&authority), &serde_json::json!({ "name": "agency", "kind": "agency" })))
            .await;
    let agency_user = serde_json::json!({ "org_id": org["id"], "name": "officer", "role": "agency" });
    let agency = send(&st, post_json("/v1/users", Some(&authority), &agency_user)).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let reviewer_user = serde_json::json!({ "org_id": org["id"], "name": "r", "role": "reviewer" });
    let reviewer = send(&st, post_json("/v1/users", Some(&agency), &reviewer_user)).await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let authority_user = serde_json::json!({ "org_id": "authority", "name": "a2", "role": "authority" });
    let (status, body) = send(&st, post_json("/v1/users", Some(&agency), &authority_user)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    for id in ["authority-admin", reviewer.as_str()] {
        for action in ["credential", "revoke"] {
            let (status, body) = send(&st, post(&format!("/v1/users/{id}/{action}"), &agency)).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("forbidden")),
                "{action} {id}: {body}"
            );
        }
    }

    // A revocation ends the user's sessions; a login racing it gets none.
    let provider_org =
        send(&st, post_json("/v1/orgs", Some(&authority), &serde_json::json!({ "name": "p", "kind": "provider" })))
            .await
            .1;
    let p = serde_json::json!({ "org_id": provider_org["id"], "name": "steward", "role": "provider" });
    let created = send(&st, post_json("/v1/users", Some(&authority), &p)).await.1;
    let (credential, id) = (created["token"].as_str().unwrap(), created["user"]["id"].as_str().unwrap());
    let provider_session = send(&st, login(credential)).await.1["token"].as_str().unwrap().to_string();
    let (revoked, raced) =
        tokio::join!(send(&st, post(&format!("/v1/users/{id}/revoke"), &authority)), send(&st, login(credential)));
    assert_eq!(revoked.0, StatusCode::OK);
    assert_eq!(send(&st, get("/v1/me", Some(&provider_session))).await.0, StatusCode::UNAUTHORIZED);
    if let Some(t) = raced.1["token"].as_str() {
        assert_eq!(
            send(&st, get("/v1/me", Some(t))).await.0,
            StatusCode::UNAUTHORIZED,
            "a racing login's session ends too"
        );
    }
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_retry_with_an_idempotency_key_gets_the_first_answer_and_no_second_effect() {
    let (st, token, root) = state().await;
    let bearer = format!("Bearer {}", token.trim());
    let post = |key: Option<&str>, path: &str, body: serde_json::Value| {
        let mut r = Request::post(path).header("authorization", &bearer).header("content-type", "application/json");
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.body(Body::from(body.to_string())).unwrap()
    };
    let answer = |request: Request<Body>| async {
        let response = crate::routes::router(st.clone()).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(body, 1 << 20).await.unwrap()).unwrap();
        let header = |name: &str| parts.headers.get(name).map(|v| v.to_str().unwrap().to_string());
        (parts.status, header("location"), header("idempotent-replayed"), body)
    };
    let providers = || async {
        let (_, page) = send(&st, get("/v1/orgs?kind=provider", Some(token.trim()))).await;
        page["items"].as_array().unwrap().len()
    };
    let org = serde_json::json!({ "name": "water board", "kind": "provider" });

    // A failure frees the key: the corrected request runs under it.
    let (status, ..) = answer(post(Some("k-1"), "/v1/orgs", serde_json::json!({ "name": "water board" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, location, replayed, first) = answer(post(Some("k-1"), "/v1/orgs", org.clone())).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CREATED, None), "{first}");
    assert_eq!(location, Some(format!("/v1/orgs/{}", first["id"].as_str().unwrap())));

    // The retry: the same answer, marked, and still one provider.
    let (status, again, replayed, body) = answer(post(Some("k-1"), "/v1/orgs", org.clone())).await;
    assert_eq!((status, again, replayed.as_deref(), &body), (StatusCode::CREATED, location, Some("true"), &first));
    assert_eq!(providers().await, 1);

    // The key with another request; keys that are not keys; token endpoints.
    let other = serde_json::json!({ "name": "gas board", "kind": "provider" });
    let (status, _, _, body) = answer(post(Some("k-1"), "/v1/orgs", other.clone())).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));
    for bad in ["", &"k".repeat(256), "two words"] {
        let (status, _, _, body) = answer(post(Some(bad), "/v1/orgs", other.clone())).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{bad:?}");
    }
    let (status, _, _, body) = answer(post(Some("k-2"), "/v1/me/credential", serde_json::json!({}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    assert_eq!(providers().await, 1, "nothing refused was created");

    // Keys are per user: the same key from someone else is theirs.
    let body = serde_json::json!({ "name": "agency", "kind": "agency" });
    let (_, org) = send(&st, post_json("/v1/orgs", Some(token.trim()), &body)).await;
    let body = serde_json::json!({ "org_id": org["id"], "name": "officer", "role": "agency" });
    let (_, agency) = send(&st, post_json("/v1/users", Some(token.trim()), &body)).await;
    let agency_token = agency["token"].as_str().expect("an agency user").to_string();
    let mut request = post_json("/v1/orgs", Some(&agency_token), &other);
    request.headers_mut().insert("idempotency-key", "k-1".parse().unwrap());
    let (status, ..) = answer(request).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(providers().await, 2);
    let _ = std::fs::remove_dir_all(root);
}
