//! Edge protections: rate limits per tenant and per API key, body limits, security headers
//! and CORS.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use crate::harness::{TestApp, get, post};

async fn owner_token(app: &TestApp, name: &str) -> String {
    let email = format!("owner-{}@limits.test", uuid::Uuid::new_v4().simple());
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": "correct horse battery staple"}),
    )
    .await;
    reply.body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_api_key_gets_exactly_its_rate_then_429_with_retry_after() {
    let app = TestApp::with_config(|c| c.rate_limit_api_key_per_minute = 5).await;
    let owner = owner_token(&app, "Limits").await;
    let key = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&owner),
        json!({"name": "hot", "scopes": ["audit:read"]}),
    )
    .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let reply = get(&app.gateway, "/v1/audit", Some(&key)).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(reply.body["error"]["code"], "rate_limited");
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let retry_after: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The owner's own requests count against the tenant, not the key: still fine.
    assert_eq!(
        get(&app.gateway, "/v1/audit", Some(&owner)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_tenant_is_limited_across_all_its_callers() {
    let app = TestApp::with_config(|c| c.rate_limit_tenant_per_minute = 3).await;
    let owner = owner_token(&app, "Tenant limit").await;
    let other = owner_token(&app, "Other tenant").await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                get(&app.gateway, "/v1/audit", Some(&owner))
                    .await
                    .status
                    .as_u16(),
            );
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(
        get(&app.gateway, "/v1/audit", Some(&other)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_and_nothing_is_written() {
    let app = TestApp::with_config(|c| c.max_body_bytes = 1024).await;
    assert_eq!(app.config.max_body_bytes, 1024);
    let owner = owner_token(&app, "Bodies").await;
    let big = json!({"name": "x".repeat(4096), "scopes": ["chat"]});
    let reply = post(&app.gateway, "/v1/integrations/api-keys", Some(&owner), big).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    let keys = get(&app.gateway, "/v1/integrations/api-keys", Some(&owner)).await;
    assert_eq!(keys.body["api_keys"], json!([]));
}

#[tokio::test]
async fn security_headers_and_cors_for_the_portal_only() {
    let app = TestApp::new().await;
    let reply = get(&app.gateway, "/healthz", None).await;
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert!(reply.headers.contains_key("content-security-policy"));

    let preflight = |origin: &'static str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/audit")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app
        .gateway
        .clone()
        .oneshot(preflight("http://127.0.0.1:3003"))
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3003"
    );
    let refused = app
        .gateway
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    // The allowed origin is fixed: a browser on another origin sees a mismatch and refuses.
    let granted = refused.headers().get("access-control-allow-origin");
    assert!(
        granted.is_none_or(|o| o == "http://127.0.0.1:3003"),
        "{granted:?}"
    );
}
