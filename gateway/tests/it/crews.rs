//! Crews through the API, and run events crossing processes: a crew run executed by this
//! process's worker is watched over SSE on a separate `brain serve gateway` process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::harness::{TestApp, call, get, member, post, signup};
use crate::process::BrainProcess;

/// An OpenAI-compatible model answering each call with the next reply (the last repeats).
struct Replies(Vec<&'static str>, AtomicUsize);

impl Respond for Replies {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self.1.fetch_add(1, Ordering::SeqCst);
        let text = self.0[n.min(self.0.len() - 1)];
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]});
        ResponseTemplate::new(200).set_body_raw(
            format!("data: {chunk}\n\ndata: [DONE]\n\n"),
            "text/event-stream",
        )
    }
}

async fn app(replies: Vec<&'static str>) -> (TestApp, MockServer) {
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Replies(replies, AtomicUsize::new(0)))
        .mount(&model)
        .await;
    let base = format!("{}/v1", model.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    (app, model)
}

async fn agent(app: &TestApp, token: &str, name: &str) -> String {
    let reply = post(
        &app.gateway,
        "/v1/agents",
        Some(token),
        json!({"name": name, "role": name, "goal": "help", "model": "openai:m", "max_tokens": 32}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn crews_are_validated_and_managed_through_the_api() {
    let (app, _model) = app(vec!["ok"]).await;
    let owner = signup(&app, "Crew Co").await;
    let token = owner.token.as_str();
    let (a, b) = (
        agent(&app, token, "Writer").await,
        agent(&app, token, "Editor").await,
    );
    let task = json!({"description": "Draft", "expected_output": "A draft"});
    for (body, needle) in [
        (
            json!({"name": "C", "members": [a, b], "process": "hierarchical", "tasks": [task]}),
            "manager_agent_id",
        ),
        (
            json!({"name": "C", "members": [a, uuid::Uuid::new_v4()], "process": "sequential", "tasks": [task]}),
            "members.1",
        ),
        (
            json!({"name": "C", "members": [a], "process": "sequential", "tasks": []}),
            "tasks",
        ),
        (
            json!({"name": "C", "members": [a], "process": "sequential", "tasks": [task],
                   "manager_agent_id": b}),
            "manager_agent_id",
        ),
    ] {
        let reply = post(&app.gateway, "/v1/crews", Some(token), body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(needle),
            "{}",
            reply.body
        );
    }
    let viewer = member(&app, &owner, "viewer").await;
    let crew = json!({"name": "Campaign", "members": [a, b], "process": "sequential",
                      "tasks": [task, {"description": "Edit", "expected_output": "An edit"}]});
    let refused = post(&app.gateway, "/v1/crews", Some(&viewer), crew.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let created = post(&app.gateway, "/v1/crews", Some(token), crew.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let dup = post(&app.gateway, "/v1/crews", Some(token), crew).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let listed = get(&app.gateway, "/v1/crews", Some(&viewer)).await;
    assert_eq!(listed.body["crews"].as_array().unwrap().len(), 1);
    let patched = call(
        &app.gateway,
        Method::PATCH,
        &format!("/v1/crews/{id}"),
        Some(token),
        Some(json!({"name": "Campaign crew"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["version"], 2);
    let stranger = signup(&app, "Elsewhere").await;
    let hidden = get(
        &app.gateway,
        &format!("/v1/crews/{id}"),
        Some(&stranger.token),
    )
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let deleted = call(
        &app.gateway,
        Method::DELETE,
        &format!("/v1/crews/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

/// Reads SSE events from `response` until `done` (or a minute passes).
async fn read_events(mut response: reqwest::Response) -> Vec<(String, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .expect("the event stream went quiet")
            .unwrap();
        let Some(chunk) = chunk else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if name.is_empty() {
                continue;
            }
            let value = serde_json::from_str(&data).unwrap_or(Value::Null);
            let done = name == "done";
            events.push((name, value));
            if done {
                return events;
            }
        }
    }
    events
}

#[tokio::test]
async fn crew_run_events_reach_an_sse_client_on_another_gateway_process() {
    let (app, _model) = app(vec!["OUTLINE ready", "EDITED: final copy"]).await;
    let owner = signup(&app, "Events Co").await;
    let token = owner.token.as_str();
    let (a, b) = (
        agent(&app, token, "Writer").await,
        agent(&app, token, "Editor").await,
    );
    let crew = post(
        &app.gateway,
        "/v1/crews",
        Some(token),
        json!({"name": "Launch", "members": [a, b], "process": "sequential",
               "tasks": [{"description": "Outline", "expected_output": "An outline"},
                         {"description": "Edit", "expected_output": "Final copy"}]}),
    )
    .await;
    let crew = crew.body["id"].as_str().unwrap().to_owned();
    // The other process knows nothing of this process's tokens: an API key it checks itself.
    let key = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(token),
        json!({"name": "watcher", "scopes": ["agents:read", "tasks:invoke"]}),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let key = key.body["key"].as_str().unwrap().to_owned();
    // `brain serve gateway` alone, on a port of its own, against this test's database.
    let other = BrainProcess::start(&app.db, &["serve", "gateway"], &[]).await;

    // Started here, before any worker runs, so every event happens while watched.
    let run = post(
        &app.gateway,
        &format!("/v1/crews/{crew}/runs"),
        Some(token),
        json!({"input": "Launch the spring sale"}),
    )
    .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    let task = run.body["task_id"].as_str().unwrap().to_owned();
    let response = reqwest::Client::new()
        .get(format!("{}/v1/tasks/{task}/events", other.gateway))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let watching = tokio::spawn(read_events(response));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let worker = app.worker().await;
    let events = watching.await.unwrap();
    worker.shutdown().await;

    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"snapshot"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert_eq!(events.last().unwrap().1["status"], "succeeded");
    // Both member turns, in order, and the members' own model steps came through too.
    let crew_steps: Vec<(String, String)> = events
        .iter()
        .filter(|(n, e)| {
            n == "step" && e["task_id"] == task.as_str() && e["step"]["status"] == "succeeded"
        })
        .map(|(_, e)| {
            (
                e["step"]["kind"].as_str().unwrap().to_owned(),
                e["step"]["detail"]["output"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        crew_steps,
        vec![
            ("agent_task".to_owned(), "OUTLINE ready".to_owned()),
            ("agent_task".to_owned(), "EDITED: final copy".to_owned()),
        ],
        "{events:?}"
    );
    let member_llm = events
        .iter()
        .filter(|(n, e)| n == "step" && e["task_id"] != task.as_str() && e["step"]["kind"] == "llm")
        .count();
    assert!(member_llm >= 2, "{events:?}");
}
