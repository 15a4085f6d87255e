//! The CRM clients: FluentCRM, Zoho CRM and HubSpot.

use brain_auth::{Code, ErrorCode};
use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::{ok, q};
use crate::harness::{Harness, basic};

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
    assert_eq!(err.code(), Code::ConnectorError, "{err}");
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
    assert_eq!(err.code(), Code::InvalidConnectorCredentials);
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
