//! Syntax check of the 5-field cron expressions schedule triggers carry.
//!
//! Temporal parses the expression for real when the schedule is created; checking it here too
//! lets the API reject a bad rule with a message naming the field instead of failing later,
//! after the row was written. The accepted language is the common subset Temporal Schedules
//! understand: `*`, numbers, ranges, steps, lists, month and day names, and the `@` macros.

/// The macros Temporal accepts in place of five fields.
const MACROS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One position of the expression: its name, bounds and the names it accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names standing for `min`, `min + 1`, ….
    names: &'static [&'static str],
    names_hint: &'static str,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        names_hint: "",
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        names_hint: "",
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        names_hint: "",
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
        names_hint: " or a month name (JAN-DEC)",
    },
    // 7 is Sunday as well as 0, as in most crons.
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: DAYS,
        names_hint: " or a day name (SUN-SAT)",
    },
];

/// Checks a cron expression; the error says which field is wrong and why, e.g.
/// `hour: 24 is out of range 0-23`.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return if MACROS.iter().any(|m| m.eq_ignore_ascii_case(expr)) {
            Ok(())
        } else {
            Err(format!(
                "unknown macro `{expr}` (expected one of {})",
                MACROS.join(", ")
            ))
        };
    }
    let parts: Vec<&str> = expr.split_whitespace().collect();
    if parts.len() != FIELDS.len() {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such \
             as @daily, got {}",
            parts.len()
        ));
    }
    for (part, field) in parts.iter().zip(FIELDS.iter()) {
        check_field(field, part).map_err(|why| format!("{}: {why}", field.name))?;
    }
    Ok(())
}

fn check_field(field: &Field, text: &str) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty list item in `{text}`"));
        }
        check_item(field, item)?;
    }
    Ok(())
}

/// One list item: `*`, `N` or `N-M`, the first and last optionally followed by `/step`.
fn check_item(field: &Field, item: &str) -> Result<(), String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    if let Some(step) = step {
        let n = number(step).ok_or_else(|| format!("step `{step}` is not a number"))?;
        if n < 1 {
            return Err("step must be at least 1".to_owned());
        }
    }
    if base == "*" {
        return Ok(());
    }
    match base.split_once('-') {
        Some((from, to)) => {
            let from = value(field, from)?;
            let to = value(field, to)?;
            if from > to {
                return Err(format!("range {base} is reversed"));
            }
            Ok(())
        }
        None if step.is_some() => Err(format!(
            "a step needs `*` or a range before it, not `{base}`"
        )),
        None => value(field, base).map(|_| ()),
    }
}

/// A number or name within the field's bounds.
fn value(field: &Field, text: &str) -> Result<u32, String> {
    if let Some(n) = number(text) {
        return if (field.min..=field.max).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "{text} is out of range {}-{}",
                field.min, field.max
            ))
        };
    }
    if let Some(index) = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        // At most 12 names, so the index always fits.
        return Ok(field.min + u32::try_from(index).unwrap_or(0));
    }
    if text.is_empty() {
        return Err("missing a number".to_owned());
    }
    Err(format!("`{text}` is not a number{}", field.names_hint))
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only, so the one failure left is overflow: far out of any range anyway.
    Some(text.parse().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::validate_cron;

    #[test]
    fn accepts_common_expressions() {
        for expr in [
            "0 8 * * SAT",
            "* * * * *",
            "*/15 * * * *",
            "0 9-17/2 * * MON-FRI",
            "0 0 1,15 * *",
            "30 6 * jan,Jul sun",
            "0 0 * * 7",
            "0 0 * * 5-7",
            "59 23 31 12 0",
            "0 12 * DEC-DEC *",
            "  0  8 * * 1  ",
            "@daily",
            "@HOURLY",
            "@annually",
        ] {
            assert_eq!(validate_cron(expr), Ok(()), "{expr}");
        }
    }

    #[test]
    fn rejects_bad_expressions_naming_the_field() {
        for (expr, message) in [
            ("61 * * * *", "minute: 61 is out of range 0-59"),
            ("0 24 * * *", "hour: 24 is out of range 0-23"),
            ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
            ("0 0 * 13 *", "month: 13 is out of range 1-12"),
            ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
            (
                "0 8 * * FUNDAY",
                "day-of-week: `FUNDAY` is not a number or a day name (SUN-SAT)",
            ),
            (
                "0 8 * SAT *",
                "month: `SAT` is not a number or a month name (JAN-DEC)",
            ),
            ("5-1 * * * *", "minute: range 5-1 is reversed"),
            ("0 0 * * FRI-MON", "day-of-week: range FRI-MON is reversed"),
            ("*/0 * * * *", "minute: step must be at least 1"),
            ("*/x * * * *", "minute: step `x` is not a number"),
            (
                "5/10 * * * *",
                "minute: a step needs `*` or a range before it, not `5`",
            ),
            ("1,,2 * * * *", "minute: empty list item in `1,,2`"),
            ("1- * * * *", "minute: missing a number"),
            ("-1 * * * *", "minute: missing a number"),
            (
                "99999999999 * * * *",
                "minute: 99999999999 is out of range 0-59",
            ),
            ("0 8 * * * *", ""),
            ("* * *", ""),
            ("", ""),
            ("@fortnightly", ""),
        ] {
            let err = validate_cron(expr).expect_err(expr);
            if message.is_empty() {
                assert!(
                    err.starts_with("expected 5 fields") || err.starts_with("unknown macro"),
                    "{expr}: {err}"
                );
            } else {
                assert_eq!(err, message, "{expr}");
            }
        }
    }
}
