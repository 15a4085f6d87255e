//! Signature vectors computed independently with Python's `hmac` module, e.g.
//! `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"hush", BODY,
//! hashlib.sha256).digest()).decode())'`, plus RFC 4231 test case 2 for the generic scheme.

use brain_auth::{Code, ErrorCode};
use brain_tools::webhook::{
    STRIPE_TOLERANCE_SECS, sign_generic, signature_header, verify_delivery, verify_generic,
    verify_shopify, verify_stripe, verify_woocommerce,
};

const SHOPIFY_BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
/// base64(HMAC-SHA256(key "hush", SHOPIFY_BODY)), from Python.
const SHOPIFY_SIG: &str = "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8=";

const WC_BODY: &[u8] = br#"{"id":42,"status":"processing"}"#;
/// base64(HMAC-SHA256(key "wc-secret", WC_BODY)), from Python.
const WC_SIG: &str = "abvyA6ni+M/4R+1Shn1iR5k6JbovAPhydHZAgbfb+ZU=";

const STRIPE_BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
/// hex(HMAC-SHA256(key "whsec_test_secret", "1700000000." + STRIPE_BODY)), from Python.
const STRIPE_SIG: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";

#[test]
fn shopify_and_woocommerce_accept_the_right_hmac_only() {
    verify_shopify(b"hush", SHOPIFY_BODY, SHOPIFY_SIG).unwrap();
    assert!(verify_shopify(b"hush2", SHOPIFY_BODY, SHOPIFY_SIG).is_err());
    assert!(verify_shopify(b"hush", b"{\"id\":1}", SHOPIFY_SIG).is_err());
    assert!(verify_shopify(b"hush", SHOPIFY_BODY, "not base64!").is_err());
    verify_woocommerce(b"wc-secret", WC_BODY, WC_SIG).unwrap();
    assert_eq!(
        verify_woocommerce(b"wc-secret", WC_BODY, SHOPIFY_SIG)
            .unwrap_err()
            .code(),
        Code::InvalidSignature
    );
}

#[test]
fn stripe_checks_signature_and_the_five_minute_window() {
    let header = format!("t=1700000000,v1={STRIPE_SIG}");
    verify_stripe(
        b"whsec_test_secret",
        STRIPE_BODY,
        &header,
        1_700_000_000,
        STRIPE_TOLERANCE_SECS,
    )
    .unwrap();
    verify_stripe(
        b"whsec_test_secret",
        STRIPE_BODY,
        &header,
        1_700_000_299,
        300,
    )
    .unwrap();
    // Replayed six minutes later.
    let err = verify_stripe(
        b"whsec_test_secret",
        STRIPE_BODY,
        &header,
        1_700_000_360,
        300,
    )
    .unwrap_err();
    assert!(err.to_string().contains("tolerance"), "{err}");
    // Several v1 values (secret rotation): any one matching is enough.
    let rotated = format!(
        "t=1700000000,v1={},v1={STRIPE_SIG},v0=legacy",
        "00".repeat(32)
    );
    verify_stripe(
        b"whsec_test_secret",
        STRIPE_BODY,
        &rotated,
        1_700_000_000,
        300,
    )
    .unwrap();
    // The timestamp is signed: changing it breaks the signature.
    let moved = format!("t=1700000001,v1={STRIPE_SIG}");
    assert!(
        verify_stripe(
            b"whsec_test_secret",
            STRIPE_BODY,
            &moved,
            1_700_000_001,
            300
        )
        .is_err()
    );
    assert!(
        verify_stripe(
            b"whsec_test_secret",
            STRIPE_BODY,
            "v1=abc",
            1_700_000_000,
            300
        )
        .is_err()
    );
}

#[test]
fn generic_scheme_matches_rfc_4231_and_round_trips() {
    // RFC 4231 §4.3, test case 2: key "Jefe".
    let data = b"what do ya want for nothing?";
    let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    assert_eq!(sign_generic(b"Jefe", data), format!("sha256={expected}"));
    verify_generic(b"Jefe", data, expected).unwrap();
    verify_generic(b"Jefe", data, &format!("sha256={expected}")).unwrap();
    assert!(verify_generic(b"Jefe", b"what do ya want for something?", expected).is_err());
}

#[test]
fn deliveries_pick_the_connector_scheme() {
    assert_eq!(signature_header("shopify"), "x-shopify-hmac-sha256");
    assert_eq!(signature_header("stripe"), "stripe-signature");
    assert_eq!(signature_header("woocommerce"), "x-wc-webhook-signature");
    verify_delivery("shopify", b"hush", SHOPIFY_BODY, Some(SHOPIFY_SIG), 0).unwrap();
    let header = format!("t=1700000000,v1={STRIPE_SIG}");
    verify_delivery(
        "stripe",
        b"whsec_test_secret",
        STRIPE_BODY,
        Some(&header),
        1_700_000_010,
    )
    .unwrap();
    assert!(verify_delivery("stripe", b"whsec_test_secret", STRIPE_BODY, None, 0).is_err());
    let generic = sign_generic(b"k", b"{}");
    verify_delivery("hubspot", b"k", b"{}", Some(&generic), 0).unwrap();
}
