//! Rendering of step arguments: strings in a step's JSON are minijinja templates over the
//! triggering event, earlier steps' outputs and the rule (`{{ event.email }}`,
//! `{{ steps.0.output.summary }}`, `{{ rule.name }}`).
//!
//! A string that is exactly one `{{ expression }}` keeps the expression's JSON type, so
//! `"{{ event.total }}"` passes a number on and `"{{ steps.0.output }}"` an object; any other
//! template renders to a string. Undefined variables are errors, never empty strings: a step
//! must not e-mail "Hello ," because a field was missing.

use std::collections::HashSet;
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value, json};

use super::condition::lookup;
use super::error::RuleError;
use super::model::Rule;

/// The names a template may read from the context.
pub const CONTEXT_ROOTS: [&str; 3] = ["event", "steps", "rule"];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // The output is JSON data for connectors, not HTML: escaping would corrupt it.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Templates come from tenants' rules: a loop cannot keep a worker busy for long.
    env.set_fuel(Some(TEMPLATE_FUEL));
    env
});

/// Instructions one rendering may execute (ample for argument templates).
const TEMPLATE_FUEL: u64 = 50_000;

/// The most one template may render to, as text or as the JSON of one expression's value:
/// a loop over a large event field cannot hand a connector (or the workflow history)
/// gigabytes.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// Collects rendered text, refusing to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other("output limit"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_large() -> String {
    format!(
        "the template renders to more than {} KB",
        MAX_RENDERED_BYTES / 1024
    )
}

/// The context templates see: `{"event": .., "steps": [{"output": ..}, ..], "rule": {"id",
/// "name"}}`, with one entry in `steps` per step already run, in order.
pub fn context(rule: &Rule, event: &Value, outputs: &[Value]) -> Value {
    json!({
        "event": event,
        "steps": outputs.iter().map(|o| json!({"output": o})).collect::<Vec<_>>(),
        "rule": {"id": rule.id, "name": rule.name},
    })
}

/// Whether minijinja would see syntax in `s`; other strings pass through untouched.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Renders every template string in `args` (recursively; object keys are left alone).
/// Errors name the argument's path, e.g. `args.contact.email`.
pub fn render_args(args: &Value, ctx: &Value) -> Result<Value, RuleError> {
    let scope = minijinja::Value::from_serialize(ctx);
    render_value(args, ctx, &scope, "args")
}

/// Renders one text (an agent task's input) to a string, whatever its expressions' types.
pub fn render_text(text: &str, ctx: &Value) -> Result<String, RuleError> {
    if !is_template(text) {
        return Ok(text.to_owned());
    }
    render_template(text, ctx, &minijinja::Value::from_serialize(ctx))
        .map_err(|message| template_error("input", message))
}

/// Checks the syntax of a template string (variables are not resolved).
pub fn check_template(s: &str) -> Result<(), String> {
    ENV.template_from_str(s)
        .map(|_| ())
        .map_err(|e| describe(&e, s))
}

/// The variables `s` reads that the rule context does not provide, e.g. `evnt` for a typo.
pub(crate) fn unknown_variables(s: &str) -> Result<Vec<String>, String> {
    let template = ENV.template_from_str(s).map_err(|e| describe(&e, s))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| {
            !CONTEXT_ROOTS.contains(&name.as_str()) && !ENV.globals().any(|(g, _)| g == name)
        })
        .collect();
    unknown.sort();
    Ok(unknown)
}

fn render_value(
    value: &Value,
    ctx: &Value,
    scope: &minijinja::Value,
    path: &str,
) -> Result<Value, RuleError> {
    match value {
        Value::String(s) if is_template(s) => {
            let rendered = match single_expression(s) {
                Some(expr) => eval_expression(expr, ctx, scope),
                None => render_template(s, ctx, scope).map(Value::String),
            };
            rendered.map_err(|message| template_error(path, message))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| render_value(item, ctx, scope, &format!("{path}.{i}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    render_value(v, ctx, scope, &format!("{path}.{k}"))?,
                ))
            })
            .collect::<Result<Map<_, _>, RuleError>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// The expression of a string that is nothing but `{{ expression }}` (surrounding blanks and
/// whitespace-control dashes allowed).
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    let is_single = !["{{", "}}", "{%", "%}", "{#", "#}"]
        .iter()
        .any(|marker| inner.contains(marker));
    (is_single && !inner.trim().is_empty()).then_some(inner)
}

