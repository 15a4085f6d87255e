//! The turn loop: one user message in, a reply out. Builds the prompt, calls the model,
//! executes the tool calls the agent holds handles for, feeds results back, enforces the
//! step limit and the daily token budget, and persists the finished turn.

use std::sync::Arc;

use brain_auth::TenantId;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

use crate::conversation::{CommittedTurn, NewMessage, TurnStore};
use crate::error::{AgentError, ProviderError};
use crate::fit::{PromptFit, PromptParts, fit};
use crate::knowledge::{Citation, Passage, Retriever};
use crate::policy::{Refusal, ToolGate, check_budgets};
use crate::prompt::system_prompt;
use crate::providers::{
    ChatMessage, ChatRequest, ChatRole, LlmProvider, ModelEvent, ToolCall, Usage,
};
use crate::spec::AgentSpec;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub connector: String,
    pub action: String,
    pub args: serde_json::Value,
    pub status: ToolCallStatus,
    pub result_summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<ToolCallRecord>,
}

/// The finished turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnResult {
    pub conversation_id: Uuid,
    pub reply: String,
    pub citations: Vec<Citation>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Usage,
    /// Set when the conversation outgrew the model's context window: what was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_fit: Option<PromptFit>,
}

/// What a turn streams, in order: tokens, tool calls and their results, citations, then
/// exactly one `done` or `error` (sent by whoever runs the turn).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    Token {
        text: String,
    },
    ToolCall {
        id: String,
        connector: String,
        action: String,
        args: serde_json::Value,
    },
    ToolResult {
        id: String,
        status: ToolCallStatus,
        summary: String,
    },
    Citation(Citation),
    Done(TurnResult),
    Error {
        code: String,
        message: String,
    },
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

