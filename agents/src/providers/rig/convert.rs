//! Brain's chat types to rig's and back: requests, stream events, usage and errors.

use std::time::Duration;

use brain_auth::secrets::SecretString;
use rig_core::completion::{self as rc, CompletionRequest, CompletionResponse};
use rig_core::error::ProviderError as RigError;
use rig_core::message::{AssistantContent, AssistantMessage, CallId, Message, ToolName};
use rig_core::streaming::StreamEvent;
use serde_json::Value;

use super::super::{ChatMessage, ChatRequest, ChatRole, FinishReason, ModelEvent, ToolCall, Usage};
use crate::error::ProviderError;

fn tool_name(name: &str) -> Result<ToolName, ProviderError> {
    ToolName::new(name).map_err(|_| ProviderError::Malformed("a tool without a name".into()))
}

/// The rig request of a Brain model call.
pub(super) fn completion_request(
    request: &ChatRequest,
) -> Result<CompletionRequest, ProviderError> {
    let mut history = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.iter().enumerate() {
        history.push(message_of(&request.messages[..index], message)?);
    }
    let Some(prompt) = history.pop() else {
        return Err(ProviderError::Malformed(
            "a model call without messages".into(),
        ));
    };
    let mut completion = CompletionRequest::new(prompt);
    completion.chat_history.splice(0..0, history);
    completion.tools = request
        .tools
        .iter()
        .map(|t| {
            Ok(rc::ToolDefinition::new(
                tool_name(&t.name)?,
                t.description.clone(),
                t.parameters.clone(),
            ))
        })
        .collect::<Result<_, ProviderError>>()?;
    completion.temperature = Some(f64::from(request.temperature));
    completion.max_tokens = Some(u64::from(request.max_tokens));
    Ok(completion)
}

/// One message; a tool result takes its tool's name from the call it answers (Gemini
/// needs it), found in the messages `before` it.
fn message_of(before: &[ChatMessage], message: &ChatMessage) -> Result<Message, ProviderError> {
    Ok(match message.role {
        ChatRole::System => Message::system(message.content.clone()),
        ChatRole::User => Message::user(message.content.clone()),
        ChatRole::Assistant => {
            let mut content = Vec::new();
            if !message.content.is_empty() {
                content.push(AssistantContent::text(message.content.clone()));
            }
            for call in &message.tool_calls {
                content.push(AssistantContent::tool_call(
                    call.id.clone(),
                    tool_name(&call.name)?,
                    call.arguments.clone(),
                ));
            }
            Message::Assistant(AssistantMessage::new(content))
        }
        ChatRole::Tool => {
            let id = message.tool_call_id.clone().unwrap_or_default();
            let name = before
                .iter()
                .rev()
                .flat_map(|m| &m.tool_calls)
                .find(|c| c.id == id)
                .map(|c| c.name.as_str())
                .unwrap_or("tool");
            Message::tool_result(
                CallId::from_wire(id),
                tool_name(name)?,
                message.content.clone(),
            )
        }
    })
}

/// The Brain event of a rig stream event, if it has one: text as it grows, a tool call
/// once its arguments are whole.
pub(super) fn event(event: StreamEvent) -> Option<ModelEvent> {
    match event {
        StreamEvent::Text { text, .. } if !text.is_empty() => Some(ModelEvent::Token(text)),
        StreamEvent::End {
            content: AssistantContent::ToolCall(call),
            ..
        } => {
            let arguments = match call.function.invalid_arguments {
                // Passed on as a string so the turn loop can tell the model.
                Some(raw) => Value::String(raw),
                None => Value::Object(call.function.arguments),
            };
            Some(ModelEvent::ToolCall(ToolCall {
                id: call.id.wire().into_owned(),
                name: call.function.name.as_str().to_owned(),
                arguments,
            }))
        }
        _ => None,
    }
}

/// The usage and finish reason of a whole reply.
pub(super) fn ending(response: &CompletionResponse) -> impl Iterator<Item = ModelEvent> {
    let usage = Usage {
        prompt_tokens: response.usage.input_tokens.unwrap_or(0),
        completion_tokens: response.usage.output_tokens.unwrap_or(0),
    };
    let finish = match response.finish_reason() {
        Some(rc::FinishReason::Stop) | None => FinishReason::Stop,
        Some(rc::FinishReason::ToolCalls) => FinishReason::ToolCalls,
        Some(rc::FinishReason::Length) => FinishReason::Length,
        Some(_) => FinishReason::Other,
    };
    [ModelEvent::Usage(usage), ModelEvent::Finished(finish)].into_iter()
}

/// Whether a refused call may succeed when tried again (429, 5xx, overloaded, no answer).
pub(super) fn transient(error: &RigError) -> bool {
    match error.provider_response_status() {
        Some(status) => matches!(status.as_u16(), 429 | 500 | 502..=504 | 529),
        None => error.is_retryable(),
    }
}

/// The `Retry-After` (seconds) of a refused call.
pub(super) fn retry_after(error: &RigError) -> Option<Duration> {
    super::super::openai::retry_after_header(error.provider_response_headers()?)
}

/// rig's error as Brain's, naming the provider; the key never appears in the message.
pub(super) fn provider_error(
    provider: &str,
    error: &RigError,
    key: Option<&SecretString>,
) -> ProviderError {
    if let Some(refused) = brain_auth::egress::refusal(error) {
        return ProviderError::EgressRefused(refused.to_string());
    }
    let redact = |mut message: String| {
        if let Some(key) = key.map(SecretString::expose).filter(|k| !k.is_empty()) {
            message = message.replace(key, "[the key]");
        }
        message
    };
    let Some(status) = error.provider_response_status() else {
        return match error {
            RigError::Http(_) => ProviderError::Unreachable(redact(error.to_string())),
            _ => ProviderError::Malformed(redact(error.to_string())),
        };
    };
    let body = error.provider_response_body().unwrap_or_default();
    let message = redact(server_message(body));
    ProviderError::refused(provider, status.as_u16(), body, message)
}

/// What a provider's error body says: `{"error": {"message"}}` (Anthropic, Gemini, Azure),
/// `{"error": "…"}` (Ollama), else the body's start.
fn server_message(body: &str) -> String {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    error
        .and_then(|e| e["message"].as_str().or(e.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// Azure offers no verify call through rig: list the resource's models (free, and refused
/// without a valid key).
pub(super) async fn verify_azure(
    http: &reqwest::Client,
    base_url: &str,
    key: &str,
    api_version: &str,
) -> Result<(), RigError> {
    let url = format!("{}/openai/models", base_url.trim_end_matches('/'));
    let response = http
        .get(url)
        .query(&[("api-version", api_version)])
        .header("api-key", key)
        .send()
        .await
        .map_err(|e| {
            RigError::from_transport_error(rig_core::http_client::Error::instance(e.without_url()))
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Err(RigError::from_transport_error(
        rig_core::http_client::Error::non_success_with_details(status, headers, body),
    ))
}
