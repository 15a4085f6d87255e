//! The OpenAI surface's JSON modes over the real runtime: the agent's answer is checked
//! against the requested schema, a wrong one is sent back with what was wrong, and after the
//! allowed attempts the caller gets `invalid_model_output` rather than JSON that does not fit.

use axum::http::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::agents::{analyst, owner};
use crate::harness::{TestApp, post};

/// An OpenAI-compatible model answering `text` as one streamed chunk, `times` times.
async fn answers(server: &MockServer, text: &str, times: u64) {
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    let last = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50}});
    let body = format!("data: {chunk}\n\ndata: {last}\n\ndata: [DONE]\n\n");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .up_to_n_times(times)
        .mount(server)
        .await;
}

async fn app(server: &MockServer) -> (TestApp, String) {
    let base = format!("{}/v1", server.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    let token = owner(&app, "Json").await;
    post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    (app, token)
}

fn greeting_format() -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "greeting", "strict": true,
        "schema": {"type": "object", "properties": {"greeting": {"type": "string"}},
                   "required": ["greeting"], "additionalProperties": false}}})
}

/// What the model was sent as the last user message of each request.
async fn asked(server: &MockServer) -> Vec<String> {
    let mut asked = Vec::new();
    for request in server.received_requests().await.unwrap() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let messages = body["messages"].as_array().unwrap();
        let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
        asked.push(user["content"].as_str().unwrap_or_default().to_owned());
    }
    asked
}

#[tokio::test]
async fn a_wrong_answer_is_sent_back_and_the_checked_json_returned() {
    let server = MockServer::start().await;
    answers(&server, "Sure! The greeting is Hello Ada.", 1).await;
    answers(&server, "```json\n{\"greeting\": \"Hello Ada\"}\n```", 1).await;
    let (app, token) = app(&server).await;
    let reply = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        json!({"model": "agent:analyst", "response_format": greeting_format(),
               "messages": [{"role": "user", "content": "Greet Ada"}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let content = reply.body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(content).unwrap(),
        json!({"greeting": "Hello Ada"})
    );
    assert_eq!(
        reply.body["usage"]["total_tokens"], 100,
        "both attempts count"
    );
    let asked = asked(&server).await;
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].starts_with("Greet Ada") && asked[0].contains("JSON Schema named `greeting`"));
    assert!(
        asked[1].starts_with("That answer cannot be used: the answer is not valid JSON"),
        "{}",
        asked[1]
    );
}

#[tokio::test]
async fn json_that_never_fits_is_an_error_and_a_bad_schema_a_400() {
    let server = MockServer::start().await;
    answers(&server, "{\"greeting\": 42}", 10).await;
    let (app, token) = app(&server).await;
    let reply = post(
        &app.gateway,
        "/v1/responses",
        Some(&token),
        json!({"model": "agent:analyst", "input": "Greet Ada",
               "text": {"format": {"type": "json_schema", "name": "greeting",
                   "schema": greeting_format()["json_schema"]["schema"]}}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "invalid_model_output");
    assert_eq!(reply.body["error"]["type"], "server_error");
    // The agent had its retries: OpenAI SDKs are told not to repeat the whole request.
    assert_eq!(reply.headers["x-should-retry"], "false");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("/greeting"), "{message}");
    assert_eq!(
        asked(&server).await.len(),
        3,
        "three attempts, then the error"
    );

    let bad = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        json!({"model": "agent:analyst",
               "response_format": {"type": "json_schema",
                   "json_schema": {"name": "broken", "schema": {"type": "no-such-type"}}},
               "messages": [{"role": "user", "content": "Greet Ada"}]}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["error"]["param"], "response_format");
    assert_eq!(bad.body["error"]["type"], "invalid_request_error");
    assert_eq!(
        asked(&server).await.len(),
        3,
        "a bad schema reaches no model"
    );

    // Refused before any handler ran, and still in OpenAI's shape.
    let stranger = post(
        &app.gateway,
        "/v1/responses",
        None,
        json!({"model": "agent:analyst", "input": "Greet Ada"}),
    )
    .await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stranger.body["error"]["type"], "authentication_error");
    assert_eq!(stranger.body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_reply_cut_at_max_tokens_says_so_on_every_surface() {
    let server = MockServer::start().await;
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "The launch plan has three"},
                     "finish_reason": "length"}]});
    let body = format!("data: {chunk}\n\ndata: [DONE]\n\n");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    let (app, token) = app(&server).await;
    let ask = |stream: bool| {
        json!({"model": "agent:analyst", "stream": stream,
               "messages": [{"role": "user", "content": "Plan the launch"}]})
    };
    let whole = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        ask(false),
    )
    .await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
    assert_eq!(whole.body["choices"][0]["finish_reason"], "length");
    let streamed = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        ask(true),
    )
    .await;
    let text = streamed.body.as_str().unwrap();
    assert!(text.contains(r#""finish_reason":"length""#), "{text}");
    assert!(!text.contains(r#""finish_reason":"stop""#), "{text}");

    let response = post(
        &app.gateway,
        "/v1/responses",
        Some(&token),
        json!({"model": "agent:analyst", "input": "Plan the launch"}),
    )
    .await;
    assert_eq!(response.body["status"], "incomplete", "{}", response.body);
    assert_eq!(
        response.body["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    let events = post(
        &app.gateway,
        "/v1/responses",
        Some(&token),
        json!({"model": "agent:analyst", "input": "Plan the launch", "stream": true}),
    )
    .await;
    let events = events.body.as_str().unwrap();
    assert!(events.contains("event: response.incomplete"), "{events}");
    assert!(!events.contains("event: response.completed"), "{events}");

    // The agent's own chat API says the same.
    let agents = crate::harness::get(&app.gateway, "/v1/agents", Some(&token)).await;
    let id = agents.body["agents"][0]["id"].as_str().unwrap().to_owned();
    let chat = post(
        &app.gateway,
        &format!("/v1/agents/{id}/chat"),
        Some(&token),
        json!({"message": "Plan the launch"}),
    )
    .await;
    assert_eq!(chat.body["truncated"], true, "{}", chat.body);
}
