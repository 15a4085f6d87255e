//! The native-wire providers (through rig-core) against local servers that answer in each
//! provider's documented streaming format: Anthropic Messages events, Gemini
//! `streamGenerateContent?alt=sse`, Ollama's NDJSON `/api/chat`, and Azure OpenAI's chat
//! chunks on a deployment URL. For each: a streamed answer with usage, a tool call whose
//! pieces arrive in separate chunks, a 429 with `Retry-After` that is waited out, and a 401
//! that names the provider without repeating the key.

use std::time::{Duration, Instant};

use brain_agents::ProviderError;
use brain_agents::providers::openai::RetryPolicy;
use brain_agents::providers::rig::{RigConfig, RigProvider, Wire};
use brain_agents::providers::{
    ChatMessage, ChatRequest, FinishReason, LlmProvider, ToolCall, ToolDefinition, Usage,
};
use brain_auth::secrets::SecretString;
use brain_auth::{Code, ErrorCode, TenantId};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-wire-test-0123456789abcdef";

fn provider(server: &MockServer, wire: Wire, name: &str) -> RigProvider {
    let mut config = RigConfig::new(name, wire, server.uri());
    config.api_key = Some(SecretString::new(KEY));
    config.retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(50),
        max_wait: Duration::from_secs(5),
    };
    RigProvider::new(config).unwrap()
}

fn request(model: &str) -> ChatRequest {
    ChatRequest {
        tenant: TenantId::new(),
        model: model.into(),
        messages: vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Weather in Paris?"),
        ],
        tools: vec![ToolDefinition {
            name: "get_weather".into(),
            description: "Current weather for a city.".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}),
        }],
        temperature: 0.2,
        max_tokens: 256,
    }
}

fn sse(events: &[(&str, Value)]) -> ResponseTemplate {
    let mut body = String::new();
    for (name, data) in events {
        if !name.is_empty() {
            body.push_str(&format!("event: {name}\n"));
        }
        match data.as_str() {
            // OpenAI's end marker is a bare word.
            Some(word) => body.push_str(&format!("data: {word}\n\n")),
            None => body.push_str(&format!("data: {data}\n\n")),
        }
    }
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

fn ndjson(lines: &[Value]) -> ResponseTemplate {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson")
}

fn refusal(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("retry-after", "1")
        .set_body_json(body)
}

/// What each provider's fake answers, in its own wire format.
struct Fake {
    wire: Wire,
    name: &'static str,
    model: &'static str,
    /// Method and path of a completion call, and the query it must carry.
    path: String,
    query: Option<(&'static str, &'static str)>,
    /// The header that carries the key, and its value.
    auth: (&'static str, String),
    text: ResponseTemplate,
    tool_call: ResponseTemplate,
    rate_limited: ResponseTemplate,
    unauthorized: ResponseTemplate,
    /// The provider's answer to a prompt over the context window (Ollama truncates instead).
    too_long: Option<ResponseTemplate>,
}

fn anthropic() -> Fake {
    let start = json!({"type": "message_start", "message": {"id": "msg_01", "type": "message",
        "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}});
    let text = sse(&[
        ("message_start", start.clone()),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Sunny, "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "21 °C."}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 7}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let tool_call = sse(&[
        ("message_start", start),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                              "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{\"ci"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "ty\": \"Paris\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 7}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    Fake {
        wire: Wire::Anthropic,
        name: "anthropic",
        model: "claude-sonnet-4-5",
        path: "/v1/messages".into(),
        query: None,
        auth: ("x-api-key", KEY.into()),
        text,
        tool_call,
        rate_limited: refusal(
            429,
            json!({"type": "error", "error": {
            "type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"}}),
        ),
        unauthorized: refusal(
            401,
            json!({"type": "error", "error": {
            "type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}}),
        ),
        too_long: Some(refusal(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "prompt is too long: 215643 tokens > 200000 maximum"}}),
        )),
    }
}

fn gemini() -> Fake {
    let usage = json!({"promptTokenCount": 25, "candidatesTokenCount": 7, "totalTokenCount": 32});
    let text = sse(&[
        (
            "",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Sunny, "}]},
            "index": 0}], "modelVersion": "gemini-2.5-flash"}),
        ),
        (
            "",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "21 °C."}]},
            "finishReason": "STOP", "index": 0}], "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash"}),
        ),
    ]);
    let tool_call = sse(&[
        (
            "",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
            "index": 0}], "modelVersion": "gemini-2.5-flash"}),
        ),
        (
            "",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {
            "name": "get_weather", "args": {"city": "Paris"}}}]}, "index": 0}],
            "modelVersion": "gemini-2.5-flash"}),
        ),
        (
            "",
            json!({"candidates": [{"content": {"role": "model", "parts": []},
            "finishReason": "STOP", "index": 0}], "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash"}),
        ),
    ]);
    Fake {
        wire: Wire::Gemini,
        name: "gemini",
        model: "gemini-2.5-flash",
        path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent".into(),
        query: Some(("alt", "sse")),
        auth: ("", KEY.into()),
        text,
        tool_call,
        rate_limited: refusal(
            429,
            json!({"error": {"code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED"}}),
        ),
        unauthorized: refusal(
            401,
            json!({"error": {"code": 401,
            "message": format!("API key not valid: {KEY}"), "status": "UNAUTHENTICATED"}}),
        ),
        too_long: Some(refusal(
            400,
            json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."}}),
        )),
    }
}

