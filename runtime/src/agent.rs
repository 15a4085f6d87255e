//! `AgentActor`: one per running agent. Holds the agent's spec (replaced live on config
//! updates) and starts each turn as its own task, so status and config messages are answered
//! while a turn waits on the model or a tool. A turn that panics fails the actor, which its
//! tenant supervisor restarts; committed turns are in Postgres, so nothing is lost.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use brain_agents::providers::fallback::ModelChain;
use brain_agents::spec::{AgentHealth, AgentId, AgentSpec};
use brain_agents::tool::metric_labels;
use brain_agents::turn::{ToolCallStatus, TurnContext, TurnEvent, TurnInput, TurnResult};
use brain_agents::{AgentError, run_turn};
use brain_auth::{ErrorCode, TenantId};
use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

use crate::delegation::{DelegationContext, turn_tools};
use crate::deps::RuntimeDeps;
use crate::directory::TenantLoad;
use crate::error::RuntimeError;
use crate::metrics::{GaugeGuard, RuntimeMetrics};
use crate::tenant::TenantMessage;

/// Who hears how a turn ends.
pub enum TurnResponder {
    /// The whole result, once.
    Reply(RpcReplyPort<Result<TurnResult, RuntimeError>>),
    /// Every event, ending with `done` or `error`.
    Stream(UnboundedSender<TurnEvent>),
}

pub enum AgentMessage {
    Chat {
        input: TurnInput,
        respond: TurnResponder,
    },
    /// Another agent asks this one (see `delegation.rs`): a turn of this agent's own, which
    /// carries the chain so far so that its own delegations are checked against it.
    Delegate {
        input: TurnInput,
        context: DelegationContext,
        respond: TurnResponder,
    },
    /// The stored spec changed; the next turn uses it.
    UpdateConfig(Box<AgentSpec>),
    Status(RpcReplyPort<AgentStatus>),
    /// A turn task ended; `panic` carries the message when it panicked.
    TurnFinished {
        conversation: Option<Uuid>,
        panic: Option<String>,
    },
}

/// What `GetStatus` reports about a running agent (the `runtime` of `GET /v1/agents/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentStatus {
    pub agent_id: AgentId,
    pub health: AgentHealth,
    /// Whether an actor is running for the agent right now.
    pub running: bool,
    /// The spec version the actor runs.
    pub version: i32,
    pub model: String,
    pub temperature: f32,
    pub turns_in_progress: usize,
    /// Turns waiting for an earlier turn of the same conversation.
    pub turns_queued: usize,
    pub turns_completed: u64,
    /// Restarts within the supervisor's current window.
    pub recent_restarts: usize,
}

pub struct AgentActor;

pub struct AgentArgs {
    pub tenant: TenantId,
    pub spec: AgentSpec,
    pub deps: Arc<RuntimeDeps>,
    /// The tenant's turn counters (its supervisor stays up while a turn runs).
    pub tenant_load: Arc<TenantLoad>,
    /// The tenant supervisor, through which delegations reach other agents; `None` for an
    /// actor started on its own (benchmarks), which then cannot delegate.
    pub tenant_supervisor: Option<ActorRef<TenantMessage>>,
}

pub struct AgentState {
    _running: GaugeGuard,
    tenant: TenantId,
    spec: Arc<AgentSpec>,
    deps: Arc<RuntimeDeps>,
    tenant_load: Arc<TenantLoad>,
    tenant_supervisor: Option<ActorRef<TenantMessage>>,
    in_progress: usize,
    /// Conversations with a running turn, and the turns waiting behind it: turns of one
    /// conversation run one after another so each sees the previous one's messages (what a
    /// per-conversation actor would give, without an actor per conversation).
    conversations: HashMap<Uuid, VecDeque<(TurnInput, TurnResponder)>>,
    completed: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("a turn panicked: {0}")]
struct TurnPanicked(String);

