//! A Brain agent published over A2A, driven by the official A2A Python SDK (PyPI `a2a-sdk`,
//! installed by `cargo xtask`) against a real `brain serve`: the card, a blocking and a
//! streamed message (each one of Brain's durable tasks), `GetTask`; another tenant's key,
//! an unpublished agent and broken requests are refused.

use brain_migrations::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fakes::{REPLY, model, serve};
use crate::mcp_server::tenant;
use crate::process::{Api, BrainProcess, python_script};

#[tokio::test]
async fn the_official_a2a_sdk_talks_to_a_published_agent() {
    let model_url =
        serve(axum::Router::new().route("/v1/chat/completions", axum::routing::post(model))).await;
    let db = TestDb::new().await.unwrap();
    let brain = BrainProcess::start(
        &db,
        &["serve"],
        &[
            ("OPENAI_BASE_URL", format!("{model_url}/v1")),
            ("OPENAI_API_KEY", "sk-test".to_owned()),
        ],
    )
    .await;
    let api = Api::new(&brain);
    let scopes = json!(["tasks:invoke", "agents:read"]);
    let (owner, agent, key) = tenant(&api, "A2A Co", "Voice", scopes.clone()).await;
    let (_, _, other_key) = tenant(&api, "Other Co", "Rival", scopes).await;
    let agent_id = agent["id"].as_str().unwrap();
    let publication = format!("/v1/agents/{agent_id}/a2a");

    // Not published yet: no card.
    let (status, shown) = api.gateway(Method::GET, &publication, &owner, None).await;
    assert_eq!(
        (status, &shown["published"]),
        (200, &json!(false)),
        "{shown}"
    );
    let http = reqwest::Client::new();
    let (status, published) = api.gateway(Method::PUT, &publication, &owner, None).await;
    assert_eq!(status, 200, "{published}");
    let endpoint = published["endpoint"].as_str().unwrap().to_owned();
    let card_url = published["card_url"].as_str().unwrap().to_owned();
    assert_eq!(card_url, format!("{endpoint}/.well-known/agent-card.json"));

    let params = json!({
        "base_url": endpoint,
        "key": key,
        "other_key": other_key,
        "question": "What is our brand voice?",
    });
    let stdout = python_script(
        "gateway/tests/e2e/a2a_client.py",
        "BRAIN_A2A_CLIENT",
        &params,
        &brain,
    )
    .await;
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        summary["card"],
        json!({"name": "Voice", "url": endpoint, "binding": "JSONRPC", "version": "1.0",
               "streaming": true, "skills": [agent["slug"]]}),
        "{summary}"
    );
    let blocking = &summary["blocking"];
    assert_eq!(blocking["kinds"], json!(["task"]), "{summary}");
    assert_eq!(blocking["reply"], REPLY, "{summary}");
    assert_eq!(
        blocking["get_task_state"], "TASK_STATE_COMPLETED",
        "{summary}"
    );
    assert_eq!(blocking["get_task_reply"], REPLY, "{summary}");
    let streaming = &summary["streaming"];
    assert_eq!(streaming["kinds"][0], "task", "{summary}");
    assert_eq!(streaming["reply"], REPLY, "{summary}");
    let refused = summary["other_tenant"].as_str().unwrap();
    assert!(
        refused.contains("404") || refused.contains("not found"),
        "{refused}"
    );

    // The A2A task is one of Brain's durable tasks, with the turn's answer.
    let task_id = blocking["task_id"].as_str().unwrap();
    let (status, task) = api
        .gateway(Method::GET, &format!("/v1/tasks/{task_id}"), &owner, None)
        .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["output"]["reply"], REPLY, "{task}");

    // Broken requests, then unpublished: the card and the endpoint are gone.
    let rpc = |body: &'static str| {
        http.post(&endpoint)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("a2a-version", "1.0")
            .body(body)
            .send()
    };
    let anonymous = http.post(&endpoint).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let broken = rpc("{\"jsonrpc\": \"2.0\", \"method\":").await.unwrap();
    assert_eq!(broken.status(), 400);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");
    let unknown = rpc(r#"{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}"#)
        .await
        .unwrap();
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32601, "{body}");
    let user = rpc(r#"{"jsonrpc": "2.0", "id": 2, "method": "SendMessage",
        "params": {"message": {"messageId": "m1", "role": "user", "parts": [{"text": "hi"}]}}}"#)
    .await
    .unwrap();
    let body: Value = user.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ROLE_USER"),
        "{body}"
    );
    let missing = rpc(r#"{"jsonrpc": "2.0", "id": 3, "method": "GetTask",
        "params": {"id": "00000000-0000-0000-0000-000000000000"}}"#)
    .await
    .unwrap();
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");

    let (status, _) = api
        .gateway(Method::DELETE, &publication, &owner, None)
        .await;
    assert_eq!(status, 204);
    let card = http.get(&card_url).send().await.unwrap();
    assert_eq!(card.status(), 404);
    let gone = rpc(r#"{"jsonrpc": "2.0", "id": 4, "method": "GetTask", "params": {"id": "x"}}"#)
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}
