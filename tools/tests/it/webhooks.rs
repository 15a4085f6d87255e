//! Inbound webhooks end to end on real Postgres and OpenBao: secrets only in OpenBao, each
//! platform's signature scheme (signed here with `hmac`/`sha2` directly, as the platform
//! would), replay windows, deduplication, event filters, tenant isolation and counters.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use brain_auth::TenantId;
use brain_auth::secrets::{SecretError, SecretMap, SecretPath, SecretStore};
use brain_tools::{NewWebhook, RequestMeta, ToolError, WebhookMetrics, WebhookService};
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::harness::Harness;

const BASE: &str = "https://brain.example.com";

fn service(h: &Harness) -> WebhookService {
    WebhookService::new(h.db.app.clone(), Arc::clone(&h.secrets)).with_public_base_url(BASE)
}

fn new_webhook(connector: &str, events: &[&str], secret: Option<&str>) -> NewWebhook {
    NewWebhook {
        connector: connector.to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: secret.map(str::to_owned),
    }
}

/// Postgres keeps microseconds; a whole-second clock compares equal after a round trip.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn shopify_headers(secret: &str, body: &[u8], topic: &str, id: &str) -> Vec<(String, String)> {
    let sig = b64(&hmac_sha256(secret, &[body]));
    headers(&[
        ("x-shopify-hmac-sha256", &sig),
        ("x-shopify-topic", topic),
        ("x-shopify-webhook-id", id),
        ("x-shopify-shop-domain", "demo.myshopify.com"),
        ("x-shopify-triggered-at", &now().to_rfc3339()),
    ])
}

fn generic_headers(
    secret: &str,
    body: &[u8],
    at: DateTime<Utc>,
    event: &str,
    id: &str,
) -> Vec<(String, String)> {
    let t = at.timestamp().to_string();
    let sig = format!(
        "sha256={}",
        hex(&hmac_sha256(secret, &[t.as_bytes(), b".", body]))
    );
    headers(&[
        ("x-brain-timestamp", &t),
        ("x-brain-signature", &sig),
        ("x-brain-event", event),
        ("x-brain-delivery", id),
    ])
}

async fn delivery_rows(h: &Harness) -> Vec<(String, String, Value, String)> {
    sqlx::query_as(
        "SELECT delivery_id, event, payload, status FROM webhook_deliveries ORDER BY received_at, id",
    )
    .fetch_all(&h.db.owner)
    .await
    .unwrap()
}

async fn other_tenant(h: &Harness) -> TenantId {
    let id: Uuid =
        sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, 'B') RETURNING id")
            .bind(format!("b{}", &Uuid::new_v4().simple().to_string()[..12]))
            .fetch_one(&h.db.owner)
            .await
            .unwrap();
    TenantId(id)
}

