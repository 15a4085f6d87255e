//! Tools for a turn: [`ToolSource`] mints an agent's tools from its stored grants, and
//! [`ConnectorTools`] does so with the connector crate's capability handles, so a revoked
//! grant fails the very next call (`grant_revoked`) without restarting anything.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use brain_agents::AgentError;
use brain_agents::providers::{ToolCall, ToolDefinition};
use brain_agents::spec::AgentSpec;
use brain_agents::tool::{NoTools, ToolError, ToolInvoker, ToolOutput};
use brain_auth::TenantId;
use brain_tools::{Capability, CapabilityTool, ConnectorService, Tool};

/// Where a turn's tools come from.
#[async_trait::async_trait]
pub trait ToolSource: Send + Sync {
    /// The tools `agent` holds now, minted from its stored grants; valid for one turn.
    async fn tools_for(
        &self,
        tenant: TenantId,
        agent: &AgentSpec,
    ) -> Result<Arc<dyn ToolInvoker>, AgentError>;
}

/// Agents hold no tools (tests, benchmarks, deployments without connectors).
pub struct NoToolSource;

#[async_trait::async_trait]
impl ToolSource for NoToolSource {
    async fn tools_for(
        &self,
        _tenant: TenantId,
        _agent: &AgentSpec,
    ) -> Result<Arc<dyn ToolInvoker>, AgentError> {
        Ok(Arc::new(NoTools))
    }
}

/// Capability handles from `brain-tools`, minted per turn from `tool_grants`.
pub struct ConnectorTools {
    service: Arc<ConnectorService>,
}

impl ConnectorTools {
    pub fn new(service: Arc<ConnectorService>) -> Self {
        Self { service }
    }
}

#[async_trait::async_trait]
impl ToolSource for ConnectorTools {
    async fn tools_for(
        &self,
        tenant: TenantId,
        agent: &AgentSpec,
    ) -> Result<Arc<dyn ToolInvoker>, AgentError> {
        let capabilities = self
            .service
            .capabilities(tenant, agent.id.0)
            .await
            .map_err(|e| AgentError::Tool(ToolError::Failed(e.to_string())))?;
        Ok(Arc::new(CapabilityInvoker::new(
            &self.service,
            &capabilities,
        )))
    }
}

/// One turn's tools: every granted action of every capability, with per-run call limits.
pub struct CapabilityInvoker {
    tools: HashMap<String, Arc<dyn Tool>>,
    definitions: Vec<ToolDefinition>,
    limits: HashMap<&'static str, (u32, AtomicU32)>,
    approval: HashMap<&'static str, bool>,
}

impl CapabilityInvoker {
    pub fn new(service: &Arc<ConnectorService>, capabilities: &[Capability]) -> Self {
        let mut tools = HashMap::new();
        let mut definitions = Vec::new();
        let mut limits = HashMap::new();
        let mut approval = HashMap::new();
        for cap in capabilities {
            if let Some(max) = cap.max_calls_per_run() {
                limits.insert(cap.connector(), (max, AtomicU32::new(0)));
            }
            approval.insert(cap.connector(), cap.requires_approval());
            for tool in CapabilityTool::all(service, cap) {
                let spec = tool.spec();
                let name = spec.function_name();
                definitions.push(ToolDefinition {
                    name: name.clone(),
                    description: spec.description.clone(),
                    parameters: spec.parameters.clone(),
                });
                tools.insert(name, tool);
            }
        }
        Self {
            tools,
            definitions,
            limits,
            approval,
        }
    }
}

fn map_tool_error(e: brain_tools::ToolError) -> ToolError {
    use brain_tools::ToolError as T;
    match e {
        T::GrantRevoked { connector } | T::GrantNotFound { connector } => {
            ToolError::GrantRevoked(connector)
        }
        T::ActionNotGranted { connector, action } => {
            ToolError::NotGranted(format!("{connector}.{action}"))
        }
        T::InvalidArguments { message, .. } => ToolError::InvalidArguments(message),
        other => ToolError::Failed(other.to_string()),
    }
}

#[async_trait::async_trait]
impl ToolInvoker for CapabilityInvoker {
    fn definitions(&self) -> Vec<ToolDefinition> {
        self.definitions.clone()
    }

    async fn invoke(
        &self,
        _tenant: TenantId,
        call: &ToolCall,
        idempotency_key: &str,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self
            .tools
            .get(&call.name)
            .ok_or_else(|| ToolError::NotGranted(call.name.clone()))?;
        let connector = tool.spec().connector;
        if self.approval.get(connector).copied().unwrap_or(false) {
            // Chat turns cannot pause for a human; approvals belong to durable tasks.
            return Err(ToolError::ApprovalRequired(call.name.clone()));
        }
        if let Some((max, used)) = self.limits.get(connector)
            && used.fetch_add(1, Ordering::SeqCst) >= *max
        {
            return Err(ToolError::CallLimit(connector.to_owned()));
        }
        let result = tool
            .call(call.arguments.clone(), Some(idempotency_key))
            .await
            .map_err(map_tool_error)?;
        let summary: String = result.to_string().chars().take(200).collect();
        Ok(ToolOutput::new(summary, result))
    }
}

/// The connector registry as the agent store's catalogue: grants may name only real
/// connectors and their real actions (`unknown connector` / `no action` are 422s).
pub struct ConnectorRegistryCatalog;

impl brain_agents::spec::ConnectorCatalog for ConnectorRegistryCatalog {
    fn actions(&self, connector: &str) -> Option<Vec<String>> {
        brain_tools::registry::connectors()
            .iter()
            .find(|c| c.id == connector)
            .map(|c| c.actions.iter().map(|a| a.name.to_owned()).collect())
    }
}