impl Actor for AgentActor {
    type Msg = AgentMessage;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: AgentArgs,
    ) -> Result<AgentState, ActorProcessingErr> {
        Ok(AgentState {
            _running: GaugeGuard::new(&args.deps.metrics.agents_running),
            tenant: args.tenant,
            spec: Arc::new(args.spec),
            deps: args.deps,
            tenant_load: args.tenant_load,
            tenant_supervisor: args.tenant_supervisor,
            in_progress: 0,
            conversations: HashMap::new(),
            completed: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: AgentMessage,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        state.deps.metrics.mailbox_depth.dec();
        match message {
            AgentMessage::Chat { input, respond } => {
                if let Some(conversation) = input.conversation_id {
                    if let Some(waiting) = state.conversations.get_mut(&conversation) {
                        waiting.push_back((input, respond));
                        return Ok(());
                    }
                    state.conversations.insert(conversation, VecDeque::new());
                }
                start_turn(myself, state, input, respond, None);
            }
            AgentMessage::Delegate {
                input,
                context,
                respond,
            } => {
                // A delegated question is a new conversation of this agent: nothing to queue.
                start_turn(myself, state, input, respond, Some(context));
            }
            AgentMessage::UpdateConfig(spec) => {
                // Updates can race (two PATCHes); never go back to an older version.
                if spec.version >= state.spec.version {
                    state.spec = Arc::new(*spec);
                }
            }
            AgentMessage::Status(reply) => {
                let _ = reply.send(AgentStatus {
                    agent_id: state.spec.id,
                    health: AgentHealth::Active,
                    running: true,
                    version: state.spec.version,
                    model: state.spec.model.to_string(),
                    temperature: state.spec.temperature.get(),
                    turns_in_progress: state.in_progress,
                    turns_queued: state.conversations.values().map(VecDeque::len).sum(),
                    turns_completed: state.completed,
                    recent_restarts: 0,
                });
            }
            AgentMessage::TurnFinished {
                conversation,
                panic,
            } => {
                state.in_progress = state.in_progress.saturating_sub(1);
                state.completed += 1;
                if let Some(message) = panic {
                    // Fail the actor so the supervisor restarts it from the stored spec.
                    // Turns queued behind it are dropped; their callers see the crash.
                    return Err(Box::new(TurnPanicked(message)));
                }
                if let Some(conversation) = conversation {
                    let next = state
                        .conversations
                        .get_mut(&conversation)
                        .and_then(VecDeque::pop_front);
                    match next {
                        Some((input, respond)) => {
                            start_turn(myself, state, input, respond, None);
                        }
                        None => {
                            state.conversations.remove(&conversation);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Sends `message` to an agent actor, counting it in the mailbox-depth gauge.
pub(crate) fn send_counted(
    deps: &RuntimeDeps,
    actor: &ActorRef<AgentMessage>,
    message: AgentMessage,
) -> Result<(), RuntimeError> {
    deps.metrics.mailbox_depth.inc();
    actor.send_message(message).map_err(|e| {
        deps.metrics.mailbox_depth.dec();
        RuntimeError::Unavailable(e.to_string())
    })
}

/// A finished turn in the metrics: tokens, and each tool call by connector, action and outcome.
fn count_turn(metrics: &RuntimeMetrics, result: &TurnResult) {
    metrics.turns.with_label_values(&["ok"]).inc();
    metrics
        .tokens
        .with_label_values(&["in"])
        .inc_by(result.usage.prompt_tokens);
    metrics
        .tokens
        .with_label_values(&["out"])
        .inc_by(result.usage.completion_tokens);
    for fallback in &result.fallbacks {
        metrics
            .model_fallbacks
            .with_label_values(&[fallback.code.as_str()])
            .inc();
    }
    for call in &result.tool_calls {
        let outcome = match call.status {
            ToolCallStatus::Ok => "ok",
            ToolCallStatus::Error => "error",
            ToolCallStatus::Rejected => "rejected",
        };
        let (connector, action) = metric_labels(&call.connector, &call.action);
        metrics
            .tool_calls
            .with_label_values(&[connector, action, outcome])
            .inc();
    }
}

/// What a panic said, if it said it with a string.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Hands a turn's outcome to whoever asked: the reply port, or the stream's last event.
fn answer(respond: TurnResponder, result: Result<TurnResult, RuntimeError>) {
    match respond {
        TurnResponder::Reply(port) => {
            let _ = port.send(result);
        }
        TurnResponder::Stream(tx) => {
            let last = match result {
                Ok(result) => TurnEvent::Done(result),
                Err(e) => TurnEvent::Error {
                    code: e.code().as_str().to_owned(),
                    message: e.to_string(),
                },
            };
            let _ = tx.send(last);
        }
    }
}

fn start_turn(
    myself: ActorRef<AgentMessage>,
    state: &mut AgentState,
    input: TurnInput,
    respond: TurnResponder,
    delegation: Option<DelegationContext>,
) {
    state.in_progress += 1;
    state.tenant_load.turn_started();
    let conversation = input.conversation_id;
    let tenant = state.tenant;
    let spec = Arc::clone(&state.spec);
    let deps = Arc::clone(&state.deps);
    let tenant_load = Arc::clone(&state.tenant_load);
    let supervisor = state.tenant_supervisor.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let events = match &respond {
            TurnResponder::Stream(tx) => Some(tx.clone()),
            TurnResponder::Reply(_) => None,
        };
        let turn = async {
            let provider = ModelChain::new(&deps.providers, &spec.model, &spec.fallback_models)
                .map_err(AgentError::from)?
                .into_provider();
            let tools = deps.tools.tools_for(tenant, &spec).await?;
            let tools =
                turn_tools(&deps, supervisor.as_ref(), tenant, &spec, delegation, tools).await?;
            let ctx = TurnContext {
                tenant,
                agent: &spec,
                provider,
                tools: tools.as_ref(),
                retriever: deps.retriever.as_deref(),
                store: deps.turns.as_ref(),
                limits: deps.config.turn_limits,
            };
            run_turn(ctx, input, events.as_ref()).await
        };
        // The turn is the unit of failure: a panic anywhere inside it (provider, tool,
        // loop) is caught here, reported, and turned into an actor failure below.
        let outcome = AssertUnwindSafe(turn).catch_unwind().await;
        let metrics = &deps.metrics;
        metrics
            .turn_latency
            .observe(started.elapsed().as_secs_f64());
        let (result, panic) = match outcome {
            Ok(Ok(result)) => {
                count_turn(metrics, &result);
                (Ok(result), None)
            }
            Ok(Err(e)) => {
                metrics.turns.with_label_values(&["error"]).inc();
                (Err(RuntimeError::Agent(e)), None)
            }
            Err(payload) => {
                metrics.turns.with_label_values(&["crashed"]).inc();
                let message = panic_message(payload.as_ref());
                tracing::error!(%tenant, agent = %spec.id, %message, "agent turn panicked");
                (Err(RuntimeError::TurnCrashed), Some(message))
            }
        };
        answer(respond, result);
        // Counted here, not in the actor: the actor may be gone by now (agent deleted).
        tenant_load.turn_finished();
        deps.metrics.mailbox_depth.inc();
        if myself
            .send_message(AgentMessage::TurnFinished {
                conversation,
                panic,
            })
            .is_err()
        {
            deps.metrics.mailbox_depth.dec();
        }
    });
}
