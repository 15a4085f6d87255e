//! The tool seam: what an agent holds and how its calls are executed. The runtime implements
//! [`ToolInvoker`] over capability handles minted from stored grants; the loop only ever
//! offers and calls the tools an invoker lists.

use brain_auth::TenantId;
use serde::{Deserialize, Serialize};

use crate::policy::ToolRules;
use crate::providers::{ToolCall, ToolDefinition};
use crate::turn::ToolCallRecord;

/// Separates connector and action in a tool's function name (`wordpress__create_post`):
/// function names allow only `[a-zA-Z0-9_-]`, and connector names never contain `__`.
pub const TOOL_NAME_SEPARATOR: &str = "__";

/// The model-facing function name of `connector`'s `action`.
pub fn tool_name(connector: &str, action: &str) -> String {
    format!("{connector}{TOOL_NAME_SEPARATOR}{action}")
}

/// `(connector, action)` of a function name; the whole name as action when it has no connector.
pub fn split_tool_name(name: &str) -> (&str, &str) {
    name.split_once(TOOL_NAME_SEPARATOR).unwrap_or(("", name))
}

/// Starts the function name of a delegation tool (`ask_content-creator`). Slugs contain no
/// `_`, so such a name never contains [`TOOL_NAME_SEPARATOR`] and cannot be a connector tool.
pub const DELEGATE_TOOL_PREFIX: &str = "ask_";

/// What tool-call records name as the connector of a delegation (the action is the slug).
pub const DELEGATE_CONNECTOR: &str = "delegate";

/// Starts the connector part of an MCP tool's function name (`mcp_<slug>__<tool>`).
pub const MCP_TOOL_PREFIX: &str = "mcp_";

/// Starts the connector part of a remote A2A agent's function name (`a2a_<slug>__ask`).
pub const A2A_TOOL_PREFIX: &str = "a2a_";

/// Whether `connector` (of a split function name) is one of the tenant's tool sources: an
/// MCP server or a remote A2A agent (both called through `brain_tools::mcp::McpTool`).
pub fn is_mcp(connector: &str) -> bool {
    connector.starts_with(MCP_TOOL_PREFIX) || connector.starts_with(A2A_TOOL_PREFIX)
}

/// The metrics labels of a tool call. Connectors and their actions come from the registry,
/// so their label set is bounded; delegations are one label, not one per target agent, and
/// MCP tools — whose servers and names tenants choose — are all `mcp`/`call`.
pub fn metric_labels<'a>(connector: &'a str, action: &'a str) -> (&'a str, &'a str) {
    if connector == DELEGATE_CONNECTOR {
        (connector, "ask")
    } else if is_mcp(connector) {
        ("mcp", "call")
    } else {
        (connector, action)
    }
}

/// The model-facing function name of the delegation tool for the agent `slug`.
pub fn delegate_tool_name(slug: &str) -> String {
    format!("{DELEGATE_TOOL_PREFIX}{slug}")
}

/// The target slug of a delegation tool's function name.
pub fn delegate_target(name: &str) -> Option<&str> {
    name.strip_prefix(DELEGATE_TOOL_PREFIX)
        .filter(|slug| !slug.is_empty() && !name.contains(TOOL_NAME_SEPARATOR))
}

/// `(connector, action)` as tool-call records show a call: `("delegate", slug)` for a
/// delegation, else [`split_tool_name`].
pub fn call_label(name: &str) -> (&str, &str) {
    match delegate_target(name) {
        Some(slug) => (DELEGATE_CONNECTOR, slug),
        None => split_tool_name(name),
    }
}

/// What a tool returned: a short summary for people and the content fed back to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub summary: String,
    pub content: serde_json::Value,
    /// Calls made on this call's behalf (a delegated agent's own tool calls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<ToolCallRecord>,
}

impl ToolOutput {
    pub fn new(summary: impl Into<String>, content: serde_json::Value) -> Self {
        Self {
            summary: summary.into(),
            content,
            nested: Vec::new(),
        }
    }
}