/// The counter as the registry exports it, so registration is checked too.
fn counter(registry: &prometheus::Registry, connector: &str, outcome: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    let series = format!(
        "brain_webhook_deliveries_total{{connector=\"{connector}\",outcome=\"{outcome}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.parse().unwrap())
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
        assert_eq!(err.code(), "invalid_webhook", "{events:?}");
    }
    let long = "x".repeat(201);
    let too_many: Vec<String> = (0..51).map(|i| format!("e{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    for events in [vec![long.as_str()], too_many] {
        let err = svc
            .create(h.tenant, new_webhook("shopify", &events, None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_webhook");
    }
    for secret in ["short", "with\nnewline", &"s".repeat(513)] {
        let err = svc
            .create(h.tenant, new_webhook("stripe", &[], Some(secret)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_webhook");
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
async fn a_signed_shopify_order_is_stored_and_returned() {
    let h = Harness::new().await;
    let registry = prometheus::Registry::new();
    let svc = service(&h).with_metrics(WebhookMetrics::new(&registry).unwrap());
    let created = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap();
    let body = br#"{"id":820982911946154508,"email":"jon@example.com","total_price":"199.00"}"#;
    let at = now();
    let mut hdrs = shopify_headers(
        "shpss_app_secret_123",
        body,
        "orders/create",
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    );
    hdrs.retain(|(name, _)| name != "x-shopify-triggered-at");
    hdrs.push((
        "x-shopify-triggered-at".to_owned(),
        (at - Duration::seconds(20)).to_rfc3339(),
    ));
    let received = svc
        .receive(created.webhook.id, &hdrs, body, at)
        .await
        .unwrap();

    assert_eq!(received.tenant, h.tenant);
    assert_eq!(received.webhook_id, created.webhook.id);
    assert_eq!(received.connector, "shopify");
    assert_eq!((received.duplicates, received.ignored), (0, 0));
    assert_eq!(received.events.len(), 1);
    let event = &received.events[0];
    assert_eq!(event.name, "shopify.orders/create");
    assert_eq!(event.delivery_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event.payload, payload);

    let rows = delivery_rows(&h).await;
    assert_eq!(
        rows,
        [(
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_owned(),
            "shopify.orders/create".to_owned(),
            payload,
            "received".to_owned()
        )]
    );
    let row_id: Uuid = sqlx::query_scalar("SELECT id FROM webhook_deliveries")
        .fetch_one(&h.db.owner)
        .await
        .unwrap();
    assert_eq!(row_id, event.delivery_row);

    let after = svc.get(h.tenant, created.webhook.id).await.unwrap();
    assert_eq!(after.deliveries_ok, 1);
    assert_eq!(after.deliveries_failed, 0);
    assert_eq!(after.last_delivery_at, Some(at));
    assert_eq!(counter(&registry, "shopify", "ok"), 1.0);
}

#[tokio::test]
async fn a_forged_signature_is_refused_and_nothing_is_stored() {
    let h = Harness::new().await;
    let registry = prometheus::Registry::new();
    let svc = service(&h).with_metrics(WebhookMetrics::new(&registry).unwrap());
    let id = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap()
        .webhook
        .id;
    let body = br#"{"id":1,"total_price":"1.00"}"#;
    let tampered = br#"{"id":1,"total_price":"0.01"}"#;
    let attempts = [
        // Signed with another secret.
        (
            shopify_headers("guessed-secret", body, "orders/create", "d-1"),
            &body[..],
        ),
        // Signed correctly, body altered on the way.
        (
            shopify_headers("shpss_app_secret_123", body, "orders/create", "d-2"),
            &tampered[..],
        ),
        // No signature at all.
        (
            headers(&[
                ("x-shopify-topic", "orders/create"),
                ("x-shopify-webhook-id", "d-3"),
            ]),
            &body[..],
        ),
        // Garbage in the signature header.
        (
            headers(&[
                ("x-shopify-hmac-sha256", "not base64!"),
                ("x-shopify-topic", "orders/create"),
                ("x-shopify-webhook-id", "d-4"),
            ]),
            &body[..],
        ),
    ];
    for (hdrs, sent) in &attempts {
        let err = svc.receive(id, hdrs, sent, now()).await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidSignature(_)), "{err}");
        assert_eq!(err.code(), "invalid_signature");
    }
    // A correctly signed but stale delivery (Shopify signs only the body).
    let mut stale = shopify_headers("shpss_app_secret_123", body, "orders/create", "d-5");
    stale.retain(|(name, _)| name != "x-shopify-triggered-at");
    stale.push((
        "x-shopify-triggered-at".to_owned(),
        (now() - Duration::minutes(6)).to_rfc3339(),
    ));
    let err = svc.receive(id, &stale, body, now()).await.unwrap_err();
    assert!(err.to_string().contains("replay window"), "{err}");

    assert!(delivery_rows(&h).await.is_empty());
    let after = svc.get(h.tenant, id).await.unwrap();
    assert_eq!(after.deliveries_ok, 0);
    assert_eq!(after.deliveries_failed, 5);
    assert!(after.last_delivery_at.is_none());
    assert_eq!(counter(&registry, "shopify", "invalid_signature"), 5.0);
}

#[tokio::test]
async fn the_same_delivery_id_twice_is_stored_once() {
    let h = Harness::new().await;
    let registry = prometheus::Registry::new();
    let svc = service(&h).with_metrics(WebhookMetrics::new(&registry).unwrap());
    let id = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap()
        .webhook
        .id;
    let body = br#"{"id":7}"#;
    let hdrs = shopify_headers("shpss_app_secret_123", body, "orders/create", "same-id");
    let first = svc.receive(id, &hdrs, body, now()).await.unwrap();
    assert_eq!((first.events.len(), first.duplicates), (1, 0));
    let second = svc.receive(id, &hdrs, body, now()).await.unwrap();
    assert!(second.events.is_empty());
    assert_eq!(second.duplicates, 1);
    assert_eq!(delivery_rows(&h).await.len(), 1);
    // Both requests were verified and acknowledged.
    assert_eq!(svc.get(h.tenant, id).await.unwrap().deliveries_ok, 2);
    assert_eq!(counter(&registry, "shopify", "ok"), 1.0);
    assert_eq!(counter(&registry, "shopify", "duplicate"), 1.0);

    // Shopify's event id serves when the webhook id header is absent.
    let other = br#"{"id":8}"#;
    let sig = b64(&hmac_sha256("shpss_app_secret_123", &[other]));
    let by_event_id = headers(&[
        ("x-shopify-hmac-sha256", &sig),
        ("x-shopify-topic", "orders/updated"),
        ("x-shopify-event-id", "evt-98880550"),
        ("x-shopify-triggered-at", &now().to_rfc3339()),
    ]);
    let third = svc.receive(id, &by_event_id, other, now()).await.unwrap();
    assert_eq!(third.events[0].delivery_id, "evt-98880550");
}

/// Shopify signs only the body: the delivery id, topic and trigger time travel in headers
/// anyone holding one genuine delivery could change.
#[tokio::test]
async fn a_shopify_delivery_replayed_with_a_new_id_or_topic_or_no_time_is_refused() {
    let h = Harness::new().await;
    let registry = prometheus::Registry::new();
    let svc = service(&h).with_metrics(WebhookMetrics::new(&registry).unwrap());
    let id = svc
        .create(
            h.tenant,
            new_webhook("shopify", &[], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap()
        .webhook
        .id;
    let body = br#"{"id":42,"total_price":"950.00"}"#;
    let genuine = shopify_headers("shpss_app_secret_123", body, "orders/create", "d-1");
    let first = svc.receive(id, &genuine, body, now()).await.unwrap();
    assert_eq!(first.events.len(), 1);

    for (topic, delivery) in [("orders/create", "d-2"), ("refunds/create", "d-3")] {
        let replay = shopify_headers("shpss_app_secret_123", body, topic, delivery);
        let again = svc.receive(id, &replay, body, now()).await.unwrap();
        assert!(again.events.is_empty(), "{topic} {delivery} was stored");
        assert_eq!(again.duplicates, 1);
    }
    let mut untimed = shopify_headers("shpss_app_secret_123", body, "orders/create", "d-4");
    untimed.retain(|(name, _)| name != "x-shopify-triggered-at");
    let err = svc.receive(id, &untimed, body, now()).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidSignature(_)), "{err}");
    assert!(err.to_string().contains("x-shopify-triggered-at"), "{err}");

    let rows = delivery_rows(&h).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "d-1");
    // A different order from the same shop is a new delivery.
    let other = br#"{"id":43,"total_price":"12.00"}"#;
    let next = shopify_headers("shpss_app_secret_123", other, "orders/create", "d-5");
    assert_eq!(
        svc.receive(id, &next, other, now())
            .await
            .unwrap()
            .events
            .len(),
        1
    );
}

fn stripe_header(secret: &str, t: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = t.to_string();
    let sig = hex(&hmac_sha256(secret, &[ts.as_bytes(), b".", body]));
    headers(&[("stripe-signature", &format!("t={ts},v1={sig}"))])
}

#[tokio::test]
async fn stripe_events_inside_the_window_only() {
    let h = Harness::new().await;
    let svc = service(&h);
    const SECRET: &str = "whsec_stripe_endpoint_secret";
    let id = svc
        .create(h.tenant, new_webhook("stripe", &[], Some(SECRET)))
        .await
        .unwrap()
        .webhook
        .id;
    let body = serde_json::to_vec(&json!({
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_3N", "object": "payment_intent", "amount": 2000, "currency": "usd"}}
    }))
    .unwrap();
    let at = now();

    // Signed six minutes ago: a replay.
    let old = stripe_header(SECRET, at.timestamp() - 360, &body);
    let err = svc.receive(id, &old, &body, at).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidSignature(_)), "{err}");
    assert!(err.to_string().contains("tolerance"), "{err}");
    assert!(delivery_rows(&h).await.is_empty());

    let fresh = stripe_header(SECRET, at.timestamp() - 30, &body);
    let received = svc.receive(id, &fresh, &body, at).await.unwrap();
    let event = &received.events[0];
    assert_eq!(event.name, "stripe.payment_intent.succeeded");
    assert_eq!(event.delivery_id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    // The whole envelope is the payload, so rules address `data.object.amount`.
    assert_eq!(event.payload["data"]["object"]["amount"], 2000);
    assert_eq!(event.payload["type"], "payment_intent.succeeded");
    let after = svc.get(h.tenant, id).await.unwrap();
    assert_eq!((after.deliveries_ok, after.deliveries_failed), (1, 1));
}

fn hubspot_headers(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    at: DateTime<Utc>,
) -> Vec<(String, String)> {
    let ts = at.timestamp_millis().to_string();
    let sig = b64(&hmac_sha256(
        secret,
        &[method.as_bytes(), uri.as_bytes(), body, ts.as_bytes()],
    ));
    headers(&[
        ("x-hubspot-signature-v3", &sig),
        ("x-hubspot-request-timestamp", &ts),
        ("content-type", "application/json"),
    ])
}

#[tokio::test]
async fn a_hubspot_v3_batch_yields_one_event_per_element() {
    let h = Harness::new().await;
    let svc = service(&h);
    const SECRET: &str = "3e2b1a9c-hubspot-client-secret";
    let id = svc
        .create(h.tenant, new_webhook("hubspot", &[], Some(SECRET)))
        .await
        .unwrap()
        .webhook
        .id;
    let body = serde_json::to_vec(&json!([
        {"eventId": 100, "subscriptionId": 25, "portalId": 33, "appId": 1160452,
         "occurredAt": 1700000000000_i64, "subscriptionType": "contact.propertyChange",
         "attemptNumber": 0, "objectId": 123, "changeSource": "CRM",
         "propertyName": "lead_score", "propertyValue": "72"},
        {"eventId": 101, "subscriptionId": 26, "portalId": 33, "appId": 1160452,
         "occurredAt": 1700000000100_i64, "subscriptionType": "contact.creation",
         "attemptNumber": 0, "objectId": 124, "changeSource": "CRM"}
    ]))
    .unwrap();
    let at = now();
    let uri = format!("{BASE}/hooks/{id}");

    // `receive` checks the URL Brain gives out for this webhook.
    let hdrs = hubspot_headers(SECRET, "POST", &uri, &body, at - Duration::seconds(5));
    let received = svc.receive(id, &hdrs, &body, at).await.unwrap();
    let names: Vec<&str> = received.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["hubspot.contact.propertyChange", "hubspot.contact.creation"]
    );
    let ids: Vec<&str> = received
        .events
        .iter()
        .map(|e| e.delivery_id.as_str())
        .collect();
    assert_eq!(ids, ["100", "101"]);
    assert_eq!(received.events[0].payload["propertyValue"], "72");
    assert_eq!(delivery_rows(&h).await.len(), 2);

    // An explicit request line, e.g. a URL registered with a query string.
    let with_query = format!("{uri}?source=hubspot");
    let body2 = serde_json::to_vec(
        &json!([{"eventId": 102, "subscriptionType": "deal.creation", "objectId": 9}]),
    )
    .unwrap();
    let hdrs = hubspot_headers(SECRET, "POST", &with_query, &body2, at);
    let request = RequestMeta {
        method: "POST".to_owned(),
        uri: with_query.clone(),
    };
    let received = svc
        .receive_request(id, &request, &hdrs, &body2, at)
        .await
        .unwrap();
    assert_eq!(received.events[0].name, "hubspot.deal.creation");
    // The same signature does not verify against another URI.
    let err = svc.receive(id, &hdrs, &body2, at).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidSignature(_)), "{err}");

    // Signed more than five minutes ago.
    let body3 =
        serde_json::to_vec(&json!([{"eventId": 103, "subscriptionType": "contact.deletion"}]))
            .unwrap();
    let old = hubspot_headers(SECRET, "POST", &uri, &body3, at - Duration::minutes(6));
    let err = svc.receive(id, &old, &body3, at).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidSignature(_)), "{err}");
    assert_eq!(delivery_rows(&h).await.len(), 3);

    // Without the public URL, HubSpot cannot be verified by `receive`: a configuration fault.
    let unconfigured = WebhookService::new(h.db.app.clone(), Arc::clone(&h.secrets));
    let hdrs = hubspot_headers(SECRET, "POST", &uri, &body3, at);
    let err = unconfigured
        .receive(id, &hdrs, &body3, at)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Internal(_)), "{err}");
}

