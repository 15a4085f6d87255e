//! The turn loop: one user message in, a reply out. Builds the prompt, calls the model,
//! executes the tool calls the agent holds handles for, feeds results back, enforces the
//! step limit and the daily token budget, and persists the finished turn.

use std::sync::Arc;

use brain_auth::TenantId;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::conversation::{CommittedTurn, NewMessage, TurnStore};
use crate::error::{AgentError, ProviderError};
use crate::fit::{PromptFit, PromptParts, fit};
use crate::knowledge::{Citation, Passage, Retriever};
use crate::policy::{Refusal, ToolGate, check_budgets};
use crate::prompt::system_prompt;
use crate::providers::fallback::ModelFallback;
use crate::providers::{
    ChatMessage, ChatRequest, ChatRole, FinishReason, LlmProvider, ModelEvent, ToolCall,
    ToolDefinition, Usage,
};
use crate::spec::AgentSpec;
use crate::telemetry;
use crate::tool::{ToolError, ToolInvoker, call_label};

/// Limits of one turn.
#[derive(Clone, Copy, Debug)]
pub struct TurnLimits {
    /// Model calls per turn; the last one is offered no tools, so it must answer.
    pub max_steps: usize,
    /// Earlier messages of the conversation sent with the turn.
    pub history_messages: usize,
    /// Knowledge passages retrieved per turn.
    pub knowledge_passages: usize,
}

impl Default for TurnLimits {
    fn default() -> Self {
        Self {
            max_steps: 6,
            history_messages: 40,
            knowledge_passages: 4,
        }
    }
}

/// A user's message to an agent.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TurnInput {
    pub message: String,
    #[serde(default)]
    pub conversation_id: Option<Uuid>,
    #[serde(default)]
    pub user_id: Option<Uuid>,
}

/// How a tool call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    Ok,
    Error,
    /// The agent holds no handle for the tool; nothing was executed.
    Rejected,
}

/// One tool call of a turn: `{connector, action, args, status, result_summary, nested?}`.
/// A delegation is `{connector: "delegate", action: <target slug>}`, and `nested` holds the
/// delegated agent's own calls (and its delegations, recursively).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolCallRecord {
    /// The model's id for the call.
    pub id: String,
    pub connector: String,
    pub action: String,
    pub args: serde_json::Value,
    pub status: ToolCallStatus,
    /// What the model was told of the result.
    pub result_summary: String,
    /// A delegation's own calls; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub nested: Vec<ToolCallRecord>,
}

/// The finished turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TurnResult {
    /// The conversation the turn belongs to; send it back to continue the conversation.
    pub conversation_id: Uuid,
    pub reply: String,
    /// The knowledge passages the model was shown.
    pub citations: Vec<Citation>,
    /// Every tool call of the turn, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Usage,
    /// Set when the conversation outgrew the model's context window: what was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_fit: Option<PromptFit>,
    /// Model calls that left a failing model for one of the agent's `fallback_models`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<ModelFallback>,
    /// The reply stopped at the agent's `max_tokens`, not where the model would have ended it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// What a turn streams, in order: tokens, tool calls and their results, citations, then
/// exactly one `done` or `error` (sent by whoever runs the turn). On the wire (SSE) each is
/// one event named after its `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    /// The next piece of the reply.
    Token { text: String },
    /// The model called a tool.
    ToolCall {
        id: String,
        connector: String,
        action: String,
        args: serde_json::Value,
    },
    /// How the call `id` ended.
    ToolResult {
        id: String,
        status: ToolCallStatus,
        summary: String,
    },
    /// A passage the reply is grounded in.
    Citation(Citation),
    /// The turn finished and is stored.
    Done(TurnResult),
    /// The turn failed; `code` is an API error code.
    Error { code: String, message: String },
}

impl TurnEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            TurnEvent::Token { .. } => "token",
            TurnEvent::ToolCall { .. } => "tool_call",
            TurnEvent::ToolResult { .. } => "tool_result",
            TurnEvent::Citation(_) => "citation",
            TurnEvent::Done(_) => "done",
            TurnEvent::Error { .. } => "error",
        }
    }
}

/// Everything a turn runs with.
pub struct TurnContext<'a> {
    pub tenant: TenantId,
    pub agent: &'a AgentSpec,
    pub provider: Arc<dyn LlmProvider>,
    pub tools: &'a dyn ToolInvoker,
    pub retriever: Option<&'a dyn Retriever>,
    pub store: &'a dyn TurnStore,
    pub limits: TurnLimits,
}

fn send(events: Option<&UnboundedSender<TurnEvent>>, event: TurnEvent) {
    if let Some(tx) = events {
        // A listener that went away does not stop the turn: it still commits.
        let _ = tx.send(event);
    }
}

