//! Token lifecycles: refresh rotation and replay, login throttling, signing-key rotation, and
//! a gateway verifying through the auth service's JWKS.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{PASSWORD, signup};
use crate::harness::{TestApp, get, post};

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_family() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Refresh", "owner@refresh.test").await;
    let first = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": owner.refresh}),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let second_token = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, owner.refresh);
    let access = first.body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&app.auth, "/v1/auth/me", Some(access)).await.status,
        StatusCode::OK
    );

    // The spent token comes back: a thief or a replay. The whole family dies.
    let replay = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": owner.refresh}),
    )
    .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let legit = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": second_token}),
    )
    .await;
    assert_eq!(
        legit.status,
        StatusCode::UNAUTHORIZED,
        "the family was revoked"
    );

    // Logout revokes too.
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "owner@refresh.test", "password": PASSWORD}),
    )
    .await;
    let token = login.body["refresh_token"].as_str().unwrap().to_owned();
    let logout = post(
        &app.auth,
        "/v1/auth/logout",
        None,
        json!({"refresh_token": token}),
    )
    .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let after = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": token}),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_with_retry_after() {
    let app = TestApp::with_config(|c| c.login_failures_per_account = 3).await;
    let email = format!("owner-{}@throttle.test", Uuid::new_v4().simple());
    signup(&app, "Throttle", &email).await;
    let attempt = |password: &'static str| {
        let auth = app.auth.clone();
        let email = email.clone();
        async move {
            post(
                &auth,
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(
            attempt("wrong password 123").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = attempt(PASSWORD).await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = blocked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60);
    let failures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'auth.login_failed'")
            .fetch_one(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(failures, 3);
}

#[tokio::test]
async fn rotated_keys_keep_verifying_old_tokens() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Rotate", "owner@rotate.test").await;
    let keys = app.app.auth.as_ref().unwrap().keys.clone();
    let old_kids: Vec<String> = keys.jwks().keys.into_iter().map(|k| k.kid).collect();
    let new_kid = keys.rotate().await.unwrap();
    assert!(!old_kids.contains(&new_kid));
    let jwks = get(&app.auth, "/.well-known/jwks.json", None).await;
    let published: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(published.contains(&new_kid.as_str()));
    assert!(
        old_kids.iter().all(|k| published.contains(&k.as_str())),
        "old keys stay published"
    );
    assert_eq!(
        get(&app.auth, "/v1/auth/me", Some(&owner.access))
            .await
            .status,
        StatusCode::OK
    );
    let fresh = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "owner@rotate.test", "password": PASSWORD}),
    )
    .await;
    let token = fresh.body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], new_kid.as_str());
}

#[tokio::test]
async fn a_gateway_without_the_keys_verifies_through_the_jwks() {
    // Serve the auth service for real, then a gateway that knows only its URL.
    let app = TestApp::new().await;
    let owner = signup(&app, "Remote", "owner@remote.test").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth_router = app.auth.clone();
    tokio::spawn(async move { axum::serve(listener, auth_router).await });
    let mut config = crate::harness::test_config(&app.db);
    config.auth_url = format!("http://{addr}");
    let remote = brain_gateway::serve::assemble(&config, &[brain_gateway::serve::Service::Gateway])
        .await
        .unwrap()
        .app
        .unwrap();
    assert!(remote.auth.is_none());
    let principal = remote
        .state
        .authenticator
        .authenticate(Some(&format!("Bearer {}", owner.access)))
        .await
        .unwrap();
    assert_eq!(principal.tenant.to_string(), owner.tenant);
    let bad = remote
        .state
        .authenticator
        .authenticate(Some("Bearer x.y.z"))
        .await
        .unwrap_err();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}
