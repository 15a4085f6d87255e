//! Automation rules: a trigger (a connector event, a schedule or a manual start), conditions on
//! the event's fields, and steps (connector actions, agent tasks, approvals) whose arguments
//! are templates over the event and earlier steps' outputs.
//!
//! `model` holds the rule, `validate` its validation, `cron` and `template` the syntax checks and
//! rendering the validation relies on, `condition` the evaluation of conditions against an
//! event, and `store` the tenant-scoped Postgres access.

pub mod condition;
pub mod cron;
pub mod error;
pub mod model;
pub mod store;
pub mod template;
mod validate;

pub use condition::{lookup, matches};
pub use cron::validate_cron;
pub use error::RuleError;
pub use model::{
    AgentTaskStep, ApprovalStep, Condition, ConditionOp, ConnectorActionStep, CrewRunStep, Rule,
    RuleInput, RulePatch, Step, Trigger, TriggerInput, TriggerKind,
};
pub use store::RuleStore;
pub use template::{check_template, render_args, render_text};
