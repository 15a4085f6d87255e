//! Agents: CRUD, tool and delegate grants, chat (JSON and SSE), conversations, and the OpenAI-compatible
//! `/v1/chat/completions` + `/v1/models` that let any OpenAI SDK talk to an agent.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use brain_agents::spec::DelegateGrant;
use brain_agents::{
    AgentError, AgentId, AgentPatch, AgentSpec, Conversation, NewAgent, StoredMessage, ToolGrant,
    TurnEvent, TurnInput, TurnResult,
};
use brain_auth::{Actor, Authorized, require};
use brain_runtime::{AgentStatus, RuntimeError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::if_match;
use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(replace_tools))
        .routes(routes!(replace_delegates))
        .routes(routes!(chat))
        .routes(routes!(conversations))
        .routes(routes!(messages))
        .routes(routes!(completions))
        .routes(routes!(models))
}

fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    raw.parse::<Uuid>()
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))
}

/// The tenant's agents.
#[derive(Serialize, ToSchema)]
struct AgentList {
    agents: Vec<AgentSpec>,
}

/// An agent with, when it could be had quickly, the live view of its actor.
#[derive(Serialize, ToSchema)]
struct AgentView {
    #[serde(flatten)]
    spec: AgentSpec,
    /// Absent when the runtime could not report on the agent quickly.
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<AgentStatus>,
}

/// The tenant's agents, oldest first. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, description = "The tenant's agents", body = AgentList)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<AgentList>, ApiError> {
    let agents = state.runtime.list_agents(auth.principal().tenant).await?;
    Ok(Json(AgentList { agents }))
}

/// Creates an agent. Needs `agents:write`.
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = NewAgent,
    responses((status = 201, description = "The new agent, version 1", body = AgentSpec)))]
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

/// One agent, with its runtime status when available. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 200, description = "The agent", body = AgentView)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let tenant = auth.principal().tenant;
    let agent = agent_id(&id)?;
    let spec = state.runtime.get_agent(tenant, agent).await?;
    // The live view of the actor, when it can be had quickly; the stored spec otherwise.
    let runtime = state.runtime.status(tenant, agent).await.ok();
    Ok(Json(AgentView { spec, runtime }))
}

/// Changes an agent; its next turn uses the new spec, and a degraded agent returns to service.
/// Needs `agents:write`.
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id"),
        ("If-Match" = Option<String>, Header,
            description = "The agent's `version`: change it only if it is still that version")),
    request_body = AgentPatch,
    responses((status = 200, description = "The agent, one version later", body = AgentSpec)))]
async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<AgentPatch>,
) -> Result<Json<AgentSpec>, ApiError> {
    // Optional optimistic concurrency: `If-Match: <version>`.
    let expected = if_match(&headers)?;
    let spec = state
        .runtime
        .update_agent(auth.principal().tenant, agent_id(&id)?, patch, expected)
        .await?;
    Ok(Json(spec))
}

/// Deletes an agent (its running actor stops). Needs `agents:write`.
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 204, description = "Deleted")))]
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

/// Replaces the agent's tool grants; unknown connectors or actions are a 422. Needs
/// `agents:write`.
#[utoipa::path(put, path = "/v1/agents/{id}/tools", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id"),
        ("If-Match" = Option<String>, Header,
            description = "The agent's `version`: change it only if it is still that version")),
    request_body = Vec<ToolGrant>,
    responses((status = 200, description = "The agent, one version later", body = AgentSpec)))]
async fn replace_tools(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(tools): ApiJson<Vec<ToolGrant>>,
) -> Result<Json<AgentSpec>, ApiError> {
    let expected = if_match(&headers)?;
    let spec = state
        .runtime
        .replace_tools(auth.principal().tenant, agent_id(&id)?, tools, expected)
        .await?;
    Ok(Json(spec))
}

/// Replaces the agents this one may ask (`ask_<slug>` tools); a target that is not another
/// agent of the tenant is a 422. Needs `agents:write`.
#[utoipa::path(put, path = "/v1/agents/{id}/delegates", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id"),
        ("If-Match" = Option<String>, Header,
            description = "The agent's `version`: change it only if it is still that version")),
    request_body = Vec<DelegateGrant>,
    responses((status = 200, description = "The agent, one version later", body = AgentSpec)))]
