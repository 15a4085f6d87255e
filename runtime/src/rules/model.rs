//! The rule as the API and the store see it, and its validation.

use brain_auth::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::condition::numeric;
use super::cron::validate_cron;
use super::error::RuleError;
use super::template::{CONTEXT_ROOTS, check_template, is_template, unknown_variables};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_CONDITIONS: usize = 20;
pub const MAX_STEPS: usize = 20;
const MAX_EVENT_CHARS: usize = 200;
const MAX_FIELD_CHARS: usize = 256;
const MAX_TIMEZONE_CHARS: usize = 64;

/// The trigger event of a rule that runs on a cron schedule.
pub const SCHEDULE_EVENT: &str = "schedule";
/// The trigger event of a rule that runs only when started by hand.
pub const MANUAL_EVENT: &str = "manual";

fn yes() -> bool {
    true
}

/// A rule as written by a client (create), before it has an id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub trigger: Trigger,
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// A partial update: each field present replaces the rule's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
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

/// What starts a rule: a connector event (`hubspot.contact.updated`), `schedule` with a cron
/// expression, or `manual`; and the conditions the event must meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA zone the cron expression is read in; Temporal's default (UTC) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl Trigger {
    pub fn is_schedule(&self) -> bool {
        self.event == SCHEDULE_EVENT
    }

    pub fn is_manual(&self) -> bool {
        self.event == MANUAL_EVENT
    }

    /// The connector whose event this is (`hubspot` for `hubspot.contact.updated`); `None` for
    /// schedule and manual triggers.
    pub fn connector(&self) -> Option<&str> {
        if self.is_schedule() || self.is_manual() {
            return None;
        }
        self.event.split_once('.').map(|(connector, _)| connector)
    }
}

/// A test on one field of the event, e.g. `properties.lead_score gt 50`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Dotted path into the event; numeric segments index arrays.
    pub field: String,
    pub op: ConditionOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    fn is_ordering(self) -> bool {
        matches!(
            self,
            ConditionOp::Gt | ConditionOp::Gte | ConditionOp::Lt | ConditionOp::Lte
        )
    }
}

/// One step of a rule. Externally tagged: `{"connector_action": {..}}`, `{"agent_task": {..}}`,
/// `{"approval": {"role": "admin"}}`; each inner struct refuses unknown fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ConnectorAction(ConnectorActionStep),
    AgentTask(AgentTaskStep),
    Approval(ApprovalStep),
    /// Runs a crew (as a child task); `input` is a template rendered to text.
    CrewRun(CrewRunStep),
}

/// Starts a run of a crew of the same tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewRunStep {
    pub crew_id: Uuid,
    pub input: String,
}

/// Runs a connector action with templated arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorActionStep {
    pub connector: String,
    pub action: String,
    /// A JSON object; its strings are templates (see [`super::template`]).
    #[serde(default = "empty_object")]
    pub args: Value,
}

/// Gives an agent a task; `input` is a template rendered to text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTaskStep {
    pub agent_id: Uuid,
    pub input: String,
}

/// Waits until a member holding `role` approves (how roles rank is up to the approver check).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
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
            trigger: rule.trigger,
            steps: rule.steps,
        }
    }
}