/// Runs one turn. Streams events to `events` (if any) except the final `done`/`error`.
pub async fn run_turn(
    ctx: TurnContext<'_>,
    input: TurnInput,
    events: Option<&UnboundedSender<TurnEvent>>,
) -> Result<TurnResult, AgentError> {
    if input.message.trim().is_empty() {
        return Err(crate::error::FieldError::new("message", "must not be empty").into());
    }
    check_budgets(ctx.store, ctx.tenant, ctx.agent).await?;
    let (conversation, history, new_title) = open_conversation(&ctx, &input).await?;
    let passages: Vec<Passage> = match ctx.retriever {
        Some(r)
            if !ctx.agent.knowledge_collections.is_empty() && ctx.limits.knowledge_passages > 0 =>
        {
            crate::knowledge::retrieve(
                r,
                ctx.tenant,
                &ctx.agent.knowledge_collections,
                &input.message,
                ctx.limits.knowledge_passages,
            )
            .await?
        }
        _ => Vec::new(),
    };
    let mut turn = Turn::new(&ctx, &input.message, history, passages);
    if let Err(e) = turn.steps(events).await {
        // Tokens were spent even though the turn failed; the budget must see them.
        if turn.usage.total() > 0 || turn.executed > 0 {
            ctx.store
                .record_usage(ctx.tenant, ctx.agent.id, turn.usage, turn.executed)
                .await?;
        }
        return Err(e);
    }
    let citations = turn.cited();
    for c in &citations {
        send(events, TurnEvent::Citation(c.clone()));
    }
    let (committed, result) = turn.finish(conversation, new_title, input.user_id, citations);
    ctx.store.commit_turn(ctx.tenant, &committed).await?;
    Ok(result)
}

/// The conversation a turn continues (checked to be this agent's) and its recent history,
/// or a new one titled after the message.
async fn open_conversation(
    ctx: &TurnContext<'_>,
    input: &TurnInput,
) -> Result<(Uuid, Vec<ChatMessage>, Option<String>), AgentError> {
    match input.conversation_id {
        Some(id) => {
            ctx.store
                .check_conversation(ctx.tenant, ctx.agent.id, id)
                .await?;
            let history = ctx
                .store
                .history(ctx.tenant, id, ctx.limits.history_messages)
                .await?;
            Ok((id, history, None))
        }
        None => {
            let title: String = input.message.chars().take(80).collect();
            Ok((Uuid::now_v7(), Vec::new(), Some(title)))
        }
    }
}

/// One turn in progress: what the model is shown, what it did, what it spent.
struct Turn<'a> {
    tenant: TenantId,
    agent: &'a AgentSpec,
    provider: Arc<dyn LlmProvider>,
    tools: &'a dyn ToolInvoker,
    max_steps: usize,
    definitions: Vec<ToolDefinition>,
    gate: ToolGate,
    window: Option<usize>,
    history: Vec<ChatMessage>,
    passages: Vec<Passage>,
    /// The system prompt with the passages kept, rebuilt only when fitting drops one.
    system: (usize, String),
    /// This turn's messages: the user's, then the model's calls and their results.
    current: Vec<ChatMessage>,
    /// What fitting kept: passages, first history message.
    kept: (usize, usize),
    prompt_fit: Option<PromptFit>,
    turn_id: Uuid,
    /// What the turn adds to the conversation when it commits.
    new_messages: Vec<NewMessage>,
    usage: Usage,
    records: Vec<ToolCallRecord>,
    /// Calls that ran (successfully or not); refused ones are not counted.
    executed: u64,
    reply: String,
    fallbacks: Vec<ModelFallback>,
    /// The last model call stopped at `max_tokens`.
    truncated: bool,
}

impl<'a> Turn<'a> {
    fn new(
        ctx: &TurnContext<'a>,
        message: &str,
        history: Vec<ChatMessage>,
        passages: Vec<Passage>,
    ) -> Self {
        let definitions = ctx.tools.definitions();
        let system = (
            passages.len(),
            system_prompt(ctx.agent, &definitions, &passages),
        );
        Self {
            tenant: ctx.tenant,
            agent: ctx.agent,
            provider: Arc::clone(&ctx.provider),
            tools: ctx.tools,
            max_steps: ctx.limits.max_steps.max(1),
            gate: ToolGate::new(ctx.tools.rules()),
            window: ctx.provider.context_window(ctx.agent.model.model()),
            definitions,
            history,
            kept: (passages.len(), 0),
            passages,
            system,
            current: vec![ChatMessage::user(message.to_owned())],
            prompt_fit: None,
            turn_id: Uuid::now_v7(),
            new_messages: vec![NewMessage {
                role: ChatRole::User,
                content: message.to_owned(),
                tool_calls: json!([]),
                citations: json!([]),
                usage: None,
            }],
            usage: Usage::default(),
            records: Vec::new(),
            executed: 0,
            reply: String::new(),
            fallbacks: Vec::new(),
            truncated: false,
        }
    }

