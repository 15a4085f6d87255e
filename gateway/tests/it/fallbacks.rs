//! An agent's `fallback_models`: a model that stays rate limited after the provider's
//! retries hands the call to the next model, and the turn says so.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::agents::owner;
use crate::fakes::{answer_chunk, chat_stream};
use crate::harness::{TestApp, call, post};

/// `gpt-busy` is always rate limited (`Retry-After: 0`); `gpt-calm` answers.
async fn models() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "gpt-busy"})))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(
                    json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "gpt-calm"})))
        .respond_with(chat_stream(&[answer_chunk("gpt-calm", "Calm answer.")]))
        .mount(&server)
        .await;
    server
}

fn sent_models(requests: &[wiremock::Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["model"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_rate_limited_model_hands_the_turn_to_the_next_fallback() {
    let server = models().await;
    let base = format!("{}/v1", server.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    let token = owner(&app, "Fallbacks").await;
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(&token),
        json!({"name": "Writer", "role": "Copywriter", "goal": "Write",
               "model": "openai:gpt-busy", "fallback_models": ["openai:gpt-calm"]}),
    )
    .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    assert_eq!(agent.body["fallback_models"], json!(["openai:gpt-calm"]));
    let id = agent.body["id"].as_str().unwrap().to_owned();

    let reply = post(
        &app.gateway,
        &format!("/v1/agents/{id}/chat"),
        Some(&token),
        json!({"message": "A tagline, please"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["reply"], "Calm answer.");
    assert_eq!(
        reply.body["fallbacks"],
        json!([{"from": "openai:gpt-busy", "to": "openai:gpt-calm", "code": "model_rate_limited"}])
    );
    // The provider's own retries first (3 calls), then the fallback.
    let sent = sent_models(&server.received_requests().await.unwrap());
    assert_eq!(sent, ["gpt-busy", "gpt-busy", "gpt-busy", "gpt-calm"]);
    let counted = app
        .app
        .state
        .registry
        .gather()
        .into_iter()
        .find(|f| f.name() == "brain_model_fallbacks_total")
        .map(|f| f.get_metric()[0].get_counter().get_value());
    assert_eq!(counted, Some(1.0));

    // What a list of fallbacks may hold.
    for (fallbacks, message) in [
        (json!(["nope:model"]), "unknown model provider `nope`"),
        (json!(["openai:a", "openai:a"]), "listed twice"),
        (
            json!(["openai:a", "openai:b", "openai:c", "openai:d"]),
            "at most 3",
        ),
        (json!(["gpt-4o"]), "is not `provider:model`"),
    ] {
        let patched = call(
            &app.gateway,
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(&token),
            Some(json!({"fallback_models": fallbacks})),
        )
        .await;
        assert_eq!(
            patched.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            patched.body
        );
        let error = patched.body["error"]["message"].as_str().unwrap();
        assert!(
            error.starts_with("fallback_models: ") && error.contains(message),
            "{error}"
        );
    }
}
