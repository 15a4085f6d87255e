//! Webhook signature verification: Shopify (`X-Shopify-Hmac-Sha256`), WooCommerce
//! (`X-WC-Webhook-Signature`), Stripe (`Stripe-Signature: t=…,v1=…` with a replay window),
//! HubSpot v3 (`X-HubSpot-Signature-v3` with `X-HubSpot-Request-Timestamp`) and Brain's generic
//! scheme (`X-Brain-Signature: sha256=<hex>`, timestamped with `X-Brain-Timestamp` for inbound
//! deliveries). All comparisons are constant-time.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ToolError;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance between the signed timestamp and now.
pub const STRIPE_TOLERANCE_SECS: i64 = 300;

/// How far a signed timestamp may be from now before a delivery counts as a replay (HubSpot
/// v3, Brain's timestamped generic scheme, Shopify's `X-Shopify-Triggered-At`).
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// The header carrying the generic scheme's signature.
pub const GENERIC_HEADER: &str = "x-brain-signature";

/// The header carrying the timestamped generic scheme's Unix time (seconds).
pub const GENERIC_TIMESTAMP_HEADER: &str = "x-brain-timestamp";

fn mac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn invalid(reason: &str) -> ToolError {
    ToolError::InvalidSignature(reason.to_owned())
}

fn equal(expected: &[u8], given: &[u8]) -> bool {
    !expected.is_empty() && expected.ct_eq(given).into()
}

/// Shopify: the header is the base64 HMAC-SHA256 of the raw body under the app's secret.
pub fn verify_shopify(secret: &[u8], body: &[u8], header: &str) -> Result<(), ToolError> {
    verify_base64_body(secret, body, header)
}

/// WooCommerce: same construction as Shopify, under the webhook's secret.
pub fn verify_woocommerce(secret: &[u8], body: &[u8], header: &str) -> Result<(), ToolError> {
    verify_base64_body(secret, body, header)
}

fn verify_base64_body(secret: &[u8], body: &[u8], header: &str) -> Result<(), ToolError> {
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| invalid("signature is not base64"))?;
    if equal(&mac(secret, &[body]), &given) {
        Ok(())
    } else {
        Err(invalid("signature does not match"))
    }
}

/// Stripe: `t=<unix>,v1=<hex>[,v1=…]`, each `v1` the hex HMAC-SHA256 of `"{t}.{body}"`; the
/// timestamp must be within `tolerance_secs` of `now` (replay protection).
pub fn verify_stripe(
    secret: &[u8],
    body: &[u8],
    header: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), ToolError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| invalid("no timestamp in Stripe-Signature"))?;
    if signatures.is_empty() {
        return Err(invalid("no v1 signature in Stripe-Signature"));
    }
    let expected = mac(secret, &[t.to_string().as_bytes(), b".", body]);
    // Every candidate is compared, so timing does not reveal which one matched.
    let matched = signatures.iter().fold(false, |acc, sig| {
        let ok = hex_decode(sig).is_some_and(|given| equal(&expected, &given));
        acc | ok
    });
    if !matched {
        return Err(invalid("signature does not match"));
    }
    within_window(now_unix, t, tolerance_secs)
}

// `abs_diff` rather than `(a - b).abs()`: a hostile timestamp near `i64::MIN` must not overflow.
fn within_window(now: i64, then: i64, tolerance: i64) -> Result<(), ToolError> {
    if now.abs_diff(then) > tolerance.unsigned_abs() {
        Err(invalid("timestamp outside the tolerance window"))
    } else {
        Ok(())
    }
}

/// HubSpot v3: `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256, under the app's client
/// secret, of `method + uri + body + timestamp`, where `timestamp` is the
/// `X-HubSpot-Request-Timestamp` header (Unix milliseconds) and `uri` the full URL HubSpot
/// called (`https://host/path?query`). The timestamp must be within `tolerance_secs` of
/// `now_ms`.
///
/// HubSpot signs the URI with a few percent-escapes decoded (`%3A` → `:`, `%2F` → `/`, …);
/// they are decoded here the same way, so `uri` can be passed as received.
#[allow(clippy::too_many_arguments)] // each is one distinct part of HubSpot's signed string
pub fn verify_hubspot_v3(
    secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    signature: &str,
    timestamp_ms: &str,
    now_ms: i64,
    tolerance_secs: i64,
) -> Result<(), ToolError> {
    let timestamp = timestamp_ms.trim();
    let t: i64 = timestamp
        .parse()
        .map_err(|_| invalid("X-HubSpot-Request-Timestamp is not a number"))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| invalid("signature is not base64"))?;
    let uri = hubspot_decode_uri(uri);
    let expected = mac(
        secret,
        &[
            method.as_bytes(),
            uri.as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    );
    if !equal(&expected, &given) {
        return Err(invalid("signature does not match"));
    }
    within_window(now_ms, t, tolerance_secs.saturating_mul(1000))
}