#[tokio::test]
async fn the_generic_scheme_needs_a_fresh_signed_timestamp() {
    let h = Harness::new().await;
    let svc = service(&h);
    let created = svc
        .create(h.tenant, new_webhook("mailchimp", &[], None))
        .await
        .unwrap();
    let (id, secret) = (created.webhook.id, created.secret);
    let body = br#"{"campaign_id":"c-42","emails_sent":1200}"#;
    let at = now();

    let hdrs = generic_headers(
        &secret,
        body,
        at - Duration::seconds(10),
        "campaign.sent",
        "del-1",
    );
    let received = svc.receive(id, &hdrs, body, at).await.unwrap();
    assert_eq!(received.events[0].name, "mailchimp.campaign.sent");
    assert_eq!(received.events[0].delivery_id, "del-1");
    assert_eq!(received.events[0].payload["emails_sent"], 1200);

    // Outside the window.
    let old = generic_headers(
        &secret,
        body,
        at - Duration::seconds(301),
        "campaign.sent",
        "del-2",
    );
    assert!(matches!(
        svc.receive(id, &old, body, at).await.unwrap_err(),
        ToolError::InvalidSignature(_)
    ));
    // The timestamp is signed: moving it forward breaks the signature.
    let mut moved = old.clone();
    moved[0].1 = at.timestamp().to_string();
    assert!(matches!(
        svc.receive(id, &moved, body, at).await.unwrap_err(),
        ToolError::InvalidSignature(_)
    ));
    // The body-only form has no replay protection and is refused for deliveries.
    let body_only = format!("sha256={}", hex(&hmac_sha256(&secret, &[body])));
    let legacy = headers(&[
        ("x-brain-timestamp", &at.timestamp().to_string()),
        ("x-brain-signature", &body_only),
        ("x-brain-event", "campaign.sent"),
        ("x-brain-delivery", "del-3"),
    ]);
    assert!(matches!(
        svc.receive(id, &legacy, body, at).await.unwrap_err(),
        ToolError::InvalidSignature(_)
    ));
    assert_eq!(delivery_rows(&h).await.len(), 1);
}

