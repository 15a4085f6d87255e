//! Capability handles: the only way an agent reaches a connector. A [`Capability`] is minted
//! from a stored `tool_grants` row and nothing else; its fields are private, so holding one
//! proves a grant existed. [`crate::ConnectorService::invoke`] re-reads the grant on every
//! call, so revoking it stops the very next call.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use brain_auth::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::registry::{self, ConnectorDef};
use crate::{ConnectorService, ToolError};

/// Whether a call needs a human's approval before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    Never,
    Always,
}

impl Approval {
    fn parse(s: &str) -> Approval {
        // The column's CHECK allows only these two; anything else is treated as the safer one.
        if s == "never" {
            Approval::Never
        } else {
            Approval::Always
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Granted {
    All,
    Only(BTreeSet<String>),
}

impl Granted {
    fn from_row(actions: &[String]) -> Granted {
        if actions.iter().any(|a| a == "*") {
            Granted::All
        } else {
            Granted::Only(actions.iter().cloned().collect())
        }
    }

    fn allows(&self, action: &str) -> bool {
        match self {
            Granted::All => true,
            Granted::Only(set) => set.contains(action),
        }
    }
}

/// A handle to one connector for one agent of one tenant, minted from its grant.
#[derive(Clone)]
pub struct Capability {
    grant_id: Uuid,
    tenant: TenantId,
    agent_id: Uuid,
    connector: &'static ConnectorDef,
    granted: Granted,
    approval: Approval,
    max_calls_per_run: Option<u32>,
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capability")
            .field("grant_id", &self.grant_id)
            .field("tenant", &self.tenant)
            .field("agent_id", &self.agent_id)
            .field("connector", &self.connector.id)
            .field("granted", &self.granted)
            .field("approval", &self.approval)
            .field("max_calls_per_run", &self.max_calls_per_run)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    pub(crate) id: Uuid,
    pub(crate) connector: String,
    pub(crate) actions: Vec<String>,
    pub(crate) approval: String,
    pub(crate) max_calls_per_run: Option<i32>,
}

/// What the model sees of one granted action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolSpec {
    /// `connector.action`, e.g. `wordpress.create_post`.
    pub name: String,
    pub connector: &'static str,
    pub action: &'static str,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    pub side_effect: bool,
    pub requires_approval: bool,
}

impl ToolSpec {
    /// The name in the character set OpenAI-style function calling accepts
    /// (`^[a-zA-Z0-9_-]+$`, no dots): `wordpress__create_post`.
    pub fn function_name(&self) -> String {
        format!("{}__{}", self.connector, self.action)
    }
}

/// Splits `connector.action` or `connector__action` into its two parts.
pub fn split_tool_name(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
        .or_else(|| name.split_once("__"))
        .filter(|(c, a)| !c.is_empty() && !a.is_empty())
}

impl Capability {
    /// Every capability of an agent, one per grant. Grants naming a connector Brain does not
    /// know are skipped (logged), never turned into a handle.
    pub async fn mint_for_agent(
        db: &PgPool,
        tenant: TenantId,
        agent_id: Uuid,
    ) -> Result<Vec<Capability>, ToolError> {
        let mut tx = db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT id, connector, actions, approval, max_calls_per_run FROM tool_grants \
             WHERE tenant_id = $1 AND agent_id = $2 ORDER BY connector",
        )
        .bind(tenant.0)
        .bind(agent_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut caps = Vec::with_capacity(rows.len());
        for row in rows {
            match Self::from_row(tenant, agent_id, row) {
                Ok(cap) => caps.push(cap),
                Err(e) => tracing::warn!(%tenant, %agent_id, error = %e, "grant skipped"),
            }
        }
        Ok(caps)
    }

    /// The capability for one connector of an agent; `grant_not_found` when there is no grant.
    pub async fn mint(
        db: &PgPool,
        tenant: TenantId,
        agent_id: Uuid,
        connector: &str,
    ) -> Result<Capability, ToolError> {
        let mut tx = db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT id, connector, actions, approval, max_calls_per_run FROM tool_grants \
             WHERE tenant_id = $1 AND agent_id = $2 AND connector = $3",
        )
        .bind(tenant.0)
        .bind(agent_id)
        .bind(connector)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let row = row.ok_or_else(|| ToolError::GrantNotFound {
            connector: connector.to_owned(),
        })?;
        Self::from_row(tenant, agent_id, row)
    }

    fn from_row(tenant: TenantId, agent_id: Uuid, row: GrantRow) -> Result<Capability, ToolError> {
        let connector = registry::connector(&row.connector)?;
        Ok(Capability {
            grant_id: row.id,
            tenant,
            agent_id,
            connector,
            granted: Granted::from_row(&row.actions),
            approval: Approval::parse(&row.approval),
            max_calls_per_run: row.max_calls_per_run.and_then(|n| u32::try_from(n).ok()),
        })
    }

    /// Re-reads the grant: `grant_revoked` when it is gone or no longer allows `action` with
    /// the same approval policy.
    pub(crate) async fn recheck(&self, db: &PgPool, action: &str) -> Result<(), ToolError> {
        let mut tx = db.begin().await?;
        brain_migrations::set_tenant(&mut tx, self.tenant).await?;
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT id, connector, actions, approval, max_calls_per_run FROM tool_grants \
             WHERE id = $1 AND tenant_id = $2 AND agent_id = $3",
        )
        .bind(self.grant_id)
        .bind(self.tenant.0)
        .bind(self.agent_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let revoked = || ToolError::GrantRevoked {
            connector: self.connector.id.to_owned(),
        };
        let row = row.ok_or_else(revoked)?;
        let still_allowed = row.connector == self.connector.id
            && Granted::from_row(&row.actions).allows(action)
            // A handle minted under "never" must not keep running once approval is required.
            && (Approval::parse(&row.approval) == self.approval || self.approval == Approval::Always);
        if still_allowed {
            Ok(())
        } else {
            Err(revoked())
        }
    }

    pub fn grant_id(&self) -> Uuid {
        self.grant_id
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn agent_id(&self) -> Uuid {
        self.agent_id
    }

    /// The connector id, e.g. `wordpress`.
    pub fn connector(&self) -> &'static str {
        self.connector.id
    }

    pub fn approval(&self) -> Approval {
        self.approval
    }

    pub fn requires_approval(&self) -> bool {
        self.approval == Approval::Always
    }

    /// The per-run call budget of this grant; the runtime counts calls within a run.
    pub fn max_calls_per_run(&self) -> Option<u32> {
        self.max_calls_per_run
    }

    /// Whether this handle covers `action` (as minted; the grant is re-checked on invoke).
    pub fn allows(&self, action: &str) -> bool {
        self.connector.action(action).is_some() && self.granted.allows(action)
    }

    /// One tool per granted action that the connector actually has.
    pub fn tools(&self) -> Vec<ToolSpec> {
        self.connector
            .actions
            .iter()
            .filter(|a| self.granted.allows(a.name))
            .map(|a| ToolSpec {
                name: format!("{}.{}", self.connector.id, a.name),
                connector: self.connector.id,
                action: a.name,
                description: a.description.to_owned(),
                parameters: a.parameters.clone(),
                side_effect: a.side_effect,
                requires_approval: self.requires_approval(),
            })
            .collect()
    }

    pub(crate) fn def(&self) -> &'static ConnectorDef {
        self.connector
    }
}

