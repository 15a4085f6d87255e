use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use brain_gateway::config::Secret;
use serde_json::Value;
use tower::ServiceExt;

use crate::harness::{TestApp, required};

/// A free local port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A Redis of this test's own, so the test can stop it under a running gateway.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = closed_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt: redis-server; `cargo xtask infra up` installs it)");
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn get(router: &Router, path: &str) -> (StatusCode, String) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn readyz_is_200_when_all_four_dependencies_answer() {
    let app = TestApp::new().await;
    let router = app.gateway.clone();
    let (status, body) = get(&router, "/readyz").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"postgres": "ok", "redis": "ok", "vault": "ok", "temporal": "ok"})
    );
}

#[tokio::test]
async fn readyz_is_503_naming_redis_when_redis_is_down() {
    let mut redis = OwnRedis::start().await;
    let app = TestApp::with_config(|config| {
        config.redis_url = Some(Secret::new(redis.url.clone()));
        config.readiness_timeout_secs = 3;
    })
    .await;
    assert_eq!(get(&app.gateway, "/readyz").await.0, StatusCode::OK);
    redis.stop();
    let (status, body) = get(&app.gateway, "/readyz").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["redis"], "unreachable");
    for ok in ["postgres", "vault", "temporal"] {
        assert_eq!(body[ok], "ok", "{body}");
    }
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no addresses in the reply: {body}"
    );
}

#[tokio::test]
async fn readyz_names_temporal_when_the_address_is_not_a_temporal_server() {
    // Redis speaks RESP, not gRPC: reachable, but not a healthy Temporal.
    let redis_addr = required("REDIS_URL")
        .trim_start_matches("redis://")
        .to_owned();
    let app = TestApp::with_config(|config| config.temporal_address = Some(redis_addr)).await;
    let (status, body) = get(&app.gateway, "/readyz").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(body["temporal"], "ok", "{body}");
    assert_eq!(body["redis"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_per_route_template() {
    let app = TestApp::new().await;
    let router = app.gateway.clone();
    for _ in 0..3 {
        assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
    }
    assert_eq!(
        get(&router, "/no/such/route/12345").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, text) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let healthz = text
        .lines()
        .find(|l| l.starts_with("brain_http_requests_total") && l.contains("route=\"/healthz\""))
        .unwrap_or_else(|| panic!("no healthz counter in:\n{text}"));
    assert!(healthz.contains("status=\"200\"") && healthz.contains("service=\"gateway\""));
    assert!(healthz.ends_with(" 3"), "{healthz}");
    assert!(
        text.contains("route=\"unmatched\""),
        "unknown paths share one series"
    );
    assert!(!text.contains("12345"), "raw paths never become labels");
    assert!(text.contains("brain_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn unknown_routes_get_the_api_error_shape() {
    let app = TestApp::new().await;
    let router = app.gateway.clone();
    let (status, body) = get(&router, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/nothing")
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::new().await;
    let router = app.gateway.clone();
    let response = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id");
    assert_eq!(id.len(), 36, "a UUID");
    let response = router
        .oneshot(
            Request::get("/healthz")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-request-id"],
        "abc-123",
        "a caller's id is kept"
    );
}