#[tokio::test]
async fn woocommerce_orders_are_verified_and_its_ping_acknowledged() {
    let h = Harness::new().await;
    let svc = service(&h);
    const SECRET: &str = "wc-webhook-secret";
    let id = svc
        .create(h.tenant, new_webhook("woocommerce", &[], Some(SECRET)))
        .await
        .unwrap()
        .webhook
        .id;

    // The unsigned ping WooCommerce sends when the webhook is saved.
    let ping = svc
        .receive(
            id,
            &headers(&[("content-type", "application/x-www-form-urlencoded")]),
            b"webhook_id=17",
            now(),
        )
        .await
        .unwrap();
    assert!(ping.events.is_empty());
    assert_eq!(ping.ignored, 1);
    assert!(delivery_rows(&h).await.is_empty());

    let body = br#"{"id":42,"status":"processing","total":"19.90"}"#;
    let sig = b64(&hmac_sha256(SECRET, &[body]));
    let hdrs = headers(&[
        ("x-wc-webhook-signature", &sig),
        ("x-wc-webhook-topic", "order.created"),
        ("x-wc-webhook-delivery-id", "5f0c1e"),
        ("x-wc-webhook-source", "https://shop.example.com/"),
    ]);
    let received = svc.receive(id, &hdrs, body, now()).await.unwrap();
    assert_eq!(received.events[0].name, "woocommerce.order.created");
    assert_eq!(received.events[0].delivery_id, "5f0c1e");
    assert_eq!(delivery_rows(&h).await.len(), 1);
    let after = svc.get(h.tenant, id).await.unwrap();
    assert_eq!((after.deliveries_ok, after.deliveries_failed), (1, 0));
}

