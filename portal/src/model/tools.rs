//! Tool grants and the tenant's tool sources — MCP servers and remote A2A agents — as the
//! gateway describes them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool grant as `GET /v1/agents/{id}` lists it: a connector's `actions`, an MCP server's
/// `tools`, or a remote A2A agent. Empty and absent fields are left out when written, so a
/// grant writes back the way the API wrote it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grant {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub connector: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_server: Option<String>,
    /// The server's tools; `["*"]` grants every one it lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a2a_agent: Option<String>,
    /// `never` or `always`; MCP server and remote agent grants also `auto`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub approval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_per_run: Option<u32>,
}

impl Grant {
    /// The MCP server or remote agent the grant is of; `None` for a connector grant.
    pub fn source(&self) -> Option<(ToolSourceKind, &str)> {
        match (&self.mcp_server, &self.a2a_agent) {
            (Some(server), _) => Some((ToolSourceKind::Mcp, server)),
            (_, Some(agent)) => Some((ToolSourceKind::A2a, agent)),
            _ => None,
        }
    }

    /// Whether the grant is of the tenant's MCP server or remote agent `slug`.
    pub fn is_of(&self, kind: ToolSourceKind, slug: &str) -> bool {
        self.source() == Some((kind, slug))
    }

    /// Whether an MCP server grant allows `tool` (`*` allows every one).
    pub fn allows_tool(&self, tool: &str) -> bool {
        self.tools.iter().flatten().any(|t| t == "*" || t == tool)
    }

    /// What the grant names, for lists: the connector, `mcp:<slug>` or `a2a:<slug>`.
    pub fn label(&self) -> String {
        match self.source() {
            Some((kind, slug)) => format!("{}:{slug}", kind.as_str()),
            None => self.connector.clone(),
        }
    }
}

/// What a tool source speaks: MCP (the tools its server lists) or A2A (a remote agent, asked
/// through one tool).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolSourceKind {
    #[default]
    Mcp,
    A2a,
}

impl ToolSourceKind {
    pub const ALL: [Self; 2] = [Self::Mcp, Self::A2a];

    /// As forms and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::A2a => "a2a",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Mcp => "MCP",
            Self::A2a => "A2A",
        }
    }

    /// The API's collection of this kind.
    pub fn path(self) -> &'static str {
        match self {
            Self::Mcp => "/v1/integrations/mcp-servers",
            Self::A2a => "/v1/integrations/a2a-agents",
        }
    }
}

/// How Brain authenticates to a tool source: `none`, `bearer` or `header` (with the header's
/// name). The secret itself is never shown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolSourceAuth {
    pub kind: String,
    pub header: Option<String>,
}

/// One tool an MCP server listed when last refreshed (a remote agent's one tool is `ask`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceTool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// The server's hints (`readOnlyHint`, `destructiveHint`, …).
    pub annotations: Value,
}

impl SourceTool {
    /// Annotated read-only: `approval: auto` lets only these run without a person.
    pub fn read_only(&self) -> bool {
        self.annotations["readOnlyHint"] == Value::Bool(true)
    }
}

/// One of the tenant's MCP servers or remote A2A agents
/// (`/v1/integrations/mcp-servers`, `/v1/integrations/a2a-agents`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolSource {
    pub id: String,
    pub protocol: ToolSourceKind,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub auth: ToolSourceAuth,
    pub enabled: bool,
    pub tools: Vec<SourceTool>,
    pub refreshed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grants_of_every_kind_read_and_write_back_as_the_api_wrote_them() {
        let wire = json!([
            {"connector": "hubspot", "actions": ["create_contact"], "approval": "never"},
            {"mcp_server": "crm", "tools": ["*"], "approval": "auto", "max_calls_per_run": 3},
            {"mcp_server": "empty", "tools": [], "approval": "always"},
            {"a2a_agent": "planner", "approval": "never"},
        ]);
        let grants: Vec<Grant> = serde_json::from_value(wire.clone()).unwrap_or_default();
        assert_eq!(grants.len(), 4);
        assert_eq!(serde_json::to_value(&grants).ok(), Some(wire));
        assert!(grants[1].is_of(ToolSourceKind::Mcp, "crm") && grants[1].allows_tool("echo"));
        assert!(!grants[1].is_of(ToolSourceKind::A2a, "crm"));
        assert!(grants[3].is_of(ToolSourceKind::A2a, "planner"));
        let labels: Vec<String> = grants.iter().map(Grant::label).collect();
        assert_eq!(labels, ["hubspot", "mcp:crm", "mcp:empty", "a2a:planner"]);
    }

    #[test]
    fn a_tool_source_reads_its_kind_and_read_only_tools() {
        let source: ToolSource = serde_json::from_value(json!({
            "id": "s", "protocol": "a2a", "name": "Planner", "slug": "planner",
            "url": "https://a.example", "auth": {"kind": "header", "header": "X-Key"},
            "enabled": true, "refreshed_at": null,
            "tools": [{"name": "ask", "input_schema": {}, "annotations": {"readOnlyHint": true}}],
        }))
        .unwrap_or_default();
        assert_eq!(source.protocol, ToolSourceKind::A2a);
        assert_eq!(source.auth.header.as_deref(), Some("X-Key"));
        assert!(source.tools[0].read_only());
        assert_eq!(ToolSourceKind::parse("mcp"), Some(ToolSourceKind::Mcp));
        assert_eq!(ToolSourceKind::parse("x"), None);
    }
}