    /// Model call, tool calls, model call, … until the model answers or the last step
    /// (offered no tools) is taken.
    async fn steps(
        &mut self,
        events: Option<&UnboundedSender<TurnEvent>>,
    ) -> Result<(), AgentError> {
        for step in 0..self.max_steps {
            let request = self.request(step + 1 >= self.max_steps)?;
            let (content, calls) = self.model_call(request, events).await?;
            if calls.is_empty() {
                self.reply = content;
                return Ok(());
            }
            self.new_messages.push(NewMessage {
                role: ChatRole::Assistant,
                content: content.clone(),
                tool_calls: serde_json::to_value(&calls).unwrap_or_else(|_| json!([])),
                citations: json!([]),
                usage: None,
            });
            self.current.push(ChatMessage {
                role: ChatRole::Assistant,
                content,
                tool_calls: calls.clone(),
                tool_call_id: None,
            });
            for call in calls {
                self.tool_call(call, events).await;
            }
        }
        Ok(())
    }

    /// The next model request, fitted into the model's context window.
    fn request(&mut self, last: bool) -> Result<ChatRequest, AgentError> {
        if let Some(window) = self.window {
            let (agent, definitions) = (self.agent, &self.definitions);
            let system_for = |passages: &[Passage]| system_prompt(agent, definitions, passages);
            let parts = PromptParts {
                window,
                reply_tokens: self.agent.max_tokens as usize,
                system: &system_for,
                passages: &self.passages,
                history: &self.history,
                current: &self.current,
                tools: &self.definitions,
            };
            let fitted =
                fit(&parts, Some(self.kept)).map_err(|e| ProviderError::ContextTooLong {
                    needed: e.needed,
                    budget: e.budget,
                })?;
            self.kept = (fitted.passages, fitted.history_from);
            self.prompt_fit = Some(fitted.fit);
            if self.system.0 != self.kept.0 {
                let kept = &self.passages[..self.kept.0];
                self.system = (self.kept.0, system_for(kept));
            }
        }
        let history = &self.history[self.kept.1..];
        let mut messages = Vec::with_capacity(history.len() + self.current.len() + 1);
        messages.push(ChatMessage::system(self.system.1.clone()));
        messages.extend_from_slice(history);
        messages.extend_from_slice(&self.current);
        Ok(ChatRequest {
            tenant: self.tenant,
            model: self.agent.model.model().to_owned(),
            messages,
            tools: if last {
                Vec::new()
            } else {
                self.definitions.clone()
            },
            temperature: self.agent.temperature.get(),
            max_tokens: self.agent.max_tokens,
        })
    }

    /// Streams one model call: its text (tokens forwarded as they come) and tool calls.
    async fn model_call(
        &mut self,
        request: ChatRequest,
        events: Option<&UnboundedSender<TurnEvent>>,
    ) -> Result<(String, Vec<ToolCall>), AgentError> {
        let span = telemetry::chat_span(self.agent.model.provider(), &request);
        let mut usage = Usage::default();
        let mut finish = None;
        let streamed = async {
            let mut stream = self.provider.stream(request).await?;
            let mut content = String::new();
            let mut calls: Vec<ToolCall> = Vec::new();
            while let Some(event) = stream.next().await {
                match event? {
                    ModelEvent::Token(text) => {
                        content.push_str(&text);
                        send(events, TurnEvent::Token { text });
                    }
                    ModelEvent::ToolCall(call) => calls.push(call),
                    ModelEvent::Usage(u) => usage += u,
                    ModelEvent::Finished(f) => finish = Some(f),
                    ModelEvent::FellBack(fallback) => self.fallbacks.push(fallback),
                }
            }
            Ok::<_, ProviderError>((content, calls))
        }
        .instrument(span.clone())
        .await;
        self.usage += usage;
        self.truncated = finish == Some(FinishReason::Length);
        telemetry::record_chat(&span, usage, finish);
        if let Err(e) = &streamed {
            telemetry::record_error(&span, e);
        }
        Ok(streamed?)
    }

