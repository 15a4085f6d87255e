//! The advertising and analytics clients: Google Ads, Meta Ads and Google Analytics 4.

use brain_auth::{Code, ErrorCode};
use std::collections::BTreeMap;

use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};

use brain_tools::{GOOGLE_ADS_VERSION, META_GRAPH_VERSION};

use super::{graph_path, ok, q};
use crate::harness::Harness;

/// A Google Ads REST path under the version the connector calls.
fn ads_path(rest: &str) -> String {
    format!("/{GOOGLE_ADS_VERSION}/{rest}")
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
    assert_eq!(err.code(), Code::InvalidArguments);

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

/// A throwaway RSA key for tests only (made with `openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:2048`; the public half with `openssl pkey -pubout`). It has never been a
/// Google key.
const GA4_TEST_KEY: &str = include_str!("../fixtures/ga4-test-key.pem");

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