impl RuleInput {
    /// Checks everything that can be checked without the database (agents are checked by the
    /// store). The error names the first offending field.
    pub fn validate(&self) -> Result<(), RuleError> {
        validate_name(&self.name)?;
        validate_trigger(&self.trigger)?;
        validate_steps(&self.steps)
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError::validation(field, message)
}

fn validate_name(name: &str) -> Result<(), RuleError> {
    if name.trim().is_empty() {
        return Err(invalid("name", "must not be blank"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

fn validate_trigger(trigger: &Trigger) -> Result<(), RuleError> {
    validate_event(&trigger.event)?;
    if trigger.is_schedule() {
        let cron = trigger
            .cron
            .as_deref()
            .ok_or_else(|| invalid("trigger.cron", "a schedule trigger needs a cron expression"))?;
        validate_cron(cron).map_err(|why| invalid("trigger.cron", why))?;
        if let Some(tz) = &trigger.timezone {
            validate_timezone(tz)?;
        }
    } else {
        if trigger.cron.is_some() {
            return Err(invalid(
                "trigger.cron",
                "only a `schedule` trigger takes a cron expression",
            ));
        }
        if trigger.timezone.is_some() {
            return Err(invalid(
                "trigger.timezone",
                "only a `schedule` trigger takes a timezone",
            ));
        }
    }
    if trigger.conditions.len() > MAX_CONDITIONS {
        return Err(invalid(
            "trigger.conditions",
            format!("at most {MAX_CONDITIONS} conditions"),
        ));
    }
    for (i, condition) in trigger.conditions.iter().enumerate() {
        validate_condition(&format!("trigger.conditions.{i}"), condition)?;
    }
    Ok(())
}

fn validate_event(event: &str) -> Result<(), RuleError> {
    if event == SCHEDULE_EVENT || event == MANUAL_EVENT {
        return Ok(());
    }
    let field = "trigger.event";
    let Some((connector, name)) = event.split_once('.') else {
        return Err(invalid(
            field,
            format!(
                "`{event}` is not `schedule`, `manual` or `<connector>.<event>` \
                 (e.g. `hubspot.contact.updated`)"
            ),
        ));
    };
    if brain_tools::registry::connector(connector).is_err() {
        return Err(invalid(field, format!("unknown connector `{connector}`")));
    }
    if name.is_empty() {
        return Err(invalid(
            field,
            "the event name after the connector is empty",
        ));
    }
    if event.chars().count() > MAX_EVENT_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_EVENT_CHARS} characters"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')))
    {
        return Err(invalid(
            field,
            format!("the event name may not contain `{bad}` (letters, digits, `_ . / -`)"),
        ));
    }
    Ok(())
}

/// A plausible IANA zone name; Temporal checks that the zone really exists.
fn validate_timezone(tz: &str) -> Result<(), RuleError> {
    let plausible = (1..=MAX_TIMEZONE_CHARS).contains(&tz.len())
        && tz.starts_with(|c: char| c.is_ascii_alphabetic())
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if plausible {
        Ok(())
    } else {
        Err(invalid(
            "trigger.timezone",
            format!("`{tz}` is not an IANA time zone name such as `Europe/Berlin`"),
        ))
    }
}

fn validate_condition(at: &str, condition: &Condition) -> Result<(), RuleError> {
    validate_field_path(&format!("{at}.field"), &condition.field)?;
    let value_field = format!("{at}.value");
    let op = condition.op;
    match (&condition.value, op) {
        (None | Some(Value::Bool(_)), ConditionOp::Exists) => Ok(()),
        (Some(_), ConditionOp::Exists) => Err(invalid(
            value_field,
            "`exists` takes no value, or `true`/`false`",
        )),
        (None, _) => Err(invalid(
            value_field,
            format!("`{}` needs a value", op.as_str()),
        )),
        (Some(value), _) if op.is_ordering() && numeric(value).is_none() => Err(invalid(
            value_field,
            format!("`{}` needs a number or a numeric string", op.as_str()),
        )),
        (Some(_), _) => Ok(()),
    }
}

fn validate_field_path(field: &str, path: &str) -> Result<(), RuleError> {
    if path.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if path.len() > MAX_FIELD_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_FIELD_CHARS} characters"),
        ));
    }
    let well_formed = path.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    });
    if well_formed {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "`{path}` is not a dotted path of names (letters, digits, `_`, `-`) such as \
                 `properties.lead_score` or `line_items.0.sku`"
            ),
        ))
    }
}

fn validate_steps(steps: &[Step]) -> Result<(), RuleError> {
    if steps.is_empty() {
        return Err(invalid("steps", "a rule needs at least one step"));
    }
    if steps.len() > MAX_STEPS {
        return Err(invalid("steps", format!("at most {MAX_STEPS} steps")));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = format!("steps.{i}.{}", step.kind());
        match step {
            Step::ConnectorAction(step) => validate_connector_action(&at, step)?,
            Step::AgentTask(AgentTaskStep { input, .. })
            | Step::CrewRun(CrewRunStep { input, .. }) => {
                if input.trim().is_empty() {
                    return Err(invalid(format!("{at}.input"), "must not be empty"));
                }
                validate_templates(&format!("{at}.input"), &Value::String(input.clone()))?;
            }
            // Any role will do; who may approve is checked when the approval comes in.
            Step::Approval(_) => {}
        }
    }
    Ok(())
}

