//! `/v1/connectors…` through the gateway: the registry with valid schemas, connecting a
//! WordPress site (a local fake speaking the WP REST API), masked read-back, validation
//! errors, idempotent actions and disconnecting.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, call, get, post};

async fn owner_token(app: &TestApp) -> String {
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": "Connectors Co", "email": "owner@connectors.test", "password": "correct horse battery staple"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn action(
    app: &TestApp,
    token: &str,
    uri: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.gateway.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn connectors_list_connect_act_and_disconnect() {
    let app = TestApp::new().await;
    let token = owner_token(&app).await;

    let list = get(&app.gateway, "/v1/connectors", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let connectors = list.body.as_array().unwrap();
    assert_eq!(connectors.len(), 13);
    for c in connectors {
        assert_eq!(c["status"], "disconnected");
        for a in c["actions"].as_array().unwrap() {
            jsonschema::meta::validate(&a["parameters"]).unwrap();
        }
    }
    assert_eq!(
        get(&app.gateway, "/v1/connectors/myspace", Some(&token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app.gateway, "/v1/connectors", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let site = MockServer::start().await;
    let auth = format!("Basic {}", {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("editor:wp-app-password-9")
    });
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&site)
        .await;

    let missing = call(
        &app.gateway,
        Method::PUT,
        "/v1/connectors/wordpress/connection",
        Some(&token),
        Some(json!({"credentials": {"site_url": site.uri(), "username": "editor"}})),
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        missing.body["error"]["code"],
        "invalid_connector_credentials"
    );
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application_password")
    );

    let connected = call(
        &app.gateway,
        Method::PUT,
        "/v1/connectors/wordpress/connection",
        Some(&token),
        Some(json!({"credentials": {"site_url": site.uri(), "username": "editor", "application_password": "wp-app-password-9"}})),
    )
    .await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    assert_eq!(connected.body["status"], "connected");
    assert_eq!(connected.body["fields"]["application_password"], "********");
    assert!(!connected.body.to_string().contains("wp-app-password-9"));

    let (status, body) = action(
        &app,
        &token,
        "/v1/connectors/wordpress/actions/create_post",
        "k1",
        json!({"title": 7}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_arguments");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("title"),
        "{body}"
    );

    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": 44, "status": "draft"})),
        )
        .expect(1)
        .mount(&site)
        .await;
    for _ in 0..2 {
        let (status, body) = action(
            &app,
            &token,
            "/v1/connectors/wordpress/actions/create_post",
            "retry-1",
            json!({"title": "Hi", "content": "there"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], 44);
    }

    let shown = get(&app.gateway, "/v1/connectors/wordpress", Some(&token)).await;
    assert_eq!(shown.body["status"], "connected");
    let gone = call(
        &app.gateway,
        Method::DELETE,
        "/v1/connectors/wordpress/connection",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(gone.body["status"], "disconnected");
    let read = get(
        &app.gateway,
        "/v1/connectors/wordpress/resources/posts",
        Some(&token),
    )
    .await;
    assert_eq!(read.status, StatusCode::CONFLICT);
    assert_eq!(read.body["error"]["code"], "not_connected");
}
