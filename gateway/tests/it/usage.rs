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

#[tokio::test]
async fn a_tenant_budget_stops_chats_once_todays_tokens_reach_it() {
    // A model that answers every turn with 46 tokens of usage.
    let server = wiremock::MockServer::start().await;
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Noted."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}});
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(
            format!("data: {chunk}\n\ndata: [DONE]\n\n"),
            "text/event-stream",
        ))
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    let (_, token) = tenant(&app, "Budget Co").await;
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(&token),
        json!({"name": "Writer", "role": "Writer", "goal": "Write", "model": "openai:m"}),
    )
    .await;
    let chat = format!("/v1/agents/{}/chat", agent.body["id"].as_str().unwrap());

    // Validation first: nothing changes on bad input.
    for bad in [
        json!({"budget": {"max_tokens_per_day": 0}}),
        json!({"default_model": "nope"}),
        json!({"name": ""}),
    ] {
        let reply = crate::harness::call(
            &app.gateway,
            axum::http::Method::PATCH,
            "/v1/tenant",
            Some(&token),
            Some(bad),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.body
        );
    }
    let set = crate::harness::call(
        &app.gateway,
        axum::http::Method::PATCH,
        "/v1/tenant",
        Some(&token),
        Some(json!({"budget": {"max_tokens_per_day": 50}})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["budget"]["max_tokens_per_day"], 50);

    let first = post(&app.gateway, &chat, Some(&token), json!({"message": "hi"})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let second = post(
        &app.gateway,
        &chat,
        Some(&token),
        json!({"message": "hi again"}),
    )
    .await;
    assert_eq!(
        second.status,
        StatusCode::OK,
        "46 < 50 tokens so far: {}",
        second.body
    );
    let third = post(
        &app.gateway,
        &chat,
        Some(&token),
        json!({"message": "and again"}),
    )
    .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.body
    );
    assert_eq!(third.body["error"]["code"], "tenant_budget_exhausted");
    let shown = get(&app.gateway, "/v1/tenant", Some(&token)).await;
    assert_eq!(shown.body["budget"]["tokens_used_today"], 92);

    // Lifting the budget lets chats through again.
    crate::harness::call(
        &app.gateway,
        axum::http::Method::PATCH,
        "/v1/tenant",
        Some(&token),
        Some(json!({"budget": {"max_tokens_per_day": null}})),
    )
    .await;
    let fourth = post(
        &app.gateway,
        &chat,
        Some(&token),
        json!({"message": "once more"}),
    )
    .await;
    assert_eq!(fourth.status, StatusCode::OK, "{}", fourth.body);
}

#[tokio::test]
async fn a_tenant_budget_stops_durable_tasks_as_it_stops_chats() {
    // The same model as above: 46 tokens a call.
    let server = wiremock::MockServer::start().await;
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Noted."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}});
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(
            format!("data: {chunk}\n\ndata: [DONE]\n\n"),
            "text/event-stream",
        ))
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    let (_, token) = tenant(&app, "Task Budget Co").await;
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(&token),
        json!({"name": "Writer", "role": "Writer", "goal": "Write", "model": "openai:m"}),
    )
    .await;
    let tasks = format!("/v1/agents/{}/tasks", agent.body["id"].as_str().unwrap());
    let set = crate::harness::call(
        &app.gateway,
        axum::http::Method::PATCH,
        "/v1/tenant",
        Some(&token),
        Some(json!({"budget": {"max_tokens_per_day": 50}})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let _worker = app.worker().await;

    let run = |input: &'static str| {
        let (app, token, tasks) = (&app, &token, &tasks);
        async move {
            let started = post(&app.gateway, tasks, Some(token), json!({"input": input})).await;
            assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
            let task = format!("/v1/tasks/{}", started.body["task_id"].as_str().unwrap());
            for _ in 0..600 {
                let shown = get(&app.gateway, &task, Some(token)).await;
                if ["succeeded", "failed"].contains(&shown.body["status"].as_str().unwrap_or("")) {
                    return shown.body;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("{task} never finished");
        }
    };
    assert_eq!(run("first").await["status"], "succeeded");
    assert_eq!(
        run("second").await["status"],
        "succeeded",
        "46 < 50 tokens so far"
    );
    let third = run("third").await;
    assert_eq!(third["status"], "failed", "{third}");
    assert!(
        third["error"].to_string().contains("daily token budget"),
        "{third}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "the refused task never reached the model"
    );
    let shown = get(&app.gateway, "/v1/tenant", Some(&token)).await;
    assert_eq!(shown.body["budget"]["tokens_used_today"], 92);
}
