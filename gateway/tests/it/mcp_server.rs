//! Brain as an MCP server: the official MCP Python SDK (PyPI `mcp`, installed by `cargo
//! xtask`) connects to `/mcp` of a real `brain serve` with API keys and uses a tenant's
//! agents; another tenant's key sees none of them; requests without credentials or with a
//! broken body get clear errors.

use brain_migrations::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fakes::{REPLY, model, serve};
use crate::process::{Api, BrainProcess, python_script};

const PASSWORD: &str = "correct horse battery staple";

/// A new tenant with one agent and an API key of `scopes`: (owner token, agent, key).
pub(crate) async fn tenant(
    api: &Api,
    name: &str,
    agent: &str,
    scopes: Value,
) -> (String, Value, String) {
    let email = format!("owner-{}@mcp.test", uuid::Uuid::new_v4().simple());
    let (status, signup) = api
        .auth(
            Method::POST,
            "/v1/auth/signup",
            None,
            json!({"tenant_name": name, "email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{signup}");
    let owner = signup["access_token"].as_str().unwrap().to_owned();
    let (status, agent) = api
        .gateway(
            Method::POST,
            "/v1/agents",
            &owner,
            Some(
                json!({"name": agent, "role": "brand writer", "goal": "describe the brand voice",
                        "model": "openai:gpt-4o-mini", "max_tokens": 64}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (status, key) = api
        .gateway(
            Method::POST,
            "/v1/integrations/api-keys",
            &owner,
            Some(json!({"name": "mcp client", "scopes": scopes})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    (owner, agent, key["key"].as_str().unwrap().to_owned())
}

/// A real `brain serve` in a fresh database whose `openai:` models are the fake model of
/// `crate::fakes` (it answers [`REPLY`]); the database lives as long as the process.
pub(crate) async fn brain_on_fake_model() -> (TestDb, BrainProcess) {
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
    (db, brain)
}

#[tokio::test]
async fn the_official_mcp_sdk_asks_a_tenants_agents_through_brain() {
    let (_db, brain) = brain_on_fake_model().await;
    let api = Api::new(&brain);
    let (owner, agent, key) = tenant(&api, "MCP Co", "Voice", json!(["chat", "agents:read"])).await;
    let (_, other_agent, other_key) = tenant(&api, "Other Co", "Rival", json!(["chat"])).await;
    let slug = agent["slug"].as_str().unwrap();

    let params = json!({
        "url": format!("{}/mcp", brain.gateway),
        "key": key,
        "other_key": other_key,
        "slug": slug,
        "other_slug": other_agent["slug"],
        "question": "What is our brand voice?",
    });
    let stdout = python_script(
        "gateway/tests/e2e/mcp_client.py",
        "BRAIN_MCP_CLIENT",
        &params,
        &brain,
    )
    .await;
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));

    let current = &summary["current"];
    assert_eq!(current["protocol"], "2026-07-28", "{summary}");
    assert_eq!(summary["legacy"]["protocol"], "2025-11-25", "{summary}");
    for run in [current, &summary["legacy"]] {
        assert_eq!(
            run["tools"],
            json!([format!("ask_{slug}"), "knowledge_search", "task_status"]),
            "{run}"
        );
        assert_eq!(run["answer"], REPLY, "{run}");
        assert_eq!(run["search"], json!({"hits": []}), "{run}");
        let bad = run["bad_arguments"].as_str().unwrap();
        assert!(bad.contains("unknown field `prompt`"), "{bad}");
    }
    // A `chat` key of another tenant sees its own agent only, and Brain's answer to a call
    // of this tenant's agent is that no such tool exists.
    let other = &summary["other_tenant"];
    assert_eq!(
        other["tools"],
        json!([format!("ask_{}", other_agent["slug"].as_str().unwrap())]),
        "{other}"
    );
    let refusal = other["reach_other_agent"].as_str().unwrap();
    assert!(
        refusal.contains(&format!("unknown tool `ask_{slug}`")),
        "{refusal}"
    );

    // The turns are the agent's own: stored in one conversation of the tenant, two turns.
    let conversation = current["conversation_id"].as_str().unwrap();
    let (status, messages) = api
        .gateway(
            Method::GET,
            &format!("/v1/conversations/{conversation}/messages"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 200, "{messages}");
    let texts: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["What is our brand voice?", REPLY, "And once more?", REPLY],
        "{messages}"
    );

    raw_requests(&brain.gateway, &key).await;
}

/// What a client that is not an MCP SDK gets: no credentials, a broken body, a GET.
async fn raw_requests(gateway: &str, key: &str) {
    let http = reqwest::Client::new();
    let url = format!("{gateway}/mcp");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let accept = "application/json, text/event-stream";

    let anonymous = http
        .post(&url)
        .header("accept", accept)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");

    let broken = http
        .post(&url)
        .bearer_auth(key)
        .header("accept", accept)
        .header("content-type", "application/json")
        .body("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\":")
        .send()
        .await
        .unwrap();
    let status = broken.status();
    let body = broken.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("-32700") || body.to_lowercase().contains("parse"),
        "{body}"
    );
}