#[tokio::test]
async fn an_events_filter_ignores_other_events() {
    let h = Harness::new().await;
    let registry = prometheus::Registry::new();
    let svc = service(&h).with_metrics(WebhookMetrics::new(&registry).unwrap());
    let id = svc
        .create(
            h.tenant,
            new_webhook("shopify", &["orders/create"], Some("shpss_app_secret_123")),
        )
        .await
        .unwrap()
        .webhook
        .id;
    let body = br#"{"id":5}"#;
    let other = shopify_headers("shpss_app_secret_123", body, "products/update", "p-1");
    let ignored = svc.receive(id, &other, body, now()).await.unwrap();
    assert!(ignored.events.is_empty());
    assert_eq!((ignored.ignored, ignored.duplicates), (1, 0));
    assert!(delivery_rows(&h).await.is_empty());

    let wanted = shopify_headers("shpss_app_secret_123", body, "orders/create", "o-1");
    let received = svc.receive(id, &wanted, body, now()).await.unwrap();
    assert_eq!(received.events.len(), 1);
    assert_eq!(received.ignored, 0);
    assert_eq!(delivery_rows(&h).await.len(), 1);
    assert_eq!(svc.get(h.tenant, id).await.unwrap().deliveries_ok, 2);
    assert_eq!(counter(&registry, "shopify", "ignored"), 1.0);
    assert_eq!(counter(&registry, "shopify", "ok"), 1.0);
}

