//! `PUT /v1/agents/{id}/delegates` and `delegates` on the agent JSON: validation naming the
//! field, tenant isolation, permissions, version bumps and the `delegate.grant` audit event.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Reply, TestApp, call, get, member, post, signup};

async fn agent(app: &TestApp, token: &str, slug: &str, extra: Value) -> Value {
    let mut body = json!({"name": slug, "slug": slug, "role": "Marketer", "goal": "Help",
                          "model": "openai:gpt-4o-mini"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let created = post(&app.gateway, "/v1/agents", Some(token), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body
}

async fn put_delegates(app: &TestApp, token: &str, id: &str, body: Value) -> Reply {
    call(
        &app.gateway,
        Method::PUT,
        &format!("/v1/agents/{id}/delegates"),
        Some(token),
        Some(body),
    )
    .await
}

fn assert_unprocessable(reply: &Reply, needle: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("delegates: "), "{message}");
    assert!(message.contains(needle), "{message}");
}

#[tokio::test]
async fn delegates_are_granted_validated_audited_and_shown() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Delegation").await;
    let manager = agent(&app, &owner.token, "manager", json!({})).await;
    let writer = agent(&app, &owner.token, "writer", json!({})).await;
    let (manager_id, writer_id) = (
        manager["id"].as_str().unwrap(),
        writer["id"].as_str().unwrap(),
    );
    assert_eq!(manager["delegates"], json!([]));

    let granted = put_delegates(
        &app,
        &owner.token,
        manager_id,
        json!([{"agent": writer_id, "approval": "always", "max_calls_per_run": 2}]),
    )
    .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(granted.body["version"], 2);
    assert_eq!(
        granted.body["delegates"],
        json!([{"agent": writer_id, "approval": "always", "max_calls_per_run": 2}])
    );
    let shown = get(
        &app.gateway,
        &format!("/v1/agents/{manager_id}"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(shown.body["delegates"][0]["agent"], writer_id);

    // Self, unknown, duplicated, malformed: 422 naming the field; nothing changes.
    assert_unprocessable(
        &put_delegates(
            &app,
            &owner.token,
            manager_id,
            json!([{"agent": manager_id}]),
        )
        .await,
        "itself",
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_unprocessable(
        &put_delegates(&app, &owner.token, manager_id, json!([{"agent": unknown}])).await,
        "no such agent",
    );
    assert_unprocessable(
        &put_delegates(
            &app,
            &owner.token,
            manager_id,
            json!([{"agent": writer_id}, {"agent": writer_id}]),
        )
        .await,
        "twice",
    );
    assert_unprocessable(
        &put_delegates(
            &app,
            &owner.token,
            manager_id,
            json!([{"agent": writer_id, "max_calls_per_run": 0}]),
        )
        .await,
        "max_calls_per_run",
    );
    let malformed = put_delegates(
        &app,
        &owner.token,
        manager_id,
        json!([{"agent": writer_id, "approval": "sometimes"}]),
    )
    .await;
    assert!(malformed.status.is_client_error(), "{}", malformed.status);
    let unchanged = get(
        &app.gateway,
        &format!("/v1/agents/{manager_id}"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(unchanged.body["version"], 2);

    // Another tenant's agent is "no such agent" as a target, and 404 as the agent itself.
    let other = signup(&app, "Elsewhere").await;
    let foreign = agent(&app, &other.token, "foreign", json!({})).await;
    let foreign_id = foreign["id"].as_str().unwrap();
    assert_unprocessable(
        &put_delegates(
            &app,
            &owner.token,
            manager_id,
            json!([{"agent": foreign_id}]),
        )
        .await,
        "no such agent",
    );
    let elsewhere = put_delegates(&app, &other.token, manager_id, json!([])).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "{}",
        elsewhere.body
    );

    // Viewers and editors may read agents but not grant delegates.
    for role in ["viewer", "editor"] {
        let token = member(&app, &owner, role).await;
        let denied = put_delegates(&app, &token, manager_id, json!([])).await;
        assert_eq!(
            denied.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            denied.body
        );
    }

    // Created with delegates; revoked with an empty set.
    let lead = agent(
        &app,
        &owner.token,
        "lead",
        json!({"delegates": [{"agent": writer_id}]}),
    )
    .await;
    assert_eq!(
        lead["delegates"],
        json!([{"agent": writer_id, "approval": "never", "max_calls_per_run": null}])
    );
    let revoked = put_delegates(&app, &owner.token, manager_id, json!([])).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["delegates"], json!([]));
    assert_eq!(revoked.body["version"], 3);

    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, resource FROM audit_events WHERE action = 'delegate.grant' ORDER BY seq",
    )
    .fetch_all(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            (
                "delegate.grant".to_owned(),
                format!("agents/{manager_id}/delegates")
            ),
            (
                "delegate.grant".to_owned(),
                format!("agents/{manager_id}/delegates")
            ),
        ],
        "successful changes only"
    );
}
