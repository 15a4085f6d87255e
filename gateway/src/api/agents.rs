//! Agents: CRUD, tool and delegate grants, chat (JSON and SSE), conversations, and the OpenAI-compatible
//! `/v1/chat/completions` + `/v1/models` that let any OpenAI SDK talk to an agent.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use brain_agents::spec::DelegateGrant;
use brain_agents::{AgentError, AgentId, AgentPatch, NewAgent, ToolGrant, TurnEvent, TurnInput};
use brain_auth::{Actor, Authorized, require};
use brain_runtime::RuntimeError;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::if_match;
use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents", get(list).post(create))
        .route("/v1/agents/{id}", get(show).patch(update).delete(remove))
        .route("/v1/agents/{id}/tools", put(replace_tools))
        .route("/v1/agents/{id}/delegates", put(replace_delegates))
        .route("/v1/agents/{id}/chat", post(chat))
        .route("/v1/agents/{id}/conversations", get(conversations))
        .route("/v1/conversations/{id}/messages", get(messages))
        .route("/v1/chat/completions", post(completions))
        .route("/v1/models", get(models))
}

fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    raw.parse::<Uuid>()
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))
}

async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<Value>, ApiError> {
    let agents = state.runtime.list_agents(auth.principal().tenant).await?;
    Ok(Json(json!({ "agents": agents })))
}

async fn create(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    ApiJson(body): ApiJson<NewAgent>,
) -> Result<Response, ApiError> {
    let spec = state
        .runtime
        .create_agent(auth.principal().tenant, body)
        .await?;
    Ok((StatusCode::CREATED, Json(spec)).into_response())
}

async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.principal().tenant;
    let agent = agent_id(&id)?;
    let spec = state.runtime.get_agent(tenant, agent).await?;
    let mut body = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    // The live view of the actor, when it can be had quickly; the stored spec otherwise.
    if let Ok(status) = state.runtime.status(tenant, agent).await {
        body["runtime"] = serde_json::to_value(&status).unwrap_or(Value::Null);
    }
    Ok(Json(body))
}

