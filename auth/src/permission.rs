//! Who may do what: the one permission matrix for roles, and the API-key scopes.
//!
//! | permission          | owner | admin | editor | viewer | API-key scope      |
//! |---------------------|:-----:|:-----:|:------:|:------:|--------------------|
//! | agents.read         |   ✓   |   ✓   |   ✓    |   ✓    | agents:read        |
//! | agents.write        |   ✓   |   ✓   |        |        | agents:write       |
//! | chat                |   ✓   |   ✓   |   ✓    |        | chat               |
//! | tasks.invoke        |   ✓   |   ✓   |   ✓    |        | tasks:invoke       |
//! | tasks.approve       |   ✓   |   ✓   |        |        | —                  |
//! | knowledge.read      |   ✓   |   ✓   |   ✓    |   ✓    | agents:read        |
//! | knowledge.write     |   ✓   |   ✓   |   ✓    |        | knowledge:write    |
//! | connectors.read     |   ✓   |   ✓   |   ✓    |   ✓    | connectors:manage  |
//! | connectors.manage   |   ✓   |   ✓   |        |        | connectors:manage  |
//! | integrations.manage |   ✓   |   ✓   |        |        | —                  |
//! | users.read          |   ✓   |   ✓   |   ✓    |   ✓    | —                  |
//! | users.manage        |   ✓   |   ✓   |        |        | —                  |
//! | api_keys.manage     |   ✓   |   ✓   |        |        | —                  |
//! | audit.read          |   ✓   |   ✓   |        |        | audit:read         |
//!
//! Only an owner may grant or remove the owner role (checked where roles change).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    AgentsRead,
    AgentsWrite,
    Chat,
    TasksInvoke,
    TasksApprove,
    KnowledgeRead,
    KnowledgeWrite,
    ConnectorsRead,
    ConnectorsManage,
    IntegrationsManage,
    UsersRead,
    UsersManage,
    ApiKeysManage,
    AuditRead,
}

use Permission as P;

/// The matrix above, as data: (permission, owner, admin, editor, viewer).
const MATRIX: &[(Permission, [bool; 4])] = &[
    (P::AgentsRead, [true, true, true, true]),
    (P::AgentsWrite, [true, true, false, false]),
    (P::Chat, [true, true, true, false]),
    (P::TasksInvoke, [true, true, true, false]),
    (P::TasksApprove, [true, true, false, false]),
    (P::KnowledgeRead, [true, true, true, true]),
    (P::KnowledgeWrite, [true, true, true, false]),
    (P::ConnectorsRead, [true, true, true, true]),
    (P::ConnectorsManage, [true, true, false, false]),
    (P::IntegrationsManage, [true, true, false, false]),
    (P::UsersRead, [true, true, true, true]),
    (P::UsersManage, [true, true, false, false]),
    (P::ApiKeysManage, [true, true, false, false]),
    (P::AuditRead, [true, true, false, false]),
];

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            P::AgentsRead => "agents.read",
            P::AgentsWrite => "agents.write",
            P::Chat => "chat",
            P::TasksInvoke => "tasks.invoke",
            P::TasksApprove => "tasks.approve",
            P::KnowledgeRead => "knowledge.read",
            P::KnowledgeWrite => "knowledge.write",
            P::ConnectorsRead => "connectors.read",
            P::ConnectorsManage => "connectors.manage",
            P::IntegrationsManage => "integrations.manage",
            P::UsersRead => "users.read",
            P::UsersManage => "users.manage",
            P::ApiKeysManage => "api_keys.manage",
            P::AuditRead => "audit.read",
        }
    }
}

impl Role {
    pub fn allows(self, permission: Permission) -> bool {
        let column = match self {
            Role::Owner => 0,
            Role::Admin => 1,
            Role::Editor => 2,
            Role::Viewer => 3,
        };
        MATRIX
            .iter()
            .any(|(p, roles)| *p == permission && roles[column])
    }
}

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
    fn the_matrix_covers_every_permission_once() {
        let all = [
            P::AgentsRead,
            P::AgentsWrite,
            P::Chat,
            P::TasksInvoke,
            P::TasksApprove,
            P::KnowledgeRead,
            P::KnowledgeWrite,
            P::ConnectorsRead,
            P::ConnectorsManage,
            P::IntegrationsManage,
            P::UsersRead,
            P::UsersManage,
            P::ApiKeysManage,
            P::AuditRead,
        ];
        for p in all {
            assert_eq!(
                MATRIX.iter().filter(|(q, _)| *q == p).count(),
                1,
                "{}",
                p.as_str()
            );
        }
        assert_eq!(MATRIX.len(), all.len());
    }

    #[test]
    fn roles_are_ordered_by_power() {
        for (p, _) in MATRIX {
            // Whatever a lower role may do, every higher role may do too.
            let allowed: Vec<bool> = Role::ALL.iter().map(|r| r.allows(*p)).collect();
            assert!(allowed.windows(2).all(|w| w[0] >= w[1]), "{}", p.as_str());
        }
        assert!(Role::Owner.allows(P::AgentsWrite));
        assert!(!Role::Viewer.allows(P::Chat));
        assert!(Role::Viewer.allows(P::AgentsRead));
        assert!(!Role::Editor.allows(P::ConnectorsManage));
    }

    #[test]
    fn scopes_parse_and_grant_only_their_permissions() {
        assert_eq!("chat".parse::<Scope>().unwrap(), Scope::Chat);
        assert!("admin".parse::<Scope>().is_err());
        assert!(Scope::Chat.grants(P::Chat));
        assert!(!Scope::Chat.grants(P::AgentsWrite));
        assert!(!Scope::AgentsWrite.grants(P::UsersManage));
    }
}
