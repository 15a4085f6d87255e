//! The egress policy from outside: connector sites and task callbacks that point at loopback,
//! private, link-local (metadata) addresses or at a name resolving to loopback are refused
//! with a clear error, nothing is stored, and no connection reaches a listener on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{Method, StatusCode};
use brain_gateway::serve::{self, Service};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, call, get, post, signup};

/// A TCP listener that only counts the connections it accepts.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    async fn bind(addr: &str) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
        let port = listener.local_addr().ok()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Some(Self { port, accepted })
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The production policy, except that plain http is allowed: what is refused below is
/// refused for its address, not its scheme.
async fn strict_app() -> TestApp {
    TestApp::with_config(|c| {
        c.egress_allow = None;
        c.egress_allow_http = true;
    })
    .await
}

/// Hosts that must never be reached: loopback, private, metadata, IPv6 loopback and a name
/// resolving to loopback. The loopback ones carry the counting listeners' ports.
fn targets(v4: &Listener, v6: Option<&Listener>) -> Vec<String> {
    let v6_port = v6.map_or(v4.port, |l| l.port);
    vec![
        format!("127.0.0.1:{}", v4.port),
        "10.0.0.1".to_owned(),
        "169.254.169.254".to_owned(),
        format!("[::1]:{v6_port}"),
        format!("localhost:{}", v4.port),
    ]
}

fn assert_refused(reply: &crate::harness::Reply, code: &str, target: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{target}: {}",
        reply.body
    );
    assert_eq!(
        reply.body["error"]["code"], code,
        "{target}: {}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Brain only connects to public addresses"),
        "{target}: {message}"
    );
}

#[tokio::test]
async fn connector_sites_and_task_callbacks_on_internal_addresses_are_refused() {
    let app = strict_app().await;
    let v4 = Listener::bind("127.0.0.1:0").await.unwrap();
    let v6 = Listener::bind("[::1]:0").await;
    let owner = signup(&app, "Egress Co").await;
    let token = owner.token.as_str();
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(token),
        json!({"name": "Caller", "role": "Assistant", "goal": "Report back",
               "model": "openai:gpt-4o-mini"}),
    )
    .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    let agent = agent.body["id"].as_str().unwrap().to_owned();

    for target in targets(&v4, v6.as_ref()) {
        let connect = call(
            &app.gateway,
            Method::PUT,
            "/v1/connectors/wordpress/connection",
            Some(token),
            Some(
                json!({"credentials": {"site_url": format!("http://{target}"),
                                        "username": "editor",
                                        "application_password": "wp-app-password-9"}}),
            ),
        )
        .await;
        assert_refused(&connect, "egress_refused", &target);

        let task = post(
            &app.gateway,
            &format!("/v1/agents/{agent}/tasks"),
            Some(token),
            json!({"input": "x", "callback_url": format!("http://{target}/done")}),
        )
        .await;
        assert_refused(&task, "validation_failed", &target);
    }

    // Nothing stored: no connection, no task.
    let shown = get(&app.gateway, "/v1/connectors/wordpress", Some(token)).await;
    assert_eq!(shown.body["status"], "disconnected", "{}", shown.body);
    let tasks = get(&app.gateway, "/v1/tasks", Some(token)).await;
    assert_eq!(tasks.status, StatusCode::OK);
    assert_eq!(
        tasks.body["tasks"].as_array().map(Vec::len),
        Some(0),
        "{}",
        tasks.body
    );
    // Nothing reached loopback, and the service still answers.
    assert_eq!(v4.count(), 0);
    assert_eq!(v6.as_ref().map_or(0, Listener::count), 0);
    assert_eq!(
        get(&app.gateway, "/healthz", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn plain_http_sites_are_refused_unless_the_deployment_allows_them() {
    let app = TestApp::with_config(|c| {
        c.egress_allow = None;
        c.egress_allow_http = false;
    })
    .await;
    let owner = signup(&app, "Https Co").await;
    let connect = call(
        &app.gateway,
        Method::PUT,
        "/v1/connectors/woocommerce/connection",
        Some(&owner.token),
        Some(
            json!({"credentials": {"site_url": "http://shop.example.com",
                                    "consumer_key": "ck_1", "consumer_secret": "cs_secret_1"}}),
        ),
    )
    .await;
    assert_eq!(
        connect.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        connect.body
    );
    let message = connect.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("https://"), "{message}");
}

/// A site connected while its name pointed somewhere allowed, read after it points at
/// loopback (DNS rebinding, or a deployment that tightened its policy): the request is
/// refused when it connects, and the site never sees it.
#[tokio::test]
async fn a_connected_site_whose_name_now_leads_to_loopback_is_refused_on_connect() {
    let app = TestApp::new().await; // loopback allowed, as the tests' fakes need
    let site = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&site)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/posts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&site)
        .await;
    let owner = signup(&app, "Rebind Co").await;
    let port = site.address().port();
    let connected = call(
        &app.gateway,
        Method::PUT,
        "/v1/connectors/wordpress/connection",
        Some(&owner.token),
        Some(
            json!({"credentials": {"site_url": format!("http://localhost:{port}"),
                                    "username": "editor",
                                    "application_password": "wp-app-password-9"}}),
        ),
    )
    .await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    let before = site.received_requests().await.unwrap_or_default().len();

    // A second gateway on the same database and Vault (with its own auth service, which
    // verifies the same tokens), under the production policy.
    let mut strict = app.config.clone();
    strict.egress_allow = None;
    let gateway = serve::assemble(&strict, &[Service::Gateway, Service::Auth])
        .await
        .unwrap()
        .gateway
        .unwrap();
    let read = get(
        &gateway,
        "/v1/connectors/wordpress/resources/posts",
        Some(&owner.token),
    )
    .await;
    assert_refused(&read, "egress_refused", "localhost");
    assert_eq!(
        site.received_requests().await.unwrap_or_default().len(),
        before,
        "the refused read reached the site"
    );
    // The permissive gateway still reads it: the refusal was the policy's.
    let allowed = get(
        &app.gateway,
        "/v1/connectors/wordpress/resources/posts",
        Some(&owner.token),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
}
