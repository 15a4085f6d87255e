//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a chat turn's model and tool calls reach a local
//! OTLP/HTTP receiver as spans with the GenAI semantic-convention attributes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::agents::{analyst, owner};
use crate::fakes::{answer_chunk, chat_stream};
use crate::harness::{TestApp, post};

/// A model that calls `wordpress__create_post` first, then answers.
async fn model() -> MockServer {
    let server = MockServer::start().await;
    let call = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "delta": {"tool_calls": [{
            "index": 0, "id": "call_1", "type": "function",
            "function": {"name": "wordpress__create_post", "arguments": "{\"title\": \"Hi\"}"}}]}}]});
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129}});
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_stream(&[call, usage]))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let answer = answer_chunk("gpt-4o-mini", "I may not post.");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_stream(&[answer]))
        .mount(&server)
        .await;
    server
}

/// A span's attributes as text.
fn attributes(span: &Span) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => s.clone(),
                Some(Any::IntValue(i)) => i.to_string(),
                Some(Any::DoubleValue(d)) => d.to_string(),
                Some(Any::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

#[test]
fn a_chat_turn_with_a_tool_call_is_exported_as_gen_ai_spans() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let config = brain_gateway::config::Config {
        otel_exporter_otlp_endpoint: Some(format!("http://{}", listener.local_addr().unwrap())),
        log: "info".to_owned(),
        ..brain_gateway::config::Config::default()
    };
    // Outside the runtime: the exporter has its own thread and blocking client.
    let telemetry = brain_gateway::telemetry::init(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sink = received.clone();
    runtime.block_on(async move {
        let receiver = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| async move {
                sink.lock().unwrap().push(body);
                StatusCode::OK
            }),
        );
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let server = model().await;
        let base = format!("{}/v1", server.uri());
        let app = TestApp::with_config(|c| {
            c.openai_base_url = base;
            c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
        })
        .await;
        let token = owner(&app, "Traced").await;
        let agent = post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
        let chat = format!("/v1/agents/{}/chat", agent.body["id"].as_str().unwrap());
        let turn = post(
            &app.gateway,
            &chat,
            Some(&token),
            json!({"message": "Post hi"}),
        )
        .await;
        assert_eq!(turn.status, StatusCode::OK, "{}", turn.body);
        assert_eq!(
            turn.body["tool_calls"][0]["status"], "rejected",
            "{}",
            turn.body
        );
    });
    // The runtime's workers keep serving the receiver while the exporter sends.
    telemetry.flush();

    let spans: Vec<Span> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|body| {
            ExportTraceServiceRequest::decode(body.as_ref())
                .unwrap()
                .resource_spans
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect();
    let gen_ai: Vec<(String, BTreeMap<String, String>)> = spans
        .iter()
        .map(|s| (s.name.clone(), attributes(s)))
        .filter(|(_, a)| a.contains_key("gen_ai.operation.name"))
        .collect();
    let names: Vec<&str> = gen_ai.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "chat gpt-4o-mini",
            "execute_tool wordpress__create_post",
            "chat gpt-4o-mini"
        ],
        "{spans:?}"
    );
    let first = &gen_ai[0].1;
    assert_eq!(first["gen_ai.operation.name"], "chat");
    assert_eq!(first["gen_ai.provider.name"], "openai");
    assert_eq!(first["gen_ai.request.model"], "gpt-4o-mini");
    assert_eq!(first["gen_ai.request.max_tokens"], "64");
    assert_eq!(first["gen_ai.usage.input_tokens"], "120");
    assert_eq!(first["gen_ai.usage.output_tokens"], "9");
    assert_eq!(first["gen_ai.response.finish_reasons"], "tool_calls");
    let tool = &gen_ai[1].1;
    assert_eq!(tool["gen_ai.operation.name"], "execute_tool");
    assert_eq!(tool["gen_ai.tool.name"], "wordpress__create_post");
    assert_eq!(tool["gen_ai.tool.call.id"], "call_1");
    assert_eq!(tool["error.type"], "rejected");
    // No prompt or reply text is exported.
    let exported = format!("{spans:?}");
    assert!(!exported.contains("Post hi") && !exported.contains("I may not post"));
}
