//! `previous_response_id`: a response continues the conversation of the one it names — the
//! agent is sent that exchange as history — streamed or not; a response stored with
//! `store: false`, another tenant's or another agent's cannot be continued.

use axum::http::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::agents::{analyst, owner};
use crate::fakes::{answer_chunk, chat_stream};
use crate::harness::{TestApp, post};

/// The messages of each model call, as `role: content` lines.
async fn sent(server: &MockServer) -> Vec<Vec<String>> {
    let mut calls = Vec::new();
    for request in server.received_requests().await.unwrap() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let lines = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] != "system")
            .map(|m| {
                format!(
                    "{}: {}",
                    m["role"].as_str().unwrap(),
                    m["content"].as_str().unwrap_or("")
                )
            })
            .collect();
        calls.push(lines);
    }
    calls
}

async fn respond(app: &TestApp, token: &str, body: Value) -> crate::harness::Reply {
    post(&app.gateway, "/v1/responses", Some(token), body).await
}

#[tokio::test]
async fn a_response_continues_the_conversation_it_names() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_stream(&[answer_chunk("gpt-4o-mini", "Noted.")]))
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    let token = owner(&app, "Chain").await;
    post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    let mut writer = analyst();
    writer["slug"] = json!("writer");
    post(&app.gateway, "/v1/agents", Some(&token), writer).await;

    let first = respond(
        &app,
        &token,
        json!({"model": "agent:analyst",
        "input": "The code word is tulip."}),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first_id = first.body["id"].as_str().unwrap().to_owned();
    let second = respond(
        &app,
        &token,
        json!({"model": "agent:analyst",
        "input": "What is the code word?", "previous_response_id": first_id}),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["previous_response_id"], first_id.as_str());
    let calls = sent(&server).await;
    assert_eq!(calls[0], ["user: The code word is tulip."]);
    assert_eq!(
        calls[1],
        [
            "user: The code word is tulip.",
            "assistant: Noted.",
            "user: What is the code word?"
        ],
        "the second turn saw the first"
    );

    // Streamed, and continued again from the streamed one.
    let second_id = second.body["id"].as_str().unwrap();
    let streamed = respond(
        &app,
        &token,
        json!({"model": "agent:analyst", "stream": true,
        "input": "Spell it.", "previous_response_id": second_id}),
    )
    .await;
    let events = streamed.body.as_str().unwrap();
    assert!(events.contains("event: response.completed"), "{events}");
    let created: Value = events
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .unwrap();
    let streamed_id = created["response"]["id"].as_str().unwrap().to_owned();
    let third = respond(
        &app,
        &token,
        json!({"model": "agent:analyst",
        "input": "Thanks.", "previous_response_id": streamed_id}),
    )
    .await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
    assert_eq!(
        sent(&server).await[3].len(),
        7,
        "three exchanges, then the new question"
    );

    // Not kept, another agent's, another tenant's: refused, naming the parameter.
    let unstored = respond(
        &app,
        &token,
        json!({"model": "agent:analyst",
        "input": "Forget this.", "store": false}),
    )
    .await;
    let unstored_id = unstored.body["id"].as_str().unwrap();
    let other = owner(&app, "Elsewhere").await;
    post(&app.gateway, "/v1/agents", Some(&other), analyst()).await;
    let refusals = [
        (
            &token,
            "agent:analyst",
            unstored_id.to_owned(),
            "no stored response",
        ),
        (&token, "agent:writer", first_id.clone(), "another agent"),
        (
            &other,
            "agent:analyst",
            first_id.clone(),
            "no stored response",
        ),
    ];
    for (who, model, previous, says) in refusals {
        let refused = respond(
            &app,
            who,
            json!({"model": model, "input": "Go on.",
            "previous_response_id": previous}),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.body["error"]["param"], "previous_response_id");
        let message = refused.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(
        sent(&server).await.len(),
        5,
        "refused requests reached no model"
    );
}