fn ollama() -> Fake {
    let line = |message: Value, done: bool| {
        let mut l = json!({"model": "llama3.2", "created_at": "2026-12-07T10:00:00Z",
                           "message": message, "done": done});
        if done {
            l["done_reason"] = json!("stop");
            l["total_duration"] = json!(4_883_583_458u64);
            l["prompt_eval_count"] = json!(25);
            l["eval_count"] = json!(7);
        }
        l
    };
    let text = ndjson(&[
        line(json!({"role": "assistant", "content": "Sunny, "}), false),
        line(json!({"role": "assistant", "content": "21 °C."}), false),
        line(json!({"role": "assistant", "content": ""}), true),
    ]);
    let tool_call = ndjson(&[
        line(json!({"role": "assistant", "content": ""}), false),
        line(
            json!({"role": "assistant", "content": "", "tool_calls": [{"function": {
            "name": "get_weather", "arguments": {"city": "Paris"}}}]}),
            false,
        ),
        line(json!({"role": "assistant", "content": ""}), true),
    ]);
    Fake {
        wire: Wire::Ollama,
        name: "ollama",
        model: "llama3.2",
        path: "/api/chat".into(),
        query: None,
        auth: ("authorization", format!("Bearer {KEY}")),
        text,
        tool_call,
        rate_limited: refusal(429, json!({"error": "server busy, please try again"})),
        unauthorized: refusal(401, json!({"error": format!("unauthorized: {KEY}")})),
        too_long: None,
    }
}

fn azure() -> Fake {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o",
        "choices": [], "usage": {"prompt_tokens": 25, "completion_tokens": 7, "total_tokens": 32}});
    let text = sse(&[
        (
            "",
            chunk(json!({"role": "assistant", "content": "Sunny, "}), None),
        ),
        ("", chunk(json!({"content": "21 °C."}), None)),
        ("", chunk(json!({}), Some("stop"))),
        ("", usage.clone()),
        ("", json!("[DONE]")),
    ]);
    let tool_call = sse(&[
        (
            "",
            chunk(
                json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_01",
            "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                None,
            ),
        ),
        (
            "",
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
                None,
            ),
        ),
        (
            "",
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {
            "arguments": "ty\": \"Paris\"}"}}]}),
                None,
            ),
        ),
        ("", chunk(json!({}), Some("tool_calls"))),
        ("", usage),
        ("", json!("[DONE]")),
    ]);
    Fake {
        wire: Wire::AzureOpenAi,
        name: "azure-openai",
        model: "my-gpt-4o",
        path: "/openai/deployments/my-gpt-4o/chat/completions".into(),
        query: Some(("api-version", "2024-10-21")),
        auth: ("api-key", KEY.into()),
        text,
        tool_call,
        rate_limited: refusal(
            429,
            json!({"error": {"code": "429",
            "message": "Requests to the ChatCompletions_Create Operation have exceeded the rate limit."}}),
        ),
        unauthorized: refusal(
            401,
            json!({"error": {"code": "401",
            "message": format!("Access denied due to invalid subscription key {KEY}")}}),
        ),
        too_long: Some(refusal(
            400,
            json!({"error": {"code": "context_length_exceeded", "type": "invalid_request_error",
            "param": "messages", "message": "This model's maximum context length is 128000 tokens. \
            However, your messages resulted in 130532 tokens. Please reduce the length of the messages."}}),
        )),
    }
}