async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<AgentPatch>,
) -> Result<Json<Value>, ApiError> {
    // Optional optimistic concurrency: `If-Match: <version>`.
    let expected = if_match(&headers)?;
    let spec = state
        .runtime
        .update_agent(auth.principal().tenant, agent_id(&id)?, patch, expected)
        .await?;
    Ok(Json(
        serde_json::to_value(spec).map_err(ApiError::internal)?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .delete_agent(auth.principal().tenant, agent_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn replace_tools(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(tools): ApiJson<Vec<ToolGrant>>,
) -> Result<Json<Value>, ApiError> {
    let expected = if_match(&headers)?;
    let spec = state
        .runtime
        .replace_tools(auth.principal().tenant, agent_id(&id)?, tools, expected)
        .await?;
    Ok(Json(
        serde_json::to_value(spec).map_err(ApiError::internal)?,
    ))
}

/// `PUT /v1/agents/{id}/delegates`: `[{agent, approval, max_calls_per_run?}]` replaces the
/// agents this one may ask; a target that is not another agent of the tenant is a 422.
/// Like every agent write, it takes an optional `If-Match: <version>`.
async fn replace_delegates(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(delegates): ApiJson<Vec<DelegateGrant>>,
) -> Result<Json<Value>, ApiError> {
    let expected = if_match(&headers)?;
    let spec = state
        .runtime
        .replace_delegates(auth.principal().tenant, agent_id(&id)?, delegates, expected)
        .await?;
    Ok(Json(
        serde_json::to_value(spec).map_err(ApiError::internal)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRequest {
    message: String,
    conversation_id: Option<Uuid>,
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// The longest chat message, in characters (≈8k tokens): a longer one would be one huge
/// forward pass of the model on the shared process. Documents belong in knowledge.
pub const MAX_MESSAGE_CHARS: usize = 32_000;

fn turn_input(
    principal: &brain_auth::Principal,
    message: String,
    conversation_id: Option<Uuid>,
) -> Result<TurnInput, ApiError> {
    if message.trim().is_empty() {
        return Err(ApiError::new(
            Code::ValidationFailed,
            "message: must not be empty",
        ));
    }
    // Bytes bound characters from above: only long messages are counted.
    if message.len() > MAX_MESSAGE_CHARS && message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::new(
            Code::MessageTooLarge,
            format!(
                "message: at most {MAX_MESSAGE_CHARS} characters; upload long documents to a \
                 knowledge collection instead"
            ),
        ));
    }
    let user_id = match principal.actor {
        Actor::User(id) => Some(id),
        Actor::ApiKey(_) => None,
    };
    Ok(TurnInput {
        message,
        conversation_id,
        user_id,
    })
}

/// `POST /v1/agents/{id}/chat`: one turn, as JSON or (with `Accept: text/event-stream`) as
/// SSE events `token`, `tool_call`, `tool_result`, `citation`, then `done` or `error`.
async fn chat(
    State(state): State<AppState>,
    auth: Authorized<require::Chat>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let agent = agent_id(&id)?;
    let input = turn_input(principal, body.message, body.conversation_id)?;
    if !wants_stream(&headers) {
        let result = state.runtime.chat(principal.tenant, agent, input).await?;
        return Ok(Json(result).into_response());
    }
    let stream = state
        .runtime
        .chat_stream(principal.tenant, agent, input)
        .await?;
    let events = stream.map(|event: TurnEvent| {
        let sse = Event::default().event(event.name());
        Ok::<_, Infallible>(
            sse.json_data(&event)
                .unwrap_or_else(|_| Event::default().event("error")),
        )
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn conversations(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .runtime
        .list_conversations(auth.principal().tenant, agent_id(&id)?)
        .await?;
    Ok(Json(json!({ "conversations": list })))
}

async fn messages(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let conversation = id
        .parse::<Uuid>()
        .map_err(|_| ApiError::not_found("conversation"))?;
    let list = state
        .runtime
        .list_messages(auth.principal().tenant, conversation)
        .await?;
    Ok(Json(json!({ "messages": list })))
}

/// The OpenAI chat-completions request, as far as Brain uses it.
#[derive(Deserialize)]
struct CompletionRequest {
    model: String,
    messages: Vec<CompletionMessage>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct CompletionMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

/// Text of an OpenAI message `content`: a string or an array of `{type: "text", text}` parts.
fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `POST /v1/chat/completions` with `model: "agent:<slug>"`. The agent keeps its own
/// instructions and memory, so only the last user message is its input; each request is a new
/// conversation.
async fn completions(
    State(state): State<AppState>,
    auth: Authorized<require::Chat>,
    ApiJson(body): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let slug = body.model.strip_prefix("agent:").ok_or_else(|| {
        ApiError::not_found("model (use `agent:<slug>`; GET /v1/models lists them)")
    })?;
    let spec = state
        .runtime
        .get_agent_by_slug(principal.tenant, slug)
        .await
        .map_err(|e| match e {
            RuntimeError::Agent(AgentError::NotFound) => ApiError::not_found("model"),
            other => ApiError::from(other),
        })?;
    let message = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| message_text(&m.content))
        .unwrap_or_default();
    let input = turn_input(principal, message, None)?;
    let id = format!("chatcmpl-{}", Uuid::now_v7().simple());
    let created = chrono::Utc::now().timestamp();
    let model = body.model.clone();
    if !body.stream {
        let result = state.runtime.chat(principal.tenant, spec.id, input).await?;
        let (prompt, completion) = (result.usage.prompt_tokens, result.usage.completion_tokens);
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.reply},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }))
        .into_response());
    }
    let stream = state
        .runtime
        .chat_stream(principal.tenant, spec.id, input)
        .await?;
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let first = futures::stream::once({
        let chunk = chunk.clone();
        async move { chunk(json!({"role": "assistant", "content": ""}), None) }
    });
    let body_chunks = stream.filter_map(move |event| {
        let chunk = chunk.clone();
        async move {
            match event {
                TurnEvent::Token { text } => Some(chunk(json!({"content": text}), None)),
                TurnEvent::Done(_) => Some(chunk(json!({}), Some("stop"))),
                TurnEvent::Error { code, message } => {
                    Some(json!({"error": {"code": code, "message": message}}))
                }
                _ => None,
            }
        }
    });
    let events = first
        .chain(body_chunks)
        .map(|value| Ok::<_, Infallible>(Event::default().data(value.to_string())))
        .chain(futures::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    Ok(Sse::new(events).into_response())
}

/// `GET /v1/models`: the tenant's agents as OpenAI models `agent:<slug>`.
async fn models(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<Value>, ApiError> {
    let agents = state.runtime.list_agents(auth.principal().tenant).await?;
    let data: Vec<Value> = agents
        .iter()
        .map(|a| {
            json!({
                "id": format!("agent:{}", a.slug.as_str()), "object": "model",
                "created": a.created_at.timestamp(), "owned_by": "brain",
            })
        })
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}
