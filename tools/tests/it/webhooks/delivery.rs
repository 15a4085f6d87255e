//! Receiving deliveries, mostly through Shopify's scheme: storage, forged and replayed
//! signatures, deduplication, event filters, malformed deliveries and their counters.

use brain_auth::{Code, ErrorCode};
use brain_tools::{ToolError, WebhookMetrics};
use chrono::Duration;
use serde_json::Value;
use uuid::Uuid;

use super::{
    b64, delivery_rows, generic_headers, headers, hmac_sha256, new_webhook, now, service,
    shopify_headers,
};
use crate::harness::Harness;

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
        assert_eq!(err.code(), Code::InvalidSignature);
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
    assert_eq!(err.code(), Code::MalformedDelivery);

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
