//! Evaluation of a trigger's conditions against an event's JSON payload.
//!
//! Platforms are loose about number types (Shopify sends `"total_price": "150.00"`), so a number
//! and a numeric string compare as numbers; everything else compares as JSON.

use std::cmp::Ordering;

use serde_json::Value;

use super::model::{Condition, ConditionOp};

/// Whether every condition holds for `event` (an empty list always holds).
pub fn matches(conditions: &[Condition], event: &Value) -> bool {
    conditions.iter().all(|c| holds(c, event))
}

/// The value at a dotted `path` (`customer.email`, `line_items.0.sku`): object keys by name,
/// array elements by numeric segment. The empty path is `value` itself.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn holds(condition: &Condition, event: &Value) -> bool {
    let actual = lookup(event, &condition.field).filter(|v| !v.is_null());
    let expected = condition.value.as_ref();
    match condition.op {
        ConditionOp::Exists => match expected {
            None | Some(Value::Bool(true)) => actual.is_some(),
            Some(Value::Bool(false)) => actual.is_none(),
            // Validation refuses other values; a condition that cannot mean anything fails.
            Some(_) => false,
        },
        // A missing field equals nothing, so it is "not equal" to anything.
        ConditionOp::Eq => matches!((actual, expected), (Some(a), Some(e)) if loose_eq(a, e)),
        ConditionOp::Ne => !matches!((actual, expected), (Some(a), Some(e)) if loose_eq(a, e)),
        ConditionOp::Gt => compare(actual, expected).is_some_and(Ordering::is_gt),
        ConditionOp::Gte => compare(actual, expected).is_some_and(Ordering::is_ge),
        ConditionOp::Lt => compare(actual, expected).is_some_and(Ordering::is_lt),
        ConditionOp::Lte => compare(actual, expected).is_some_and(Ordering::is_le),
        ConditionOp::Contains => match (actual, expected) {
            (Some(Value::String(s)), Some(Value::String(needle))) => s.contains(needle.as_str()),
            (Some(Value::Array(items)), Some(e)) => items.iter().any(|item| loose_eq(item, e)),
            (Some(Value::Object(map)), Some(Value::String(key))) => map.contains_key(key),
            _ => false,
        },
    }
}

/// Numeric ordering of two values that are numbers or numeric strings.
fn compare(actual: Option<&Value>, expected: Option<&Value>) -> Option<Ordering> {
    numeric(actual?)?.partial_cmp(&numeric(expected?)?)
}

/// A number, or a string holding one (surrounding spaces allowed); never NaN or infinite.
pub(crate) fn numeric(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => parse_number(s)?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    // `f64::from_str` also reads "inf" and "NaN", which no platform means as an amount.
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    s.parse().ok()
}

