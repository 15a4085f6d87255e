//! Managing webhooks: creation and its secret, validation, tenant isolation, the lookup
//! function, deletion and recorded delivery outcomes.

use brain_auth::{Code, ErrorCode};
use std::io::Write;
use std::sync::{Arc, Mutex};

use brain_auth::TenantId;
use brain_auth::secrets::{SecretError, SecretMap, SecretPath, SecretStore};
use brain_tools::{NewWebhook, ToolError, WebhookService};
use serde_json::json;
use uuid::Uuid;

use super::{delivery_rows, new_webhook, now, service, shopify_headers};
use crate::harness::Harness;

async fn other_tenant(h: &Harness) -> TenantId {
    let id: Uuid =
        sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, 'B') RETURNING id")
            .bind(format!("b{}", &Uuid::new_v4().simple().to_string()[..12]))
            .fetch_one(&h.db.owner)
            .await
            .unwrap();
    TenantId(id)
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

#[tokio::test]
async fn create_returns_the_secret_once_and_keeps_it_out_of_postgres_and_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new().await;
    let svc = service(&h);
    let created = svc
        .create(h.tenant, new_webhook("shopify", &[], None))
        .await
        .unwrap();
    let id = created.webhook.id;
    assert!(
        created.secret.starts_with("whsec_brain_"),
        "{}",
        created.secret
    );
    assert_eq!(created.secret.len(), "whsec_brain_".len() + 64);
    assert!(!format!("{created:?}").contains(&created.secret));
    assert_eq!(created.webhook.connector, "shopify");
    assert_eq!(created.webhook.status, "active");
    assert_eq!(created.webhook.deliveries_ok, 0);
    assert!(created.webhook.last_delivery_at.is_none());

    // A platform-issued secret is kept as given.
    const STRIPE_SECRET: &str = "whsec_platform_issued_5d2b9c";
    let stripe = svc
        .create(h.tenant, new_webhook("stripe", &[], Some(STRIPE_SECRET)))
        .await
        .unwrap();
    assert_eq!(stripe.secret, STRIPE_SECRET);

    // Postgres holds only the Vault path…
    for (webhook, secret) in [
        (id, created.secret.as_str()),
        (stripe.webhook.id, STRIPE_SECRET),
    ] {
        let (row, secret_ref): (String, String) =
            sqlx::query_as("SELECT row_to_json(w)::text, secret_ref FROM webhooks w WHERE id = $1")
                .bind(webhook)
                .fetch_one(&h.db.owner)
                .await
                .unwrap();
        assert!(!row.contains(secret), "secret in the row: {row}");
        assert_eq!(
            secret_ref,
            format!("tenants/{}/webhooks/{webhook}", h.tenant)
        );
        // …and OpenBao the secret.
        let stored = h
            .secrets
            .get(&SecretPath::parse(&secret_ref).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored["secret"].expose(), secret);
    }

    // Read-backs never show it again.
    let listed = serde_json::to_string(&svc.list(h.tenant).await.unwrap()).unwrap();
    let one = serde_json::to_string(&svc.get(h.tenant, id).await.unwrap()).unwrap();
    for shown in [&listed, &one] {
        assert!(!shown.contains(&created.secret) && !shown.contains(STRIPE_SECRET));
        assert!(!shown.contains("secret"), "{shown}");
    }
    assert_eq!(svc.list(h.tenant).await.unwrap().len(), 2);

    // A delivery (accepted and refused) logs no secret either.
    let body = br#"{"id":1}"#;
    svc.receive(
        id,
        &shopify_headers(&created.secret, body, "orders/create", "d-1"),
        body,
        now(),
    )
    .await
    .unwrap();
    svc.receive(
        id,
        &shopify_headers("wrong-secret", body, "orders/create", "d-2"),
        body,
        now(),
    )
    .await
    .unwrap_err();
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("webhook created"), "{logged}");
    assert!(!logged.contains(&created.secret) && !logged.contains(STRIPE_SECRET));
}

