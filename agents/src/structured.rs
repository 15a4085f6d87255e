//! Structured output: an answer that must be JSON — any object, or a value matching a JSON
//! Schema the caller gave. The agent is told what to produce; its answer is checked, and a
//! wrong one is sent back once or twice with what was wrong (validate and retry) before the
//! caller gets a clear error instead of JSON that does not fit.

use serde_json::Value;

/// How many answers one structured request may take, the first included.
pub const MAX_ATTEMPTS: usize = 3;

/// What the answer must be.
#[derive(Debug)]
pub enum OutputSchema {
    /// Any JSON object.
    JsonObject,
    /// A value valid against `schema`, named `name` for the model.
    JsonSchema {
        name: String,
        schema: Value,
        validator: jsonschema::Validator,
    },
}

impl OutputSchema {
    /// A schema answer; an invalid JSON Schema is refused with the validator's reason.
    pub fn json_schema(name: impl Into<String>, schema: Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        Ok(Self::JsonSchema {
            name: name.into(),
            schema,
            validator,
        })
    }

    /// What the model is told along with the question.
    pub fn instruction(&self) -> String {
        match self {
            OutputSchema::JsonObject => {
                "Answer with one JSON object only: no prose, no code fence.".to_owned()
            }
            OutputSchema::JsonSchema { name, schema, .. } => format!(
                "Answer with one JSON value only (no prose, no code fence) that is valid \
                 against this JSON Schema named `{name}`:\n{schema}"
            ),
        }
    }

    /// The question with the instruction.
    pub fn ask(&self, question: &str) -> String {
        format!("{question}\n\n{}", self.instruction())
    }

    /// The JSON value of `answer` (a code fence around it is tolerated), or what is wrong.
    pub fn check(&self, answer: &str) -> Result<Value, String> {
        let text = unfenced(answer);
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("the answer is not valid JSON ({e})"))?;
        match self {
            OutputSchema::JsonObject if !value.is_object() => {
                Err("the answer is JSON but not an object".to_owned())
            }
            OutputSchema::JsonObject => Ok(value),
            OutputSchema::JsonSchema { validator, .. } => {
                let problems: Vec<String> = validator
                    .iter_errors(&value)
                    .take(5)
                    .map(|e| format!("{} at `{}`", e, e.instance_path()))
                    .collect();
                if problems.is_empty() {
                    Ok(value)
                } else {
                    Err(format!(
                        "the JSON does not match the schema: {}",
                        problems.join("; ")
                    ))
                }
            }
        }
    }

    /// The message that sends a wrong answer back.
    pub fn retry(&self, problem: &str) -> String {
        format!(
            "That answer cannot be used: {problem}. {}",
            self.instruction()
        )
    }
}

/// `text` without a surrounding Markdown code fence (```json … ```), trimmed.
fn unfenced(text: &str) -> &str {
    let text = text.trim();
    let Some(inner) = text.strip_prefix("```") else {
        return text;
    };
    let inner = inner.strip_suffix("```").unwrap_or(inner);
    // The fence's info string (`json`) runs to the first line break.
    inner
        .split_once('\n')
        .map_or(inner, |(_, body)| body)
        .trim()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn greeting() -> OutputSchema {
        OutputSchema::json_schema(
            "greeting",
            json!({"type": "object", "properties": {"greeting": {"type": "string"}},
                   "required": ["greeting"], "additionalProperties": false}),
        )
        .unwrap()
    }

    #[test]
    fn an_answer_is_checked_against_the_schema() {
        let schema = greeting();
        assert_eq!(
            schema.check(r#"{"greeting": "Hello Ada"}"#),
            Ok(json!({"greeting": "Hello Ada"}))
        );
        assert_eq!(
            schema.check("```json\n{\"greeting\": \"Hi\"}\n```"),
            Ok(json!({"greeting": "Hi"}))
        );
        let wrong = schema.check(r#"{"greeting": 3}"#).unwrap_err();
        assert!(wrong.contains("/greeting"), "{wrong}");
        let extra = schema
            .check(r#"{"greeting": "Hi", "mood": "sunny"}"#)
            .unwrap_err();
        assert!(extra.contains("mood"), "{extra}");
        let prose = schema.check("Hello Ada!").unwrap_err();
        assert!(prose.starts_with("the answer is not valid JSON"), "{prose}");
        assert!(
            schema
                .retry(&prose)
                .contains("JSON Schema named `greeting`")
        );
    }

    #[test]
    fn a_json_object_must_be_an_object_and_a_bad_schema_is_refused() {
        assert!(OutputSchema::JsonObject.check(r#"{"a": 1}"#).is_ok());
        assert!(OutputSchema::JsonObject.check("[1, 2]").is_err());
        assert!(OutputSchema::json_schema("bad", json!({"type": "no-such-type"})).is_err());
    }
}