fn fakes() -> [Fake; 4] {
    [anthropic(), gemini(), ollama(), azure()]
}

/// A mock of `fake`'s completion call (path, query and key all checked).
fn completion_call(fake: &Fake, answer: ResponseTemplate) -> Mock {
    let mut mock = Mock::given(method("POST")).and(path(fake.path.clone()));
    if let Some((name, value)) = fake.query {
        mock = mock.and(query_param(name, value));
    }
    mock = match fake.auth {
        ("", ref key) => mock.and(query_param("key", key.as_str())),
        (name, ref value) => mock.and(header(name, value.as_str())),
    };
    mock.respond_with(answer)
}

async fn answer(provider: &RigProvider, model: &str) -> Result<String, ProviderError> {
    Ok(provider.complete(request(model)).await?.content)
}

#[tokio::test]
async fn each_native_wire_streams_an_answer_with_its_usage() {
    for fake in fakes() {
        let server = MockServer::start().await;
        completion_call(&fake, fake.text.clone())
            .expect(1)
            .mount(&server)
            .await;
        let provider = provider(&server, fake.wire, fake.name);
        let mut stream = provider.stream(request(fake.model)).await.unwrap();
        let mut tokens = Vec::new();
        let mut usage = Usage::default();
        let mut finish = None;
        while let Some(event) = futures::StreamExt::next(&mut stream).await {
            match event.unwrap_or_else(|e| panic!("{}: {e}", fake.name)) {
                brain_agents::providers::ModelEvent::Token(t) => tokens.push(t),
                brain_agents::providers::ModelEvent::Usage(u) => usage += u,
                brain_agents::providers::ModelEvent::Finished(f) => finish = Some(f),
                other => panic!("{}: unexpected {other:?}", fake.name),
            }
        }
        assert_eq!(tokens.concat(), "Sunny, 21 °C.", "{}", fake.name);
        assert!(
            tokens.len() >= 2,
            "{}: the answer streamed in pieces",
            fake.name
        );
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 25,
                completion_tokens: 7
            },
            "{}",
            fake.name
        );
        assert_eq!(finish, Some(FinishReason::Stop), "{}", fake.name);
        server.verify().await;
        let sent = &server.received_requests().await.unwrap()[0];
        let body = String::from_utf8_lossy(&sent.body);
        for part in [
            "You are terse.",
            "Weather in Paris?",
            "get_weather",
            "Current weather",
        ] {
            assert!(
                body.contains(part),
                "{}: `{part}` not sent: {body}",
                fake.name
            );
        }
    }
}

#[tokio::test]
async fn each_native_wire_sends_a_tool_result_back_to_its_call() {
    for fake in fakes() {
        let server = MockServer::start().await;
        completion_call(&fake, fake.text.clone())
            .mount(&server)
            .await;
        let provider = provider(&server, fake.wire, fake.name);
        let mut second = request(fake.model);
        second.messages.push(ChatMessage {
            tool_calls: vec![ToolCall {
                id: "toolu_01".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"}),
            }],
            ..ChatMessage::assistant("")
        });
        second
            .messages
            .push(ChatMessage::tool_result("toolu_01", "{\"temp_c\": 21}"));
        let reply = provider
            .complete(second)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", fake.name));
        assert_eq!(reply.content, "Sunny, 21 °C.", "{}", fake.name);
        let sent = &server.received_requests().await.unwrap()[0];
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        let text = body.to_string();
        assert!(
            text.contains("temp_c"),
            "{}: result not sent: {text}",
            fake.name
        );
        // The call and its result are tied together the way each wire does it.
        let tie = match fake.wire {
            Wire::Anthropic => "\"tool_use_id\":\"toolu_01\"",
            Wire::Gemini => "\"functionResponse\":{",
            Wire::Ollama => "\"tool_name\":\"get_weather\"",
            Wire::AzureOpenAi => "\"tool_call_id\":\"toolu_01\"",
        };
        assert!(text.contains(tie), "{}: `{tie}` not in {text}", fake.name);
    }
}

