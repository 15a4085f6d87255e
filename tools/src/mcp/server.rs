//! Brain as an MCP server: the rmcp side of `POST /mcp`. What the tools are and what a call
//! does is the host's business ([`McpHost`], implemented by the gateway in Brain's own types);
//! this module only speaks the protocol (streamable HTTP, the current revision and the
//! handshake of the previous ones), so an SDK upgrade touches it and `client.rs` alone.
//!
//! The endpoint is stateless: every request carries its credentials and is answered on its
//! own (JSON, no session), which is what the 2026-07-28 revision asks for and what lets any
//! gateway instance answer any request.

use std::sync::Arc;

use async_trait::async_trait;
use http::Extensions;
use rmcp::ErrorData;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;

/// A tool the host offers a caller.
#[derive(Clone, Debug)]
pub struct HostedTool {
    pub name: String,
    pub title: String,
    pub description: String,
    /// A JSON Schema object for the arguments.
    pub input_schema: JsonObject,
    /// Whether the tool only reads (an agent turn may act, so `ask_*` tools are not).
    pub read_only: bool,
}

/// What a call returned: text for the model, and optionally the same as structured JSON.
#[derive(Clone, Debug)]
pub struct HostedResult {
    pub text: String,
    pub structured: Option<Value>,
    /// The tool ran and failed (the client's model should see why), as opposed to a request
    /// that was wrong ([`HostError`]).
    pub is_error: bool,
}

impl HostedResult {
    pub fn ok(text: String, structured: Value) -> Self {
        Self {
            text,
            structured: Some(structured),
            is_error: false,
        }
    }

    pub fn failed(text: String) -> Self {
        Self {
            text,
            structured: None,
            is_error: true,
        }
    }
}

/// A request the host refuses, answered as a JSON-RPC error.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No such tool for this caller (another tenant's agent is one of these too).
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The request carried no principal: the endpoint was mounted without authentication.
    #[error("not authenticated")]
    Unauthenticated,
    #[error("internal error")]
    Internal,
}

/// What `/mcp` serves: the caller is found in the HTTP request's extensions, where the
/// gateway's authentication put it.
#[async_trait]
pub trait McpHost: Send + Sync + 'static {
    async fn tools(&self, request: &Extensions) -> Result<Vec<HostedTool>, HostError>;

    async fn call(
        &self,
        request: &Extensions,
        name: &str,
        arguments: JsonObject,
    ) -> Result<HostedResult, HostError>;
}

/// The service that answers `/mcp` (every method; it refuses the ones it does not serve) for
/// `host`: a tower service of `http` requests, for the gateway to route.
///
/// The SDK's `Host` allowlist (loopback only by default) guards servers that trust whoever
/// can reach them against DNS rebinding. Brain's endpoint trusts no one without a bearer
/// token or API key, which a rebinding page cannot attach, so any host name the deployment
/// is reached by is accepted.
pub fn service(host: Arc<dyn McpHost>) -> McpService {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(Handler { host: host.clone() }),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// What [`service`] returns (the SDK's type; callers only route it).
pub type McpService = StreamableHttpService<Handler, NeverSessionManager>;

/// The SDK's handler over a host, one per request.
pub struct Handler {
    host: Arc<dyn McpHost>,
}

/// The HTTP request's extensions (where the principal is), as the transport handed them on.
fn request_extensions(context: &RequestContext<RoleServer>) -> Result<&Extensions, ErrorData> {
    context
        .extensions
        .get::<http::request::Parts>()
        .map(|parts| &parts.extensions)
        .ok_or_else(|| to_error(HostError::Unauthenticated))
}

fn to_error(error: HostError) -> ErrorData {
    match error {
        HostError::UnknownTool(_) | HostError::InvalidArguments(_) => {
            ErrorData::invalid_params(error.to_string(), None)
        }
        HostError::Unauthenticated => ErrorData::invalid_request(error.to_string(), None),
        HostError::Internal => ErrorData::internal_error(error.to_string(), None),
    }
}

fn to_tool(tool: HostedTool) -> Tool {
    let annotations = ToolAnnotations::new()
        .read_only(tool.read_only)
        .destructive(false);
    let mut out = Tool::new(tool.name, tool.description, Arc::new(tool.input_schema))
        .with_annotations(annotations);
    out.title = Some(tool.title);
    out
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("brain", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Brain's agents of your workspace: `ask_<agent>` runs one turn of that agent \
                 (pass `conversation_id` from the previous answer to continue); \
                 `knowledge_search` searches the workspace's knowledge with citations; \
                 `task_status` reports a durable task.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let extensions = request_extensions(&context)?;
        let tools = self.host.tools(extensions).await.map_err(to_error)?;
        Ok(ListToolsResult {
            tools: tools.into_iter().map(to_tool).collect(),
            ..ListToolsResult::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let extensions = request_extensions(&context)?;
        let arguments = request.arguments.unwrap_or_default();
        let result = self
            .host
            .call(extensions, &request.name, arguments)
            .await
            .map_err(to_error)?;
        let content = vec![ContentBlock::text(result.text)];
        let mut out = if result.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        out.structured_content = result.structured;
        Ok(out.into())
    }
}
