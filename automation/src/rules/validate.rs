//! Everything about a rule that can be checked without the database (agents and crews are
//! checked by the store); each error names the first offending field.

use serde_json::Value;

use super::condition::numeric;
use super::cron::validate_cron;
use super::error::RuleError;
use super::model::{
    AgentTaskStep, Condition, ConditionOp, ConnectorActionStep, CrewRunStep, MANUAL_EVENT,
    MAX_CONDITIONS, MAX_NAME_CHARS, MAX_STEPS, RuleInput, SCHEDULE_EVENT, Step, Trigger,
    TriggerInput, TriggerKind,
};
use super::template::{CONTEXT_ROOTS, check_template, is_template, unknown_variables};

const MAX_EVENT_CHARS: usize = 200;
const MAX_FIELD_CHARS: usize = 256;
const MAX_TIMEZONE_CHARS: usize = 64;

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

fn validate_trigger(trigger: &TriggerInput) -> Result<(), RuleError> {
    validate_event(&trigger.event)?;
    let typed = Trigger::try_from(trigger.clone()).map_err(RuleError::Validation)?;
    if let TriggerKind::Schedule { cron, timezone } = &typed.kind {
        validate_cron(cron).map_err(|why| invalid("trigger.cron", why))?;
        if let Some(tz) = timezone {
            validate_timezone(tz)?;
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
    use brain_auth::{Code, ErrorCode};
    use serde_json::{Value, json};

    use super::super::model::tests::{invalid_field, parse, spec_rule};

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
        assert_eq!(err.code(), Code::ValidationFailed);
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
