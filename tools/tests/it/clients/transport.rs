//! What every client gets from the shared transport: retries on rate limits and 5xx, OAuth
//! token refresh, and credential errors from each platform's way of rejecting a token.

use brain_auth::{Code, ErrorCode};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::{graph_path, ok, q};
use crate::harness::Harness;

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after_and_5xx_with_backoff() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "1"))
        .respond_with(ok(json!({"results": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect("hubspot", &[("access_token", "pat-na1-rate-limit")])
        .await;

    // First answer 429 with Retry-After: 1, then 200.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(json!({"status": "error", "message": "You have reached your secondly limit.", "category": "RATE_LIMITS"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ok(json!({"results": [{"id": "1"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    let started = std::time::Instant::now();
    let deals = h
        .service
        .resource(h.tenant, "hubspot", "deals", &q(&[]))
        .await
        .unwrap();
    assert_eq!(deals["results"][0]["id"], "1");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "Retry-After honoured"
    );

    // A 503 on a read is retried; the harness allows 3 attempts in all.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "7"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "hubspot", "contacts", &q(&[("limit", "7")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ConnectorError);

    // A Retry-After beyond the cap is not slept through: the caller hears rate_limited.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .action(
            h.tenant,
            "hubspot",
            "create_contact",
            json!({"email": "x@example.com"}),
            None,
        )
        .await
        .unwrap_err();
    match err {
        brain_tools::ToolError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(120)));
        }
        other => panic!("expected rate_limited, got {other}"),
    }

    // A 5xx on a non-idempotent write is NOT retried: it may have been applied.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "hubspot",
            "create_deal",
            json!({"dealname": "Once"}),
            None,
        )
        .await
        .unwrap_err();
}

#[tokio::test]
async fn oauth_tokens_are_refreshed_after_expiry_and_after_a_401() {
    let h = Harness::new().await;
    let mut n = 0;
    for token in ["tok-1", "tok-2", "tok-3"] {
        n += 1;
        // Each token is handed out once, in order; 61 s of life is 1 s in the cache.
        Mock::given(method("POST"))
            .and(path("/oauth/v2/token"))
            .respond_with(ok(json!({"access_token": token, "expires_in": 61})))
            .up_to_n_times(1)
            .with_priority(n)
            .expect(1)
            .mount(&h.server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/crm/v8/users"))
        .respond_with(ok(json!({"users": []})))
        .mount(&h.server)
        .await;
    h.connect(
        "zoho-crm",
        &[
            ("data_centre", "in"),
            ("client_id", "c-1"),
            ("client_secret", "cs-123456"),
            ("refresh_token", "rt-123456"),
        ],
    )
    .await;

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    Mock::given(method("GET"))
        .and(path("/crm/v8/Contacts"))
        .and(header("authorization", "Zoho-oauthtoken tok-2"))
        .respond_with(ok(json!({"data": [{"id": "1"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "zoho-crm", "Contacts", &q(&[]))
        .await
        .unwrap();

    // The platform revokes the token: the connection turns `error` and the token is dropped,
    // so the next call refreshes instead of reusing it.
    Mock::given(method("GET"))
        .and(path("/crm/v8/Deals"))
        .and(header("authorization", "Zoho-oauthtoken tok-2"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code": "INVALID_TOKEN", "message": "invalid oauth token", "status": "error"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "zoho-crm", "Deals", &q(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ConnectorUnauthorized);
    assert_eq!(
        h.service.get(h.tenant, "zoho-crm").await.unwrap().status,
        brain_tools::ConnectionStatus::Error
    );
    Mock::given(method("GET"))
        .and(path("/crm/v8/Deals"))
        .and(header("authorization", "Zoho-oauthtoken tok-3"))
        .respond_with(ok(json!({"data": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "zoho-crm", "Deals", &q(&[("page", "2")]))
        .await
        .unwrap();
    // That success proved the credentials again.
    let view = h.service.get(h.tenant, "zoho-crm").await.unwrap();
    assert_eq!(view.status, brain_tools::ConnectionStatus::Connected);
    assert!(view.last_error.is_none());
}

#[tokio::test]
async fn rejected_tokens_in_platform_dialects_are_credential_errors() {
    let h = Harness::new().await;
    // Google's token endpoint answers a revoked refresh token with 400 invalid_grant.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})))
        .expect(1)
        .mount(&h.server)
        .await;
    let creds = [
        ("client_id", "id.apps.googleusercontent.com"),
        ("client_secret", "GOCSPX-x"),
        ("refresh_token", "1//revoked"),
        ("developer_token", "dev"),
        ("customer_id", "1234567890"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let err = h
        .service
        .connect(h.tenant, "google-ads", creds)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidConnectorCredentials, "{err}");

    // Meta's Graph API answers an expired token with 400 and error code 190.
    Mock::given(method("GET"))
        .and(path(graph_path("me")))
        .respond_with(ok(json!({"id": "1", "name": "x"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "meta-ads",
        &[
            ("access_token", "EAAB-expiring"),
            ("ad_account_id", "act_9"),
        ],
    )
    .await;
    Mock::given(method("GET"))
        .and(path(graph_path("act_9/campaigns")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: Session has expired.",
            "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "A1"
        }})))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "meta-ads", "campaigns", &q(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ConnectorUnauthorized);
    let view = h.service.get(h.tenant, "meta-ads").await.unwrap();
    assert_eq!(view.status, brain_tools::ConnectionStatus::Error);

    // Slack answers a revoked bot token with HTTP 200 and `ok: false`.
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ok(json!({"ok": false, "error": "invalid_auth"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let creds = [("bot_token", "xoxb-revoked-0000")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let err = h
        .service
        .connect(h.tenant, "slack", creds)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidConnectorCredentials);
}
