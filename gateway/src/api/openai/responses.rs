//! `POST /v1/responses`: a turn of the agent the `model` names, answered as OpenAI's
//! `response` object or as its documented SSE events (`response.created` …
//! `response.output_text.delta` … `response.completed`, or `response.failed`).

use std::convert::Infallible;

use async_openai::types::responses::{
    AssistantRole, CreateResponse, EasyInputContent, IncompleteDetails, InputContent, InputItem,
    InputParam, InputRole, InputTokenDetails, Item, MessageItem, OutputContent, OutputItem,
    OutputMessage, OutputMessageContent, OutputStatus, OutputTextContent, OutputTokenDetails,
    Response, ResponseCompletedEvent, ResponseContentPartAddedEvent, ResponseContentPartDoneEvent,
    ResponseCreatedEvent, ResponseError, ResponseErrorCode, ResponseFailedEvent,
    ResponseInProgressEvent, ResponseIncompleteEvent, ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent, ResponseStreamEvent, ResponseTextDeltaEvent,
    ResponseTextDoneEvent, ResponseUsage, Role, Status, TextResponseFormatConfiguration,
    ToolChoiceOptions, ToolChoiceParam,
};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response as HttpResponse};
use brain_agents::structured::OutputSchema;
use brain_agents::{TurnEvent, TurnResult, providers::Usage};
use brain_auth::{Authorized, require};
use futures::StreamExt;
use uuid::Uuid;

use super::{OpenAiError, OpenAiJson, agent_for, chain, stream_error, structured, tokens, turn};
use crate::state::AppState;

/// OpenAI's Responses API with `model: "agent:<slug>"`: the last user message of `input` is
/// one turn of that agent, in a new conversation or in the one `previous_response_id`
/// answered in; with `stream: true`, the documented SSE events. Needs `chat`.
#[utoipa::path(post, path = "/v1/responses", tag = "openai",
    request_body(content = Object, description = "OpenAI's create-response request \
        (`model: \"agent:<slug>\"`, `input` as text or message items, `stream`); other \
        fields are ignored as OpenAI ignores unknown ones"),
    responses((status = 200,
        description = "A `response`; with `stream: true`, SSE events named after their \
            `type` (`response.created`, `response.output_text.delta`, \
            `response.completed`, …)",
        content((Object = "application/json"), (Object = "text/event-stream")))))]
pub(super) async fn create(
    State(state): State<AppState>,
    auth: Authorized<require::Chat>,
    OpenAiJson(request): OpenAiJson<CreateResponse>,
) -> Result<HttpResponse, OpenAiError> {
    let principal = auth.principal();
    refuse_unsupported(&request)?;
    let model = request
        .model
        .clone()
        .ok_or_else(|| OpenAiError::invalid("model", "`model` is required: `agent:<slug>`"))?;
    let spec = agent_for(&state, principal, &model).await?;
    let schema = match request.text.as_ref().map(|t| &t.format) {
        Some(TextResponseFormatConfiguration::JsonObject) => Some(OutputSchema::JsonObject),
        Some(TextResponseFormatConfiguration::JsonSchema(format)) => {
            Some(structured::schema(format, "text.format")?)
        }
        _ => None,
    };
    let question = last_user_text(&request.input);
    let conversation = match &request.previous_response_id {
        Some(previous) => {
            Some(chain::conversation_of(&state, principal.tenant, previous, spec.id).await?)
        }
        None => None,
    };
    let answer = Answer {
        id: format!("resp_{}", Uuid::now_v7().simple()),
        message_id: format!("msg_{}", Uuid::now_v7().simple()),
        created_at: u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default(),
        model,
        previous: request.previous_response_id.clone(),
    };
    let stream = request.stream == Some(true);
    let keep = (request.store != Some(false)).then(|| (state.clone(), principal.tenant, spec.id));
    let remember = move |id: String, result: &TurnResult| {
        let conversation = result.conversation_id;
        let keep = keep.clone();
        async move {
            if let Some((state, tenant, agent)) = keep {
                chain::remember(&state, tenant, &id, agent, conversation).await;
            }
        }
    };
    if let Some(schema) = schema {
        // The JSON is checked whole before any of it is sent.
        let result = structured::answer(
            &state,
            principal,
            spec.id,
            (question, conversation),
            "input",
            &schema,
        )
        .await?;
        remember(answer.id.clone(), &result).await;
        if !stream {
            return Ok(Json(answer.completed(&result)).into_response());
        }
        let whole = [
            TurnEvent::Token {
                text: result.reply.clone(),
            },
            TurnEvent::Done(result),
        ];
        return Ok(answer_sse(answer, futures::stream::iter(whole)));
    }
    let mut input = turn(principal, question, "input")?;
    input.conversation_id = conversation;
    if !stream {
        let result = state.runtime.chat(principal.tenant, spec.id, input).await?;
        remember(answer.id.clone(), &result).await;
        return Ok(Json(answer.completed(&result)).into_response());
    }
    let turn = state
        .runtime
        .chat_stream(principal.tenant, spec.id, input)
        .await?;
    let id = answer.id.clone();
    let turn = turn.then(move |event| {
        let done = match &event {
            TurnEvent::Done(result) => Some(remember(id.clone(), result)),
            _ => None,
        };
        async move {
            if let Some(done) = done {
                done.await;
            }
            event
        }
    });
    Ok(answer_sse(answer, turn))
}