async fn replace_delegates(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(delegates): ApiJson<Vec<DelegateGrant>>,
) -> Result<Json<AgentSpec>, ApiError> {
    let expected = if_match(&headers)?;
    let spec = state
        .runtime
        .replace_delegates(auth.principal().tenant, agent_id(&id)?, delegates, expected)
        .await?;
    Ok(Json(spec))
}

/// One user message to an agent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChatRequest {
    /// At most 32,000 characters, not blank.
    message: String,
    /// Continue this conversation of the agent; a new one starts when absent.
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
        return Err(ApiError::invalid("message", "must not be empty"));
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

/// One turn with an agent, as JSON or (with `Accept: text/event-stream`) as SSE events
/// `token`, `tool_call`, `tool_result`, `citation`, then `done` or `error`. Needs `chat`.
#[utoipa::path(post, path = "/v1/agents/{id}/chat", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    request_body = ChatRequest,
    responses((status = 200,
        description = "The finished turn; with `Accept: text/event-stream`, SSE events each \
            named after its `type`, the last one `done` (with the turn) or `error`",
        content((TurnResult = "application/json"), (TurnEvent = "text/event-stream")))))]
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

/// An agent's conversations.
#[derive(Serialize, ToSchema)]
struct ConversationList {
    conversations: Vec<Conversation>,
}

/// The agent's conversations, most recently active first. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/agents/{id}/conversations", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 200, description = "The agent's conversations", body = ConversationList)))]
async fn conversations(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<ConversationList>, ApiError> {
    let conversations = state
        .runtime
        .list_conversations(auth.principal().tenant, agent_id(&id)?)
        .await?;
    Ok(Json(ConversationList { conversations }))
}

/// The messages of a conversation.
#[derive(Serialize, ToSchema)]
struct MessageList {
    messages: Vec<StoredMessage>,
}

/// The stored messages of a conversation (user, assistant and tool), oldest first. Needs
/// `agents:read`.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "agents",
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 200, description = "The conversation's messages", body = MessageList)))]
async fn messages(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<MessageList>, ApiError> {
    let conversation = id
        .parse::<Uuid>()
        .map_err(|_| ApiError::not_found("conversation"))?;
    let messages = state
        .runtime
        .list_messages(auth.principal().tenant, conversation)
        .await?;
    Ok(Json(MessageList { messages }))
}

/// The OpenAI chat-completions request, as far as Brain uses it; other fields are ignored.
#[derive(Deserialize, ToSchema)]
struct CompletionRequest {
    /// `agent:<slug>` (`GET /v1/models` lists them).
    model: String,
    /// Only the last `user` message is used: the agent keeps its own instructions and memory.
    messages: Vec<CompletionMessage>,
    /// Answer as SSE `chat.completion.chunk`s ending with `data: [DONE]`.
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize, ToSchema)]
struct CompletionMessage {
    /// `system`, `user`, `assistant`, …
    role: String,
    /// A string, or an array of `{type: "text", text}` parts.
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

/// An OpenAI `chat.completion`: the agent's reply as the one choice.
#[derive(Serialize, ToSchema)]
struct Completion {
    /// `chatcmpl-…`
    id: String,
    /// Always `chat.completion`.
    object: &'static str,
    /// Unix seconds.
    created: i64,
    model: String,
    choices: Vec<CompletionChoice>,
    usage: CompletionUsage,
}

#[derive(Serialize, ToSchema)]
struct CompletionChoice {
    index: u32,
    message: CompletionReply,
    /// Always `stop`.
    finish_reason: &'static str,
}

#[derive(Serialize, ToSchema)]
struct CompletionReply {
    /// Always `assistant`.
    role: &'static str,
    content: String,
}

/// Tokens the whole turn used (every model call of it).
#[derive(Serialize, ToSchema)]
struct CompletionUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// The `data` of one SSE event of a streamed completion (the last event is `[DONE]`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum CompletionStreamItem {
    Chunk(CompletionChunk),
    /// The turn failed; the stream ends with `[DONE]` next.
    Error {
        error: CompletionStreamError,
    },
}

/// An OpenAI `chat.completion.chunk`.
#[derive(Serialize, ToSchema)]
struct CompletionChunk {
    id: String,
    /// Always `chat.completion.chunk`.
    object: &'static str,
    /// Unix seconds.
    created: i64,
    model: String,
    choices: Vec<ChunkChoice>,
}

#[derive(Serialize, ToSchema)]
struct ChunkChoice {
    index: u32,
    delta: ChunkDelta,
    /// `stop` on the last chunk, `null` before.
    finish_reason: Option<&'static str>,
}

