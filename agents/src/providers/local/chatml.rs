//! The text the model reads and writes: ChatML prompts with Qwen's `<tools>` block, and the
//! `<tool_call>` blocks it answers with.

use serde_json::{Value, json};

use crate::providers::{ChatMessage, ChatRole, ToolCall, ToolDefinition};

/// The ChatML prompt Qwen2.5 was trained on, tools in its `<tools>` block.
pub fn chatml_prompt(messages: &[ChatMessage], tools: &[ToolDefinition]) -> String {
    let mut prompt = String::new();
    let mut rest = messages;
    let system = match messages.first() {
        Some(m) if m.role == ChatRole::System => {
            rest = &messages[1..];
            m.content.clone()
        }
        _ => "You are a helpful assistant.".to_owned(),
    };
    prompt.push_str("<|im_start|>system\n");
    prompt.push_str(&system);
    if !tools.is_empty() {
        prompt.push_str(
            "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
             You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
        );
        for tool in tools {
            let signature = json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": tool.parameters,
            }});
            prompt.push('\n');
            prompt.push_str(&signature.to_string());
        }
        prompt.push_str(
            "\n</tools>\n\nFor each function call, return a json object with function name and \
             arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
             {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
        );
    }
    prompt.push_str("<|im_end|>\n");
    for m in rest {
        match m.role {
            ChatRole::Tool => {
                prompt.push_str("<|im_start|>user\n<tool_response>\n");
                prompt.push_str(&m.content);
                prompt.push_str("\n</tool_response><|im_end|>\n");
            }
            role => {
                prompt.push_str("<|im_start|>");
                prompt.push_str(role.as_str());
                prompt.push('\n');
                prompt.push_str(&m.content);
                for call in &m.tool_calls {
                    let body = json!({"name": call.name, "arguments": call.arguments});
                    prompt.push_str("\n<tool_call>\n");
                    prompt.push_str(&body.to_string());
                    prompt.push_str("\n</tool_call>");
                }
                prompt.push_str("<|im_end|>\n");
            }
        }
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// Splits generated text into the reply and the `<tool_call>` blocks it contains.
pub fn parse_tool_calls(text: &str) -> (String, Vec<ToolCall>) {
    let mut reply = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        reply.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let (body, next) = match after.find(CLOSE) {
            Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
            None => (after, ""),
        };
        if let Ok(v) = serde_json::from_str::<Value>(body.trim())
            && let Some(name) = v["name"].as_str()
        {
            let arguments = match &v["arguments"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                Value::Null => json!({}),
                other => other.clone(),
            };
            calls.push(ToolCall {
                id: format!("call_{}", calls.len()),
                name: name.to_owned(),
                arguments,
            });
        }
        rest = next;
    }
    reply.push_str(rest);
    (reply.trim().to_owned(), calls)
}

/// How much of `text` can be shown now: everything before a (possibly partial) `<tool_call>`.
pub(super) fn streamable_len(text: &str) -> usize {
    if let Some(i) = text.find(OPEN) {
        return i;
    }
    for k in (1..OPEN.len()).rev() {
        if text.ends_with(&OPEN[..k]) {
            return text.len() - k;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qwen_tool_calls() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"wordpress__create_post\", \"arguments\": {\"title\": \"Hi\"}}\n</tool_call>";
        let (reply, calls) = parse_tool_calls(text);
        assert_eq!(reply, "Let me check.");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "wordpress__create_post");
        assert_eq!(calls[0].arguments, json!({"title": "Hi"}));
    }

    #[test]
    fn holds_back_a_partial_tool_call_tag() {
        assert_eq!(streamable_len("Hello <tool"), 6);
        assert_eq!(streamable_len("Hello <tool_call>{"), 6);
        assert_eq!(streamable_len("a < b"), 5);
    }

    #[test]
    fn chatml_with_tools_and_results() {
        let messages = vec![
            ChatMessage::system("You are Ada."),
            ChatMessage::user("Post it"),
            ChatMessage {
                role: ChatRole::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "wp__post".into(),
                    arguments: json!({"t": 1}),
                }],
                tool_call_id: None,
            },
            ChatMessage::tool_result("call_0", "{\"ok\":true}"),
        ];
        let tools = vec![ToolDefinition {
            name: "wp__post".into(),
            description: "Post".into(),
            parameters: json!({"type": "object"}),
        }];
        let prompt = chatml_prompt(&messages, &tools);
        assert!(prompt.starts_with("<|im_start|>system\nYou are Ada.\n\n# Tools"));
        // Keys in the order of Qwen's own chat template (serde_json keeps insertion order).
        assert!(prompt.contains(
            "<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"wp__post\",\"description\":\"Post\""
        ));
        assert!(prompt.contains("<|im_start|>assistant\n\n<tool_call>\n{\"name\":\"wp__post\",\"arguments\":{\"t\":1}}\n</tool_call><|im_end|>"));
        assert!(prompt.contains("<tool_response>\n{\"ok\":true}\n</tool_response>"));
        assert!(prompt.ends_with("<|im_start|>assistant\n"));
    }
}