fn eval_expression(expr: &str, ctx: &Value, scope: &minijinja::Value) -> Result<Value, String> {
    let compiled = ENV
        .compile_expression(expr)
        .map_err(|e| describe(&e, expr))?;
    let undeclared = || compiled.undeclared_variables(false);
    let value = compiled
        .eval(scope)
        .map_err(|e| explain(&e, expr, ctx, &undeclared()))?;
    if value.is_undefined() {
        return Err(missing_variable(expr, ctx, &undeclared())
            .unwrap_or_else(|| format!("`{}` is undefined", expr.trim())));
    }
    let value =
        serde_json::to_value(&value).map_err(|e| format!("the value cannot become JSON: {e}"))?;
    let mut size = Bounded::default();
    serde_json::to_writer(&mut size, &value).map_err(|_| too_large())?;
    Ok(value)
}

fn render_template(source: &str, ctx: &Value, scope: &minijinja::Value) -> Result<String, String> {
    let template = ENV
        .template_from_str(source)
        .map_err(|e| describe(&e, source))?;
    let mut out = Bounded::default();
    match template.render_captured_to(scope, &mut out) {
        Ok(_) => String::from_utf8(out.0).map_err(|e| e.to_string()),
        Err(e) if e.kind() == ErrorKind::WriteFailure => Err(too_large()),
        Err(e) => Err(explain(
            &e,
            source,
            ctx,
            &template.undeclared_variables(false),
        )),
    }
}

fn template_error(path: &str, message: String) -> RuleError {
    RuleError::Template {
        path: path.to_owned(),
        message,
    }
}

/// minijinja reports a missing variable only as "undefined value"; name it where we can.
fn explain(
    e: &minijinja::Error,
    source: &str,
    ctx: &Value,
    undeclared: &HashSet<String>,
) -> String {
    if e.kind() == ErrorKind::UndefinedError
        && let Some(message) = missing_variable(source, ctx, undeclared)
    {
        return message;
    }
    describe(e, source)
}

fn describe(e: &minijinja::Error, source: &str) -> String {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if source.contains('\n')
        && let Some(line) = e.line()
    {
        message.push_str(&format!(" (line {line})"));
    }
    message
}

/// The first dotted path in `source` that is read from the context (its root is one of
/// `undeclared`) and does not resolve in `ctx`, cut at its first missing segment: `event.customer`
/// for `{{ event.customer.email }}` when the event has no customer. Locals such as loop
/// variables are not in `undeclared`, so they are never blamed.
fn missing_variable(source: &str, ctx: &Value, undeclared: &HashSet<String>) -> Option<String> {
    for candidate in dotted_paths(source) {
        let root = candidate.split('.').next().unwrap_or(candidate);
        if !undeclared.contains(root) {
            continue;
        }
        let mut parent: Option<&Value> = None;
        let mut end = 0;
        for segment in candidate.split('.') {
            end += segment.len();
            let prefix = &candidate[..end];
            match lookup(ctx, prefix) {
                Some(value) => parent = Some(value),
                None if parent.is_some_and(Value::is_null) => {
                    let at = candidate[..end - segment.len()].trim_end_matches('.');
                    return Some(format!("`{at}` is null, so it has no `{segment}`"));
                }
                None => return Some(format!("`{prefix}` is undefined")),
            }
            end += 1;
        }
    }
    None
}