/// The documented SSE events of one answer, the turn's events in between.
fn answer_sse(
    answer: Answer,
    turn: impl futures::Stream<Item = TurnEvent> + Send + 'static,
) -> HttpResponse {
    let mut stream = EventStream {
        answer,
        sequence: 0,
        text: String::new(),
    };
    let opening = stream.opening();
    let events = futures::stream::once(std::future::ready(opening))
        .chain(turn.scan(stream, |stream, event| {
            std::future::ready(Some(stream.on(event)))
        }))
        .flat_map(futures::stream::iter)
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What an agent turn cannot honour is refused rather than silently dropped.
fn refuse_unsupported(request: &CreateResponse) -> Result<(), OpenAiError> {
    if request.conversation.is_some() {
        return Err(OpenAiError::invalid(
            "conversation",
            "continue an agent's conversation with `previous_response_id`",
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

/// The text of `input`, or of its last user message (its text parts, one per line).
fn last_user_text(input: &InputParam) -> Option<String> {
    let items = match input {
        InputParam::Text(text) => return Some(text.clone()),
        InputParam::Items(items) => items,
    };
    let texts = |parts: &[InputContent]| {
        parts
            .iter()
            .filter_map(|part| match part {
                InputContent::InputText(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    items.iter().rev().find_map(|item| match item {
        InputItem::EasyMessage(message) if message.role == Role::User => {
            Some(match &message.content {
                EasyInputContent::Text(text) => text.clone(),
                EasyInputContent::ContentList(parts) => texts(parts),
            })
        }
        InputItem::Item(Item::Message(MessageItem::Input(message)))
            if message.role == InputRole::User =>
        {
            Some(texts(&message.content))
        }
        _ => None,
    })
}

fn usage(usage: &Usage) -> ResponseUsage {
    ResponseUsage {
        input_tokens: tokens(usage.prompt_tokens),
        input_tokens_details: InputTokenDetails {
            cached_tokens: 0,
            cache_write_tokens: None,
        },
        output_tokens: tokens(usage.completion_tokens),
        output_tokens_details: OutputTokenDetails {
            reasoning_tokens: 0,
        },
        total_tokens: tokens(usage.total()),
    }
}

fn text_part(text: String) -> OutputTextContent {
    OutputTextContent {
        text,
        annotations: Vec::new(),
        logprobs: Some(Vec::new()),
    }
}

/// What every form of one answer repeats.
struct Answer {
    id: String,
    message_id: String,
    created_at: u64,
    model: String,
    /// The response this one continues.
    previous: Option<String>,
}

impl Answer {
    fn message(&self, status: OutputStatus, text: Option<String>) -> OutputItem {
        let content = text
            .map(|t| OutputMessageContent::OutputText(text_part(t)))
            .into_iter()
            .collect();
        OutputItem::Message(OutputMessage {
            id: self.message_id.clone(),
            role: AssistantRole::Assistant,
            phase: None,
            status,
            content,
        })
    }

    /// The finished response: `completed`, or `incomplete` (`max_output_tokens`) when the
    /// reply stopped at the agent's `max_tokens`.
    fn completed(&self, result: &TurnResult) -> Response {
        let (status, item_status) = if result.truncated {
            (Status::Incomplete, OutputStatus::Incomplete)
        } else {
            (Status::Completed, OutputStatus::Completed)
        };
        let output = vec![self.message(item_status, Some(result.reply.clone()))];
        Response {
            usage: Some(usage(&result.usage)),
            completed_at: Some(self.created_at.max(now_secs())),
            incomplete_details: result.truncated.then(|| IncompleteDetails {
                reason: "max_output_tokens".to_owned(),
            }),
            ..self.response(status, output, None)
        }
    }

    #[allow(deprecated)] // `prompt_cache_retention` is deprecated and `Response` has no Default
    fn response(
        &self,
        status: Status,
        output: Vec<OutputItem>,
        error: Option<ResponseError>,
    ) -> Response {
        Response {
            background: None,
            billing: None,
            conversation: None,
            created_at: self.created_at,
            completed_at: None,
            error,
            id: self.id.clone(),
            incomplete_details: None,
            instructions: None,
            max_output_tokens: None,
            metadata: None,
            model: self.model.clone(),
            object: "response".to_owned(),
            output,
            parallel_tool_calls: Some(true),
            previous_response_id: self.previous.clone(),
            prompt: None,
            prompt_cache_key: None,
            prompt_cache_retention: None,
            reasoning: None,
            safety_identifier: None,
            service_tier: None,
            status,
            temperature: None,
            text: None,
            tool_choice: Some(ToolChoiceParam::Option(ToolChoiceOptions::Auto)),
            tools: Some(Vec::new()),
            top_logprobs: None,
            top_p: None,
            truncation: None,
            usage: None,
            prompt_cache_options: None,
            prompt_cache_diagnostics: None,
            moderation: None,
            access_programs: None,
            tool_usage: None,
        }
    }
}

fn now_secs() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default()
}

/// The SSE events of one streamed answer, numbered in order.
struct EventStream {
    answer: Answer,
    sequence: u64,
    /// The reply so far.
    text: String,
}

impl EventStream {
    fn next(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence - 1
    }

    /// `response.created`, `response.in_progress`, the message and its text part opened.
    fn opening(&mut self) -> Vec<Event> {
        let pending = self.answer.response(Status::InProgress, Vec::new(), None);
        let message = self.answer.message(OutputStatus::InProgress, None);
        vec![
            sse(&ResponseStreamEvent::ResponseCreated(
                ResponseCreatedEvent {
                    sequence_number: self.next(),
                    response: pending.clone(),
                },
            )),
            sse(&ResponseStreamEvent::ResponseInProgress(
                ResponseInProgressEvent {
                    sequence_number: self.next(),
                    response: pending,
                },
            )),
            sse(&ResponseStreamEvent::ResponseOutputItemAdded(
                ResponseOutputItemAddedEvent {
                    sequence_number: self.next(),
                    output_index: 0,
                    item: message,
                },
            )),
            sse(&ResponseStreamEvent::ResponseContentPartAdded(
                ResponseContentPartAddedEvent {
                    sequence_number: self.next(),
                    item_id: self.answer.message_id.clone(),
                    output_index: 0,
                    content_index: 0,
                    part: OutputContent::OutputText(text_part(String::new())),
                },
            )),
        ]
    }

    /// The events a turn event becomes (tool calls and citations are the agent's own).
    fn on(&mut self, event: TurnEvent) -> Vec<Event> {
        match event {
            TurnEvent::Token { text } => {
                self.text.push_str(&text);
                vec![sse(&ResponseStreamEvent::ResponseOutputTextDelta(
                    ResponseTextDeltaEvent {
                        sequence_number: self.next(),
                        item_id: self.answer.message_id.clone(),
                        output_index: 0,
                        content_index: 0,
                        delta: text,
                        logprobs: Some(Vec::new()),
                    },
                ))]
            }
            TurnEvent::Done(result) => self.closing(&result),
            TurnEvent::Error { code, message } => {
                let (_, message) = stream_error(&code, message);
                let error = ResponseError {
                    code: ResponseErrorCode::Other(code),
                    message,
                    misalignment: None,
                    param: None,
                    r#type: None,
                };
                let output = vec![self.answer.message(
                    OutputStatus::Incomplete,
                    Some(std::mem::take(&mut self.text)),
                )];
                vec![sse(&ResponseStreamEvent::ResponseFailed(
                    ResponseFailedEvent {
                        sequence_number: self.next(),
                        response: self.answer.response(Status::Failed, output, Some(error)),
                    },
                ))]
            }
            _ => Vec::new(),
        }
    }

    /// The text, part and message closed, then `response.completed` with the whole reply.
    fn closing(&mut self, result: &TurnResult) -> Vec<Event> {
        let item_id = self.answer.message_id.clone();
        let text = result.reply.clone();
        vec![
            sse(&ResponseStreamEvent::ResponseOutputTextDone(
                ResponseTextDoneEvent {
                    sequence_number: self.next(),
                    item_id: item_id.clone(),
                    output_index: 0,
                    content_index: 0,
                    text: text.clone(),
                    logprobs: Some(Vec::new()),
                },
            )),
            sse(&ResponseStreamEvent::ResponseContentPartDone(
                ResponseContentPartDoneEvent {
                    sequence_number: self.next(),
                    item_id,
                    output_index: 0,
                    content_index: 0,
                    part: OutputContent::OutputText(text_part(text.clone())),
                },
            )),
            sse(&ResponseStreamEvent::ResponseOutputItemDone(
                ResponseOutputItemDoneEvent {
                    sequence_number: self.next(),
                    output_index: 0,
                    item: self.answer.message(OutputStatus::Completed, Some(text)),
                },
            )),
            sse(&if result.truncated {
                ResponseStreamEvent::ResponseIncomplete(ResponseIncompleteEvent {
                    sequence_number: self.next(),
                    response: self.answer.completed(result),
                })
            } else {
                ResponseStreamEvent::ResponseCompleted(ResponseCompletedEvent {
                    sequence_number: self.next(),
                    response: self.answer.completed(result),
                })
            }),
        ]
    }
}

/// An SSE event named after the stream event's `type`, its JSON as `data`.
fn sse(event: &ResponseStreamEvent) -> Event {
    let value = serde_json::to_value(event).unwrap_or_default();
    let name = value["type"].as_str().unwrap_or("error").to_owned();
    Event::default()
        .event(name)
        .json_data(value)
        .unwrap_or_else(|_| Event::default().event("error"))
}
