//! The rule as the API and the store see it; its validation is in `validate.rs`.

use brain_auth::{FieldError, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use uuid::Uuid;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_CONDITIONS: usize = 20;
pub const MAX_STEPS: usize = 20;

/// The trigger event of a rule that runs on a cron schedule.
pub const SCHEDULE_EVENT: &str = "schedule";
/// The trigger event of a rule that runs only when started by hand.
pub const MANUAL_EVENT: &str = "manual";

fn yes() -> bool {
    true
}

/// `Role` as OpenAPI sees it: `brain_types` stays serde-only, so its names are listed here.
fn role_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Role::ALL.iter().map(|r| r.as_str())))
        .build()
}

/// A rule as written by a client (create), before it has an id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// At most 200 characters.
    pub name: String,
    /// A disabled rule neither fires on events nor runs on its schedule (default `true`).
    #[serde(default = "yes")]
    pub enabled: bool,
    pub trigger: TriggerInput,
    /// Run in order, at most 20.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// A partial update: each field present replaces the rule's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
}

impl RulePatch {
    /// `rule` with this patch's fields replaced; the result still needs [`RuleInput::validate`].
    pub fn apply(self, rule: RuleInput) -> RuleInput {
        RuleInput {
            name: self.name.unwrap_or(rule.name),
            enabled: self.enabled.unwrap_or(rule.enabled),
            trigger: self.trigger.unwrap_or(rule.trigger),
            steps: self.steps.unwrap_or(rule.steps),
        }
    }
}

/// What starts a rule, as a client writes it: a connector event (`hubspot.contact.updated`),
/// `schedule` with a cron expression, or `manual`; and the conditions the event must meet.
/// [`RuleInput::validate`] checks it; a stored rule holds the typed [`Trigger`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Trigger)]
pub struct TriggerInput {
    /// `{connector}.{event}`, `schedule` or `manual`.
    pub event: String,
    /// Five-field cron expression or `@` macro; required by, and only allowed for, `schedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA zone the cron expression is read in; Temporal's default (UTC) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A stored rule's trigger: only a schedule has a cron expression and a zone, only a
/// connector event names a connector. Written and read in [`TriggerInput`]'s shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "TriggerInput", try_from = "TriggerInput")]
pub struct Trigger {
    pub kind: TriggerKind,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    /// `{connector}.{name}`, delivered by the connector's webhooks.
    Event { connector: String, name: String },
    /// Runs on a cron schedule, read in `timezone` (Temporal's default, UTC, when `None`).
    Schedule {
        cron: String,
        timezone: Option<String>,
    },
    /// Runs only when started by hand (`POST /v1/integrations/rules/{id}/run`).
    Manual,
}

impl Trigger {
    pub fn is_schedule(&self) -> bool {
        matches!(self.kind, TriggerKind::Schedule { .. })
    }

    pub fn is_manual(&self) -> bool {
        self.kind == TriggerKind::Manual
    }

    /// The connector whose event this is (`hubspot` for `hubspot.contact.updated`); `None` for
    /// schedule and manual triggers.
    pub fn connector(&self) -> Option<&str> {
        match &self.kind {
            TriggerKind::Event { connector, .. } => Some(connector),
            _ => None,
        }
    }

    /// The event as clients write it: `hubspot.contact.updated`, `schedule` or `manual`.
    pub fn event(&self) -> String {
        match &self.kind {
            TriggerKind::Event { connector, name } => format!("{connector}.{name}"),
            TriggerKind::Schedule { .. } => SCHEDULE_EVENT.to_owned(),
            TriggerKind::Manual => MANUAL_EVENT.to_owned(),
        }
    }
}

/// The shape checks of a trigger (the rest — known connector, cron syntax, zone name, the
/// conditions — is [`RuleInput::validate`]'s); the error names the field.
impl TryFrom<TriggerInput> for Trigger {
    type Error = FieldError;

