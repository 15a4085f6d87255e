//! The other platforms' signature schemes: Stripe, HubSpot v3, Brain's generic scheme and
//! WooCommerce.

use std::sync::Arc;

use brain_tools::{RequestMeta, ToolError, WebhookService};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{
    BASE, b64, delivery_rows, generic_headers, headers, hex, hmac_sha256, new_webhook, now, service,
};
use crate::harness::Harness;

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
