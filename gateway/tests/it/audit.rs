//! The audit trail: written by handlers and by the middleware, chained, listed, verified,
//! tamper-evident, and published to Redis through an outbox that survives a Redis outage.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use brain_auth::TenantId;
use brain_auth::audit;
use serde_json::{Value, json};

use crate::harness::{TestApp, call, get, post};

const PASSWORD: &str = "correct horse battery staple";

async fn signup(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (
        reply.body["tenant"]["slug"].as_str().unwrap().to_owned(),
        reply.body["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn create_key(app: &TestApp, token: &str, name: &str) -> String {
    let reply = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(token),
        json!({"name": name, "scopes": ["chat"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn tenant_id(app: &TestApp, slug: &str) -> TenantId {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(&app.db.owner)
        .await
        .unwrap();
    TenantId(id)
}

#[tokio::test]
async fn writes_build_a_chain_that_lists_with_a_cursor_and_verifies() {
    let app = TestApp::new().await;
    let (slug, owner) = signup(&app, "Chain", "owner@chain.test").await;
    let first = create_key(&app, &owner, "one").await;
    create_key(&app, &owner, "two").await;
    create_key(&app, &owner, "three").await;
    let revoke = call(
        &app.gateway,
        Method::DELETE,
        &format!("/v1/integrations/api-keys/{first}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);

    let page = get(&app.gateway, "/v1/audit?limit=2", Some(&owner)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let actions: Vec<&str> = page.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.revoke", "api_key.create"]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = get(
        &app.gateway,
        &format!("/v1/audit?limit=50&cursor={cursor}"),
        Some(&owner),
    )
    .await;
    let actions: Vec<&str> = rest.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.create", "api_key.create", "auth.signup"]);
    assert!(rest.body["next_cursor"].is_null());
    let event = &rest.body["events"][0];
    assert_eq!(event["actor"]["kind"], "user");
    assert_eq!(event["prev_hash"].as_str().unwrap().len(), 64);
    // Each event carries the hash of the one before.
    assert_eq!(
        page.body["events"][1]["prev_hash"],
        rest.body["events"][0]["hash"]
    );

    let created = get(
        &app.gateway,
        "/v1/audit?action=api_key.create",
        Some(&owner),
    )
    .await;
    assert_eq!(created.body["events"].as_array().unwrap().len(), 3);
    let bad = get(&app.gateway, "/v1/audit?limit=0", Some(&owner)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let tenant = tenant_id(&app, &slug).await;
    let mut tx = brain_migrations::begin_tenant(&app.db.app, tenant)
        .await
        .unwrap();
    let (checked, broken) = audit::verify_chain(&mut tx, tenant).await.unwrap();
    assert_eq!((checked, broken), (5, None));
}

#[tokio::test]
async fn a_viewer_cannot_read_the_audit_log() {
    let app = TestApp::new().await;
    let (slug, owner) = signup(&app, "Viewer", "owner@viewer.test").await;
    post(
        &app.auth,
        "/v1/users",
        Some(&owner),
        json!({"email": "v@viewer.test", "role": "viewer", "password": PASSWORD}),
    )
    .await;
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "v@viewer.test", "password": PASSWORD, "tenant": slug}),
    )
    .await;
    let viewer = login.body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&app.gateway, "/v1/audit", Some(viewer)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_middleware_audits_successful_writes_it_is_not_told_about() {
    // `PATCH /v1/tenant` records nothing itself: its event comes from the middleware.
    let app = TestApp::new().await;
    let (slug, owner) = signup(&app, "Widgets", "owner@widgets.test").await;
    let ok = call(
        &app.gateway,
        Method::PATCH,
        "/v1/tenant",
        Some(&owner),
        Some(json!({"name": "Widgets Ltd"})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let failed = call(
        &app.gateway,
        Method::PATCH,
        "/v1/tenant",
        Some(&owner),
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        get(&app.gateway, "/v1/tenant", Some(&owner)).await.status,
        StatusCode::OK
    );

    let tenant = tenant_id(&app, &slug).await;
    let events: Vec<(String, String, String, Value)> = sqlx::query_as(
        "SELECT action, resource, actor_kind, details FROM audit_events \
         WHERE tenant_id = $1 AND action <> 'auth.signup' ORDER BY seq",
    )
    .bind(tenant.0)
    .fetch_all(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(events.len(), 1, "only the successful write: {events:?}");
    assert_eq!(events[0].0, "tenant.update");
    assert_eq!(events[0].1, "tenant");
    assert_eq!(events[0].2, "user");
    assert_eq!(events[0].3["route"], "/v1/tenant");
}

fn brain(app: &TestApp, args: &[&str]) -> (bool, String) {
    let config = crate::harness::test_config(&app.db);
    let owner = crate::harness::required("BRAIN_MIGRATE_DATABASE_URL");
    let (base, _) = owner.rsplit_once('/').unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_brain"))
        .args(args)
        .env("DATABASE_URL", config.database_url.unwrap().expose())
        .env(
            "BRAIN_MIGRATE_DATABASE_URL",
            format!("{base}/{}", app.db.name),
        )
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn brain_audit_verify_names_the_first_altered_event() {
    let app = TestApp::new().await;
    let (slug, owner) = signup(&app, "Tamper", "owner@tamper.test").await;
    for name in ["a", "b", "c"] {
        create_key(&app, &owner, name).await;
    }
    // Details whose keys are neither sorted nor in jsonb's order hash as they read back.
    let tenant = tenant_id(&app, &slug).await;
    let mut tx = brain_migrations::begin_tenant(&app.db.app, tenant)
        .await
        .unwrap();
    let details = json!({"zeta": 1, "alpha": {"second": [{"y": 2, "x": 1}], "first": true}});
    let event = audit::AuditEvent {
        actor_kind: "system",
        actor_id: "test".into(),
        action: "test.unordered",
        resource: "test".into(),
        details,
    };
    audit::append(&mut tx, tenant, event).await.unwrap();
    tx.commit().await.unwrap();
    let (ok, out) = brain(&app, &["audit", "verify", "--tenant", &slug]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{slug}: ok (5 events)")), "{out}");

    // Someone with table-owner rights edits history behind the trigger's back.
    let mut conn = app.db.owner_connection().await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; \
         UPDATE audit_events SET details = '{\"name\": \"innocent\"}' WHERE seq = 3; \
         ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (ok, out) = brain(&app, &["audit", "verify"]);
    assert!(!ok, "verification must fail: {out}");
    assert!(out.contains(&format!("{slug}: BROKEN at seq 3")), "{out}");
    let mut tx = brain_migrations::begin_tenant(&app.db.app, tenant)
        .await
        .unwrap();
    let (before, broken) = audit::verify_chain(&mut tx, tenant).await.unwrap();
    assert_eq!(before, 2);
    assert!(broken.unwrap().reason.contains("altered"));
}

/// A Redis of this test's own, so it can be stopped without disturbing anyone.
struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (installed by cargo xtask infra up)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn unpublished(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE published_at IS NULL")
        .fetch_one(&app.db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn events_reach_the_stream_and_survive_a_redis_outage() {
    let app = TestApp::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = PrivateRedis::start(port);
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut manager = redis::aio::ConnectionManager::new(client.clone())
        .await
        .unwrap();

    let (_, owner) = signup(&app, "Outbox", "owner@outbox.test").await;
    create_key(&app, &owner, "before").await;
    assert_eq!(
        audit::publish_pending(&app.db.app, &mut manager, 100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(unpublished(&app).await, 0);
    let stream: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(audit::STREAM)
        .arg("-")
        .arg("+")
        .query_async(&mut manager)
        .await
        .unwrap();
    let actions: Vec<&str> = stream
        .iter()
        .filter_map(|(_, fields)| {
            fields
                .iter()
                .find(|(k, _)| k == "action")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    assert_eq!(actions, ["auth.signup", "api_key.create"]);

    // Redis goes away; writes keep succeeding and wait in the outbox.
    let port = redis.stop();
    create_key(&app, &owner, "during-outage").await;
    assert!(
        audit::publish_pending(&app.db.app, &mut manager, 100)
            .await
            .is_err()
    );
    assert_eq!(unpublished(&app).await, 1, "the event is kept, not lost");

    // Redis returns (empty: it kept nothing); the outbox catches up.
    let _redis = PrivateRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match audit::publish_pending(&app.db.app, &mut manager, 100).await {
            Ok(n) => {
                assert_eq!(n, 1);
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "never reconnected: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(unpublished(&app).await, 0);
    let len: usize = redis::cmd("XLEN")
        .arg(audit::STREAM)
        .query_async(&mut manager)
        .await
        .unwrap();
    assert_eq!(len, 1);
}
