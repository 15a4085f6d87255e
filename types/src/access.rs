//! Who may do what: the roles of a tenant's people and the one permission matrix (the
//! server enforces it; the portal reads it to show only what a person may use). API-key
//! scopes live with the keys in `brain-auth`.
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

/// A person's role in a tenant, from most to least powerful.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    /// A marketer: chats with agents and edits content, does not manage the tenant.
    Editor,
    /// Reads only; also what a missing or unknown role falls back to.
    #[default]
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of owner, admin, editor, viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role `{}` (expected owner, admin, editor or viewer)",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

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
}