    fn try_from(input: TriggerInput) -> Result<Self, FieldError> {
        let TriggerInput {
            event,
            cron,
            timezone,
            conditions,
        } = input;
        let kind = match (event.as_str(), cron) {
            (SCHEDULE_EVENT, Some(cron)) => TriggerKind::Schedule { cron, timezone },
            (SCHEDULE_EVENT, None) => {
                return Err(FieldError::new(
                    "trigger.cron",
                    "a schedule trigger needs a cron expression",
                ));
            }
            (_, Some(_)) => {
                return Err(FieldError::new(
                    "trigger.cron",
                    "only a `schedule` trigger takes a cron expression",
                ));
            }
            _ if timezone.is_some() => {
                return Err(FieldError::new(
                    "trigger.timezone",
                    "only a `schedule` trigger takes a timezone",
                ));
            }
            (MANUAL_EVENT, None) => TriggerKind::Manual,
            (event, None) => match event.split_once('.') {
                Some((connector, name)) if !connector.is_empty() && !name.is_empty() => {
                    TriggerKind::Event {
                        connector: connector.to_owned(),
                        name: name.to_owned(),
                    }
                }
                _ => {
                    return Err(FieldError::new(
                        "trigger.event",
                        format!(
                            "`{event}` is not `schedule`, `manual` or `<connector>.<event>` \
                             (e.g. `hubspot.contact.updated`)"
                        ),
                    ));
                }
            },
        };
        Ok(Trigger { kind, conditions })
    }
}

impl From<Trigger> for TriggerInput {
    fn from(trigger: Trigger) -> Self {
        let event = trigger.event();
        let (cron, timezone) = match trigger.kind {
            TriggerKind::Schedule { cron, timezone } => (Some(cron), timezone),
            _ => (None, None),
        };
        TriggerInput {
            event,
            cron,
            timezone,
            conditions: trigger.conditions,
        }
    }
}

/// A test on one field of the event, e.g. `properties.lead_score gt 50`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Dotted path into the event; numeric segments index arrays.
    pub field: String,
    pub op: ConditionOp,
    /// What the field is compared with; absent for `exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// How the field compares with `value`; `exists` takes no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    Exists,
}

impl ConditionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionOp::Eq => "eq",
            ConditionOp::Ne => "ne",
            ConditionOp::Gt => "gt",
            ConditionOp::Gte => "gte",
            ConditionOp::Lt => "lt",
            ConditionOp::Lte => "lte",
            ConditionOp::Contains => "contains",
            ConditionOp::Exists => "exists",
        }
    }

    pub(super) fn is_ordering(self) -> bool {
        matches!(
            self,
            ConditionOp::Gt | ConditionOp::Gte | ConditionOp::Lt | ConditionOp::Lte
        )
    }
}

/// One step of a rule. Externally tagged: `{"connector_action": {..}}`, `{"agent_task": {..}}`,
/// `{"approval": {"role": "admin"}}`; each inner struct refuses unknown fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ConnectorAction(ConnectorActionStep),
    AgentTask(AgentTaskStep),
    Approval(ApprovalStep),
    /// Runs a crew (as a child task); `input` is a template rendered to text.
    CrewRun(CrewRunStep),
}

/// Starts a run of a crew of the same tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrewRunStep {
    pub crew_id: Uuid,
    pub input: String,
}

/// Runs a connector action with templated arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorActionStep {
    pub connector: String,
    pub action: String,
    /// A JSON object; its strings are templates (see [`super::template`]).
    #[serde(default = "empty_object")]
    pub args: Value,
}

/// Gives an agent a task; `input` is a template rendered to text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentTaskStep {
    pub agent_id: Uuid,
    pub input: String,
}