fn validate_connector_action(at: &str, step: &ConnectorActionStep) -> Result<(), RuleError> {
    let ConnectorActionStep {
        connector,
        action,
        args,
    } = step;
    let def = brain_tools::registry::connector(connector).map_err(|_| {
        invalid(
            format!("{at}.connector"),
            format!("unknown connector `{connector}`"),
        )
    })?;
    let action_def = def.action(action).ok_or_else(|| {
        invalid(
            format!("{at}.action"),
            format!("connector `{connector}` has no action `{action}`"),
        )
    })?;
    let args_field = format!("{at}.args");
    let Value::Object(given) = args else {
        return Err(invalid(args_field, "must be a JSON object"));
    };
    // Only the top-level keys can be checked before rendering: a templated string may become
    // a number or an object, so the full schema is applied when the step runs.
    let schema = &action_def.parameters;
    let required = schema.get("required").and_then(Value::as_array);
    if let Some(missing) = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|key| !given.contains_key(*key))
    {
        return Err(invalid(
            args_field,
            format!("`{connector}.{action}` needs the argument `{missing}`"),
        ));
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        let known = schema.get("properties").and_then(Value::as_object);
        if let Some(extra) = given
            .keys()
            .find(|key| !known.is_some_and(|k| k.contains_key(*key)))
        {
            return Err(invalid(
                format!("{args_field}.{extra}"),
                format!("`{connector}.{action}` has no argument `{extra}`"),
            ));
        }
    }
    validate_templates(&args_field, args)
}

