//! Webhook signature verification: Shopify (`X-Shopify-Hmac-Sha256`), WooCommerce
//! (`X-WC-Webhook-Signature`), Stripe (`Stripe-Signature: t=…,v1=…` with a replay window) and
//! Brain's generic scheme (`X-Brain-Signature: sha256=<hex>`). All comparisons are
//! constant-time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ToolError;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance between the signed timestamp and now.
pub const STRIPE_TOLERANCE_SECS: i64 = 300;

/// The header carrying the generic scheme's signature.
pub const GENERIC_HEADER: &str = "x-brain-signature";

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
    if (now_unix - t).abs() > tolerance_secs {
        return Err(invalid("timestamp outside the tolerance window"));
    }
    Ok(())
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

/// Which header carries a connector's webhook signature.
pub fn signature_header(connector: &str) -> &'static str {
    match connector {
        "shopify" => "x-shopify-hmac-sha256",
        "stripe" => "stripe-signature",
        "woocommerce" => "x-wc-webhook-signature",
        _ => GENERIC_HEADER,
    }
}

/// Verifies an inbound delivery with the scheme of its connector. `header` is the value of
/// [`signature_header`]`(connector)`, or `None` when the request lacked it.
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

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
