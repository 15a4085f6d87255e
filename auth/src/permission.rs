//! The API-key scopes and which permissions each carries. Roles and the role × permission
//! matrix are `brain_types::access` (shared with the portal).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use Permission as P;
pub use brain_types::Permission;

/// What an API key may do (SPEC §4 "Roles").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "agents:read")]
    AgentsRead,
    #[serde(rename = "agents:write")]
    AgentsWrite,
    #[serde(rename = "chat")]
    Chat,
    #[serde(rename = "tasks:invoke")]
    TasksInvoke,
    #[serde(rename = "knowledge:write")]
    KnowledgeWrite,
    #[serde(rename = "connectors:manage")]
    ConnectorsManage,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::AgentsRead,
        Scope::AgentsWrite,
        Scope::Chat,
        Scope::TasksInvoke,
        Scope::KnowledgeWrite,
        Scope::ConnectorsManage,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AgentsRead => "agents:read",
            Scope::AgentsWrite => "agents:write",
            Scope::Chat => "chat",
            Scope::TasksInvoke => "tasks:invoke",
            Scope::KnowledgeWrite => "knowledge:write",
            Scope::ConnectorsManage => "connectors:manage",
            Scope::AuditRead => "audit:read",
        }
    }

    /// The permissions this scope carries.
    pub fn grants(self, permission: Permission) -> bool {
        matches!(
            (self, permission),
            (Scope::AgentsRead, P::AgentsRead | P::KnowledgeRead)
                | (Scope::AgentsWrite, P::AgentsWrite | P::AgentsRead)
                | (Scope::Chat, P::Chat)
                | (Scope::TasksInvoke, P::TasksInvoke)
                | (Scope::KnowledgeWrite, P::KnowledgeWrite | P::KnowledgeRead)
                | (
                    Scope::ConnectorsManage,
                    P::ConnectorsManage | P::ConnectorsRead
                )
                | (Scope::AuditRead, P::AuditRead)
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope `{s}` (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_grant_only_their_permissions() {
        assert_eq!("chat".parse::<Scope>().unwrap(), Scope::Chat);
        assert!("admin".parse::<Scope>().is_err());
        assert!(Scope::Chat.grants(P::Chat));
        assert!(!Scope::Chat.grants(P::AgentsWrite));
        assert!(!Scope::AgentsWrite.grants(P::UsersManage));
    }
}
