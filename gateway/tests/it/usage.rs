//! `GET /v1/usage`: per agent and per day, only the caller's tenant.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{TestApp, get, post};

async fn tenant(app: &TestApp, name: &str) -> (uuid::Uuid, String) {
    let email = format!("owner-{}@usage.test", uuid::Uuid::new_v4().simple());
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": "correct horse battery staple"}),
    )
    .await;
    let id = reply.body["tenant"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (id, reply.body["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn usage_is_reported_per_agent_and_day_for_the_callers_tenant_only() {
    let app = TestApp::new().await;
    let (a, a_token) = tenant(&app, "Usage A").await;
    let (b, _) = tenant(&app, "Usage B").await;
    let agent: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO agents (tenant_id, name, slug, role, goal) \
         VALUES ($1, 'Writer', 'writer', 'Writer', 'Write') RETURNING id",
    )
    .bind(a)
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    for (tenant, agent, day, prompt) in [
        (a, Some(agent), "2026-11-20", 100i64),
        (a, Some(agent), "2026-11-21", 50),
        (a, None, "2026-11-21", 7),
        (a, Some(agent), "2026-10-01", 999),
        (b, None, "2026-11-21", 12345),
    ] {
        sqlx::query(
            "INSERT INTO usage (tenant_id, day, agent_id, prompt_tokens, completion_tokens, \
             tool_calls, tasks) VALUES ($1, $2::date, $3, $4, 10, 1, 0)",
        )
        .bind(tenant)
        .bind(day)
        .bind(agent)
        .bind(prompt)
        .execute(&app.db.owner)
        .await
        .unwrap();
    }
    let reply = get(
        &app.gateway,
        "/v1/usage?from=2026-11-01&to=2026-11-30",
        Some(&a_token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rows = reply.body["usage"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["day"], "2026-11-20");
    assert_eq!(rows[0]["agent"], "writer");
    assert_eq!(reply.body["totals"]["prompt_tokens"], 157);
    assert_eq!(reply.body["totals"]["completion_tokens"], 30);
    assert!(
        !reply.body.to_string().contains("12345"),
        "another tenant's usage leaked"
    );

    for bad in [
        "/v1/usage?from=yesterday",
        "/v1/usage?from=2026-12-01&to=2026-11-01",
        "/v1/usage?from=2020-01-01&to=2026-01-01",
    ] {
        assert_eq!(
            get(&app.gateway, bad, Some(&a_token)).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
}