#[tokio::test]
async fn malformed_deliveries_are_refused_and_nothing_is_stored() {
    let h = Harness::new().await;
    let registry = prometheus::Registry::new();
    let svc = service(&h).with_metrics(WebhookMetrics::new(&registry).unwrap());
    let created = svc
        .create(h.tenant, new_webhook("slack", &[], None))
        .await
        .unwrap();
    let (id, secret) = (created.webhook.id, created.secret);
    let at = now();

    let not_json = b"event=message&text=hi";
    let hdrs = generic_headers(&secret, not_json, at, "message", "m-1");
    let err = svc.receive(id, &hdrs, not_json, at).await.unwrap_err();
    assert!(matches!(err, ToolError::MalformedDelivery(_)), "{err}");
    assert_eq!(err.code(), "malformed_delivery");

    // Without a delivery id nothing could be deduplicated.
    let body = br#"{"text":"hi"}"#;
    let mut no_id = generic_headers(&secret, body, at, "message", "m-2");
    no_id.retain(|(name, _)| name != "x-brain-delivery");
    let err = svc.receive(id, &no_id, body, at).await.unwrap_err();
    assert!(err.to_string().contains("x-brain-delivery"), "{err}");

    let bad_name = generic_headers(&secret, body, at, "message sent!", "m-3");
    let err = svc.receive(id, &bad_name, body, at).await.unwrap_err();
    assert!(matches!(err, ToolError::MalformedDelivery(_)), "{err}");

    assert!(delivery_rows(&h).await.is_empty());
    let after = svc.get(h.tenant, id).await.unwrap();
    assert_eq!((after.deliveries_ok, after.deliveries_failed), (0, 3));
    assert_eq!(counter(&registry, "slack", "malformed"), 3.0);
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
    assert_eq!(err.code(), "webhook_not_found");
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