/// Waits until a member holding `role` approves (how roles rank is up to the approver check).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    #[schema(schema_with = role_schema)]
    pub role: Role,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Step {
    /// The step's key in JSON, used in error paths (`steps.1.connector_action.action`).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::ConnectorAction(_) => "connector_action",
            Step::AgentTask(_) => "agent_task",
            Step::Approval(_) => "approval",
            Step::CrewRun(_) => "crew_run",
        }
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
    #[schema(value_type = TriggerInput)]
    pub trigger: Trigger,
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Rule> for RuleInput {
    fn from(rule: Rule) -> Self {
        RuleInput {
            name: rule.name,
            enabled: rule.enabled,
            trigger: rule.trigger.into(),
            steps: rule.steps,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::RuleError;

    pub(crate) fn spec_rule() -> Value {
        json!({
            "name": "Hot lead follow-up",
            "trigger": {
                "event": "hubspot.contact.updated",
                "conditions": [{"field": "properties.lead_score", "op": "gt", "value": 50}]
            },
            "steps": [
                {"connector_action": {
                    "connector": "slack",
                    "action": "post_message",
                    "args": {"channel": "C0123456789", "text": "Hot lead: {{ event.email }}"}
                }},
                {"agent_task": {
                    "agent_id": "0193a5b0-0000-7000-8000-000000000001",
                    "input": "Draft a follow-up for {{ event.email }} using {{ steps.0.output }}"
                }},
                {"approval": {"role": "admin"}}
            ]
        })
    }

    pub(crate) fn parse(value: Value) -> RuleInput {
        serde_json::from_value(value).unwrap()
    }

    fn field_of(input: &RuleInput) -> String {
        match input.validate() {
            Err(RuleError::Validation(e)) => e.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    /// `spec_rule()` with `edit` applied, then validated: the field the error names.
    pub(crate) fn invalid_field(edit: impl FnOnce(&mut Value)) -> String {
        let mut value = spec_rule();
        edit(&mut value);
        field_of(&parse(value))
    }

    #[test]
    fn parses_the_spec_shape_and_serialises_it_back() {
        let input = parse(spec_rule());
        assert!(input.enabled, "enabled defaults to true");
        assert_eq!(input.trigger.conditions[0].op, ConditionOp::Gt);
        assert_eq!(
            input.steps[2],
            Step::Approval(ApprovalStep { role: Role::Admin })
        );
        let Step::ConnectorAction(action) = &input.steps[0] else {
            panic!("{:?}", input.steps[0]);
        };
        assert_eq!(
            (action.connector.as_str(), action.action.as_str()),
            ("slack", "post_message")
        );
        assert_eq!(input.validate().map_err(|e| e.to_string()), Ok(()));

        let back = serde_json::to_value(&input).unwrap();
        assert_eq!(back["steps"][2], json!({"approval": {"role": "admin"}}));
        assert_eq!(back["steps"][0]["connector_action"]["connector"], "slack");
        assert_eq!(back["enabled"], true);
        assert!(back["trigger"].get("cron").is_none());
        assert_eq!(parse(back), input);
    }

    #[test]
    fn defaults_fill_in_omitted_fields() {
        let input = parse(json!({
            "name": "n",
            "trigger": {"event": "manual"},
        }));
        assert!(input.enabled);
        assert!(input.steps.is_empty());
        assert!(input.trigger.conditions.is_empty());
        let step: Step = serde_json::from_value(
            json!({"connector_action": {"connector": "slack", "action": "post_message"}}),
        )
        .unwrap();
        let Step::ConnectorAction(step) = step else {
            panic!("{step:?}");
        };
        assert_eq!(step.args, json!({}));
        let exists: Condition =
            serde_json::from_value(json!({"field": "email", "op": "exists"})).unwrap();
        assert_eq!(exists.value, None);
        assert_eq!(
            serde_json::to_value(&exists).unwrap(),
            json!({"field": "email", "op": "exists"})
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let refused = [
            json!({"name": "n", "trigger": {"event": "manual"}, "extra": 1}),
            json!({"name": "n", "trigger": {"event": "manual", "cronn": "* * * * *"}}),
            json!({"name": "n", "trigger": {"event": "manual",
                "conditions": [{"field": "a", "op": "gt", "value": 1, "x": 2}]}}),
            json!({"name": "n", "trigger": {"event": "manual",
                "conditions": [{"field": "a", "op": "greater", "value": 1}]}}),
            json!({"name": "n", "trigger": {"event": "manual"},
                "steps": [{"connector_action": {"connector": "slack", "action": "x", "argz": {}}}]}),
            json!({"name": "n", "trigger": {"event": "manual"},
                "steps": [{"agent_task": {"agent_id": "0193a5b0-0000-7000-8000-000000000001",
                    "input": "x", "model": "y"}}]}),
            json!({"name": "n", "trigger": {"event": "manual"},
                "steps": [{"approval": {"role": "admin", "timeout": 5}}]}),
            json!({"name": "n", "trigger": {"event": "manual"},
                "steps": [{"approval": {"role": "superuser"}}]}),
            json!({"name": "n", "trigger": {"event": "manual"}, "steps": [{"webhook": {}}]}),
            json!({"name": "n", "trigger": {"event": "manual"},
                "steps": [{"approval": {"role": "admin"}, "agent_task": {}}]}),
        ];
        for value in refused {
            assert!(
                serde_json::from_value::<RuleInput>(value.clone()).is_err(),
                "accepted {value}"
            );
        }
        assert!(serde_json::from_value::<RulePatch>(json!({"nmae": "x"})).is_err());
    }

    #[test]
    fn patches_replace_only_the_fields_they_carry() {
        let rule = parse(spec_rule());
        let patch: RulePatch =
            serde_json::from_value(json!({"enabled": false, "name": "Renamed"})).unwrap();
        let patched = patch.apply(rule.clone());
        assert_eq!(patched.name, "Renamed");
        assert!(!patched.enabled);
        assert_eq!(
            (patched.trigger.clone(), patched.steps.clone()),
            (rule.trigger.clone(), rule.steps.clone())
        );
        assert_eq!(RulePatch::default().apply(rule.clone()), rule);
    }

    #[test]
    fn accepts_schedules_and_the_various_event_names() {
        for event in [
            "shopify.orders/create",
            "stripe.payment_intent.succeeded",
            "hubspot.contact.propertyChange",
            "woocommerce.order.created",
            "zoho-crm.Leads.create",
            "manual",
        ] {
            let input = parse(json!({"name": "n", "trigger": {"event": event},
                "steps": [{"approval": {"role": "editor"}}]}));
            assert_eq!(
                input.validate().map_err(|e| e.to_string()),
                Ok(()),
                "{event}"
            );
        }
        let scheduled = parse(json!({"name": "Weekly report",
            "trigger": {"event": "schedule", "cron": "0 8 * * MON", "timezone": "America/Argentina/Buenos_Aires"},
            "steps": [{"approval": {"role": "viewer"}}]}));
        assert_eq!(scheduled.validate().map_err(|e| e.to_string()), Ok(()));
        let typed = Trigger::try_from(scheduled.trigger.clone()).unwrap();
        assert_eq!(
            typed.kind,
            TriggerKind::Schedule {
                cron: "0 8 * * MON".into(),
                timezone: Some("America/Argentina/Buenos_Aires".into())
            }
        );
        assert!(typed.is_schedule() && !typed.is_manual());
        assert_eq!(typed.connector(), None);
        // Stored and answered in the shape it was written in.
        assert_eq!(TriggerInput::from(typed), scheduled.trigger);
        let event = Trigger::try_from(parse(spec_rule()).trigger).unwrap();
        assert_eq!(event.connector(), Some("hubspot"));
        assert_eq!(event.event(), "hubspot.contact.updated");
        let manual: Trigger = serde_json::from_value(json!({"event": "manual"})).unwrap();
        assert!(manual.is_manual());
        // What the type cannot hold does not load.
        for (bad, field) in [
            (json!({"event": "schedule"}), "trigger.cron"),
            (
                json!({"event": "manual", "cron": "* * * * *"}),
                "trigger.cron",
            ),
            (
                json!({"event": "hubspot.x", "timezone": "UTC"}),
                "trigger.timezone",
            ),
            (json!({"event": "hubspot"}), "trigger.event"),
        ] {
            let error = serde_json::from_value::<Trigger>(bad)
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{error}");
        }
    }
}
