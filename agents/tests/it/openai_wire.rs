//! The OpenAI-compatible provider against a local server speaking the OpenAI wire format.

use std::sync::Arc;

use brain_agents::conversation::MemoryTurnStore;
use brain_agents::providers::openai::{OpenAiConfig, OpenAiProvider};
use brain_agents::providers::{
    ChatMessage, ChatRequest, FinishReason, LlmProvider, ToolCall, ToolDefinition, Usage,
};
use brain_agents::spec::{AgentSpec, NewAgent};
use brain_agents::tool::{ToolError, ToolInvoker, ToolOutput};
use brain_agents::turn::{ToolCallStatus, TurnContext, TurnInput, TurnLimits};
use brain_agents::{ProviderError, run_turn};
use brain_auth::secrets::{SecretMap, SecretStore, SecretString, VaultSecretStore};
use brain_auth::{Code, ErrorCode, TenantId};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sse(events: &[Value]) -> ResponseTemplate {
    let mut body = String::new();
    for e in events {
        body.push_str(&format!("data: {e}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_raw(body, "text/event-stream")
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
}

fn post_tool() -> ToolDefinition {
    ToolDefinition {
        name: "wordpress__create_post".into(),
        description: "Create a WordPress post.".into(),
        parameters: json!({"type": "object", "properties": {"title": {"type": "string"}},
                           "required": ["title"]}),
    }
}

fn provider(server: &MockServer, key: Option<&str>) -> OpenAiProvider {
    let mut config = OpenAiConfig::new(format!("{}/v1", server.uri()));
    config.api_key = key.map(SecretString::new);
    OpenAiProvider::new(config).unwrap()
}

#[tokio::test]
async fn sends_the_exact_request_and_reassembles_streamed_text() {
    let server = MockServer::start().await;
    let expected = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hi"}
        ],
        "temperature": 0.3,
        "max_tokens": 64,
        "stream": true,
        "stream_options": {"include_usage": true},
        "tools": [{"type": "function", "function": {
            "name": "wordpress__create_post",
            "description": "Create a WordPress post.",
            "parameters": {"type": "object", "properties": {"title": {"type": "string"}},
                           "required": ["title"]}
        }}]
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_json(&expected))
        .respond_with(sse(&[
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hi"}), None),
            chunk(json!({"content": " there"}), None),
            chunk(json!({}), Some("stop")),
            usage(12, 2),
        ]))
        .expect(1)
        .mount(&server)
        .await;

    let reply = provider(&server, Some("sk-test"))
        .complete(ChatRequest {
            tenant: TenantId::new(),
            model: "gpt-4o-mini".into(),
            messages: vec![
                ChatMessage::system("You are terse."),
                ChatMessage::user("Say hi"),
            ],
            tools: vec![post_tool()],
            temperature: 0.3,
            max_tokens: 64,
        })
        .await
        .unwrap();
    assert_eq!(reply.content, "Hi there");
    assert!(reply.tool_calls.is_empty());
    assert_eq!(reply.finish, Some(FinishReason::Stop));
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 2
        }
    );
}

