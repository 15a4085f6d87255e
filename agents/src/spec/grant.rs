//! Grants as stored and as the API reads and writes them: tool grants (a connector's actions
//! or an MCP server's tools), delegate grants, and the approval each call needs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AgentId;

/// Whether a human must approve each call a grant allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    #[default]
    Never,
    Always,
    /// Only calls that may change something (an MCP tool not annotated read-only); the
    /// default of MCP server grants, and for them only.
    Auto,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Never => "never",
            Approval::Always => "always",
            Approval::Auto => "auto",
        }
    }
}

/// The prefix of an MCP server grant's stored connector name (`mcp:<slug>`).
pub const MCP_GRANT_PREFIX: &str = "mcp:";
/// The prefix of a remote A2A agent grant's stored connector name (`a2a:<slug>`).
pub const A2A_GRANT_PREFIX: &str = "a2a:";
/// The one tool of a remote A2A agent.
const A2A_TOOL: &str = "ask";

/// A stored tool grant: which actions of one connector — or which tools of one of the
/// tenant's MCP servers — the agent may call. On the wire an MCP grant reads
/// `{mcp_server, tools, approval, max_calls_per_run}`; it is stored as connector
/// `mcp:<slug>` with the tools as its actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GrantWire", into = "GrantWire")]
pub struct ToolGrant {
    /// A connector of the registry (`GET /v1/connectors`), granted at most once per agent.
    pub connector: String,
    /// `["*"]` grants every action of the connector.
    pub actions: Vec<String>,
    /// Whether a human must approve each call (default `never`).
    pub approval: Approval,
    /// Calls of this connector allowed per run, at least 1; no limit when absent.
    pub max_calls_per_run: Option<u32>,
}

/// A tool grant as the API reads and writes it: `connector` + `actions`, or `mcp_server` +
/// `tools`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ToolGrant)]
pub struct GrantWire {
    /// A connector of the registry (`GET /v1/connectors`), granted at most once per agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector: Option<String>,
    /// The connector's actions; `["*"]` grants every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actions: Option<Vec<String>>,
    /// The slug of one of the tenant's MCP servers (`/v1/integrations/mcp-servers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mcp_server: Option<String>,
    /// The server's tools; `["*"]` grants every one it lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<String>>,
    /// The slug of one of the tenant's remote A2A agents (`/v1/integrations/a2a-agents`); the
    /// model asks it through `a2a_<slug>__ask`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a2a_agent: Option<String>,
    /// `never`, `always`, or (MCP servers only, their default) `auto`: calls of tools not
    /// annotated read-only need approval. Connector grants default to `never`.
    #[serde(default)]
    approval: Option<Approval>,
    /// Calls allowed per run, at least 1; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_calls_per_run: Option<u32>,
}

impl TryFrom<GrantWire> for ToolGrant {
    type Error = String;

    fn try_from(mut wire: GrantWire) -> Result<Self, String> {
        if let Some(agent) = wire.a2a_agent.take() {
            if wire.connector.is_some() || wire.mcp_server.is_some() {
                return Err("a grant names one of `connector`, `mcp_server`, `a2a_agent`".into());
            }
            if wire.actions.is_some() || wire.tools.is_some() {
                return Err("an `a2a_agent` grant has no `actions` or `tools`".into());
            }
            return Ok(ToolGrant {
                connector: format!("{A2A_GRANT_PREFIX}{agent}"),
                actions: vec![A2A_TOOL.to_owned()],
                approval: wire.approval.unwrap_or(Approval::Auto),
                max_calls_per_run: wire.max_calls_per_run,
            });
        }
        let (connector, actions, approval) = match (wire.connector, wire.mcp_server) {
            (Some(connector), None) => {
                if wire.tools.is_some() {
                    return Err("`tools` belongs to an `mcp_server` grant; a connector grant lists `actions`".into());
                }
                if connector.starts_with(MCP_GRANT_PREFIX)
                    || connector.starts_with(A2A_GRANT_PREFIX)
                {
                    return Err(format!(
                        "grant an MCP server with `mcp_server`, not `connector: {connector}`"
                    ));
                }
                let approval = wire.approval.unwrap_or(Approval::Never);
                if approval == Approval::Auto {
                    return Err("`approval: auto` is for MCP server grants".into());
                }
                (
                    connector,
                    wire.actions.ok_or("a connector grant needs `actions`")?,
                    approval,
                )
            }
            (None, Some(server)) => {
                if wire.actions.is_some() {
                    return Err("an `mcp_server` grant lists `tools`, not `actions`".into());
                }
                let tools = wire.tools.ok_or("an `mcp_server` grant needs `tools`")?;
                (
                    format!("{MCP_GRANT_PREFIX}{server}"),
                    tools,
                    wire.approval.unwrap_or(Approval::Auto),
                )
            }
            (Some(_), Some(_)) => {
                return Err("a grant names a `connector` or an `mcp_server`, not both".into());
            }
            (None, None) => return Err("a grant names a `connector` or an `mcp_server`".into()),
        };
        Ok(ToolGrant {
            connector,
            actions,
            approval,
            max_calls_per_run: wire.max_calls_per_run,
        })
    }
}

impl From<ToolGrant> for GrantWire {
    fn from(grant: ToolGrant) -> Self {
        let approval = Some(grant.approval);
        let max_calls_per_run = grant.max_calls_per_run;
        if let Some(agent) = grant.connector.strip_prefix(A2A_GRANT_PREFIX) {
            return GrantWire {
                a2a_agent: Some(agent.to_owned()),
                approval,
                max_calls_per_run,
                ..GrantWire::default()
            };
        }
        match grant.connector.strip_prefix(MCP_GRANT_PREFIX) {
            Some(server) => GrantWire {
                mcp_server: Some(server.to_owned()),
                tools: Some(grant.actions),
                approval,
                max_calls_per_run,
                ..GrantWire::default()
            },
            None => GrantWire {
                connector: Some(grant.connector),
                actions: Some(grant.actions),
                approval,
                max_calls_per_run,
                ..GrantWire::default()
            },
        }
    }
}

impl ToolGrant {
    pub fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == "*" || a == action)
    }

    /// The slug of the tenant's tool source — an MCP server or a remote A2A agent — the grant
    /// names, for a grant of one.
    pub fn mcp_server(&self) -> Option<&str> {
        self.tool_source().map(|(_, slug)| slug)
    }

    /// The protocol (`mcp`, `a2a`) and slug of the tool source the grant names.
    pub fn tool_source(&self) -> Option<(&'static str, &str)> {
        if let Some(slug) = self.connector.strip_prefix(MCP_GRANT_PREFIX) {
            return Some(("mcp", slug));
        }
        self.connector
            .strip_prefix(A2A_GRANT_PREFIX)
            .map(|slug| ("a2a", slug))
    }
}

/// A stored delegate grant: the agent may ask `agent` (another agent of its tenant) through
/// the tool `ask_<slug>`; the runtime runs the target's own turn and returns its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateGrant {
    /// Another agent of the tenant, granted at most once.
    pub agent: AgentId,
    /// Whether a human must approve each delegation (default `never`).
    #[serde(default)]
    pub approval: Approval,
    /// Delegations to this agent allowed per run, at least 1; no limit when absent.
    #[serde(default)]
    pub max_calls_per_run: Option<u32>,
}