/// JSON equality where numbers compare by value (`1 == 1.0`) and a number equals a string
/// holding the same number; two strings still compare as strings.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_) | Value::String(_))
        | (Value::String(_), Value::Number(_)) => {
            matches!((numeric(a), numeric(b)), (Some(x), Some(y)) if x == y)
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| loose_eq(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| loose_eq(x, y)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn cond(field: &str, op: ConditionOp, value: Option<Value>) -> Condition {
        Condition {
            field: field.into(),
            op,
            value,
        }
    }

    fn check(field: &str, op: ConditionOp, value: Value, event: &Value) -> bool {
        matches(&[cond(field, op, Some(value))], event)
    }

    fn hubspot() -> Value {
        json!({
            "objectId": 42,
            "properties": {"lead_score": 72, "email": "ana@example.com", "lifecyclestage": "lead"},
            "tags": ["vip", "newsletter"],
            "line_items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": "3"}],
            "deleted": null
        })
    }

    #[test]
    fn lookup_follows_keys_and_indexes() {
        let e = hubspot();
        assert_eq!(lookup(&e, "properties.lead_score"), Some(&json!(72)));
        assert_eq!(lookup(&e, "line_items.1.sku"), Some(&json!("B-2")));
        assert_eq!(lookup(&e, "tags.0"), Some(&json!("vip")));
        assert_eq!(lookup(&e, "tags.2"), None);
        assert_eq!(lookup(&e, "tags.x"), None);
        assert_eq!(lookup(&e, "properties.lead_score.deeper"), None);
        assert_eq!(lookup(&e, "nope"), None);
        assert_eq!(lookup(&e, ""), Some(&e));
        assert_eq!(lookup(&json!({"0": "zero"}), "0"), Some(&json!("zero")));
    }

    #[test]
    fn empty_conditions_always_match() {
        assert!(matches(&[], &json!({})));
        assert!(matches(&[], &json!(null)));
    }

    #[test]
    fn shopify_string_total_compares_numerically() {
        let big = json!({"total_price": "150.00", "currency": "EUR"});
        let small = json!({"total_price": "99.50"});
        assert!(check("total_price", ConditionOp::Gt, json!(100), &big));
        assert!(!check("total_price", ConditionOp::Gt, json!(100), &small));
        assert!(check(
            "total_price",
            ConditionOp::Lte,
            json!("99.5"),
            &small
        ));
        assert!(check("total_price", ConditionOp::Eq, json!(150), &big));
        assert!(check("total_price", ConditionOp::Gte, json!(150.0), &big));
        assert!(!check("total_price", ConditionOp::Lt, json!(150), &big));
        assert!(check("total_price", ConditionOp::Ne, json!(99.5), &big));
        assert!(!check("total_price", ConditionOp::Ne, json!(99.5), &small));
    }

    #[test]
    fn ordering_needs_numbers() {
        let e = hubspot();
        assert!(check(
            "properties.lead_score",
            ConditionOp::Gt,
            json!(50),
            &e
        ));
        assert!(!check(
            "properties.lead_score",
            ConditionOp::Gt,
            json!(72),
            &e
        ));
        assert!(check(
            "properties.lead_score",
            ConditionOp::Gte,
            json!(72),
            &e
        ));
        assert!(check(
            "properties.lead_score",
            ConditionOp::Lt,
            json!("80"),
            &e
        ));
        assert!(check("line_items.1.qty", ConditionOp::Gt, json!(2), &e));
        // Non-numeric on either side, or a missing field, never orders.
        assert!(!check("properties.email", ConditionOp::Gt, json!(1), &e));
        assert!(!check("properties.email", ConditionOp::Lt, json!(1), &e));
        assert!(!check(
            "properties.lead_score",
            ConditionOp::Gt,
            json!("a lot"),
            &e
        ));
        assert!(!check("properties.missing", ConditionOp::Lt, json!(1), &e));
        assert!(!check(
            "total",
            ConditionOp::Gt,
            json!(1),
            &json!({"total": "inf"})
        ));
        assert!(!check(
            "total",
            ConditionOp::Lt,
            json!(1),
            &json!({"total": "NaN"})
        ));
        assert!(!check(
            "total",
            ConditionOp::Gt,
            json!(0),
            &json!({"total": true})
        ));
    }

    #[test]
    fn equality_is_json_equality_with_loose_numbers() {
        let e = hubspot();
        assert!(check(
            "properties.lifecyclestage",
            ConditionOp::Eq,
            json!("lead"),
            &e
        ));
        assert!(!check(
            "properties.lifecyclestage",
            ConditionOp::Eq,
            json!("Lead"),
            &e
        ));
        assert!(check(
            "properties.lead_score",
            ConditionOp::Eq,
            json!(72.0),
            &e
        ));
        assert!(check(
            "properties.lead_score",
            ConditionOp::Eq,
            json!("72"),
            &e
        ));
        assert!(check(
            "tags",
            ConditionOp::Eq,
            json!(["vip", "newsletter"]),
            &e
        ));
        assert!(check(
            "line_items.0",
            ConditionOp::Eq,
            json!({"qty": 2.0, "sku": "A-1"}),
            &e
        ));
        assert!(check("objectId", ConditionOp::Ne, json!(43), &e));
        // Two strings compare as strings, not as numbers.
        assert!(!check(
            "v",
            ConditionOp::Eq,
            json!("150.0"),
            &json!({"v": "150.00"})
        ));
        assert!(check(
            "flag",
            ConditionOp::Eq,
            json!(true),
            &json!({"flag": true})
        ));
        assert!(!check(
            "flag",
            ConditionOp::Eq,
            json!("true"),
            &json!({"flag": true})
        ));
        // A missing (or null) field equals nothing.
        assert!(!check(
            "properties.missing",
            ConditionOp::Eq,
            json!("x"),
            &e
        ));
        assert!(check("properties.missing", ConditionOp::Ne, json!("x"), &e));
        assert!(check("deleted", ConditionOp::Ne, json!(false), &e));
    }

    #[test]
    fn contains_covers_strings_arrays_and_objects() {
        let e = hubspot();
        assert!(check(
            "properties.email",
            ConditionOp::Contains,
            json!("@example.com"),
            &e
        ));
        assert!(!check(
            "properties.email",
            ConditionOp::Contains,
            json!("@EXAMPLE.com"),
            &e
        ));
        assert!(check("tags", ConditionOp::Contains, json!("vip"), &e));
        assert!(!check("tags", ConditionOp::Contains, json!("vi"), &e));
        assert!(check(
            "line_items",
            ConditionOp::Contains,
            json!({"sku": "A-1", "qty": 2}),
            &e
        ));
        assert!(check(
            "properties",
            ConditionOp::Contains,
            json!("lead_score"),
            &e
        ));
        assert!(!check(
            "properties",
            ConditionOp::Contains,
            json!("score"),
            &e
        ));
        assert!(!check(
            "properties.lead_score",
            ConditionOp::Contains,
            json!(7),
            &e
        ));
        assert!(!check("missing", ConditionOp::Contains, json!("x"), &e));
    }

    #[test]
    fn exists_checks_for_a_non_null_value() {
        let e = hubspot();
        assert!(matches(
            &[cond("properties.email", ConditionOp::Exists, None)],
            &e
        ));
        assert!(matches(
            &[cond("tags.1", ConditionOp::Exists, Some(json!(true)))],
            &e
        ));
        assert!(!matches(&[cond("deleted", ConditionOp::Exists, None)], &e));
        assert!(!matches(&[cond("nope", ConditionOp::Exists, None)], &e));
        assert!(matches(
            &[cond("nope", ConditionOp::Exists, Some(json!(false)))],
            &e
        ));
        assert!(matches(
            &[cond("deleted", ConditionOp::Exists, Some(json!(false)))],
            &e
        ));
        assert!(!matches(
            &[cond("tags", ConditionOp::Exists, Some(json!(false)))],
            &e
        ));
        assert!(!matches(
            &[cond("tags", ConditionOp::Exists, Some(json!("yes")))],
            &e
        ));
    }

    #[test]
    fn all_conditions_must_hold() {
        let e = hubspot();
        let score = cond("properties.lead_score", ConditionOp::Gt, Some(json!(50)));
        let stage = cond(
            "properties.lifecyclestage",
            ConditionOp::Eq,
            Some(json!("lead")),
        );
        let vip = cond("tags", ConditionOp::Contains, Some(json!("gold")));
        assert!(matches(&[score.clone(), stage.clone()], &e));
        assert!(!matches(&[score, stage, vip], &e));
    }
}