    /// Runs (or refuses) one call and feeds its outcome back to the model.
    async fn tool_call(&mut self, call: ToolCall, events: Option<&UnboundedSender<TurnEvent>>) {
        let span = telemetry::tool_span(&call.name, &call.id);
        let record = execute(
            self.tenant,
            self.tools,
            &mut self.gate,
            &call,
            self.turn_id,
            events,
        )
        .instrument(span.clone())
        .await;
        match record.status {
            ToolCallStatus::Ok => {}
            ToolCallStatus::Error => telemetry::record_tool_failure(&span, "error"),
            ToolCallStatus::Rejected => telemetry::record_tool_failure(&span, "rejected"),
        }
        if matches!(record.status, ToolCallStatus::Ok | ToolCallStatus::Error) {
            self.executed += 1;
        }
        let fed_back = record.result_summary.clone();
        self.new_messages.push(NewMessage {
            role: ChatRole::Tool,
            content: fed_back.clone(),
            tool_calls: json!([{"call_id": call.id, "connector": record.connector,
                "action": record.action, "status": record.status}]),
            citations: json!([]),
            usage: None,
        });
        self.current
            .push(ChatMessage::tool_result(call.id, fed_back));
        self.records.push(record);
    }

    /// What the turn cites: only the passages the model was shown.
    fn cited(&self) -> Vec<Citation> {
        self.passages[..self.kept.0]
            .iter()
            .map(|p| p.citation.clone())
            .collect()
    }

    /// The finished turn as stored, and as answered.
    fn finish(
        mut self,
        conversation: Uuid,
        new_conversation_title: Option<String>,
        user_id: Option<Uuid>,
        citations: Vec<Citation>,
    ) -> (CommittedTurn, TurnResult) {
        let prompt_fit = self.prompt_fit.filter(PromptFit::trimmed);
        if let Some(fit) = &prompt_fit {
            tracing::info!(
                agent = %self.agent.id.0,
                history_dropped = fit.history_dropped,
                passages_dropped = fit.passages_dropped,
                window = fit.window,
                "prompt fitted into the model's context window"
            );
        }
        self.new_messages.push(NewMessage {
            role: ChatRole::Assistant,
            content: self.reply.clone(),
            tool_calls: json!([]),
            citations: serde_json::to_value(&citations).unwrap_or_else(|_| json!([])),
            usage: Some(self.usage),
        });
        let committed = CommittedTurn {
            agent: self.agent.id,
            conversation,
            new_conversation_title,
            user_id,
            messages: self.new_messages,
            usage: self.usage,
            tool_calls: self.executed,
            prompt_fit,
        };
        let result = TurnResult {
            conversation_id: conversation,
            reply: self.reply,
            citations,
            tool_calls: self.records,
            usage: self.usage,
            prompt_fit,
            fallbacks: self.fallbacks,
            truncated: self.truncated,
        };
        (committed, result)
    }
}

/// Runs one tool call the gate admits (or refuses it) and reports it as events.
async fn execute(
    tenant: TenantId,
    tools: &dyn ToolInvoker,
    gate: &mut ToolGate,
    call: &ToolCall,
    turn_id: Uuid,
    events: Option<&UnboundedSender<TurnEvent>>,
) -> ToolCallRecord {
    let (connector, action) = call_label(&call.name);
    send(
        events,
        TurnEvent::ToolCall {
            id: call.id.clone(),
            connector: connector.to_owned(),
            action: action.to_owned(),
            args: call.arguments.clone(),
        },
    );
    let mut nested = Vec::new();
    let outcome = match gate.admit(call) {
        Ok(admitted) if !admitted.needs_approval => {
            let key = format!("{turn_id}:{}", call.id);
            tools.invoke(tenant, call, &key).await
        }
        // A chat turn cannot pause for a person; approvals belong to durable tasks.
        refused => {
            let why = refused
                .err()
                .unwrap_or_else(|| ToolError::ApprovalRequired(call.name.clone()));
            tools.refused(tenant, call, &why).await;
            Err(why)
        }
    };
    let (status, summary) = match outcome {
        Ok(output) => {
            nested = output.nested;
            (
                ToolCallStatus::Ok,
                json!({"summary": output.summary, "result": output.content}).to_string(),
            )
        }
        Err(e @ ToolError::NotGranted(_)) => {
            (ToolCallStatus::Rejected, Refusal::from(&e).fed_back())
        }
        Err(e) => (ToolCallStatus::Error, Refusal::from(&e).fed_back()),
    };
    send(
        events,
        TurnEvent::ToolResult {
            id: call.id.clone(),
            status,
            summary: summary.clone(),
        },
    );
    ToolCallRecord {
        id: call.id.clone(),
        connector: connector.to_owned(),
        action: action.to_owned(),
        args: call.arguments.clone(),
        status,
        result_summary: summary,
        nested,
    }
}