#[tokio::test]
async fn create_validates_connector_events_and_secret() {
    let h = Harness::new().await;
    let svc = service(&h);
    let err = svc
        .create(h.tenant, new_webhook("myspace", &[], None))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::UnknownConnector(_)), "{err}");
    for events in [
        vec![""],
        vec!["orders create"],
        vec!["shopify."],
        vec!["orders/create;drop"],
    ] {
        let err = svc
            .create(h.tenant, new_webhook("shopify", &events, None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidWebhook, "{events:?}");
    }
    let long = "x".repeat(201);
    let too_many: Vec<String> = (0..51).map(|i| format!("e{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    for events in [vec![long.as_str()], too_many] {
        let err = svc
            .create(h.tenant, new_webhook("shopify", &events, None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidWebhook);
    }
    for secret in ["short", "with\nnewline", &"s".repeat(513)] {
        let err = svc
            .create(h.tenant, new_webhook("stripe", &[], Some(secret)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidWebhook);
        assert!(!err.to_string().contains(secret));
    }
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
        .fetch_one(&h.db.owner)
        .await
        .unwrap();
    assert_eq!(none, 0);

    // Both spellings of an event are accepted and stored in the full form, once.
    let created = svc
        .create(
            h.tenant,
            new_webhook(
                "shopify",
                &[
                    "orders/create",
                    "shopify.orders/create",
                    "shopify.refunds/create",
                ],
                None,
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        created.webhook.events,
        ["shopify.orders/create", "shopify.refunds/create"]
    );

    // The API shape refuses unknown fields.
    let parsed: Result<NewWebhook, _> =
        serde_json::from_value(json!({"connector": "stripe", "url": "https://x"}));
    assert!(parsed.is_err());
    let parsed: NewWebhook = serde_json::from_value(json!({"connector": "stripe"})).unwrap();
    assert!(parsed.events.is_empty() && parsed.secret.is_none());
}

/// A secret store that is down.
struct Unavailable;

#[async_trait::async_trait]
impl SecretStore for Unavailable {
    async fn put(&self, _: &SecretPath, _: &SecretMap) -> Result<(), SecretError> {
        Err(SecretError::Refused { status: 503 })
    }
    async fn get(&self, _: &SecretPath) -> Result<Option<SecretMap>, SecretError> {
        Err(SecretError::Refused { status: 503 })
    }
    async fn destroy(&self, _: &SecretPath) -> Result<(), SecretError> {
        Err(SecretError::Refused { status: 503 })
    }
}

#[tokio::test]
async fn a_failing_secret_store_leaves_no_webhook_row() {
    let h = Harness::new().await;
    let svc = WebhookService::new(h.db.app.clone(), Arc::new(Unavailable));
    let err = svc
        .create(h.tenant, new_webhook("stripe", &[], Some("whsec_abcdefgh")))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Secrets(_)), "{err}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
        .fetch_one(&h.db.owner)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn tenants_cannot_reach_each_others_webhooks() {
    let h = Harness::new().await;
    let svc = service(&h);
    let b = other_tenant(&h).await;
    let created = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap();
    let id = created.webhook.id;
    let body = br#"{"id":1}"#;
    let received = svc
        .receive(
            id,
            &shopify_headers("shpss_app_secret_123", body, "orders/create", "x-1"),
            body,
            now(),
        )
        .await
        .unwrap();
    let row = received.events[0].delivery_row;

    assert!(matches!(
        svc.get(b, id).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));
    assert!(matches!(
        svc.delete(b, id).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));
    assert!(svc.list(b).await.unwrap().is_empty());
    assert!(matches!(
        svc.mark_processed(b, row, Ok(())).await.unwrap_err(),
        ToolError::DeliveryNotFound
    ));
    // Tenant A's webhook, secret and delivery are untouched.
    assert_eq!(svc.get(h.tenant, id).await.unwrap().id, id);
    let path = SecretPath::tenant(h.tenant, "webhooks", &id.to_string()).unwrap();
    assert!(h.secrets.get(&path).await.unwrap().is_some());
    assert_eq!(delivery_rows(&h).await[0].3, "received");
}

#[tokio::test]
async fn unknown_disabled_and_deleted_webhooks_are_not_found() {
    let h = Harness::new().await;
    let svc = service(&h);
    let body = br#"{"id":1}"#;
    let hdrs = shopify_headers("shpss_app_secret_123", body, "orders/create", "n-1");
    let err = svc
        .receive(Uuid::now_v7(), &hdrs, body, now())
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::WebhookNotFound), "{err}");
    assert_eq!(err.code(), Code::WebhookNotFound);
    assert!(matches!(
        svc.get(h.tenant, Uuid::now_v7()).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));

    let id = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap()
        .webhook
        .id;
    svc.receive(id, &hdrs, body, now()).await.unwrap();
    sqlx::query("UPDATE webhooks SET status = 'disabled' WHERE id = $1")
        .bind(id)
        .execute(&h.db.owner)
        .await
        .unwrap();
    let again = shopify_headers("shpss_app_secret_123", body, "orders/create", "n-2");
    assert!(matches!(
        svc.receive(id, &again, body, now()).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));
    assert_eq!(svc.get(h.tenant, id).await.unwrap().status, "disabled");

    // Deleting removes the row, its deliveries and its secret.
    svc.delete(h.tenant, id).await.unwrap();
    assert!(matches!(
        svc.get(h.tenant, id).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));
    assert!(delivery_rows(&h).await.is_empty());
    let path = SecretPath::tenant(h.tenant, "webhooks", &id.to_string()).unwrap();
    assert!(h.secrets.get(&path).await.unwrap().is_none());
    assert!(matches!(
        svc.receive(id, &again, body, now()).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));
    assert!(matches!(
        svc.delete(h.tenant, id).await.unwrap_err(),
        ToolError::WebhookNotFound
    ));
}

#[tokio::test]
async fn the_lookup_function_is_for_the_app_role_only() {
    let h = Harness::new().await;
    let granted: Vec<String> = sqlx::query_scalar(
        "SELECT grantee::regrole::text FROM pg_proc p, aclexplode(p.proacl) a \
         WHERE p.proname = 'webhook_lookup' AND a.privilege_type = 'EXECUTE' \
           AND a.grantee <> p.proowner",
    )
    .fetch_all(&h.db.owner)
    .await
    .unwrap();
    assert_eq!(granted, ["brain_app"]);
    // The app role sees no webhook rows directly without a tenant…
    let svc = service(&h);
    let id = svc
        .create(h.tenant, new_webhook("stripe", &[], Some("whsec_abcdefgh")))
        .await
        .unwrap()
        .webhook
        .id;
    let direct: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
        .fetch_one(&h.db.app)
        .await
        .unwrap();
    assert_eq!(direct, 0);
    // …but finds this one through the lookup, without its secret.
    let (tenant, secret_ref): (Uuid, String) =
        sqlx::query_as("SELECT tenant_id, secret_ref FROM webhook_lookup($1)")
            .bind(id)
            .fetch_one(&h.db.app)
            .await
            .unwrap();
    assert_eq!(tenant, h.tenant.0);
    assert!(secret_ref.starts_with("tenants/"));
}

#[tokio::test]
async fn mark_processed_records_the_outcome() {
    let h = Harness::new().await;
    let svc = service(&h);
    let id = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap()
        .webhook
        .id;
    let mut rows = Vec::new();
    for (n, delivery) in ["p-1", "p-2"].into_iter().enumerate() {
        let body = format!(r#"{{"id":{n}}}"#);
        let hdrs = shopify_headers(
            "shpss_app_secret_123",
            body.as_bytes(),
            "orders/create",
            delivery,
        );
        let received = svc
            .receive(id, &hdrs, body.as_bytes(), now())
            .await
            .unwrap();
        rows.push(received.events[0].delivery_row);
    }
    svc.mark_processed(h.tenant, rows[0], Ok(())).await.unwrap();
    svc.mark_processed(
        h.tenant,
        rows[1],
        Err("rule `vip` failed: step 0 timed out".to_owned()),
    )
    .await
    .unwrap();
    let states: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT status, error FROM webhook_deliveries ORDER BY delivery_id")
            .fetch_all(&h.db.owner)
            .await
            .unwrap();
    assert_eq!(
        states,
        [
            ("processed".to_owned(), None),
            (
                "failed".to_owned(),
                Some("rule `vip` failed: step 0 timed out".to_owned())
            )
        ]
    );
    assert!(matches!(
        svc.mark_processed(h.tenant, Uuid::now_v7(), Ok(()))
            .await
            .unwrap_err(),
        ToolError::DeliveryNotFound
    ));
}
