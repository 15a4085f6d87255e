//! Capability handles: minted only from stored grants, re-checked on every call.

use brain_auth::{Code, ErrorCode};
use brain_tools::{Approval, Capability, CapabilityTool};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::Harness;

async fn connected_wordpress(h: &Harness) {
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&h.server)
        .await;
    h.connect(
        "wordpress",
        &[
            ("site_url", &h.uri()),
            ("username", "ed"),
            ("application_password", "pass word 1234"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_handle_offers_only_granted_actions_and_dies_with_its_grant() {
    let h = Harness::new().await;
    connected_wordpress(&h).await;
    let agent = h.agent().await;
    let grant = h.grant(agent, "wordpress", &["create_post"], "never").await;

    let caps = h.service.capabilities(h.tenant, agent).await.unwrap();
    assert_eq!(caps.len(), 1);
    let cap = &caps[0];
    assert_eq!(
        (cap.connector(), cap.grant_id(), cap.agent_id()),
        ("wordpress", grant, agent)
    );
    assert_eq!(cap.approval(), Approval::Never);
    let tools = cap.tools();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].name, "wordpress.create_post");
    assert_eq!(tools[0].function_name(), "wordpress__create_post");
    assert!(tools[0].side_effect && !tools[0].requires_approval);
    assert_eq!(tools[0].parameters["required"], json!(["title", "content"]));

    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 3})))
        .expect(1)
        .mount(&h.server)
        .await;
    let out = h
        .service
        .invoke(
            cap,
            "create_post",
            json!({"title": "T", "content": "C"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out["id"], 3);

    let err = h
        .service
        .invoke(cap, "update_post", json!({"id": 3}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ActionNotGranted);
    let err = h
        .service
        .invoke(cap, "create_post", json!({"title": "T"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArguments);
    assert!(err.to_string().contains("content"), "{err}");

    // Revoked in the database: the very next call through the same handle fails.
    sqlx::query("DELETE FROM tool_grants WHERE id = $1")
        .bind(grant)
        .execute(&h.db.owner)
        .await
        .unwrap();
    let err = h
        .service
        .invoke(
            cap,
            "create_post",
            json!({"title": "T", "content": "C"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::GrantRevoked);
    assert!(
        h.service
            .capabilities(h.tenant, agent)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn narrowing_a_grant_or_requiring_approval_revokes_older_handles() {
    let h = Harness::new().await;
    connected_wordpress(&h).await;
    let agent = h.agent().await;
    let grant = h.grant(agent, "wordpress", &["*"], "never").await;
    let cap = Capability::mint(&h.db.app, h.tenant, agent, "wordpress")
        .await
        .unwrap();
    assert_eq!(cap.tools().len(), 2, "`*` grants every action");
    assert!(cap.allows("update_post"));

    sqlx::query("UPDATE tool_grants SET actions = '{create_post}' WHERE id = $1")
        .bind(grant)
        .execute(&h.db.owner)
        .await
        .unwrap();
    let err = h
        .service
        .invoke(&cap, "update_post", json!({"id": 1}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::GrantRevoked);

    sqlx::query("UPDATE tool_grants SET actions = '{*}', approval = 'always' WHERE id = $1")
        .bind(grant)
        .execute(&h.db.owner)
        .await
        .unwrap();
    let err = h
        .service
        .invoke(&cap, "update_post", json!({"id": 1}), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::GrantRevoked,
        "a handle minted under `never` stops once approval is required"
    );

    let fresh = Capability::mint(&h.db.app, h.tenant, agent, "wordpress")
        .await
        .unwrap();
    assert!(fresh.requires_approval());
    assert!(fresh.tools().iter().all(|t| t.requires_approval));

    let err = Capability::mint(&h.db.app, h.tenant, agent, "slack")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::GrantNotFound);
    // Another tenant's session cannot mint this agent's handle.
    let other = brain_auth::TenantId::new();
    let err = Capability::mint(&h.db.app, other, agent, "wordpress")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::GrantNotFound);
}

#[tokio::test]
async fn capability_tools_call_through_the_service() {
    let h = Harness::new().await;
    connected_wordpress(&h).await;
    let agent = h.agent().await;
    h.grant(agent, "wordpress", &["update_post"], "never").await;
    let caps = h.service.capabilities(h.tenant, agent).await.unwrap();
    let tools = CapabilityTool::all(&h.service, &caps[0]);
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].spec().name, "wordpress.update_post");
    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts/12"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 12, "status": "publish"})),
        )
        .expect(1)
        .mount(&h.server)
        .await;
    let out = tools[0]
        .call(json!({"id": 12, "status": "publish"}), Some("k-1"))
        .await
        .unwrap();
    assert_eq!(out["status"], "publish");
}
