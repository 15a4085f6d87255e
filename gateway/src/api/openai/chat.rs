//! `POST /v1/chat/completions`: a turn of the agent the `model` names, answered as a
//! `chat.completion` or as `chat.completion.chunk` SSE events ending with `data: [DONE]`.

use std::convert::Infallible;

use async_openai::types::chat::{
    ChatChoice, ChatChoiceStream, ChatCompletionRequestMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    ChatCompletionResponseMessage, ChatCompletionStreamResponseDelta, CompletionUsage,
    CreateChatCompletionRequest, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
    FinishReason, ResponseFormat, Role,
};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use brain_agents::structured::OutputSchema;
use brain_agents::{TurnEvent, TurnResult, providers::Usage};
use brain_auth::{Authorized, require};
use futures::StreamExt;
use uuid::Uuid;

use super::{OpenAiError, OpenAiJson, agent_for, now, stream_error, structured, tokens, turn};
use crate::state::AppState;

/// OpenAI's chat completion with `model: "agent:<slug>"`: the last user message is one turn
/// of that agent; with `stream: true`, `chat.completion.chunk` SSE events and `[DONE]`, plus a
/// last chunk with the turn's usage when `stream_options.include_usage` is set. Needs `chat`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    request_body(content = Object, description = "OpenAI's chat completion request \
        (`model: \"agent:<slug>\"`, `messages`, `stream`, `stream_options`); other fields \
        are ignored as OpenAI ignores unknown ones"),
    responses((status = 200,
        description = "A `chat.completion`; with `stream: true`, SSE events whose `data` is a \
            `chat.completion.chunk` (or an error), then `[DONE]`",
        content((Object = "application/json"), (Object = "text/event-stream")))))]
pub(super) async fn completions(
    State(state): State<AppState>,
    auth: Authorized<require::Chat>,
    OpenAiJson(request): OpenAiJson<CreateChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    let principal = auth.principal();
    refuse_unsupported(&request)?;
    let spec = agent_for(&state, principal, &request.model).await?;
    let schema = match &request.response_format {
        Some(ResponseFormat::JsonObject) => Some(OutputSchema::JsonObject),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            Some(structured::schema(json_schema, "response_format")?)
        }
        _ => None,
    };
    let question = last_user_text(&request.messages);
    let chunks = Chunks {
        id: format!("chatcmpl-{}", Uuid::now_v7().simple()),
        created: now(),
        model: request.model,
        include_usage: request
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    };
    let stream = request.stream == Some(true);
    if let Some(schema) = schema {
        // The JSON is checked whole before any of it is sent.
        let result = structured::answer(
            &state,
            principal,
            spec.id,
            (question, None),
            "messages",
            &schema,
        )
        .await?;
        if !stream {
            return Ok(Json(chunks.completion(result)).into_response());
        }
        let whole = [
            TurnEvent::Token {
                text: result.reply.clone(),
            },
            TurnEvent::Done(result),
        ];
        return Ok(sse(chunks, futures::stream::iter(whole)));
    }
    let input = turn(principal, question, "messages")?;
    if !stream {
        let result = state.runtime.chat(principal.tenant, spec.id, input).await?;
        return Ok(Json(chunks.completion(result)).into_response());
    }
    let turn = state
        .runtime
        .chat_stream(principal.tenant, spec.id, input)
        .await?;
    Ok(sse(chunks, turn))
}

/// The SSE answer: a first chunk with the role, the chunks of the turn's events, `[DONE]`.
fn sse(chunks: Chunks, turn: impl futures::Stream<Item = TurnEvent> + Send + 'static) -> Response {
    let first = chunks.delta(ChatCompletionStreamResponseDelta {
        role: Some(Role::Assistant),
        content: Some(String::new()),
        ..ChatCompletionStreamResponseDelta::default()
    });
    let events = futures::stream::once(std::future::ready(vec![first]))
        .chain(turn.map(move |event| chunks.events(event)))
        .flat_map(futures::stream::iter)
        .chain(futures::stream::once(std::future::ready(
            Event::default().data("[DONE]"),
        )))
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What an agent turn cannot honour is refused rather than silently dropped.
fn refuse_unsupported(request: &CreateChatCompletionRequest) -> Result<(), OpenAiError> {
    if request.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::invalid(
            "n",
            "an agent gives one answer: `n` must be 1",
        ));
    }
    if request.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(OpenAiError::invalid(
            "tools",
            "an agent calls the tools an admin granted it; `tools` cannot be sent",
        ));
    }
    Ok(())
}

