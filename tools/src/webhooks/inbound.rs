//! What a delivery must show and what it carries, per signature scheme: verification
//! against the webhook's secret, and the events read from a verified body (named and
//! identified as the module docs of [`super`] describe).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{MAX_DELIVERY_ID_LEN, RequestMeta, WebhookService, check_topic};
use crate::ToolError;
use crate::webhook::{self, REPLAY_WINDOW_SECS, STRIPE_TOLERANCE_SECS};

/// How a connector's platform signs and shapes its deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scheme {
    Shopify,
    WooCommerce,
    Stripe,
    HubSpot,
    /// Brain's own timestamped HMAC, for every other connector.
    Generic,
}

impl Scheme {
    pub(super) fn of(connector: &str) -> Self {
        match connector {
            "shopify" => Scheme::Shopify,
            "woocommerce" => Scheme::WooCommerce,
            "stripe" => Scheme::Stripe,
            "hubspot" => Scheme::HubSpot,
            _ => Scheme::Generic,
        }
    }
}

/// One inbound request, as the verifiers need it.
pub(super) struct Delivery<'a> {
    pub id: Uuid,
    pub request: Option<&'a RequestMeta>,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

/// An event read from a verified delivery, before storage.
pub(super) struct Normalised {
    pub delivery_id: String,
    pub name: String,
    pub payload: Value,
}

impl WebhookService {
    /// Checks a delivery's signature (and, where the scheme has one, its age).
    pub(super) fn verify(
        &self,
        scheme: Scheme,
        secret: &[u8],
        delivery: &Delivery<'_>,
    ) -> Result<(), ToolError> {
        let headers = delivery.headers;
        let body = delivery.body;
        match scheme {
            Scheme::Shopify => {
                webhook::verify_shopify(
                    secret,
                    body,
                    signed_header(headers, "x-shopify-hmac-sha256")?,
                )?;
                // Shopify sends it with every delivery; without it a captured delivery
                // could be replayed forever.
                webhook::check_shopify_triggered_at(
                    signed_header(headers, "x-shopify-triggered-at")?,
                    delivery.now,
                    self.shopify_max_age_secs,
                )
            }
            Scheme::WooCommerce => webhook::verify_woocommerce(
                secret,
                body,
                signed_header(headers, "x-wc-webhook-signature")?,
            ),
            Scheme::Stripe => webhook::verify_stripe(
                secret,
                body,
                signed_header(headers, "stripe-signature")?,
                delivery.now.timestamp(),
                STRIPE_TOLERANCE_SECS,
            ),
            Scheme::HubSpot => {
                let signature = signed_header(headers, "x-hubspot-signature-v3")?;
                let timestamp = signed_header(headers, "x-hubspot-request-timestamp")?;
                let assumed;
                let request = match delivery.request {
                    Some(request) => request,
                    None => {
                        assumed = RequestMeta {
                            method: "POST".to_owned(),
                            uri: self.url(delivery.id).ok_or_else(|| {
                                ToolError::Internal(
                                    "HubSpot verification needs the public base URL of /hooks"
                                        .to_owned(),
                                )
                            })?,
                        };
                        &assumed
                    }
                };
                webhook::verify_hubspot_v3(
                    secret,
                    &request.method,
                    &request.uri,
                    body,
                    signature,
                    timestamp,
                    delivery.now.timestamp_millis(),
                    REPLAY_WINDOW_SECS,
                )
            }
            Scheme::Generic => webhook::verify_generic_timestamped(
                secret,
                body,
                signed_header(headers, webhook::GENERIC_HEADER)?,
                signed_header(headers, webhook::GENERIC_TIMESTAMP_HEADER)?,
                delivery.now.timestamp(),
                REPLAY_WINDOW_SECS,
            ),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn signed_header<'a>(headers: &'a [(String, String)], name: &str) -> Result<&'a str, ToolError> {
    header(headers, name)
        .ok_or_else(|| ToolError::InvalidSignature(format!("header `{name}` is missing")))
}

/// SHA-256 of what a delivery's signature covers: the body, and for Brain's generic scheme
/// the signed timestamp before it (identical bodies sent at different times are different
/// deliveries there).
pub(super) fn signed_digest(scheme: Scheme, delivery: &Delivery<'_>) -> ring::digest::Digest {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let generic = scheme == Scheme::Generic;
    if let Some(at) =
        header(delivery.headers, webhook::GENERIC_TIMESTAMP_HEADER).filter(|_| generic)
    {
        digest.update(at.as_bytes());
        digest.update(b".");
    }
    digest.update(delivery.body);
    digest.finish()
}

fn malformed(reason: impl Into<String>) -> ToolError {
    ToolError::MalformedDelivery(reason.into())
}

pub(super) fn is_woocommerce_ping(delivery: &Delivery<'_>) -> bool {
    header(delivery.headers, "x-wc-webhook-signature").is_none()
        && delivery
            .body
            .strip_prefix(b"webhook_id=")
            .is_some_and(|id| (1..=20).contains(&id.len()) && id.iter().all(u8::is_ascii_digit))
}

/// The events of a verified delivery, named and identified per the module docs.
pub(super) fn normalise(
    connector: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<Normalised>, ToolError> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the body is not JSON"))?;
    let from_headers = |topic: &str, ids: &[&str], payload| {
        let topic = header(headers, topic)
            .ok_or_else(|| malformed(format!("header `{topic}` is missing")))?;
        let id = ids
            .iter()
            .find_map(|name| header(headers, name))
            .ok_or_else(|| malformed(format!("header `{}` is missing", ids.join("` or `"))))?;
        event(connector, topic, id, payload)
    };
    match Scheme::of(connector) {
        Scheme::Shopify => Ok(vec![from_headers(
            "x-shopify-topic",
            &["x-shopify-webhook-id", "x-shopify-event-id"],
            payload,
        )?]),
        Scheme::WooCommerce => Ok(vec![from_headers(
            "x-wc-webhook-topic",
            &["x-wc-webhook-delivery-id"],
            payload,
        )?]),
        Scheme::Stripe => {
            let topic = payload
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the event has no `type`"))?
                .to_owned();
            let id = payload
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the event has no `id`"))?
                .to_owned();
            Ok(vec![event(connector, &topic, &id, payload)?])
        }
        Scheme::HubSpot => {
            let Value::Array(items) = payload else {
                return Err(malformed("HubSpot deliveries are a JSON array of events"));
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let topic = item
                        .get("subscriptionType")
                        .and_then(Value::as_str)
                        .ok_or_else(|| malformed(format!("event {i} has no `subscriptionType`")))?
                        .to_owned();
                    let id = match item.get("eventId") {
                        Some(Value::Number(n)) => n.to_string(),
                        Some(Value::String(s)) => s.clone(),
                        _ => return Err(malformed(format!("event {i} has no `eventId`"))),
                    };
                    event(connector, &topic, &id, item)
                })
                .collect()
        }
        Scheme::Generic => Ok(vec![from_headers(
            "x-brain-event",
            &["x-brain-delivery"],
            payload,
        )?]),
    }
}

