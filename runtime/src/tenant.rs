//! `TenantSupervisor`: one per active tenant, started on its first request and stopped after
//! an idle timeout. Starts its agents' actors lazily, forwards config changes to them, and
//! restarts a failed agent with exponential back-off, marking it `degraded` after too many
//! failures within a window.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brain_agents::AgentError;
use brain_agents::spec::{AgentHealth, AgentId, AgentSpec};
use brain_auth::TenantId;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::task::JoinHandle;

use crate::agent::{AgentActor, AgentArgs, AgentMessage, AgentStatus, send_counted};
use crate::deps::RuntimeDeps;
use crate::directory::{AgentDirectory, TenantLoad, alive};
use crate::error::RuntimeError;
use crate::metrics::GaugeGuard;

pub enum TenantMessage {
    /// The running actor of an agent, started if needed.
    Agent(
        AgentId,
        RpcReplyPort<Result<ActorRef<AgentMessage>, RuntimeError>>,
    ),
    /// An agent's stored spec changed (or its health was reset).
    ConfigChanged(Box<AgentSpec>),
    AgentDeleted(AgentId),
    Status(AgentId, RpcReplyPort<Result<AgentStatus, RuntimeError>>),
    /// Back-off elapsed: start the failed agent again.
    Restart(AgentId),
    IdleCheck,
}

pub struct TenantSupervisor;

pub struct TenantArgs {
    pub tenant: TenantId,
    pub deps: Arc<RuntimeDeps>,
    pub directory: Arc<AgentDirectory>,
}

#[derive(Default)]
struct AgentEntry {
    actor: Option<ActorRef<AgentMessage>>,
    failures: VecDeque<Instant>,
    degraded: bool,
    restart_pending: bool,
}

pub struct TenantState {
    _running: GaugeGuard,
    tenant: TenantId,
    deps: Arc<RuntimeDeps>,
    agents: HashMap<AgentId, AgentEntry>,
    by_actor: HashMap<ActorId, AgentId>,
    directory: Arc<AgentDirectory>,
    load: Arc<TenantLoad>,
    /// `load.started()` at the last idle check: turns sent straight to an actor are activity.
    seen_started: u64,
    last_activity: Instant,
    idle_timer: Option<JoinHandle<()>>,
}

impl TenantState {
    async fn start_agent(
        &mut self,
        myself: &ActorRef<TenantMessage>,
        spec: AgentSpec,
    ) -> Result<ActorRef<AgentMessage>, RuntimeError> {
        let id = spec.id;
        let (actor, _) = myself
            .get_cell()
            .spawn_linked(
                None,
                AgentActor,
                AgentArgs {
                    tenant: self.tenant,
                    spec,
                    deps: Arc::clone(&self.deps),
                    tenant_load: Arc::clone(&self.load),
                    tenant_supervisor: Some(myself.clone()),
                },
            )
            .await
            .map_err(|e| RuntimeError::Unavailable(format!("starting agent: {e}")))?;
        self.by_actor.insert(actor.get_id(), id);
        self.directory.insert(self.tenant, id, actor.clone());
        let entry = self.agents.entry(id).or_default();
        entry.actor = Some(actor.clone());
        entry.restart_pending = false;
        Ok(actor)
    }

    fn prune(&mut self, id: AgentId) -> usize {
        let window = self.deps.config.restart_window;
        let entry = self.agents.entry(id).or_default();
        while entry.failures.front().is_some_and(|t| t.elapsed() > window) {
            entry.failures.pop_front();
        }
        entry.failures.len()
    }
}

