//! The tool seam: what an agent holds and how its calls are executed. The runtime implements
//! [`ToolInvoker`] over capability handles minted from stored grants; the loop only ever
//! offers and calls the tools an invoker lists.

use brain_auth::TenantId;
use serde::{Deserialize, Serialize};

use crate::providers::{ToolCall, ToolDefinition};

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

/// What a tool returned: a short summary for people and the content fed back to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub summary: String,
    pub content: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}

impl ToolError {
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::NotGranted(_) => "tool_not_granted",
            ToolError::GrantRevoked(_) => "grant_revoked",
            ToolError::CallLimit(_) => "tool_call_limit",
            ToolError::ApprovalRequired(_) => "approval_required",
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::Failed(_) => "tool_failed",
        }
    }
}

/// The tools one agent holds, for one turn.
#[async_trait::async_trait]
pub trait ToolInvoker: Send + Sync {
    /// The tools to offer the model (JSON-schema arguments); nothing else may be called.
    fn definitions(&self) -> Vec<ToolDefinition>;

    /// Executes one call. `idempotency_key` is stable for this call so a retry never acts twice.
    async fn invoke(
        &self,
        tenant: TenantId,
        call: &ToolCall,
        idempotency_key: &str,
    ) -> Result<ToolOutput, ToolError>;
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
