//! Tools for a turn: [`ToolSource`] mints an agent's tools from its stored grants, and
//! [`ConnectorTools`] does so with the connector crate's capability handles, so a revoked
//! grant fails the very next call (`grant_revoked`) without restarting anything.

use std::collections::HashMap;
use std::sync::Arc;

use brain_agents::providers::{ToolCall, ToolDefinition};
use brain_agents::spec::AgentSpec;
use brain_agents::tool::{NoTools, ToolError, ToolInvoker, ToolOutput};
use brain_agents::{AgentError, ToolRules};
use brain_auth::TenantId;
use brain_tools::mcp::McpTool;
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
        let failed = |e: brain_tools::ToolError| AgentError::Tool(ToolError::Failed(e.to_string()));
        let capabilities = self
            .service
            .capabilities(tenant, agent.id.0)
            .await
            .map_err(failed)?;
        let mut invoker = CapabilityInvoker::new(&self.service, &capabilities);
        // Only agents granted an MCP server pay for the lookup.
        if agent.tools.iter().any(|g| g.mcp_server().is_some()) {
            let mcp = self
                .service
                .mcp()
                .tools_for(tenant, agent.id.0)
                .await
                .map_err(failed)?;
            invoker = invoker.with_mcp(mcp);
        }
        Ok(Arc::new(invoker))
    }
}

/// One turn's tools: every granted action of every capability. Per-run limits and approvals
/// are the turn's [`ToolGate`](brain_agents::ToolGate)'s to enforce; a revoked grant is the
/// capability's.
pub struct CapabilityInvoker {
    tools: HashMap<String, Arc<dyn Tool>>,
    /// Granted tools of the tenant's MCP servers, by `mcp_<slug>__<tool>`.
    mcp: HashMap<String, McpTool>,
    definitions: Vec<ToolDefinition>,
    rules: ToolRules,
}

impl CapabilityInvoker {
    pub fn new(service: &Arc<ConnectorService>, capabilities: &[Capability]) -> Self {
        let mut tools = HashMap::new();
        let mut definitions = Vec::new();
        let mut rules = ToolRules::default();
        for cap in capabilities {
            if let Some(max) = cap.max_calls_per_run() {
                rules.call_limits.insert(cap.connector().to_owned(), max);
            }
            for tool in CapabilityTool::all(service, cap) {
                let spec = tool.spec();
                let name = spec.function_name();
                if cap.requires_approval() {
                    rules.approval.insert(name.clone());
                }
                rules.offered.insert(name.clone());
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
            mcp: HashMap::new(),
            definitions,
            rules,
        }
    }

    /// Adds granted MCP tools: offered, counted per server (`mcp_<slug>`) against the grant's
    /// per-run limit, and held for approval when the grant says so.
    pub fn with_mcp(mut self, tools: Vec<McpTool>) -> Self {
        for tool in tools {
            let name = tool.function_name().to_owned();
            if let Some(max) = tool.max_calls_per_run() {
                let group = brain_agents::policy::limit_group(&name).to_owned();
                self.rules.call_limits.insert(group, max);
            }
            if tool.requires_approval() {
                self.rules.approval.insert(name.clone());
            }
            self.rules.offered.insert(name.clone());
            self.definitions.push(ToolDefinition {
                name: name.clone(),
                description: tool.description(),
                parameters: tool.parameters().clone(),
            });
            self.mcp.insert(name, tool);
        }
        self
    }

    /// The definitions and rules of these tools, for plans made outside a turn (tasks).
    pub fn into_parts(self) -> (Vec<ToolDefinition>, ToolRules) {
        (self.definitions, self.rules)
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

    fn rules(&self) -> ToolRules {
        self.rules.clone()
    }

    async fn invoke(
        &self,
        _tenant: TenantId,
        call: &ToolCall,
        idempotency_key: &str,
    ) -> Result<ToolOutput, ToolError> {
        let result = match (self.tools.get(&call.name), self.mcp.get(&call.name)) {
            (Some(tool), _) => {
                tool.call(call.arguments.clone(), Some(idempotency_key))
                    .await
            }
            (None, Some(tool)) => tool.call(call.arguments.clone()).await,
            (None, None) => return Err(ToolError::NotGranted(call.name.clone())),
        }
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
