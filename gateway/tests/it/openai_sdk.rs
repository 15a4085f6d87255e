//! The official OpenAI Python SDK (PyPI `openai`, installed by `cargo xtask`) drives the
//! OpenAI-compatible surface of a real `brain serve` — models, chat completions, responses,
//! streamed and not, JSON schema answers — with an API key, against an agent that runs on
//! the local model.

use brain_migrations::testing::TestDb;
use reqwest::Method;
use serde_json::json;

use crate::harness::required;
use crate::process::{Api, BrainProcess, python_script};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn the_official_openai_sdk_talks_to_an_agent_on_the_local_model() {
    let db = TestDb::new().await.unwrap();
    let brain = BrainProcess::start(
        &db,
        &["serve"],
        &[
            ("BRAIN_LOCAL_MODEL", required("BRAIN_LOCAL_MODEL")),
            // Short answers keep the local model's turns quick.
            ("BRAIN_LOCAL_CONTEXT", "2048".to_owned()),
        ],
    )
    .await;
    let api = Api::new(&brain);
    let (status, signup) = api
        .auth(
            Method::POST,
            "/v1/auth/signup",
            None,
            json!({"tenant_name": "SDK Co", "email": "owner@sdk.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{signup}");
    let owner = signup["access_token"].as_str().unwrap().to_owned();
    let (status, agent) = api
        .gateway(
            Method::POST,
            "/v1/agents",
            &owner,
            Some(json!({
                "name": "Greeter",
                "role": "a friendly greeter",
                "goal": "answer in one short sentence",
                "model": "local:default",
                "temperature": 0.0,
            })),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (status, key) = api
        .gateway(
            Method::POST,
            "/v1/integrations/api-keys",
            &owner,
            Some(json!({"name": "sdk", "scopes": ["chat", "agents:read"]})),
        )
        .await;
    assert_eq!(status, 201, "{key}");

    let params = json!({
        "base_url": format!("{}/v1", brain.gateway),
        "api_key": key["key"],
        "model": format!("agent:{}", agent["slug"].as_str().unwrap()),
        "question": "Say hello to Ada in five words.",
    });
    let stdout = python_script(
        "gateway/tests/e2e/openai_sdk.py",
        "BRAIN_OPENAI_SDK",
        &params,
        &brain,
    )
    .await;
    let summary: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for call in ["chat", "chat_stream", "response", "response_stream"] {
        let text = summary[call].as_str().unwrap_or_default();
        assert!(
            !text.trim().is_empty(),
            "{call} answered nothing: {summary}"
        );
    }
    for call in ["chat_json_schema", "response_json_schema"] {
        assert!(summary[call]["greeting"].is_string(), "{call}: {summary}");
    }
    assert_eq!(summary["refusals"], 4, "{summary}");
}