#[tokio::test]
async fn each_native_wire_reassembles_a_tool_call_sent_in_pieces() {
    for fake in fakes() {
        let server = MockServer::start().await;
        completion_call(&fake, fake.tool_call.clone())
            .mount(&server)
            .await;
        let provider = provider(&server, fake.wire, fake.name);
        let reply = provider
            .complete(request(fake.model))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", fake.name));
        assert_eq!(reply.tool_calls.len(), 1, "{}: {reply:?}", fake.name);
        let call: &ToolCall = &reply.tool_calls[0];
        assert_eq!(call.name, "get_weather", "{}", fake.name);
        assert_eq!(call.arguments, json!({"city": "Paris"}), "{}", fake.name);
        assert!(!call.id.is_empty(), "{}: a call has an id", fake.name);
        assert_eq!(reply.finish, Some(FinishReason::ToolCalls), "{}", fake.name);
    }
}

#[tokio::test]
async fn each_native_wire_waits_out_a_429_with_retry_after() {
    for fake in fakes() {
        let server = MockServer::start().await;
        completion_call(&fake, fake.rate_limited.clone())
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        completion_call(&fake, fake.text.clone())
            .mount(&server)
            .await;
        let provider = provider(&server, fake.wire, fake.name);
        let started = Instant::now();
        let content = answer(&provider, fake.model)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", fake.name));
        assert_eq!(content, "Sunny, 21 °C.", "{}", fake.name);
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{}: Retry-After: 1 was honoured, not the 50 ms back-off",
            fake.name
        );
        let calls = server.received_requests().await.unwrap_or_default();
        assert_eq!(calls.len(), 2, "{}: one refused call, one retry", fake.name);
    }
}

#[tokio::test]
async fn each_native_wire_reports_a_refused_key_naming_the_provider() {
    for fake in fakes() {
        let server = MockServer::start().await;
        completion_call(&fake, fake.unauthorized.clone())
            .expect(1)
            .mount(&server)
            .await;
        let provider = provider(&server, fake.wire, fake.name);
        let error = provider.complete(request(fake.model)).await.unwrap_err();
        assert_eq!(
            error.code(),
            Code::ModelUnauthorized,
            "{}: {error}",
            fake.name
        );
        let text = error.to_string();
        assert!(text.contains(fake.name), "{}: {text}", fake.name);
        assert!(!text.contains(KEY), "{}: the key leaked: {text}", fake.name);
        server.verify().await;
    }
}

#[tokio::test]
async fn each_native_wire_reports_a_prompt_over_the_context_window_without_retrying() {
    for fake in fakes() {
        let Some(too_long) = fake.too_long.clone() else {
            continue;
        };
        let server = MockServer::start().await;
        completion_call(&fake, too_long)
            .expect(1)
            .mount(&server)
            .await;
        let provider = provider(&server, fake.wire, fake.name);
        let error = provider.complete(request(fake.model)).await.unwrap_err();
        assert_eq!(error.code(), Code::ContextTooLong, "{}: {error}", fake.name);
        let text = error.to_string();
        assert!(text.contains(fake.name), "{}: {text}", fake.name);
        assert!(text.contains("shorter message"), "{}: {text}", fake.name);
        server.verify().await;
    }
}

#[tokio::test]
async fn a_native_wire_without_a_key_is_not_configured() {
    let server = MockServer::start().await;
    let provider =
        RigProvider::new(RigConfig::new("anthropic", Wire::Anthropic, server.uri())).unwrap();
    let error = provider
        .complete(request("claude-sonnet-4-5"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ModelNotConfigured, "{error}");
    assert!(error.to_string().contains("anthropic"), "{error}");
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}