/// Why a tool call did not run or did not succeed. Serializable: a durable task's history
/// carries the refusals its gate decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ToolError {
    #[error("the agent holds no grant for tool `{0}`")]
    NotGranted(String),
    #[error("the grant for `{0}` was revoked")]
    GrantRevoked(String),
    #[error("`{0}` reached its limit of calls per run")]
    CallLimit(String),
    #[error("`{0}` needs human approval, which chat turns cannot wait for")]
    ApprovalRequired(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("tool failed: {0}")]
    Failed(String),
    /// The target is already on the delegation chain (`a → b → a`).
    #[error("delegation refused: it would form a cycle ({0})")]
    DelegationCycle(String),
    /// The chain already has the maximum number of hops.
    #[error("delegation refused: the chain {chain} already has the maximum of {max} hops")]
    DelegationDepth { chain: String, max: usize },
    /// The root turn spent its budget of delegated calls.
    #[error("delegation refused: this turn already made its maximum of {0} delegated calls")]
    DelegationLimit(u32),
    /// The delegated agent's turn failed.
    #[error("the delegated agent `{agent}` failed: {message}")]
    DelegationFailed { agent: String, message: String },
}

impl brain_auth::ErrorCode for ToolError {
    fn code(&self) -> brain_auth::Code {
        use brain_auth::Code;
        match self {
            ToolError::NotGranted(_) => Code::ToolNotGranted,
            ToolError::GrantRevoked(_) => Code::GrantRevoked,
            ToolError::CallLimit(_) => Code::ToolCallLimit,
            ToolError::ApprovalRequired(_) => Code::ApprovalRequired,
            ToolError::InvalidArguments(_) => Code::InvalidArguments,
            ToolError::Failed(_) => Code::ToolFailed,
            ToolError::DelegationCycle(_) => Code::DelegationCycle,
            ToolError::DelegationDepth { .. } => Code::DelegationDepth,
            ToolError::DelegationLimit(_) => Code::DelegationLimit,
            ToolError::DelegationFailed { .. } => Code::DelegationFailed,
        }
    }
}

/// The tools one agent holds, for one turn.
#[async_trait::async_trait]
pub trait ToolInvoker: Send + Sync {
    /// The tools to offer the model (JSON-schema arguments); nothing else may be called.
    fn definitions(&self) -> Vec<ToolDefinition>;

    /// The per-run rules of these tools (limits, approvals) for the turn's [`ToolGate`];
    /// by default the definitions, unlimited and without approvals.
    ///
    /// [`ToolGate`]: crate::policy::ToolGate
    fn rules(&self) -> ToolRules {
        ToolRules::offering(&self.definitions())
    }

    /// Executes one call. `idempotency_key` is stable for this call so a retry never acts twice.
    async fn invoke(
        &self,
        tenant: TenantId,
        call: &ToolCall,
        idempotency_key: &str,
    ) -> Result<ToolOutput, ToolError>;

    /// Told of a call the turn refused before it reached [`invoke`](Self::invoke) (the gate's
    /// refusals, and approvals a chat turn cannot wait for), so the invoker can record it as
    /// it records calls it refuses itself. By default nothing.
    async fn refused(&self, _tenant: TenantId, _call: &ToolCall, _why: &ToolError) {}
}

/// An agent without tools.
pub struct NoTools;

#[async_trait::async_trait]
impl ToolInvoker for NoTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        Vec::new()
    }

    async fn invoke(
        &self,
        _tenant: TenantId,
        call: &ToolCall,
        _idempotency_key: &str,
    ) -> Result<ToolOutput, ToolError> {
        Err(ToolError::NotGranted(call.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_tools_are_told_apart_from_connector_tools() {
        assert_eq!(delegate_tool_name("content-creator"), "ask_content-creator");
        assert_eq!(
            call_label("ask_content-creator"),
            ("delegate", "content-creator")
        );
        assert_eq!(
            call_label("wordpress__create_post"),
            ("wordpress", "create_post")
        );
        assert_eq!(delegate_target("ask_"), None);
        assert_eq!(delegate_target("ask_x__y"), None);
        assert_eq!(call_label("unknown"), ("", "unknown"));
    }
}