#[tokio::test]
async fn split_tool_call_arguments_of_parallel_calls_are_reassembled() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&[
            chunk(json!({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function",
                 "function": {"name": "wordpress__create_post", "arguments": ""}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ti"}}]}), None),
            chunk(json!({"tool_calls": [
                {"index": 1, "id": "call_b", "type": "function",
                 "function": {"name": "slack__post_message", "arguments": "{\"channel\":"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "tle\":\"Sp"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"#general\"}"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ring \\\"sale\\\"\"}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            usage(40, 25),
        ]))
        .mount(&server)
        .await;

    let reply = provider(&server, None)
        .complete(ChatRequest {
            tenant: TenantId::new(),
            model: "gpt-4o-mini".into(),
            messages: vec![ChatMessage::user("Announce the sale")],
            tools: vec![post_tool()],
            temperature: 0.0,
            max_tokens: 64,
        })
        .await
        .unwrap();
    assert_eq!(
        reply.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "wordpress__create_post".into(),
                arguments: json!({"title": "Spring \"sale\""}),
            },
            ToolCall {
                id: "call_b".into(),
                name: "slack__post_message".into(),
                arguments: json!({"channel": "#general"}),
            },
        ]
    );
    assert_eq!(reply.finish, Some(FinishReason::ToolCalls));
    assert_eq!(reply.usage.total(), 65);
    // No key configured: no Authorization header at all.
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].headers.get("authorization").is_none());
}

fn ask() -> ChatRequest {
    ChatRequest {
        tenant: TenantId::new(),
        model: "m".into(),
        messages: vec![ChatMessage::user("x")],
        tools: vec![],
        temperature: 1.0,
        max_tokens: 8,
    }
}

#[tokio::test]
async fn error_statuses_surface_with_the_servers_message_after_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(
                    json!({"error": {"message": "Rate limit reached", "type": "rate_limit"}}),
                ),
        )
        .mount(&server)
        .await;
    let err = provider(&server, Some("k"))
        .complete(ask())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Status { status: 429, message } if message == "Rate limit reached")
    );
    assert_eq!(err.code(), Code::ModelRateLimited);
    let calls = server.received_requests().await.unwrap().len();
    assert_eq!(calls, 3, "three attempts in all");

    // A prompt over the context window, as OpenAI documents it: a clear error, not retried.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "This model's maximum context length is 128000 tokens. However, your \
                messages resulted in 130532 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error", "param": "messages",
            "code": "context_length_exceeded"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = provider(&server, Some("k"))
        .complete(ask())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ContextTooLong, "{err}");
    assert!(err.to_string().contains("`openai`"), "{err}");
    server.verify().await;
    // Any other 400 stays the server's own message.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}}),
        ))
        .mount(&server)
        .await;
    let err = provider(&server, Some("k"))
        .complete(ask())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Status { status: 400, .. }),
        "{err}"
    );
    assert_eq!(err.code(), Code::ModelError);

    // A refusal that waiting cannot fix is not retried; nor a Retry-After past the limit.
    for refusal in [
        ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "bad key"}})),
        ResponseTemplate::new(429).insert_header("retry-after", "3600"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(refusal)
            .mount(&server)
            .await;
        provider(&server, Some("k"))
            .complete(ask())
            .await
            .unwrap_err();
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_rate_limit_and_a_server_error_are_waited_out_honouring_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(sse(&[
            chunk(json!({"content": "Fine now"}), None),
            chunk(json!({}), Some("stop")),
        ]))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let reply = provider(&server, Some("k")).complete(ask()).await.unwrap();
    assert_eq!(reply.content, "Fine now");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    // Retry-After: 1, then the default first wait of 0.5 s (doubling would come next).
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_tenants_own_key_from_vault_wins_over_the_deployment_key() {
    let vault = VaultSecretStore::new(
        &brain_migrations::testing::setting("VAULT_ADDR").unwrap(),
        &brain_migrations::testing::setting("VAULT_TOKEN").unwrap(),
        "secret",
    )
    .unwrap();
    let tenant = TenantId::new();
    let path = brain_agents::providers::keys::ProviderKey::path(tenant, "openai").unwrap();
    let mut secret = SecretMap::new();
    secret.insert("api_key".into(), SecretString::new("sk-tenant"));
    vault.put(&path, &secret).await.unwrap();

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer sk-tenant"))
        .respond_with(sse(&[chunk(json!({"content": "ok"}), Some("stop"))]))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = OpenAiConfig::new(format!("{}/v1", server.uri()));
    config.api_key = Some(SecretString::new("sk-deployment"));
    config.secrets = Some(Arc::new(vault));
    let reply = OpenAiProvider::new(config)
        .unwrap()
        .complete(ChatRequest {
            tenant,
            model: "m".into(),
            messages: vec![ChatMessage::user("x")],
            tools: vec![],
            temperature: 1.0,
            max_tokens: 8,
        })
        .await
        .unwrap();
    assert_eq!(reply.content, "ok");
}

struct Recorder;

#[async_trait::async_trait]
impl ToolInvoker for Recorder {
    fn definitions(&self) -> Vec<ToolDefinition> {
        vec![post_tool()]
    }

    async fn invoke(
        &self,
        _tenant: TenantId,
        call: &ToolCall,
        _key: &str,
    ) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::new(
            format!("created post {}", call.arguments["title"]),
            json!({"id": 42}),
        ))
    }
}

#[tokio::test]
async fn a_turn_feeds_tool_results_back_in_openai_format() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&[
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "wordpress__create_post", "arguments": "{\"title\":"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Hi\"}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
        ]))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(sse(&[
            chunk(json!({"content": "Posted."}), Some("stop")),
            usage(100, 3),
        ]))
        .with_priority(2)
        .mount(&server)
        .await;

    let tenant = TenantId::new();
    let agent = spec(tenant);
    let store = MemoryTurnStore::default();
    let result = run_turn(
        TurnContext {
            tenant,
            agent: &agent,
            provider: Arc::new(provider(&server, Some("k"))),
            tools: &Recorder,
            retriever: None,
            store: &store,
            limits: TurnLimits::default(),
        },
        TurnInput {
            message: "Post hi".into(),
            ..TurnInput::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(result.reply, "Posted.");
    assert_eq!(result.tool_calls.len(), 1);
    assert_eq!(result.tool_calls[0].status, ToolCallStatus::Ok);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        4,
        "system, user, assistant call, tool result"
    );
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "", "tool_calls": [{"id": "call_1",
            "type": "function", "function": {"name": "wordpress__create_post",
            "arguments": "{\"title\":\"Hi\"}"}}]})
    );
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    let fed: Value = serde_json::from_str(messages[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        fed,
        json!({"summary": "created post \"Hi\"", "result": {"id": 42}})
    );
    assert_eq!(second["model"], "gpt-4o-mini");
}

pub fn spec(tenant: TenantId) -> AgentSpec {
    let fields = NewAgent {
        name: "Writer".into(),
        role: "a writer".into(),
        goal: "write".into(),
        model: Some("openai:gpt-4o-mini".into()),
        temperature: Some(0.2),
        ..NewAgent::default()
    }
    .validate("local:default")
    .unwrap();
    AgentSpec::unsaved(tenant, fields)
}