/// A callable tool: one granted action bound to its capability and the service that runs it.
/// The agent loop holds these as `Arc<dyn Tool>`.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> &ToolSpec;
    /// Runs the tool; side-effecting tools should get an idempotency key so a retried step
    /// never writes twice.
    async fn call(&self, args: Value, idempotency_key: Option<&str>) -> Result<Value, ToolError>;
}

/// The [`Tool`] for one action of a [`Capability`].
pub struct CapabilityTool {
    service: Arc<ConnectorService>,
    capability: Capability,
    spec: ToolSpec,
}

impl CapabilityTool {
    /// Every tool of `capability`, ready for the agent loop.
    pub fn all(service: &Arc<ConnectorService>, capability: &Capability) -> Vec<Arc<dyn Tool>> {
        capability
            .tools()
            .into_iter()
            .map(|spec| {
                Arc::new(CapabilityTool {
                    service: Arc::clone(service),
                    capability: capability.clone(),
                    spec,
                }) as Arc<dyn Tool>
            })
            .collect()
    }

    pub fn capability(&self) -> &Capability {
        &self.capability
    }
}

#[async_trait::async_trait]
impl Tool for CapabilityTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Value, idempotency_key: Option<&str>) -> Result<Value, ToolError> {
        self.service
            .invoke(&self.capability, self.spec.action, args, idempotency_key)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_split_both_ways() {
        assert_eq!(
            split_tool_name("zoho-crm.create_lead"),
            Some(("zoho-crm", "create_lead"))
        );
        assert_eq!(
            split_tool_name("zoho-crm__create_lead"),
            Some(("zoho-crm", "create_lead"))
        );
        assert_eq!(split_tool_name("nope"), None);
        assert_eq!(split_tool_name(".x"), None);
    }
}
