//! `/mcp`: Brain's agents, knowledge search and task status as MCP tools, for clients such
//! as Claude Desktop, Cursor or the MCP Inspector connected with an API key or a bearer
//! token. The caller's tenant and permissions decide what it sees: `ask_<agent>` per agent
//! of the tenant (needs `chat`), `knowledge_search` (needs `knowledge.read`), `task_status`
//! (needs `agents.read`). A turn runs through the runtime exactly like `POST
//! /v1/agents/{id}/chat`: the agent's grants, approvals and audit apply unchanged.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{Extensions, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use brain_agents::AgentError;
use brain_auth::principal::Authenticated;
use brain_auth::{Permission, Principal};
use brain_knowledge::{CollectionId, SearchMode};
use brain_runtime::RuntimeError;
use brain_tools::mcp::server::{self, HostError, HostedResult, HostedTool, McpHost};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The prefix of an agent's tool: `ask_<slug>`.
const ASK_PREFIX: &str = "ask_";
const KNOWLEDGE_SEARCH: &str = "knowledge_search";
const TASK_STATUS: &str = "task_status";
/// Passages `knowledge_search` returns unless asked for another number.
const DEFAULT_K: usize = 5;

/// The `/mcp` route: authentication first (401 with `WWW-Authenticate: Bearer` without
/// valid credentials), then the protocol.
pub fn router(state: AppState) -> Router {
    let host = Arc::new(BrainHost {
        state: state.clone(),
    });
    Router::new()
        .route_service("/mcp", server::service(host))
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    // Puts the principal into the request's extensions, where the tools find it.
    match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(_) => parse_error_as_json_rpc(next.run(Request::from_parts(parts, body)).await).await,
        Err(e) => {
            let mut response = e.into_response();
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The SDK answers a body that is not JSON like a wrong content type, with a plain-text 415;
/// JSON-RPC's answer is a parse error (-32700), and Brain's for malformed JSON is a 400.
async fn parse_error_as_json_rpc(response: Response) -> Response {
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let reason = String::from_utf8_lossy(&body);
    if !reason.starts_with("fail to deserialize") {
        return Response::from_parts(parts, axum::body::Body::from(body));
    }
    let error = json!({"jsonrpc": "2.0", "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {reason}")}});
    (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
}

struct BrainHost {
    state: AppState,
}

fn principal(request: &Extensions) -> Result<&Principal, HostError> {
    request.get::<Principal>().ok_or(HostError::Unauthenticated)
}

/// A tool's arguments as `T` (`deny_unknown_fields`), or what is wrong with them.
fn arguments<T: DeserializeOwned>(arguments: Map<String, Value>) -> Result<T, HostError> {
    serde_json::from_value(Value::Object(arguments))
        .map_err(|e| HostError::InvalidArguments(e.to_string()))
}

fn schema(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A failed call as the client's model should read it: the error's code and message (a
/// hidden cause stays hidden, as in every API answer).
fn failed(error: impl Into<ApiError>) -> HostedResult {
    let error = error.into();
    HostedResult::failed(format!("{}: {}", error.code(), error.message()))
}

fn internal(error: impl std::fmt::Display) -> HostError {
    tracing::error!(error = %error, "an MCP request failed");
    HostError::Internal
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskArgs {
    message: String,
    conversation_id: Option<Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    collection_id: Option<Uuid>,
    k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskArgs {
    task_id: Uuid,
}

#[async_trait]
impl McpHost for BrainHost {
    async fn tools(&self, request: &Extensions) -> Result<Vec<HostedTool>, HostError> {
        let principal = principal(request)?;
        let mut tools = Vec::new();
        if principal.allows(Permission::Chat) {
            let agents = self
                .state
                .runtime
                .list_agents(principal.tenant)
                .await
                .map_err(internal)?;
            tools.extend(
                agents
                    .iter()
                    .map(|agent| ask_tool(&agent.name, agent.slug.as_str(), agent.goal.as_str())),
            );
        }
        if principal.allows(Permission::KnowledgeRead) {
            tools.push(search_tool(self.state.knowledge.config().max_k));
        }
        if principal.allows(Permission::AgentsRead) {
            tools.push(task_tool());
        }
        Ok(tools)
    }

    async fn call(
        &self,
        request: &Extensions,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<HostedResult, HostError> {
        let principal = principal(request)?;
        let unknown = || HostError::UnknownTool(name.to_owned());
        match name {
            KNOWLEDGE_SEARCH if principal.allows(Permission::KnowledgeRead) => {
                self.search(principal, arguments(args)?).await
            }
            TASK_STATUS if principal.allows(Permission::AgentsRead) => {
                self.task_status(principal, arguments(args)?).await
            }
            _ => match name.strip_prefix(ASK_PREFIX) {
                Some(slug) if principal.allows(Permission::Chat) => self
                    .ask(principal, slug, arguments(args)?)
                    .await?
                    .ok_or_else(unknown),
                _ => Err(unknown()),
            },
        }
    }
}

fn ask_tool(name: &str, slug: &str, goal: &str) -> HostedTool {
    HostedTool {
        name: format!("{ASK_PREFIX}{slug}"),
        title: format!("Ask {name}"),
        description: format!(
            "Ask the agent {name}, whose goal is: {goal}. Returns its answer and the \
             conversation_id to pass to continue the conversation."
        ),
        input_schema: schema(json!({
            "type": "object",
            "properties": {
                "message": {"type": "string", "description": "What to ask or tell the agent"},
                "conversation_id": {"type": "string", "format": "uuid",
                    "description": "Continue this conversation (from an earlier answer)"},
            },
            "required": ["message"],
            "additionalProperties": false,
        })),
        read_only: false,
    }
}

fn search_tool(max_k: usize) -> HostedTool {
    HostedTool {
        name: KNOWLEDGE_SEARCH.to_owned(),
        title: "Search knowledge".to_owned(),
        description: "Searches the workspace's knowledge collections (or one of them) and \
                      returns the best passages with their document title and page."
            .to_owned(),
        input_schema: schema(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "collection_id": {"type": "string", "format": "uuid",
                    "description": "Search only this collection"},
                "k": {"type": "integer", "minimum": 1, "maximum": max_k,
                    "description": format!("How many passages (default {DEFAULT_K})")},
            },
            "required": ["query"],
            "additionalProperties": false,
        })),
        read_only: true,
    }
}

fn task_tool() -> HostedTool {
    HostedTool {
        name: TASK_STATUS.to_owned(),
        title: "Task status".to_owned(),
        description: "The status of a durable task and each of its steps.".to_owned(),
        input_schema: schema(json!({
            "type": "object",
            "properties": {"task_id": {"type": "string", "format": "uuid"}},
            "required": ["task_id"],
            "additionalProperties": false,
        })),
        read_only: true,
    }
}

impl BrainHost {
    /// One turn of the agent `slug`; `None` when the tenant has no such agent.
    async fn ask(
        &self,
        principal: &Principal,
        slug: &str,
        args: AskArgs,
    ) -> Result<Option<HostedResult>, HostError> {
        let runtime = &self.state.runtime;
        let agent = match runtime.get_agent_by_slug(principal.tenant, slug).await {
            Ok(agent) => agent,
            Err(RuntimeError::Agent(AgentError::NotFound)) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        let input = crate::api::turn_input(principal, args.message, args.conversation_id)
            .map_err(|e| HostError::InvalidArguments(e.message().to_owned()))?;
        Ok(Some(
            match runtime.chat(principal.tenant, agent.id, input).await {
                Ok(turn) => HostedResult::ok(
                    turn.reply.clone(),
                    json!({
                        "reply": turn.reply,
                        "conversation_id": turn.conversation_id,
                        "citations": turn.citations,
                    }),
                ),
                Err(e) => failed(e),
            },
        ))
    }

    async fn search(
        &self,
        principal: &Principal,
        args: SearchArgs,
    ) -> Result<HostedResult, HostError> {
        let knowledge = &self.state.knowledge;
        let max_k = knowledge.config().max_k;
        let k = args.k.unwrap_or(DEFAULT_K.min(max_k));
        if !(1..=max_k).contains(&k) {
            return Err(HostError::InvalidArguments(format!(
                "k: must be 1 to {max_k}"
            )));
        }
        let collections = match args.collection_id {
            Some(id) => vec![CollectionId(id)],
            None => match knowledge.list_collections(principal.tenant).await {
                Ok(all) => all.into_iter().map(|c| c.id).collect(),
                Err(e) => return Ok(failed(e)),
            },
        };
        let hits = match knowledge
            .search_with(
                principal.tenant,
                &collections,
                &args.query,
                k,
                SearchMode::Hybrid,
            )
            .await
        {
            Ok(hits) => hits,
            Err(e) => return Ok(failed(e)),
        };
        let text = if hits.is_empty() {
            "No passage matches.".to_owned()
        } else {
            hits.iter()
                .enumerate()
                .map(|(i, h)| format!("[{}] {} (page {}): {}", i + 1, h.title, h.page, h.text))
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        Ok(HostedResult::ok(text, json!({ "hits": hits })))
    }

    async fn task_status(
        &self,
        principal: &Principal,
        args: TaskArgs,
    ) -> Result<HostedResult, HostError> {
        match self.state.tasks.get(principal.tenant, args.task_id).await {
            Ok(task) => {
                let view = serde_json::to_value(&task).map_err(internal)?;
                Ok(HostedResult::ok(view.to_string(), view))
            }
            Err(e) => Ok(failed(e)),
        }
    }
}