/// Tool calls and their outcomes, counted for usage and metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToolCallCounts {
    pub ok: u64,
    pub error: u64,
    pub rejected: u64,
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
    let TurnContext {
        tenant,
        agent,
        provider,
        tools,
        retriever,
        store,
        limits,
    } = ctx;
    if input.message.trim().is_empty() {
        return Err(crate::error::FieldError::new("message", "must not be empty").into());
    }
    check_budgets(store, tenant, agent).await?;
    let (conversation, history, new_title) = match input.conversation_id {
        Some(id) => {
            store.check_conversation(tenant, agent.id, id).await?;
            let history = store.history(tenant, id, limits.history_messages).await?;
            (id, history, None)
        }
        None => {
            let title: String = input.message.chars().take(80).collect();
            (Uuid::now_v7(), Vec::new(), Some(title))
        }
    };

    let passages: Vec<Passage> = match retriever {
        Some(r) if !agent.knowledge_collections.is_empty() && limits.knowledge_passages > 0 => {
            crate::knowledge::retrieve(
                r,
                tenant,
                &agent.knowledge_collections,
                &input.message,
                limits.knowledge_passages,
            )
            .await?
        }
        _ => Vec::new(),
    };

    let definitions = tools.definitions();
    let mut gate = ToolGate::new(tools.rules());
    let window = provider.context_window(agent.model.model());
    let system_for = |passages: &[Passage]| system_prompt(agent, &definitions, passages);
    // The system prompt with the passages kept, rebuilt only when fitting drops one.
    let mut system = (passages.len(), system_for(&passages));
    // This turn's messages: the user's, then the model's calls and their results.
    let mut current = vec![ChatMessage::user(input.message.clone())];
    // What fitting kept (passages, first history message), and how.
    let mut kept = (passages.len(), 0);
    let mut prompt_fit: Option<PromptFit> = None;

    let turn_id = Uuid::now_v7();
    let mut new_messages = vec![NewMessage {
        role: ChatRole::User,
        content: input.message.clone(),
        tool_calls: json!([]),
        citations: json!([]),
        usage: None,
    }];
    let mut usage = Usage::default();
    let mut records: Vec<ToolCallRecord> = Vec::new();
    let mut counts = ToolCallCounts::default();
    let mut reply = String::new();

    let outcome: Result<(), AgentError> = async {
        for step in 0..limits.max_steps.max(1) {
            let last = step + 1 >= limits.max_steps.max(1);
            if let Some(window) = window {
                let parts = PromptParts {
                    window,
                    reply_tokens: agent.max_tokens as usize,
                    system: &system_for,
                    passages: &passages,
                    history: &history,
                    current: &current,
                    tools: &definitions,
                };
                let fitted =
                    fit(&parts, Some(kept)).map_err(|e| ProviderError::ContextTooLong {
                        needed: e.needed,
                        budget: e.budget,
                    })?;
                kept = (fitted.passages, fitted.history_from);
                prompt_fit = Some(fitted.fit);
                if system.0 != kept.0 {
                    system = (kept.0, system_for(&passages[..kept.0]));
                }
            }
            let mut messages = Vec::with_capacity(history.len() - kept.1 + current.len() + 1);
            messages.push(ChatMessage::system(system.1.clone()));
            messages.extend_from_slice(&history[kept.1..]);
            messages.extend_from_slice(&current);
            let request = ChatRequest {
                tenant,
                model: agent.model.model().to_owned(),
                messages,
                tools: if last {
                    Vec::new()
                } else {
                    definitions.clone()
                },
                temperature: agent.temperature.get(),
                max_tokens: agent.max_tokens,
            };
            let mut stream = provider.stream(request).await?;
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
                    ModelEvent::Finished(_) => {}
                }
            }
            if calls.is_empty() {
                reply = content;
                return Ok(());
            }
            let assistant = ChatMessage {
                role: ChatRole::Assistant,
                content: content.clone(),
                tool_calls: calls.clone(),
                tool_call_id: None,
            };
            new_messages.push(NewMessage {
                role: ChatRole::Assistant,
                content,
                tool_calls: serde_json::to_value(&calls).unwrap_or_else(|_| json!([])),
                citations: json!([]),
                usage: None,
            });
            current.push(assistant);
            for call in calls {
                let record = execute(tenant, tools, &mut gate, &call, turn_id, events).await;
                match record.status {
                    ToolCallStatus::Ok => counts.ok += 1,
                    ToolCallStatus::Error => counts.error += 1,
                    ToolCallStatus::Rejected => counts.rejected += 1,
                }
                let fed_back = record.result_summary.clone();
                new_messages.push(NewMessage {
                    role: ChatRole::Tool,
                    content: fed_back.clone(),
                    tool_calls: json!([{"call_id": call.id, "connector": record.connector,
                        "action": record.action, "status": record.status}]),
                    citations: json!([]),
                    usage: None,
                });
                current.push(ChatMessage::tool_result(call.id.clone(), fed_back));
                records.push(record);
            }
        }
        Ok(())
    }
    .await;

    let executed = counts.ok + counts.error;
    if let Err(e) = outcome {
        // Tokens were spent even though the turn failed; the budget must see them.
        if usage.total() > 0 || executed > 0 {
            store
                .record_usage(tenant, agent.id, usage, executed)
                .await?;
        }
        return Err(e);
    }

    // Only what the model was shown is cited.
    let citations: Vec<Citation> = passages[..kept.0]
        .iter()
        .map(|p| p.citation.clone())
        .collect();
    let prompt_fit = prompt_fit.filter(PromptFit::trimmed);
    if let Some(fit) = &prompt_fit {
        tracing::info!(
            agent = %agent.id.0,
            history_dropped = fit.history_dropped,
            passages_dropped = fit.passages_dropped,
            window = fit.window,
            "prompt fitted into the model's context window"
        );
    }
    for c in &citations {
        send(events, TurnEvent::Citation(c.clone()));
    }
    new_messages.push(NewMessage {
        role: ChatRole::Assistant,
        content: reply.clone(),
        tool_calls: json!([]),
        citations: serde_json::to_value(&citations).unwrap_or_else(|_| json!([])),
        usage: Some(usage),
    });
    store
        .commit_turn(
            tenant,
            &CommittedTurn {
                agent: agent.id,
                conversation,
                new_conversation_title: new_title,
                user_id: input.user_id,
                messages: new_messages,
                usage,
                tool_calls: executed,
                prompt_fit,
            },
        )
        .await?;
    Ok(TurnResult {
        conversation_id: conversation,
        reply,
        citations,
        tool_calls: records,
        usage,
        prompt_fit,
    })
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
        // A chat turn cannot pause for a person; approvals belong to durable tasks.
        Ok(admitted) if admitted.needs_approval => {
            Err(ToolError::ApprovalRequired(call.name.clone()))
        }
        Ok(_) => {
            let key = format!("{turn_id}:{}", call.id);
            tools.invoke(tenant, call, &key).await
        }
        Err(refused) => Err(refused),
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