/// Every `name(.segment)*` in `source`. String literals are scanned too: that can only make an
/// error message less precise, never turn an error into a success.
fn dotted_paths(source: &str) -> Vec<&str> {
    let bytes = source.as_bytes();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')
            && (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'.')));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric()
                || bytes[i] == b'_'
                || (bytes[i] == b'.'
                    && bytes
                        .get(i + 1)
                        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')))
        {
            i += 1;
        }
        paths.push(&source[start..i]);
    }
    paths
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx() -> Value {
        json!({
            "event": {
                "email": "ana@example.com",
                "total_price": "150.00",
                "count": 3,
                "ratio": 0.5,
                "paid": true,
                "customer": {"email": "ana@example.com", "first_name": "Ana", "note": null},
                "tags": ["vip", "newsletter"]
            },
            "steps": [
                {"output": {"summary": "A short summary", "score": 7}},
                {"output": "plain text"}
            ],
            "rule": {"id": "0193a5b0-0000-7000-8000-000000000000", "name": "Welcome"}
        })
    }

    fn render(args: Value) -> Result<Value, RuleError> {
        render_args(&args, &ctx())
    }

    fn template_error(args: Value) -> (String, String) {
        match render(args) {
            Err(RuleError::Template { path, message }) => (path, message),
            other => panic!("expected a template error, got {other:?}"),
        }
    }

    #[test]
    fn single_expressions_keep_their_json_type() {
        let out = render(json!({
            "count": "{{ event.count }}",
            "ratio": "{{event.ratio}}",
            "paid": "  {{ event.paid }} ",
            "customer": "{{ event.customer }}",
            "tags": "{{ event.tags }}",
            "first": "{{ steps.0.output }}",
            "summary": "{{ steps.0.output.summary }}",
            "score": "{{ steps.0.output.score + 1 }}",
            "second": "{{ steps.1.output }}",
            "indexed": "{{ steps[1].output }}",
            "trimmed": "{{- event.customer.first_name -}}",
            "upper": "{{ event.email | upper }}",
            "note": "{{ event.customer.note }}",
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "count": 3,
                "ratio": 0.5,
                "paid": true,
                "customer": {"email": "ana@example.com", "first_name": "Ana", "note": null},
                "tags": ["vip", "newsletter"],
                "first": {"summary": "A short summary", "score": 7},
                "summary": "A short summary",
                "score": 8,
                "second": "plain text",
                "indexed": "plain text",
                "trimmed": "Ana",
                "upper": "ANA@EXAMPLE.COM",
                "note": null,
            })
        );
    }

    #[test]
    fn mixed_strings_render_to_strings() {
        let out = render(json!({
            "subject": "Hi {{ event.customer.first_name }}, order of {{ event.total_price }}",
            "body": "{{ steps.0.output.summary }} ({{ rule.name }})",
            "two": "{{ event.count }}{{ event.count }}",
            "block": "{% if event.paid %}paid{% else %}open{% endif %}",
            "loop": "{% for t in event.tags %}{{ t }};{% endfor %}",
            "html": "<b>{{ event.email }}</b> & co",
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "subject": "Hi Ana, order of 150.00",
                "body": "A short summary (Welcome)",
                "two": "33",
                "block": "paid",
                "loop": "vip;newsletter;",
                "html": "<b>ana@example.com</b> & co",
            })
        );
    }

    #[test]
    fn walks_arrays_and_objects_but_not_keys_or_plain_values() {
        let out = render(json!({
            "{{ event.email }}": "key stays",
            "list": [1, "{{ event.count }}", {"deep": ["{{ rule.name }}"]}],
            "plain": "no template { here }",
            "number": 5,
            "none": null,
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "{{ event.email }}": "key stays",
                "list": [1, 3, {"deep": ["Welcome"]}],
                "plain": "no template { here }",
                "number": 5,
                "none": null,
            })
        );
        assert_eq!(render(json!("{{ event.count }}")).unwrap(), json!(3));
        assert_eq!(render(json!(null)).unwrap(), json!(null));
    }

    #[test]
    fn undefined_variables_are_errors_naming_the_argument() {
        assert_eq!(
            template_error(json!({"to": "{{ event.phone }}"})),
            ("args.to".into(), "`event.phone` is undefined".into())
        );
        assert_eq!(
            template_error(json!({"contact": {"email": "Mail {{ event.customer.phone }}"}})),
            (
                "args.contact.email".into(),
                "`event.customer.phone` is undefined".into()
            )
        );
        assert_eq!(
            template_error(json!({"items": ["ok", "{{ steps.2.output }}"]})),
            ("args.items.1".into(), "`steps.2` is undefined".into())
        );
        assert_eq!(
            template_error(json!({"x": "{{ event.customer.note.text }}"})),
            (
                "args.x".into(),
                "`event.customer.note` is null, so it has no `text`".into()
            )
        );
        assert_eq!(
            template_error(json!({"x": "{{ evnt.email }}"})),
            ("args.x".into(), "`evnt` is undefined".into())
        );
        let (path, message) = template_error(json!({"x": "{{ steps.0.output.missing }} !"}));
        assert_eq!(path, "args.x");
        assert_eq!(message, "`steps.0.output.missing` is undefined");
        // A loop variable's missing attribute cannot be named; minijinja's message is used.
        let (_, message) =
            template_error(json!({"x": "{% for t in event.tags %}{{ t.nope }}{% endfor %}"}));
        assert!(message.contains("undefined"), "{message}");
    }

    #[test]
    fn syntax_errors_are_template_errors() {
        let (path, message) = template_error(json!({"x": "{{ event.email "}));
        assert_eq!(path, "args.x");
        assert!(message.contains("syntax error"), "{message}");
        let (_, message) = template_error(json!({"x": "{% if event.paid %}"}));
        assert!(message.contains("syntax error"), "{message}");
        let (_, message) = template_error(json!({"x": "{{ }}"}));
        assert!(message.contains("syntax error"), "{message}");
    }

    #[test]
    fn render_text_always_gives_text() {
        let ctx = ctx();
        assert_eq!(
            render_text("Total {{ event.count }}", &ctx).unwrap(),
            "Total 3"
        );
        assert_eq!(render_text("{{ event.count }}", &ctx).unwrap(), "3");
        assert_eq!(render_text("no template", &ctx).unwrap(), "no template");
        match render_text("{{ event.nope }}", &ctx) {
            Err(RuleError::Template { path, message }) => {
                assert_eq!(path, "input");
                assert_eq!(message, "`event.nope` is undefined");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let ctx = json!({"event": {}, "steps": [], "rule": {}});
        let err = render_text(
            "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
            &ctx,
        )
        .unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }

    #[test]
    fn rendered_output_is_bounded() {
        let big = "x".repeat(64 * 1024);
        let ctx = json!({"event": {"big": big}, "steps": [], "rule": {}});
        // 32 × 64 KB of text: over the limit, refused with a reason.
        let err =
            render_text("{% for i in range(32) %}{{ event.big }}{% endfor %}", &ctx).unwrap_err();
        assert!(err.to_string().contains("more than 1024 KB"), "{err}");
        // 8 × 64 KB is fine.
        let ok = render_text("{% for i in range(8) %}{{ event.big }}{% endfor %}", &ctx).unwrap();
        assert_eq!(ok.len(), 8 * 64 * 1024);
        // One expression's value is measured as JSON.
        let args = json!({"list": "{{ [event.big] * 20 }}"});
        let err = render_args(&args, &ctx).unwrap_err();
        assert!(err.to_string().contains("args.list"), "{err}");
        assert!(err.to_string().contains("more than 1024 KB"), "{err}");
    }

    #[test]
    fn check_template_is_syntax_only() {
        assert_eq!(check_template("{{ anything.at.all }}"), Ok(()));
        assert_eq!(check_template("{{ steps.0.output }}"), Ok(()));
        assert_eq!(check_template("plain"), Ok(()));
        assert!(check_template("{{ a").is_err());
        assert!(check_template("{% for %}").is_err());
        assert!(check_template("{{ a | }}").is_err());
    }

    #[test]
    fn unknown_variables_are_the_ones_outside_the_context() {
        assert_eq!(
            unknown_variables("{{ event.a }} {{ steps.0.output }} {{ rule.name }}"),
            Ok(vec![])
        );
        assert_eq!(
            unknown_variables("{% for t in event.tags %}{{ t }}{% endfor %}{{ range(2) }}"),
            Ok(vec![])
        );
        assert_eq!(
            unknown_variables("{{ evnt.a }} {{ output }}"),
            Ok(vec!["evnt".to_owned(), "output".to_owned()])
        );
    }

    #[test]
    fn context_lists_step_outputs_in_order() {
        let rule = Rule {
            id: uuid::Uuid::nil(),
            name: "Welcome".into(),
            enabled: true,
            trigger: super::super::model::Trigger {
                kind: super::super::model::TriggerKind::Manual,
                conditions: vec![],
            },
            steps: vec![],
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let ctx = context(
            &rule,
            &json!({"email": "a@b.c"}),
            &[json!("one"), json!({"n": 2})],
        );
        assert_eq!(
            render_args(
                &json!([
                    "{{ event.email }}",
                    "{{ steps.0.output }}",
                    "{{ steps.1.output.n }}",
                    "{{ rule.name }}"
                ]),
                &ctx
            )
            .unwrap(),
            json!(["a@b.c", "one", 2, "Welcome"])
        );
    }
}