fn event(
    connector: &str,
    topic: &str,
    delivery_id: &str,
    payload: Value,
) -> Result<Normalised, ToolError> {
    check_topic(topic).map_err(|reason| malformed(format!("the event name {reason}")))?;
    let id_ok = !delivery_id.trim().is_empty()
        && delivery_id.len() <= MAX_DELIVERY_ID_LEN
        && !delivery_id.chars().any(char::is_control);
    if !id_ok {
        return Err(malformed(format!(
            "the delivery id must be 1 to {MAX_DELIVERY_ID_LEN} printable characters"
        )));
    }
    Ok(Normalised {
        delivery_id: delivery_id.to_owned(),
        name: format!("{connector}.{topic}"),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woocommerce_pings_are_recognised_only_unsigned() {
        let headers = vec![];
        let ping = Delivery {
            id: Uuid::nil(),
            request: None,
            headers: &headers,
            body: b"webhook_id=42",
            now: Utc::now(),
        };
        assert!(is_woocommerce_ping(&ping));
        let signed = vec![("x-wc-webhook-signature".to_owned(), "x".to_owned())];
        assert!(!is_woocommerce_ping(&Delivery {
            headers: &signed,
            ..ping
        }));
        let headers = vec![];
        assert!(!is_woocommerce_ping(&Delivery {
            id: Uuid::nil(),
            request: None,
            headers: &headers,
            body: b"webhook_id=42&x=1",
            now: Utc::now(),
        }));
    }
}