/// Every template string in `value` must compile and read only the rule context.
fn validate_templates(at: &str, value: &Value) -> Result<(), RuleError> {
    match value {
        Value::String(s) if is_template(s) => {
            check_template(s).map_err(|why| invalid(at, why))?;
            let unknown = unknown_variables(s).map_err(|why| invalid(at, why))?;
            if let Some(name) = unknown.first() {
                return Err(invalid(
                    at,
                    format!(
                        "unknown variable `{name}` (templates can use {})",
                        CONTEXT_ROOTS.join(", ")
                    ),
                ));
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| validate_templates(&format!("{at}.{i}"), item)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| validate_templates(&format!("{at}.{k}"), v)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec_rule() -> Value {
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

    fn parse(value: Value) -> RuleInput {
        serde_json::from_value(value).unwrap()
    }

    fn field_of(input: &RuleInput) -> String {
        match input.validate() {
            Err(RuleError::Validation(e)) => e.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    /// `spec_rule()` with `edit` applied, then validated: the field the error names.
    fn invalid_field(edit: impl FnOnce(&mut Value)) -> String {
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
        assert!(scheduled.trigger.is_schedule());
        assert!(!scheduled.trigger.is_manual());
        assert_eq!(scheduled.trigger.connector(), None);
        assert_eq!(scheduled.validate().map_err(|e| e.to_string()), Ok(()));
        assert_eq!(parse(spec_rule()).trigger.connector(), Some("hubspot"));
    }

    type Edit = Box<dyn FnOnce(&mut Value)>;

    #[test]
    fn validation_names_the_offending_field() {
        let cases: Vec<(&str, Edit)> = vec![
            ("name", Box::new(|v| v["name"] = json!("   "))),
            ("name", Box::new(|v| v["name"] = json!("x".repeat(201)))),
            (
                "trigger.event",
                Box::new(|v| v["trigger"]["event"] = json!("webhook")),
            ),
            (
                "trigger.event",
                Box::new(|v| v["trigger"]["event"] = json!("myspace.post.created")),
            ),
            (
                "trigger.event",
                Box::new(|v| v["trigger"]["event"] = json!("shopify.")),
            ),
            (
                "trigger.event",
                Box::new(|v| v["trigger"]["event"] = json!("shopify.orders create")),
            ),
            (
                "trigger.event",
                Box::new(|v| v["trigger"]["event"] = json!("Schedule")),
            ),
            (
                "trigger.cron",
                Box::new(|v| v["trigger"]["event"] = json!("schedule")),
            ),
            (
                "trigger.cron",
                Box::new(|v| {
                    v["trigger"]["event"] = json!("schedule");
                    v["trigger"]["cron"] = json!("0 24 * * *");
                }),
            ),
            (
                "trigger.timezone",
                Box::new(|v| {
                    v["trigger"]["event"] = json!("schedule");
                    v["trigger"]["cron"] = json!("@daily");
                    v["trigger"]["timezone"] = json!("Europe/Berlin; DROP");
                }),
            ),
            (
                "trigger.cron",
                Box::new(|v| v["trigger"]["cron"] = json!("@daily")),
            ),
            (
                "trigger.timezone",
                Box::new(|v| v["trigger"]["timezone"] = json!("UTC")),
            ),
            (
                "trigger.conditions",
                Box::new(|v| {
                    v["trigger"]["conditions"] =
                        json!(vec![json!({"field": "a", "op": "exists"}); 21]);
                }),
            ),
            (
                "trigger.conditions.0.field",
                Box::new(|v| v["trigger"]["conditions"][0]["field"] = json!("")),
            ),
            (
                "trigger.conditions.0.field",
                Box::new(|v| v["trigger"]["conditions"][0]["field"] = json!("a..b")),
            ),
            (
                "trigger.conditions.0.field",
                Box::new(|v| v["trigger"]["conditions"][0]["field"] = json!("a b")),
            ),
            (
                "trigger.conditions.0.value",
                Box::new(|v| v["trigger"]["conditions"][0]["value"] = json!("lots")),
            ),
            (
                "trigger.conditions.0.value",
                Box::new(|v| v["trigger"]["conditions"][0]["value"] = json!(null)),
            ),
            (
                "trigger.conditions.0.value",
                Box::new(|v| {
                    v["trigger"]["conditions"][0] = json!({"field": "a", "op": "eq"});
                }),
            ),
            (
                "trigger.conditions.0.value",
                Box::new(|v| {
                    v["trigger"]["conditions"][0] =
                        json!({"field": "a", "op": "exists", "value": 1});
                }),
            ),
            ("steps", Box::new(|v| v["steps"] = json!([]))),
            (
                "steps",
                Box::new(|v| v["steps"] = json!(vec![json!({"approval": {"role": "admin"}}); 21])),
            ),
            (
                "steps.0.connector_action.connector",
                Box::new(|v| v["steps"][0]["connector_action"]["connector"] = json!("myspace")),
            ),
            (
                "steps.0.connector_action.action",
                Box::new(|v| v["steps"][0]["connector_action"]["action"] = json!("send_fax")),
            ),
            (
                "steps.0.connector_action.args",
                Box::new(|v| v["steps"][0]["connector_action"]["args"] = json!(["#sales"])),
            ),
            (
                "steps.0.connector_action.args",
                Box::new(|v| {
                    v["steps"][0]["connector_action"]["args"] = json!({"channel": "C0123456789"})
                }),
            ),
            (
                "steps.0.connector_action.args.colour",
                Box::new(|v| v["steps"][0]["connector_action"]["args"]["colour"] = json!("red")),
            ),
            (
                "steps.0.connector_action.args.text",
                Box::new(|v| {
                    v["steps"][0]["connector_action"]["args"]["text"] = json!("{{ event.email")
                }),
            ),
            (
                "steps.0.connector_action.args.text",
                Box::new(|v| {
                    v["steps"][0]["connector_action"]["args"]["text"] = json!("{{ evnt.email }}")
                }),
            ),
            (
                "steps.1.agent_task.input",
                Box::new(|v| v["steps"][1]["agent_task"]["input"] = json!(" ")),
            ),
            (
                "steps.1.agent_task.input",
                Box::new(|v| v["steps"][1]["agent_task"]["input"] = json!("{% if %}")),
            ),
        ];
        for (expected, edit) in cases {
            assert_eq!(invalid_field(edit), expected);
        }
    }

    #[test]
    fn validation_messages_explain() {
        let mut value = spec_rule();
        value["trigger"]["event"] = json!("schedule");
        value["trigger"]["cron"] = json!("0 24 * * *");
        let err = parse(value).validate().unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert_eq!(
            err.to_string(),
            "invalid `trigger.cron`: hour: 24 is out of range 0-23"
        );

        let mut value = spec_rule();
        value["steps"][0]["connector_action"]["action"] = json!("send_fax");
        assert_eq!(
            parse(value).validate().unwrap_err().to_string(),
            "invalid `steps.0.connector_action.action`: connector `slack` has no action `send_fax`"
        );
    }
}
