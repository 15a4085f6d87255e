//! Inbound webhooks end to end on real Postgres and OpenBao: secrets only in OpenBao, each
//! platform's signature scheme (signed here with `hmac`/`sha2` directly, as the platform
//! would), replay windows, deduplication, event filters, tenant isolation and counters.
//! The submodules hold the tests; the service and signing helpers they share live here.

mod delivery;
mod management;
mod schemes;

use std::sync::Arc;

use base64::Engine as _;
use brain_tools::{NewWebhook, WebhookService};
use chrono::{DateTime, SubsecRound as _, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

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
