//! The commerce and payment clients: WooCommerce, Shopify and Stripe.

use brain_auth::{Code, ErrorCode};
use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::{ok, q};
use crate::harness::{Harness, basic};

#[tokio::test]
async fn woocommerce_uses_consumer_key_basic_auth() {
    let h = Harness::new().await;
    let auth = basic("ck_1234567890", "cs_abcdefghij");
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/products"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!([])))
        .mount(&h.server)
        .await;
    h.connect(
        "woocommerce",
        &[
            ("site_url", &h.uri()),
            ("consumer_key", "ck_1234567890"),
            ("consumer_secret", "cs_abcdefghij"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .and(query_param("status", "processing"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!([{"id": 727, "status": "processing"}])))
        .expect(1)
        .mount(&h.server)
        .await;
    let orders = h
        .service
        .resource(
            h.tenant,
            "woocommerce",
            "orders",
            &q(&[("status", "processing")]),
        )
        .await
        .unwrap();
    assert_eq!(orders[0]["id"], 727);

    Mock::given(method("PUT"))
        .and(path("/wp-json/wc/v3/orders/727"))
        .and(body_json(json!({"status": "completed"})))
        .respond_with(ok(json!({"id": 727, "status": "completed"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "woocommerce",
            "update_order_status",
            json!({"order_id": 727, "status": "completed"}),
            None,
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/wp-json/wc/v3/products"))
        .and(body_json(
            json!({"name": "Mug", "type": "simple", "regular_price": "9.50", "status": "draft"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 794, "name": "Mug"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "woocommerce",
            "create_product",
            json!({"name": "Mug", "type": "simple", "regular_price": "9.50"}),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn shopify_sends_the_access_token_header_to_the_admin_api() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/admin/api/2025-07/shop.json"))
        .and(header("x-shopify-access-token", "shpat_0123456789"))
        .respond_with(ok(json!({"shop": {"id": 1, "name": "Demo"}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "shopify",
        &[
            ("shop_domain", "demo-store.myshopify.com"),
            ("access_token", "shpat_0123456789"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/admin/api/2025-07/orders.json"))
        .and(query_param("status", "any"))
        .and(query_param("limit", "50"))
        .and(header("x-shopify-access-token", "shpat_0123456789"))
        .respond_with(ok(json!({"orders": [{"id": 450789469}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "shopify", "orders", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/admin/api/2025-07/products.json"))
        .and(body_json(json!({"product": {"title": "Burton Custom Freestyle 151", "vendor": "Burton", "status": "draft"}})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"product": {"id": 1072481062, "title": "Burton Custom Freestyle 151"}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "shopify",
            "create_product",
            json!({"title": "Burton Custom Freestyle 151", "vendor": "Burton"}),
            None,
        )
        .await
        .unwrap();

    let bad = [
        ("shop_domain", "evil.example.com"),
        ("access_token", "shpat_x1234567"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let err = h
        .service
        .connect(h.tenant, "shopify", bad)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidConnectorCredentials,
        "the token is never sent to a non-Shopify host"
    );
}

#[tokio::test]
async fn stripe_form_encodes_and_forwards_the_idempotency_key() {
    let h = Harness::new().await;
    // Every request pins the API version Brain reads responses in.
    let version = ("stripe-version", "2026-09-30.endive");
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("limit", "1"))
        .and(header(
            "authorization",
            "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        ))
        .and(header(version.0, version.1))
        .respond_with(ok(
            json!({"object": "list", "data": [], "has_more": false, "url": "/v1/customers"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "stripe",
        &[("secret_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc")],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/v1/invoices"))
        .and(query_param("limit", "3"))
        .and(query_param("customer", "cus_123"))
        .and(header(version.0, version.1))
        .respond_with(ok(
            json!({"object": "list", "data": [{"id": "in_1"}], "has_more": false}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(
            h.tenant,
            "stripe",
            "invoices",
            &q(&[("limit", "3"), ("customer", "cus_123")]),
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header("idempotency-key", "task-42-step-3"))
        .and(header(version.0, version.1))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "email=jenny%40example.com&name=Jenny+Rosen&metadata%5Bsource%5D=brain",
        ))
        .respond_with(ok(
            json!({"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jenny@example.com"}),
        ))
        // Stripe itself deduplicates by key, so both calls reach it with the same header.
        .expect(2)
        .mount(&h.server)
        .await;
    for _ in 0..2 {
        let c = h
            .service
            .action(
                h.tenant,
                "stripe",
                "create_customer",
                json!({"email": "jenny@example.com", "name": "Jenny Rosen", "metadata": {"source": "brain"}}),
                Some("task-42-step-3"),
            )
            .await
            .unwrap();
        assert_eq!(c["id"], "cus_NffrFeUfNV2Hib");
    }
}