/// The escapes HubSpot decodes before signing (its "Validate requests" guide).
fn hubspot_decode_uri(uri: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(pos) = rest.find('%') {
        let (head, tail) = rest.split_at(pos);
        out.push_str(head);
        let escape = tail.get(..3).and_then(|e| {
            DECODED
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(e))
                .map(|(_, plain)| *plain)
        });
        match escape {
            Some(plain) => {
                out.push_str(plain);
                rest = tail.get(3..).unwrap_or_default();
            }
            None => {
                out.push('%');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// Shopify signs only the body, so a captured delivery could be replayed forever; rejecting
/// one whose `X-Shopify-Triggered-At` (RFC 3339) is older than `max_age_secs` stops naive
/// replays. The header itself is unsigned, so this is a staleness check, not proof.
pub fn check_shopify_triggered_at(
    value: &str,
    now: DateTime<Utc>,
    max_age_secs: i64,
) -> Result<(), ToolError> {
    let at = DateTime::parse_from_rfc3339(value.trim())
        .map_err(|_| invalid("X-Shopify-Triggered-At is not an RFC 3339 time"))?;
    if now.timestamp().abs_diff(at.timestamp()) > max_age_secs.unsigned_abs() {
        Err(invalid("delivery is older than the replay window"))
    } else {
        Ok(())
    }
}

/// Brain's generic scheme: `sha256=<hex HMAC-SHA256 of the body>` (the bare hex also works).
pub fn verify_generic(secret: &[u8], body: &[u8], header: &str) -> Result<(), ToolError> {
    let hex = header.trim();
    let hex = hex.strip_prefix("sha256=").unwrap_or(hex);
    let given = hex_decode(hex).ok_or_else(|| invalid("signature is not hex"))?;
    if equal(&mac(secret, &[body]), &given) {
        Ok(())
    } else {
        Err(invalid("signature does not match"))
    }
}

/// The generic scheme's header value for `body`, for senders and tests.
pub fn sign_generic(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex_encode(&mac(secret, &[body])))
}

/// Brain's generic scheme for inbound deliveries: `X-Brain-Timestamp: <unix seconds>` and
/// `X-Brain-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`. Signing the timestamp
/// is what makes the replay window enforceable: it cannot be moved without the secret.
pub fn verify_generic_timestamped(
    secret: &[u8],
    body: &[u8],
    signature: &str,
    timestamp: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), ToolError> {
    let timestamp = timestamp.trim();
    let t: i64 = timestamp
        .parse()
        .map_err(|_| invalid("X-Brain-Timestamp is not a number"))?;
    let hex = signature.trim();
    let hex = hex.strip_prefix("sha256=").unwrap_or(hex);
    let given = hex_decode(hex).ok_or_else(|| invalid("signature is not hex"))?;
    if !equal(&mac(secret, &[timestamp.as_bytes(), b".", body]), &given) {
        return Err(invalid("signature does not match"));
    }
    within_window(now_unix, t, tolerance_secs)
}

/// The timestamped generic scheme's `X-Brain-Signature` for `body` sent at `timestamp`.
pub fn sign_generic_timestamped(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!(
        "sha256={}",
        hex_encode(&mac(secret, &[t.as_bytes(), b".", body]))
    )
}

/// Which header carries a connector's webhook signature.
pub fn signature_header(connector: &str) -> &'static str {
    match connector {
        "shopify" => "x-shopify-hmac-sha256",
        "stripe" => "stripe-signature",
        "woocommerce" => "x-wc-webhook-signature",
        _ => GENERIC_HEADER,
    }
}

/// Verifies a delivery with the body-only form of its connector's scheme. `header` is the
/// value of [`signature_header`]`(connector)`, or `None` when the request lacked it.
///
/// Stateless and without the HubSpot v3 or timestamped generic schemes; inbound deliveries go
/// through [`crate::webhooks::WebhookService::receive`], which adds those and the replay windows.
pub fn verify_delivery(
    connector: &str,
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
    now_unix: i64,
) -> Result<(), ToolError> {
    let header = header.ok_or_else(|| invalid("signature header is missing"))?;
    match connector {
        "shopify" => verify_shopify(secret, body, header),
        "woocommerce" => verify_woocommerce(secret, body, header),
        "stripe" => verify_stripe(secret, body, header, now_unix, STRIPE_TOLERANCE_SECS),
        _ => verify_generic(secret, body, header),
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubspot_uris_are_decoded_like_hubspot_does() {
        assert_eq!(
            hubspot_decode_uri("https://h.example/hooks/1?a=b%3Ac%2Fd&e=%2a%20%ZZ%"),
            "https://h.example/hooks/1?a=b:c/d&e=*%20%ZZ%"
        );
        assert_eq!(
            hubspot_decode_uri("https://h.example/é%3A"),
            "https://h.example/é:"
        );
    }

    #[test]
    fn hostile_timestamps_do_not_overflow() {
        let body = b"{}";
        let t = i64::MIN.to_string();
        let sig = format!(
            "sha256={}",
            hex_encode(&mac(b"k", &[t.as_bytes(), b".", body]))
        );
        let err = verify_generic_timestamped(b"k", body, &sig, &t, i64::MAX, 300).unwrap_err();
        assert!(err.to_string().contains("tolerance"), "{err}");
        let stripe = format!("t={t},v1={}", sig.trim_start_matches("sha256="));
        assert!(verify_stripe(b"k", body, &stripe, i64::MAX, 300).is_err());
        assert!(check_shopify_triggered_at("1970-01-01T00:00:00Z", Utc::now(), i64::MAX).is_ok());
    }
}