/// The text of the last user message (its text parts, one per line).
fn last_user_text(messages: &[ChatCompletionRequestMessage]) -> Option<String> {
    messages.iter().rev().find_map(|message| {
        let ChatCompletionRequestMessage::User(user) = message else {
            return None;
        };
        Some(match &user.content {
            ChatCompletionRequestUserMessageContent::Text(text) => text.clone(),
            ChatCompletionRequestUserMessageContent::Array(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    ChatCompletionRequestUserMessageContentPart::Text(t) => Some(t.text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        })
    })
}

fn usage(usage: &Usage) -> CompletionUsage {
    CompletionUsage {
        prompt_tokens: tokens(usage.prompt_tokens),
        completion_tokens: tokens(usage.completion_tokens),
        total_tokens: tokens(usage.total()),
        ..CompletionUsage::default()
    }
}

/// What every answer to one request repeats.
struct Chunks {
    id: String,
    created: u32,
    model: String,
    include_usage: bool,
}

impl Chunks {
    /// A finished turn as a `chat.completion`.
    fn completion(self, result: TurnResult) -> CreateChatCompletionResponse {
        let finish = finish_reason(&result);
        CreateChatCompletionResponse {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model,
            choices: vec![ChatChoice {
                index: 0,
                message: ChatCompletionResponseMessage {
                    role: Role::Assistant,
                    content: Some(result.reply),
                    ..ChatCompletionResponseMessage::default()
                },
                finish_reason: Some(finish),
                logprobs: None,
            }],
            usage: Some(usage(&result.usage)),
            ..CreateChatCompletionResponse::default()
        }
    }

    fn chunk(&self, choices: Vec<ChatChoiceStream>) -> CreateChatCompletionStreamResponse {
        CreateChatCompletionStreamResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            ..CreateChatCompletionStreamResponse::default()
        }
    }

    fn delta(&self, delta: ChatCompletionStreamResponseDelta) -> Event {
        self.finished(delta, None)
    }

    fn finished(
        &self,
        delta: ChatCompletionStreamResponseDelta,
        finish_reason: Option<FinishReason>,
    ) -> Event {
        data(&self.chunk(vec![ChatChoiceStream {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        }]))
    }

    /// The chunks a turn event becomes (tool calls and citations are the agent's own).
    fn events(&self, event: TurnEvent) -> Vec<Event> {
        match event {
            TurnEvent::Token { text } => vec![self.delta(ChatCompletionStreamResponseDelta {
                content: Some(text),
                ..ChatCompletionStreamResponseDelta::default()
            })],
            TurnEvent::Done(result) => {
                let mut events = vec![self.finished(
                    ChatCompletionStreamResponseDelta::default(),
                    Some(finish_reason(&result)),
                )];
                if self.include_usage {
                    events.push(data(&CreateChatCompletionStreamResponse {
                        usage: Some(usage(&result.usage)),
                        ..self.chunk(Vec::new())
                    }));
                }
                events
            }
            TurnEvent::Error { code, message } => {
                let (status, message) = stream_error(&code, message);
                vec![data(&OpenAiError::wire(&code, status, message, None))]
            }
            _ => Vec::new(),
        }
    }
}

/// An SSE event whose `data` is `value` as JSON.
fn data(value: &impl serde::Serialize) -> Event {
    Event::default()
        .json_data(value)
        .unwrap_or_else(|_| Event::default().event("error"))
}

/// `length` when the reply stopped at the agent's `max_tokens`, else `stop` (the agent's tool
/// calls are its own, so a finished turn never ends in `tool_calls`).
fn finish_reason(result: &TurnResult) -> FinishReason {
    if result.truncated {
        FinishReason::Length
    } else {
        FinishReason::Stop
    }
}
