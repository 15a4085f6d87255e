//! Each platform client against a local server answering the platform's documented shapes;
//! the mocks match method, path, auth header form, query and body exactly, and `expect`
//! counts are verified when the server drops.

use std::collections::BTreeMap;

use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use brain_tools::{GOOGLE_ADS_VERSION, META_GRAPH_VERSION};

use crate::harness::{Harness, basic};

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// A Google Ads REST path under the version the connector calls.
fn ads_path(rest: &str) -> String {
    format!("/{GOOGLE_ADS_VERSION}/{rest}")
}

/// A Graph API path under the version the connector calls.
fn graph_path(rest: &str) -> String {
    format!("/{META_GRAPH_VERSION}/{rest}")
}

fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn wordpress_reads_posts_and_creates_a_draft_with_basic_auth() {
    let h = Harness::new().await;
    let auth = basic("editor", "abcd efgh ijkl mnop");
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .and(query_param("context", "edit"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!({"id": 1, "name": "editor"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "wordpress",
        &[
            ("site_url", &format!("{}/", h.uri())),
            ("username", "editor"),
            ("application_password", "abcd efgh ijkl mnop"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(query_param("per_page", "5"))
        .and(query_param("page", "1"))
        .and(query_param("search", "launch"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!([{"id": 7, "title": {"rendered": "Launch"}}])))
        .expect(1)
        .mount(&h.server)
        .await;
    let posts = h
        .service
        .resource(
            h.tenant,
            "wordpress",
            "posts",
            &q(&[("per_page", "5"), ("search", "launch")]),
        )
        .await
        .unwrap();
    assert_eq!(posts[0]["id"], 7);

    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(header("authorization", auth.as_str()))
        .and(body_json(
            json!({"title": "Hello", "content": "<p>Hi</p>", "status": "draft"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": 99, "status": "draft", "link": "https://example.com/?p=99"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    let created = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            json!({"title": "Hello", "content": "<p>Hi</p>"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(created["id"], 99);

    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts/99"))
        .and(body_json(json!({"status": "publish"})))
        .respond_with(ok(json!({"id": 99, "status": "publish"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "wordpress",
            "update_post",
            json!({"id": 99, "status": "publish"}),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn fluentcrm_creates_subscribers_and_syncs_tags() {
    let h = Harness::new().await;
    let auth = basic("crm", "app-pass-1234");
    Mock::given(method("GET"))
        .and(path("/wp-json/fluent-crm/v2/subscribers"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!({"subscribers": {"data": [], "total": 0}})))
        .mount(&h.server)
        .await;
    h.connect(
        "fluentcrm",
        &[
            ("site_url", &h.uri()),
            ("username", "crm"),
            ("application_password", "app-pass-1234"),
        ],
    )
    .await;

    Mock::given(method("POST"))
        .and(path("/wp-json/fluent-crm/v2/subscribers"))
        .and(header("authorization", auth.as_str()))
        .and(body_json(json!({"email": "ann@example.com", "first_name": "Ann", "status": "subscribed", "tags": [3]})))
        .respond_with(ok(json!({"message": "Contact has been created", "contact": {"id": 12}})))
        .expect(1)
        .mount(&h.server)
        .await;
    let made = h
        .service
        .action(h.tenant, "fluentcrm", "create_subscriber", json!({"email": "ann@example.com", "first_name": "Ann", "status": "subscribed", "tags": [3]}), None)
        .await
        .unwrap();
    assert_eq!(made["contact"]["id"], 12);

    Mock::given(method("POST"))
        .and(path("/wp-json/fluent-crm/v2/subscribers/sync-segments"))
        .and(body_json(
            json!({"subscribers": [12], "type": "tags", "attach": [4, 5], "detach": []}),
        ))
        .respond_with(ok(
            json!({"message": "Selected Tags have been added successfully", "subscribers": []}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "fluentcrm",
            "add_tag",
            json!({"subscriber_id": 12, "tag_ids": [4, 5]}),
            None,
        )
        .await
        .unwrap();

    Mock::given(method("GET"))
        .and(path("/wp-json/fluent-crm/v2/tags"))
        .and(query_param("per_page", "10"))
        .respond_with(ok(json!({"tags": {"data": [{"id": 4, "title": "VIP"}]}})))
        .expect(1)
        .mount(&h.server)
        .await;
    let tags = h
        .service
        .resource(h.tenant, "fluentcrm", "tags", &q(&[]))
        .await
        .unwrap();
    assert_eq!(tags["tags"]["data"][0]["title"], "VIP");
}

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
async fn zoho_refreshes_once_caches_the_token_and_sends_zoho_oauthtoken() {
    let h = Harness::new().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/token"))
        .and(body_string(
            "grant_type=refresh_token&client_id=1000.CLIENT&client_secret=zoho-client-secret&refresh_token=1000.refresh.token",
        ))
        .respond_with(ok(json!({"access_token": "1000.access.one", "api_domain": "https://www.zohoapis.eu", "token_type": "Bearer", "expires_in": 3600})))
        // One refresh for the live check, the resource read and the write: the token is cached.
        .expect(1)
        .mount(&h.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v8/users"))
        .and(query_param("type", "CurrentUser"))
        .and(header("authorization", "Zoho-oauthtoken 1000.access.one"))
        .respond_with(ok(
            json!({"users": [{"id": "1", "email": "me@example.com"}]}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "zoho-crm",
        &[
            ("data_centre", "eu"),
            ("client_id", "1000.CLIENT"),
            ("client_secret", "zoho-client-secret"),
            ("refresh_token", "1000.refresh.token"),
        ],
    )
    .await;

    // The access token sits in Redis until a minute before Zoho's expiry.
    let mut redis = h.redis.clone();
    let key = format!("brain:tools:oauth:{}:zoho-crm", h.tenant);
    let ttl: i64 = redis::AsyncCommands::ttl(&mut redis, &key).await.unwrap();
    assert!((3500..=3540).contains(&ttl), "ttl {ttl}");

    Mock::given(method("GET"))
        .and(path("/crm/v8/Leads"))
        .and(query_param("fields", "Last_Name,Email"))
        .and(query_param("per_page", "20"))
        .and(header("authorization", "Zoho-oauthtoken 1000.access.one"))
        .respond_with(ok(json!({"data": [{"id": "4150868000000224005", "Last_Name": "Doe"}], "info": {"more_records": false}})))
        .expect(1)
        .mount(&h.server)
        .await;
    let leads = h
        .service
        .resource(
            h.tenant,
            "zoho-crm",
            "Leads",
            &q(&[("fields", "Last_Name,Email")]),
        )
        .await
        .unwrap();
    assert_eq!(leads["data"][0]["Last_Name"], "Doe");

    Mock::given(method("POST"))
        .and(path("/crm/v8/Leads"))
        .and(header("authorization", "Zoho-oauthtoken 1000.access.one"))
        .and(body_json(json!({"data": [{"Last_Name": "Doe", "Company": "Acme", "Email": "doe@acme.test", "Lead_Status": "New"}]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": [{"code": "SUCCESS", "details": {"id": "4150868000000224005"}, "message": "record added", "status": "success"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    let made = h
        .service
        .action(h.tenant, "zoho-crm", "create_lead", json!({"last_name": "Doe", "company": "Acme", "email": "doe@acme.test", "fields": {"Lead_Status": "New"}}), None)
        .await
        .unwrap();
    assert_eq!(made["data"][0]["details"]["id"], "4150868000000224005");

    Mock::given(method("PUT"))
        .and(path("/crm/v8/Leads/4150868000000224005"))
        .and(body_json(json!({"data": [{"Lead_Status": "Contacted"}]})))
        .respond_with(ok(json!({"data": [{"code": "INVALID_DATA", "details": {"api_name": "Lead_Status"}, "message": "invalid data", "status": "error"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .action(
            h.tenant,
            "zoho-crm",
            "update_lead",
            json!({"id": "4150868000000224005", "fields": {"Lead_Status": "Contacted"}}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connector_error", "{err}");
    assert!(err.to_string().contains("invalid data"), "{err}");

    Mock::given(method("POST"))
        .and(path("/crm/v8/Deals"))
        .and(body_json(
            json!({"data": [{"Deal_Name": "Big", "Stage": "Qualification", "Amount": 5000.0}]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"data": [{"code": "SUCCESS", "details": {"id": "9"}, "status": "success"}]}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "zoho-crm",
            "create_deal",
            json!({"deal_name": "Big", "stage": "Qualification", "amount": 5000.0}),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn zoho_refresh_token_rejected_with_http_200_error_refuses_the_connection() {
    let h = Harness::new().await;
    // Zoho reports a bad refresh token as HTTP 200 with an `error` field.
    Mock::given(method("POST"))
        .and(path("/oauth/v2/token"))
        .respond_with(ok(json!({"error": "invalid_code"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let creds = [
        ("data_centre", "com"),
        ("client_id", "c"),
        ("client_secret", "secret-value-1"),
        ("refresh_token", "refresh-value-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let err = h
        .service
        .connect(h.tenant, "zoho-crm", creds)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_credentials");
    let view = h.service.get(h.tenant, "zoho-crm").await.unwrap();
    assert_eq!(view.status, brain_tools::ConnectionStatus::Disconnected);
}

#[tokio::test]
async fn hubspot_uses_crm_v3_objects_with_a_bearer_token() {
    let h = Harness::new().await;
    let bearer = "Bearer pat-na1-11111111-2222";
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "1"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"results": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect("hubspot", &[("access_token", "pat-na1-11111111-2222")])
        .await;

    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals"))
        .and(query_param("limit", "10"))
        .and(query_param("properties", "dealname,dealstage,amount,closedate,pipeline"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"results": [{"id": "1", "properties": {"dealname": "X"}}], "paging": {"next": {"after": "2"}}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "hubspot", "deals", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .and(body_json(json!({"properties": {"email": "bh@example.com", "firstname": "Brian", "lifecyclestage": "lead"}})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "512", "properties": {"email": "bh@example.com"}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(h.tenant, "hubspot", "create_contact", json!({"email": "bh@example.com", "firstname": "Brian", "properties": {"lifecyclestage": "lead"}}), None)
        .await
        .unwrap();

    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/512"))
        .and(body_json(json!({"properties": {"phone": "+1 555 0100"}})))
        .respond_with(ok(json!({"id": "512"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "hubspot",
            "update_contact",
            json!({"id": "512", "properties": {"phone": "+1 555 0100"}}),
            None,
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/deals"))
        .and(body_json(json!({"properties": {"dealname": "Renewal", "amount": "1500", "dealstage": "appointmentscheduled", "pipeline": "default"}})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "77"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(h.tenant, "hubspot", "create_deal", json!({"dealname": "Renewal", "amount": "1500", "dealstage": "appointmentscheduled", "pipeline": "default"}), None)
        .await
        .unwrap();
}

/// The fakes take their paths from the connector's constants, so this is the one place a
/// version bump shows in the tests; bump only after reading the platform's sunset table (the
/// sources are on the constants).
#[test]
fn platform_api_versions_are_the_reviewed_ones() {
    assert_eq!(GOOGLE_ADS_VERSION, "v26");
    assert_eq!(META_GRAPH_VERSION, "v27.0");
}

#[tokio::test]
async fn google_ads_refreshes_the_token_and_speaks_gaql_and_mutate() {
    let h = Harness::new().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string(
            "grant_type=refresh_token&client_id=123.apps.googleusercontent.com&client_secret=GOCSPX-secret&refresh_token=1%2F%2Frefresh-google",
        ))
        .respond_with(ok(json!({"access_token": "ya29.ads-token", "expires_in": 3599, "scope": "https://www.googleapis.com/auth/adwords", "token_type": "Bearer"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let gaql_check = "SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1";
    Mock::given(method("POST"))
        .and(path(ads_path("customers/1234567890/googleAds:searchStream")))
        .and(header("authorization", "Bearer ya29.ads-token"))
        .and(header("developer-token", "dev-token-abc"))
        .and(header("login-customer-id", "9876543210"))
        .and(body_json(json!({"query": gaql_check})))
        .respond_with(ok(json!([{"results": [{"customer": {"resourceName": "customers/1234567890", "id": "1234567890"}}], "fieldMask": "customer.id", "requestId": "r1"}])))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "google-ads",
        &[
            ("client_id", "123.apps.googleusercontent.com"),
            ("client_secret", "GOCSPX-secret"),
            ("refresh_token", "1//refresh-google"),
            ("developer_token", "dev-token-abc"),
            ("customer_id", "123-456-7890"),
            ("login_customer_id", "987-654-3210"),
        ],
    )
    .await;

    Mock::given(method("POST"))
        .and(path(ads_path("customers/1234567890/googleAds:searchStream")))
        .and(body_json(json!({"query": "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type FROM campaign ORDER BY campaign.id LIMIT 50"})))
        .respond_with(ok(json!([
            {"results": [{"campaign": {"resourceName": "customers/1234567890/campaigns/1", "id": "1", "name": "A", "status": "ENABLED"}}]},
            {"results": [{"campaign": {"resourceName": "customers/1234567890/campaigns/2", "id": "2", "name": "B", "status": "PAUSED"}}]}
        ])))
        .expect(1)
        .mount(&h.server)
        .await;
    let campaigns = h
        .service
        .resource(h.tenant, "google-ads", "campaigns", &q(&[]))
        .await
        .unwrap();
    assert_eq!(
        campaigns["results"].as_array().unwrap().len(),
        2,
        "batches are flattened"
    );

    let err = h
        .service
        .resource(
            h.tenant,
            "google-ads",
            "metrics",
            &q(&[("during", "LAST_7_DAYS; DROP")]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_arguments");

    // Since August 2025 an empty report is one batch without `results`, documented as a bare
    // object: developers.google.com/ads/blog/posts/2025/07/upcoming-changes-to-search-and
    Mock::given(method("POST"))
        .and(path(ads_path("customers/1234567890/googleAds:searchStream")))
        .and(body_json(json!({"query": "SELECT campaign.id, campaign.name, metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions FROM campaign WHERE segments.date DURING LAST_30_DAYS ORDER BY metrics.impressions DESC LIMIT 50"})))
        .respond_with(ok(json!({"fieldMask": "campaign.id,campaign.name,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions", "queryResourceConsumption": 206})))
        .expect(1)
        .mount(&h.server)
        .await;
    let metrics = h
        .service
        .resource(
            h.tenant,
            "google-ads",
            "metrics",
            &q(&[("during", "LAST_30_DAYS")]),
        )
        .await
        .unwrap();
    assert_eq!(metrics["results"], json!([]));

    Mock::given(method("POST"))
        .and(path(ads_path("customers/1234567890/campaigns:mutate")))
        .and(header("developer-token", "dev-token-abc"))
        .and(body_json(json!({"operations": [{"updateMask": "status", "update": {"resourceName": "customers/1234567890/campaigns/555", "status": "PAUSED"}}]})))
        .respond_with(ok(json!({"results": [{"resourceName": "customers/1234567890/campaigns/555"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "google-ads",
            "pause_campaign",
            json!({"campaign_id": "555"}),
            None,
        )
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path(ads_path("customers/1234567890/campaigns:mutate")))
        .and(body_json(json!({"operations": [{"updateMask": "status", "update": {"resourceName": "customers/1234567890/campaigns/555", "status": "ENABLED"}}]})))
        .respond_with(ok(json!({"results": [{"resourceName": "customers/1234567890/campaigns/555"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "google-ads",
            "enable_campaign",
            json!({"campaign_id": "555"}),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn meta_ads_uses_the_graph_api_with_a_bearer_header() {
    let h = Harness::new().await;
    let bearer = "Bearer EAAB-meta-token";
    Mock::given(method("GET"))
        .and(path(graph_path("me")))
        .and(query_param("fields", "id,name"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"id": "10", "name": "Ads Admin"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "meta-ads",
        &[
            ("access_token", "EAAB-meta-token"),
            ("ad_account_id", "act_1001"),
            ("page_id", "2002"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path(graph_path("act_1001/insights")))
        .and(query_param("level", "campaign"))
        .and(query_param("date_preset", "last_30d"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"data": [{"campaign_id": "1", "impressions": "100", "spend": "3.20"}], "paging": {}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(
            h.tenant,
            "meta-ads",
            "insights",
            &q(&[("date_preset", "last_30d")]),
        )
        .await
        .unwrap();

    Mock::given(method("GET"))
        .and(path(graph_path("act_1001/campaigns")))
        .and(query_param(
            "fields",
            "id,name,status,objective,daily_budget",
        ))
        .respond_with(ok(
            json!({"data": [{"id": "120", "name": "Spring", "status": "ACTIVE"}]}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "meta-ads", "campaigns", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path(graph_path("120")))
        .and(header("authorization", bearer))
        .and(body_string("status=PAUSED"))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "meta-ads",
            "pause_campaign",
            json!({"campaign_id": "120"}),
            None,
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path(graph_path("2002/feed")))
        .and(body_string(
            "message=Big+news%21&link=https%3A%2F%2Fexample.com",
        ))
        .respond_with(ok(json!({"id": "2002_3003"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let post = h
        .service
        .action(
            h.tenant,
            "meta-ads",
            "create_page_post",
            json!({"message": "Big news!", "link": "https://example.com"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(post["id"], "2002_3003");
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
        "invalid_credentials",
        "the token is never sent to a non-Shopify host"
    );
}

#[tokio::test]
async fn stripe_form_encodes_and_forwards_the_idempotency_key() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("limit", "1"))
        .and(header(
            "authorization",
            "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        ))
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

#[tokio::test]
async fn mailchimp_uses_the_server_prefix_and_basic_auth() {
    let h = Harness::new().await;
    let auth = basic("brain", "0123456789abcdef-us21");
    Mock::given(method("GET"))
        .and(path("/3.0/ping"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!({"health_status": "Everything's Chimpy!"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "mailchimp",
        &[
            ("api_key", "0123456789abcdef-us21"),
            ("server_prefix", "us21"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/3.0/lists/abc123/members"))
        .and(query_param("count", "10"))
        .and(query_param("offset", "0"))
        .respond_with(ok(
            json!({"members": [{"email_address": "a@example.com"}], "total_items": 1}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(
            h.tenant,
            "mailchimp",
            "members",
            &q(&[("list_id", "abc123")]),
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/3.0/lists/abc123/members"))
        .and(header("authorization", auth.as_str()))
        .and(body_json(json!({"email_address": "urist@example.com", "status": "subscribed", "merge_fields": {"FNAME": "Urist"}})))
        .respond_with(ok(json!({"id": "852aaa9532cb36adfb5e9fef7a4206a9", "email_address": "urist@example.com", "status": "subscribed"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(h.tenant, "mailchimp", "add_member", json!({"list_id": "abc123", "email_address": "urist@example.com", "merge_fields": {"FNAME": "Urist"}}), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn slack_posts_messages_and_maps_ok_false() {
    let h = Harness::new().await;
    let bearer = "Bearer xoxb-1234-5678-abcdef";
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .and(header("authorization", bearer))
        .respond_with(ok(
            json!({"ok": true, "team": "Acme", "user": "brainbot", "bot_id": "B1"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect("slack", &[("bot_token", "xoxb-1234-5678-abcdef")])
        .await;

    Mock::given(method("GET"))
        .and(path("/conversations.list"))
        .and(query_param("types", "public_channel,private_channel"))
        .and(query_param("exclude_archived", "true"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"ok": true, "channels": [{"id": "C012AB3CD", "name": "general"}], "response_metadata": {"next_cursor": ""}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "slack", "channels", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(header("authorization", bearer))
        .and(body_json(
            json!({"channel": "C012AB3CD", "text": "Launch is live"}),
        ))
        .respond_with(ok(
            json!({"ok": true, "channel": "C012AB3CD", "ts": "1503435956.000247"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C012AB3CD", "text": "Launch is live"}),
            None,
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "C404", "text": "x"})))
        .respond_with(ok(json!({"ok": false, "error": "channel_not_found"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C404", "text": "x"}),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("channel_not_found"), "{err}");
}

#[tokio::test]
async fn whatsapp_sends_templates_through_the_cloud_api() {
    let h = Harness::new().await;
    let bearer = "Bearer EAAG-wa-token";
    Mock::given(method("GET"))
        .and(path(graph_path("106540352242922")))
        .and(query_param("fields", "display_phone_number,verified_name"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"display_phone_number": "+1 555-0100", "verified_name": "Acme", "id": "106540352242922"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "whatsapp",
        &[
            ("access_token", "EAAG-wa-token"),
            ("phone_number_id", "106540352242922"),
            ("business_account_id", "102290129340398"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path(graph_path("102290129340398/message_templates")))
        .and(query_param("fields", "name,status,language,category"))
        .respond_with(ok(
            json!({"data": [{"name": "order_update", "status": "APPROVED", "language": "en_US"}]}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "whatsapp", "templates", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path(graph_path("106540352242922/messages")))
        .and(header("authorization", bearer))
        .and(body_json(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"}},
        })))
        .respond_with(ok(json!({"messaging_product": "whatsapp", "contacts": [{"input": "16505551234", "wa_id": "16505551234"}], "messages": [{"id": "wamid.HBgL"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "whatsapp",
            "send_template",
            json!({"to": "+16505551234", "template": "order_update", "language": "en_US"}),
            None,
        )
        .await
        .unwrap();
}

/// A throwaway RSA key for tests only (made with `openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:2048`; the public half with `openssl pkey -pubout`). It has never been a
/// Google key.
const GA4_TEST_KEY: &str = include_str!("fixtures/ga4-test-key.pem");

fn service_account_json(client_email: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "brain-test",
        "private_key_id": "0123456789abcdef",
        "private_key": GA4_TEST_KEY,
        "client_email": client_email,
        "client_id": "1000",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

#[tokio::test]
async fn ga4_exchanges_a_signed_service_account_jwt_and_runs_reports() {
    let h = Harness::new().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
        ))
        .respond_with(ok(
            json!({"access_token": "ya29.ga4-token", "expires_in": 3599, "token_type": "Bearer"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1beta/properties/313131313/metadata"))
        .and(header("authorization", "Bearer ya29.ga4-token"))
        .respond_with(ok(
            json!({"name": "properties/313131313/metadata", "dimensions": [], "metrics": []}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "google-analytics",
        &[
            ("property_id", "313131313"),
            (
                "service_account_json",
                &service_account_json("reporter@brain-test.iam.gserviceaccount.com"),
            ),
        ],
    )
    .await;

    // The assertion the token endpoint received: RS256 over header.claims, verified here with
    // the openssl CLI rather than the code under test.
    let token_req = h
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/token")
        .unwrap();
    let form: BTreeMap<String, String> = url_form(&token_req.body);
    let jwt = &form["assertion"];
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header_json: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        header_json,
        json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"})
    );
    assert_eq!(claims["iss"], "reporter@brain-test.iam.gserviceaccount.com");
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/analytics.readonly"
    );
    assert_eq!(claims["aud"], format!("{}/token", h.uri()));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    let dir = std::env::temp_dir().join(format!("brain-ga4-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input"), format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(dir.join("sig"), b64.decode(parts[2]).unwrap()).unwrap();
    let verified = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/fixtures/ga4-test-key.pub.pem"
        ))
        .arg("-signature")
        .arg(dir.join("sig"))
        .arg(dir.join("input"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    Mock::given(method("POST"))
        .and(path("/v1beta/properties/313131313:runReport"))
        .and(header("authorization", "Bearer ya29.ga4-token"))
        .and(body_json(json!({
            "dateRanges": [{"startDate": "28daysAgo", "endDate": "today"}],
            "dimensions": [{"name": "country"}],
            "metrics": [{"name": "activeUsers"}],
            "limit": 10,
        })))
        .respond_with(ok(json!({
            "dimensionHeaders": [{"name": "country"}],
            "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "Japan"}], "metricValues": [{"value": "2541"}]}],
            "rowCount": 1,
            "kind": "analyticsData#runReport",
        })))
        .expect(2)
        .mount(&h.server)
        .await;
    let report = h
        .service
        .resource(
            h.tenant,
            "google-analytics",
            "report",
            &q(&[
                ("metrics", "activeUsers"),
                ("dimensions", "country"),
                ("start_date", "28daysAgo"),
                ("limit", "10"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(report["rows"][0]["metricValues"][0]["value"], "2541");
    h.service
        .action(
            h.tenant,
            "google-analytics",
            "run_report",
            json!({"metrics": ["activeUsers"], "dimensions": ["country"], "start_date": "28daysAgo", "limit": 10}),
            None,
        )
        .await
        .unwrap();
}

fn url_form(body: &[u8]) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body)))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after_and_5xx_with_backoff() {
    let h = Harness::new().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "1"))
        .respond_with(ok(json!({"results": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect("hubspot", &[("access_token", "pat-na1-rate-limit")])
        .await;

    // First answer 429 with Retry-After: 1, then 200.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(json!({"status": "error", "message": "You have reached your secondly limit.", "category": "RATE_LIMITS"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ok(json!({"results": [{"id": "1"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    let started = std::time::Instant::now();
    let deals = h
        .service
        .resource(h.tenant, "hubspot", "deals", &q(&[]))
        .await
        .unwrap();
    assert_eq!(deals["results"][0]["id"], "1");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "Retry-After honoured"
    );

    // A 503 on a read is retried; the harness allows 3 attempts in all.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "7"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "hubspot", "contacts", &q(&[("limit", "7")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connector_error");

    // A Retry-After beyond the cap is not slept through: the caller hears rate_limited.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .action(
            h.tenant,
            "hubspot",
            "create_contact",
            json!({"email": "x@example.com"}),
            None,
        )
        .await
        .unwrap_err();
    match err {
        brain_tools::ToolError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(120)));
        }
        other => panic!("expected rate_limited, got {other}"),
    }

    // A 5xx on a non-idempotent write is NOT retried: it may have been applied.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "hubspot",
            "create_deal",
            json!({"dealname": "Once"}),
            None,
        )
        .await
        .unwrap_err();
}

#[tokio::test]
async fn oauth_tokens_are_refreshed_after_expiry_and_after_a_401() {
    let h = Harness::new().await;
    let mut n = 0;
    for token in ["tok-1", "tok-2", "tok-3"] {
        n += 1;
        // Each token is handed out once, in order; 61 s of life is 1 s in the cache.
        Mock::given(method("POST"))
            .and(path("/oauth/v2/token"))
            .respond_with(ok(json!({"access_token": token, "expires_in": 61})))
            .up_to_n_times(1)
            .with_priority(n)
            .expect(1)
            .mount(&h.server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/crm/v8/users"))
        .respond_with(ok(json!({"users": []})))
        .mount(&h.server)
        .await;
    h.connect(
        "zoho-crm",
        &[
            ("data_centre", "in"),
            ("client_id", "c-1"),
            ("client_secret", "cs-123456"),
            ("refresh_token", "rt-123456"),
        ],
    )
    .await;

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    Mock::given(method("GET"))
        .and(path("/crm/v8/Contacts"))
        .and(header("authorization", "Zoho-oauthtoken tok-2"))
        .respond_with(ok(json!({"data": [{"id": "1"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "zoho-crm", "Contacts", &q(&[]))
        .await
        .unwrap();

    // The platform revokes the token: the connection turns `error` and the token is dropped,
    // so the next call refreshes instead of reusing it.
    Mock::given(method("GET"))
        .and(path("/crm/v8/Deals"))
        .and(header("authorization", "Zoho-oauthtoken tok-2"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code": "INVALID_TOKEN", "message": "invalid oauth token", "status": "error"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "zoho-crm", "Deals", &q(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connector_unauthorized");
    assert_eq!(
        h.service.get(h.tenant, "zoho-crm").await.unwrap().status,
        brain_tools::ConnectionStatus::Error
    );
    Mock::given(method("GET"))
        .and(path("/crm/v8/Deals"))
        .and(header("authorization", "Zoho-oauthtoken tok-3"))
        .respond_with(ok(json!({"data": []})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "zoho-crm", "Deals", &q(&[("page", "2")]))
        .await
        .unwrap();
    // That success proved the credentials again.
    let view = h.service.get(h.tenant, "zoho-crm").await.unwrap();
    assert_eq!(view.status, brain_tools::ConnectionStatus::Connected);
    assert!(view.last_error.is_none());
}

#[tokio::test]
async fn rejected_tokens_in_platform_dialects_are_credential_errors() {
    let h = Harness::new().await;
    // Google's token endpoint answers a revoked refresh token with 400 invalid_grant.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})))
        .expect(1)
        .mount(&h.server)
        .await;
    let creds = [
        ("client_id", "id.apps.googleusercontent.com"),
        ("client_secret", "GOCSPX-x"),
        ("refresh_token", "1//revoked"),
        ("developer_token", "dev"),
        ("customer_id", "1234567890"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let err = h
        .service
        .connect(h.tenant, "google-ads", creds)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_credentials", "{err}");

    // Meta's Graph API answers an expired token with 400 and error code 190.
    Mock::given(method("GET"))
        .and(path(graph_path("me")))
        .respond_with(ok(json!({"id": "1", "name": "x"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "meta-ads",
        &[
            ("access_token", "EAAB-expiring"),
            ("ad_account_id", "act_9"),
        ],
    )
    .await;
    Mock::given(method("GET"))
        .and(path(graph_path("act_9/campaigns")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: Session has expired.",
            "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "A1"
        }})))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .resource(h.tenant, "meta-ads", "campaigns", &q(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connector_unauthorized");
    let view = h.service.get(h.tenant, "meta-ads").await.unwrap();
    assert_eq!(view.status, brain_tools::ConnectionStatus::Error);

    // Slack answers a revoked bot token with HTTP 200 and `ok: false`.
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ok(json!({"ok": false, "error": "invalid_auth"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let creds = [("bot_token", "xoxb-revoked-0000")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let err = h
        .service
        .connect(h.tenant, "slack", creds)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_credentials");
}
