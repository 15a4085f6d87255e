//! The turn policy: whether a model's tool call may run, and whether the agent may call the
//! model at all. Chat turns (`turn.rs`) and durable tasks (the `tasks` workflows) both ask
//! it, so they refuse the same calls with the same [`Refusal`]; each carries out the answer
//! its own way — a chat turn cannot wait for a person, a task parks until one decides.
//!
//! [`ToolGate`] is pure: it sees the rules fixed when the turn or task began and counts the
//! calls of the run. What can change meanwhile (a revoked grant) is re-checked by the
//! capability handle on each call, not here.

use std::collections::{BTreeMap, HashSet};

use brain_auth::{Code, ErrorCode, TenantId};
use serde_json::json;

use crate::conversation::TurnStore;
use crate::error::AgentError;
use crate::providers::{ToolCall, ToolDefinition};
use crate::spec::AgentSpec;
use crate::tool::{ToolError, delegate_target, split_tool_name};

/// Why a call did not run (or did not succeed), as the model and the run's record see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// From the catalogue (`tool_not_granted`, `tool_call_limit`, …).
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// What the model is told instead of the tool's result.
    pub fn fed_back(&self) -> String {
        json!({"error": self.code, "message": self.message}).to_string()
    }
}

impl From<&ToolError> for Refusal {
    fn from(e: &ToolError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// The tool rules of one run, fixed when a chat turn or a task begins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolRules {
    /// Function names offered to the model; nothing else is ever executed.
    pub offered: HashSet<String>,
    /// Calls allowed per run, by [`limit_group`] (`max_calls_per_run` of the grant).
    pub call_limits: BTreeMap<String, u32>,
    /// Function names whose grant wants a person's approval before each call.
    pub approval: HashSet<String>,
}

impl ToolRules {
    /// Rules offering `definitions`, with no limits and no approvals.
    pub fn offering(definitions: &[ToolDefinition]) -> Self {
        Self {
            offered: definitions.iter().map(|d| d.name.clone()).collect(),
            ..Self::default()
        }
    }
}

/// What per-run limits count a call against: its connector, or for a delegation its target
/// (the whole `ask_<slug>` name).
pub fn limit_group(function_name: &str) -> &str {
    if delegate_target(function_name).is_some() {
        function_name
    } else {
        split_tool_name(function_name).0
    }
}

/// A call the gate let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Earlier calls of this run against the same limit group.
    pub prior_calls: u32,
    /// The grant wants a person's approval before the call runs.
    pub needs_approval: bool,
}

/// Decides, call by call, whether a run's tool calls may execute.
#[derive(Clone, Debug)]
pub struct ToolGate {
    rules: ToolRules,
    used: BTreeMap<String, u32>,
}

impl ToolGate {
    pub fn new(rules: ToolRules) -> Self {
        Self {
            rules,
            used: BTreeMap::new(),
        }
    }

    /// Checks one call, in order: offered at all, arguments an object, the run's limit for
    /// its group (an admitted call counts, whether or not a person then approves it).
    pub fn admit(&mut self, call: &ToolCall) -> Result<Admitted, ToolError> {
        // Enforcement lives here, not in the prompt: a tool the agent holds no handle for
        // is never executed, whatever the model asks.
        if !self.rules.offered.contains(&call.name) {
            return Err(ToolError::NotGranted(call.name.clone()));
        }
        if !call.arguments.is_object() {
            return Err(ToolError::InvalidArguments(
                "arguments must be a JSON object".into(),
            ));
        }
        let group = limit_group(&call.name);
        let used = self.used.entry(group.to_owned()).or_insert(0);
        *used = used.saturating_add(1);
        if let Some(max) = self.rules.call_limits.get(group)
            && *used > *max
        {
            return Err(ToolError::CallLimit(group.to_owned()));
        }
        Ok(Admitted {
            prior_calls: *used - 1,
            needs_approval: self.rules.approval.contains(&call.name),
        })
    }
}

/// The budget policy every model call obeys, in chat turns and in durable-task model steps
/// alike: the agent's own daily budget, then the tenant's (all agents together).
pub async fn check_budgets(
    store: &dyn TurnStore,
    tenant: TenantId,
    agent: &AgentSpec,
) -> Result<(), AgentError> {
    if let Some(max) = agent.budget.max_tokens_per_day
        && store.tokens_used_today(tenant, agent.id).await? >= max
    {
        return Err(AgentError::BudgetExhausted);
    }
    if store.tenant_budget_spent(tenant).await? {
        return Err(AgentError::TenantBudgetExhausted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: serde_json::Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments,
        }
    }

    fn gate() -> ToolGate {
        ToolGate::new(ToolRules {
            offered: ["crm__create", "crm__update", "ask_writer", "blog__post"]
                .map(str::to_owned)
                .into(),
            call_limits: [("crm".to_owned(), 2), ("ask_writer".to_owned(), 1)].into(),
            approval: ["blog__post".to_owned()].into(),
        })
    }

    #[test]
    fn limits_count_per_connector_and_per_delegation_target() {
        let mut gate = gate();
        let args = json!({});
        assert_eq!(
            gate.admit(&call("crm__create", args.clone())),
            Ok(Admitted {
                prior_calls: 0,
                needs_approval: false
            })
        );
        assert_eq!(
            gate.admit(&call("crm__update", args.clone()))
                .map(|a| a.prior_calls),
            Ok(1)
        );
        assert_eq!(
            gate.admit(&call("crm__create", args.clone())),
            Err(ToolError::CallLimit("crm".into()))
        );
        assert!(gate.admit(&call("ask_writer", args.clone())).is_ok());
        assert_eq!(
            gate.admit(&call("ask_writer", args.clone())),
            Err(ToolError::CallLimit("ask_writer".into()))
        );
        assert_eq!(
            gate.admit(&call("blog__post", args)),
            Ok(Admitted {
                prior_calls: 0,
                needs_approval: true
            })
        );
    }

    #[test]
    fn unoffered_tools_and_non_object_arguments_are_refused_before_counting() {
        let mut gate = gate();
        let refused = gate.admit(&call("shop__delete", json!({}))).unwrap_err();
        assert_eq!(Refusal::from(&refused).code, Code::ToolNotGranted);
        let refused = gate.admit(&call("crm__create", json!("x"))).unwrap_err();
        assert_eq!(Refusal::from(&refused).code, Code::InvalidArguments);
        // Neither counted against the connector's limit of two.
        assert!(gate.admit(&call("crm__create", json!({}))).is_ok());
        assert!(gate.admit(&call("crm__create", json!({}))).is_ok());
    }

    #[test]
    fn a_refusal_is_fed_back_as_an_error_object() {
        let fed: serde_json::Value =
            serde_json::from_str(&Refusal::new(Code::Rejected, "no").fed_back()).unwrap();
        assert_eq!(fed, json!({"error": "rejected", "message": "no"}));
    }
}
