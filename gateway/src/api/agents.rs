//! Agents: CRUD, tool and delegate grants, chat (JSON and SSE) and conversations. The
//! OpenAI-compatible surface over the same turns is in [`super::openai`].

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use brain_agents::spec::DelegateGrant;
use brain_agents::{
    AgentId, AgentPatch, AgentSpec, Conversation, NewAgent, StoredMessage, ToolGrant, TurnEvent,
    TurnInput, TurnResult,
};
use brain_auth::{Actor, Authorized, require};
use brain_runtime::AgentStatus;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
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
    request_body = Vec<brain_agents::spec::GrantWire>,
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

pub fn turn_input(
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
