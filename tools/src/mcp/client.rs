//! The one place that knows the MCP SDK (`rmcp`): a session over streamable HTTP on Brain's
//! egress-guarded reqwest client, the server's tool list, and one tool call. Everything it
//! returns is plain JSON in the MCP wire's field names, so an SDK upgrade stops here.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::handler::client::ClientHandler;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

/// How a server is reached: its URL and what authenticates Brain to it.
pub(crate) struct Endpoint {
    pub url: String,
    pub auth: EndpointAuth,
}

pub(crate) enum EndpointAuth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// Any other header, e.g. `X-API-Key`.
    Header(HeaderName, HeaderValue),
}

/// Why talking to a server failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("no answer within {0} s")]
    TimedOut(u64),
    #[error("{message}")]
    Connect {
        message: String,
        /// The egress policy refused the connection (a name resolving to a private address).
        refused: Option<brain_auth::egress::EgressError>,
    },
    #[error("{0}")]
    Protocol(String),
}

/// One tool as the server lists it (`name`, `title`, `description`, `inputSchema`,
/// `annotations`).
pub(crate) type ListedTool = Value;

/// What a tool call answered (`content`, `structuredContent`, `isError`).
pub(crate) type CallResult = Value;

/// Limits of one exchange with a server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// For the whole exchange: connecting, the handshake, the request and its answer.
    pub timeout: Duration,
    /// The largest answer accepted (a larger one fails the call; nothing is buffered past it).
    pub max_response_bytes: usize,
}

/// Notes a server's `notifications/tools/list_changed` during a session.
#[derive(Clone, Default)]
struct Watcher {
    tools_changed: Arc<AtomicBool>,
}

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.store(true, Ordering::Relaxed);
    }
}

type Session = RunningService<RoleClient, Watcher>;

async fn connect(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
    watcher: Watcher,
) -> Result<Session, ClientError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(endpoint.url.as_str())
        .max_json_response_size(limits.max_response_bytes)
        .max_sse_event_size(limits.max_response_bytes);
    match &endpoint.auth {
        EndpointAuth::None => {}
        EndpointAuth::Bearer(token) => config = config.auth_header(token.clone()),
        EndpointAuth::Header(name, value) => {
            config = config.custom_headers(HashMap::from([(name.clone(), value.clone())]));
        }
    }
    let transport = StreamableHttpClientTransport::with_client(http.clone(), config);
    watcher
        .serve(transport)
        .await
        .map_err(|e| ClientError::Connect {
            refused: brain_auth::egress::refusal(&e),
            message: e.to_string(),
        })
}

/// Runs `work` in a fresh session, all of it within `limits.timeout`; the session is closed
/// after (a server that hangs is dropped, not waited for). Also whether the server said its
/// tool list changed meanwhile.
async fn in_session<T>(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
    work: impl AsyncFnOnce(&Session) -> Result<T, ClientError>,
) -> Result<(T, bool), ClientError> {
    let watcher = Watcher::default();
    let changed = Arc::clone(&watcher.tools_changed);
    let exchange = async {
        let session = connect(http, endpoint, limits, watcher).await?;
        let result = work(&session).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), session.cancel()).await;
        result.map(|value| (value, changed.load(Ordering::Relaxed)))
    };
    tokio::time::timeout(limits.timeout, exchange)
        .await
        .map_err(|_| ClientError::TimedOut(limits.timeout.as_secs()))?
}

/// Every tool the server offers (all pages).
pub(crate) async fn list_tools(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
) -> Result<Vec<ListedTool>, ClientError> {
    in_session(http, endpoint, limits, async |session| {
        let tools = session
            .list_all_tools()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        tools
            .iter()
            .map(|t| serde_json::to_value(t).map_err(|e| ClientError::Protocol(e.to_string())))
            .collect()
    })
    .await
    .map(|(tools, _)| tools)
}

/// Calls `tool` with `arguments` (a JSON object); also whether the server announced
/// (`notifications/tools/list_changed`) that its tool list changed.
pub(crate) async fn call_tool(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
    tool: &str,
    arguments: serde_json::Map<String, Value>,
) -> Result<(CallResult, bool), ClientError> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    in_session(http, endpoint, limits, async |session| {
        let result = session
            .call_tool(params)
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        serde_json::to_value(&result).map_err(|e| ClientError::Protocol(e.to_string()))
    })
    .await
}