/// The first chunk has the role (and empty content), the next ones pieces of the reply, the
/// last one nothing.
#[derive(Default, Serialize, ToSchema)]
struct ChunkDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct CompletionStreamError {
    /// An API error code.
    code: String,
    message: String,
}

/// What every chunk of one streamed completion repeats.
struct ChunkHeader {
    id: String,
    created: i64,
    model: String,
}

impl ChunkHeader {
    fn chunk(
        &self,
        delta: ChunkDelta,
        finish_reason: Option<&'static str>,
    ) -> CompletionStreamItem {
        CompletionStreamItem::Chunk(CompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
        })
    }

    /// The chunk a turn event becomes, if any (tool calls and citations are not sent).
    fn event_chunk(&self, event: TurnEvent) -> Option<CompletionStreamItem> {
        match event {
            TurnEvent::Token { text } => Some(self.chunk(
                ChunkDelta {
                    content: Some(text),
                    ..ChunkDelta::default()
                },
                None,
            )),
            TurnEvent::Done(_) => Some(self.chunk(ChunkDelta::default(), Some("stop"))),
            TurnEvent::Error { code, message } => Some(CompletionStreamItem::Error {
                error: CompletionStreamError { code, message },
            }),
            _ => None,
        }
    }
}

/// OpenAI-compatible chat completion with `model: "agent:<slug>"`: the last user message is
/// one turn of that agent in a new conversation; SSE chunks when `stream` is true. Needs `chat`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "agents",
    request_body = CompletionRequest,
    responses((status = 200,
        description = "The completion; with `stream: true`, SSE events whose `data` is a \
            chunk (or an error), then `[DONE]`",
        content((Completion = "application/json"),
            (CompletionStreamItem = "text/event-stream")))))]
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
    let header = ChunkHeader {
        id: format!("chatcmpl-{}", Uuid::now_v7().simple()),
        created: chrono::Utc::now().timestamp(),
        model: body.model,
    };
    if !body.stream {
        let result = state.runtime.chat(principal.tenant, spec.id, input).await?;
        return Ok(Json(completion(header, result)).into_response());
    }
    let stream = state
        .runtime
        .chat_stream(principal.tenant, spec.id, input)
        .await?;
    let first = header.chunk(
        ChunkDelta {
            role: Some("assistant"),
            content: Some(String::new()),
        },
        None,
    );
    let chunks = stream.filter_map(move |event| std::future::ready(header.event_chunk(event)));
    let events = futures::stream::once(std::future::ready(first))
        .chain(chunks)
        .map(|item| {
            Ok::<_, Infallible>(
                Event::default()
                    .json_data(&item)
                    .unwrap_or_else(|_| Event::default().event("error")),
            )
        })
        .chain(futures::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    Ok(Sse::new(events).into_response())
}

/// A finished turn as a `chat.completion`.
fn completion(header: ChunkHeader, result: TurnResult) -> Completion {
    let (prompt, completion) = (result.usage.prompt_tokens, result.usage.completion_tokens);
    Completion {
        id: header.id,
        object: "chat.completion",
        created: header.created,
        model: header.model,
        choices: vec![CompletionChoice {
            index: 0,
            message: CompletionReply {
                role: "assistant",
                content: result.reply,
            },
            finish_reason: "stop",
        }],
        usage: CompletionUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        },
    }
}

/// The tenant's agents as an OpenAI model list.
#[derive(Serialize, ToSchema)]
struct ModelList {
    /// Always `list`.
    object: &'static str,
    data: Vec<AgentModel>,
}

/// An agent as an OpenAI model.
#[derive(Serialize, ToSchema)]
struct AgentModel {
    /// `agent:<slug>`, the `model` of a chat completion.
    id: String,
    /// Always `model`.
    object: &'static str,
    /// When the agent was created, Unix seconds.
    created: i64,
    /// Always `brain`.
    owned_by: &'static str,
}

/// The tenant's agents as OpenAI models `agent:<slug>`. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/models", tag = "agents",
    responses((status = 200, description = "The tenant's agents as models", body = ModelList)))]
async fn models(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<ModelList>, ApiError> {
    let agents = state.runtime.list_agents(auth.principal().tenant).await?;
    let data = agents
        .iter()
        .map(|a| AgentModel {
            id: format!("agent:{}", a.slug.as_str()),
            object: "model",
            created: a.created_at.timestamp(),
            owned_by: "brain",
        })
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}