impl Actor for TenantSupervisor {
    type Msg = TenantMessage;
    type State = TenantState;
    type Arguments = TenantArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: TenantArgs,
    ) -> Result<TenantState, ActorProcessingErr> {
        let timer = myself.send_interval(args.deps.config.idle_check_interval, || {
            TenantMessage::IdleCheck
        });
        Ok(TenantState {
            _running: GaugeGuard::new(&args.deps.metrics.tenants_running),
            tenant: args.tenant,
            deps: args.deps,
            agents: HashMap::new(),
            by_actor: HashMap::new(),
            directory: args.directory,
            load: Arc::new(TenantLoad::default()),
            seen_started: 0,
            last_activity: Instant::now(),
            idle_timer: Some(timer),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        for (actor, agent) in state.by_actor.drain() {
            state.directory.remove(agent, actor);
        }
        // Wait for the agents to stop cleanly; once we exit, the library kills what is left.
        myself
            .stop_children_and_wait(
                Some("tenant supervisor stopped".into()),
                Some(Duration::from_secs(5)),
            )
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: TenantMessage,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(message, TenantMessage::IdleCheck) {
            state.last_activity = Instant::now();
        }
        match message {
            TenantMessage::Agent(id, reply) => {
                let result = agent_ref(&myself, state, id).await;
                let _ = reply.send(result);
            }
            TenantMessage::ConfigChanged(spec) => {
                let entry = state.agents.entry(spec.id).or_default();
                if spec.status == AgentHealth::Active && entry.degraded {
                    // An admin fixed (or retried) the agent: give it a fresh window.
                    entry.degraded = false;
                    entry.failures.clear();
                }
                if let Some(actor) = &entry.actor {
                    let _ = send_counted(&state.deps, actor, AgentMessage::UpdateConfig(spec));
                }
            }
            TenantMessage::AgentDeleted(id) => {
                if let Some(entry) = state.agents.remove(&id)
                    && let Some(actor) = entry.actor
                {
                    state.by_actor.remove(&actor.get_id());
                    state.directory.remove(id, actor.get_id());
                    actor.stop(Some("agent deleted".into()));
                }
            }
            TenantMessage::Status(id, reply) => {
                let result = status(state, id).await;
                let _ = reply.send(result);
            }
            TenantMessage::Restart(id) => {
                let wanted = state
                    .agents
                    .get(&id)
                    .is_some_and(|e| e.restart_pending && e.actor.is_none() && !e.degraded);
                if wanted {
                    match state.deps.agents.get(state.tenant, id).await {
                        Ok(spec) => {
                            if let Err(e) = state.start_agent(&myself, spec).await {
                                tracing::error!(tenant = %state.tenant, agent = %id, error = %e, "restart failed");
                            } else {
                                state.deps.metrics.actor_restarts.inc();
                            }
                        }
                        // Deleted meanwhile, or the database is away: the next request retries.
                        Err(e) => {
                            tracing::warn!(tenant = %state.tenant, agent = %id, error = %e, "restart skipped");
                            if let Some(entry) = state.agents.get_mut(&id) {
                                entry.restart_pending = false;
                            }
                        }
                    }
                }
            }
            TenantMessage::IdleCheck => {
                let started = state.load.started();
                if started != state.seen_started {
                    state.seen_started = started;
                    state.last_activity = Instant::now();
                }
                let idle = state.last_activity.elapsed() >= state.deps.config.tenant_idle_timeout
                    && state.load.running() == 0;
                if idle {
                    tracing::debug!(tenant = %state.tenant, "tenant idle; stopping its actors");
                    myself.stop(Some("idle".into()));
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(id) = state.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                state.directory.remove(id, cell.get_id());
                let entry = state.agents.entry(id).or_default();
                // A request may already have replaced a dead actor; keep the replacement.
                let replaced = entry
                    .actor
                    .as_ref()
                    .is_some_and(|a| a.get_id() != cell.get_id());
                if !replaced {
                    entry.actor = None;
                }
                entry.failures.push_back(Instant::now());
                let failures = state.prune(id);
                tracing::warn!(tenant = %state.tenant, agent = %id, %error, failures, "agent actor failed");
                if failures > state.deps.config.max_restarts {
                    let entry = state.agents.entry(id).or_default();
                    entry.degraded = true;
                    entry.restart_pending = false;
                    // Recorded off the mailbox: the database may be slow.
                    let deps = Arc::clone(&state.deps);
                    let tenant = state.tenant;
                    tokio::spawn(async move {
                        if let Err(e) = deps
                            .agents
                            .set_health(tenant, id, AgentHealth::Degraded)
                            .await
                        {
                            tracing::error!(%tenant, agent = %id, error = %e, "could not mark agent degraded");
                        }
                    });
                    tracing::error!(tenant = %state.tenant, agent = %id, "agent degraded after repeated failures");
                } else if !replaced {
                    let exp = u32::try_from(failures.saturating_sub(1))
                        .unwrap_or(u32::MAX)
                        .min(16);
                    let delay = state
                        .deps
                        .config
                        .restart_backoff
                        .saturating_mul(1u32 << exp)
                        .min(state.deps.config.restart_backoff_max);
                    if let Some(entry) = state.agents.get_mut(&id) {
                        entry.restart_pending = true;
                    }
                    myself.send_after(delay, move || TenantMessage::Restart(id));
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                let Some(id) = state.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                state.directory.remove(id, cell.get_id());
                if let Some(entry) = state.agents.get_mut(&id)
                    && entry
                        .actor
                        .as_ref()
                        .is_some_and(|a| a.get_id() == cell.get_id())
                {
                    entry.actor = None;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn agent_ref(
    myself: &ActorRef<TenantMessage>,
    state: &mut TenantState,
    id: AgentId,
) -> Result<ActorRef<AgentMessage>, RuntimeError> {
    if let Some(entry) = state.agents.get(&id) {
        if entry.degraded {
            return Err(AgentError::Degraded.into());
        }
        if let Some(actor) = entry.actor.as_ref().filter(|a| alive(a)) {
            return Ok(actor.clone());
        }
    }
    // A short indexed read; LLM and tool work never happens on this mailbox.
    let spec = state.deps.agents.get(state.tenant, id).await?;
    if spec.status == AgentHealth::Degraded {
        state.agents.entry(id).or_default().degraded = true;
        return Err(AgentError::Degraded.into());
    }
    state.start_agent(myself, spec).await
}

async fn status(state: &mut TenantState, id: AgentId) -> Result<AgentStatus, RuntimeError> {
    let recent = state.prune(id);
    let entry = state.agents.get(&id);
    if let Some(actor) = entry.and_then(|e| e.actor.as_ref()) {
        state.deps.metrics.mailbox_depth.inc();
        let answer = actor
            .call(AgentMessage::Status, Some(Duration::from_secs(5)))
            .await;
        if let Ok(ractor::rpc::CallResult::Success(mut status)) = answer {
            status.recent_restarts = recent;
            return Ok(status);
        }
        state.deps.metrics.mailbox_depth.dec();
    }
    // Not running: report the stored agent.
    let degraded = entry.is_some_and(|e| e.degraded);
    let spec = state.deps.agents.get(state.tenant, id).await?;
    Ok(AgentStatus {
        agent_id: id,
        health: if degraded {
            AgentHealth::Degraded
        } else {
            spec.status
        },
        running: false,
        version: spec.version,
        model: spec.model.to_string(),
        temperature: spec.temperature.get(),
        turns_in_progress: 0,
        turns_queued: 0,
        turns_completed: 0,
        recent_restarts: recent,
    })
}
