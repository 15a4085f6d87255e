//! `RuntimeHandle`: the API the gateway calls. Agent CRUD goes to the store and then to the
//! running actors (so a config change reaches the next turn); chats go through the tree.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use brain_agents::conversation::{Conversation, StoredMessage};
use brain_agents::providers::ToolCall;
use brain_agents::spec::{
    AgentHealth, AgentId, AgentPatch, AgentSpec, DelegateGrant, NewAgent, ToolGrant,
};
use brain_agents::tool::ToolError;
use brain_agents::turn::{TurnEvent, TurnInput, TurnResult};
use brain_auth::TenantId;
use futures::Stream;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use uuid::Uuid;

use crate::agent::{AgentMessage, AgentStatus, TurnResponder, send_counted};
use crate::delegation::{
    DelegationContext, DelegationOutcome, DelegationRequest, DelegationTool, Hop, HopError,
};
use crate::deps::RuntimeDeps;
use crate::directory::AgentDirectory;
use crate::error::RuntimeError;
use crate::supervisor::{RuntimeArgs, RuntimeMessage, RuntimeSupervisor};
use crate::tenant::TenantMessage;

/// A turn's events: tokens, tool calls and results, citations, then `done` or `error`.
pub type TurnEventStream = Pin<Box<dyn Stream<Item = TurnEvent> + Send>>;

/// How long a call into the tree may wait for an actor's answer (not for a turn).
const ACTOR_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The running agent runtime. Cheap to clone.
#[derive(Clone)]
pub struct RuntimeHandle {
    root: ActorRef<RuntimeMessage>,
    deps: Arc<RuntimeDeps>,
    /// Running agent actors, so a chat skips the two calls through the tree.
    directory: Arc<AgentDirectory>,
    /// The tokio runtime the tree was started on.
    home: tokio::runtime::Handle,
}

pub(crate) fn answer<T>(
    result: Result<CallResult<T>, impl std::fmt::Display>,
) -> Result<T, RuntimeError> {
    match result {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(RuntimeError::Unavailable("actor timed out".into())),
        Ok(CallResult::SenderError) => Err(RuntimeError::Unavailable("actor stopped".into())),
        Err(e) => Err(RuntimeError::Unavailable(e.to_string())),
    }
}

impl RuntimeHandle {
    /// Starts the supervision tree.
    pub async fn start(deps: RuntimeDeps) -> Result<Self, RuntimeError> {
        let deps = Arc::new(deps);
        let directory = Arc::new(AgentDirectory::default());
        let args = RuntimeArgs {
            deps: Arc::clone(&deps),
            directory: Arc::clone(&directory),
        };
        let (root, _) = Actor::spawn(None, RuntimeSupervisor, args)
            .await
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        Ok(Self {
            root,
            deps,
            directory,
            home: tokio::runtime::Handle::current(),
        })
    }

    /// Runs `work` on the tree's own tokio runtime. A caller on another runtime (a task
    /// worker started on a runtime of its own) must not open the tree's pooled connections
    /// on its runtime: they would die with it and fail whoever is handed them next.
    async fn at_home<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, RuntimeError>> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        self.home
            .spawn(work)
            .await
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?
    }

    /// Stops every actor (running turn tasks finish on their own).
    pub async fn shutdown(&self) {
        let _ = self
            .root
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
    }

    pub fn deps(&self) -> &Arc<RuntimeDeps> {
        &self.deps
    }

    async fn tenant(&self, tenant: TenantId) -> Result<ActorRef<TenantMessage>, RuntimeError> {
        answer(
            self.root
                .call(
                    |reply| RuntimeMessage::Tenant(tenant, reply),
                    Some(ACTOR_CALL_TIMEOUT),
                )
                .await,
        )?
    }

    async fn agent(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<ActorRef<AgentMessage>, RuntimeError> {
        if let Some(actor) = self.directory.running(tenant, agent) {
            return Ok(actor);
        }
        // A tenant supervisor can stop (idle) between lookup and use; one retry covers it.
        let mut last = None;
        for _ in 0..2 {
            let supervisor = self.tenant(tenant).await?;
            match answer(
                supervisor
                    .call(
                        |reply| TenantMessage::Agent(agent, reply),
                        Some(ACTOR_CALL_TIMEOUT),
                    )
                    .await,
            ) {
                Ok(result) => return result,
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RuntimeError::Unavailable("tenant supervisor".into())))
    }

    /// Hands a stored change to the agent's running actor before returning, so the caller's
    /// next chat (which may go straight to the actor) runs with it; the tenant supervisor is
    /// told too (it clears a degraded mark and reaches an actor still starting).
    async fn config_changed(&self, tenant: TenantId, spec: &AgentSpec) {
        if let Some(actor) = self.directory.running(tenant, spec.id) {
            let _ = send_counted(
                &self.deps,
                &actor,
                AgentMessage::UpdateConfig(Box::new(spec.clone())),
            );
        }
        self.notify_running(tenant, TenantMessage::ConfigChanged(Box::new(spec.clone())))
            .await;
    }

    async fn notify_running(&self, tenant: TenantId, message: TenantMessage) {
        let running = self
            .root
            .call(
                |reply| RuntimeMessage::RunningTenant(tenant, reply),
                Some(ACTOR_CALL_TIMEOUT),
            )
            .await;
        if let Ok(CallResult::Success(Some(supervisor))) = running {
            let _ = supervisor.send_message(message);
        }
    }

    /// One turn, answered when it is complete (and committed).
    pub async fn chat(
        &self,
        tenant: TenantId,
        agent: AgentId,
        input: TurnInput,
    ) -> Result<TurnResult, RuntimeError> {
        let actor = self.agent(tenant, agent).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        send_counted(
            &self.deps,
            &actor,
            AgentMessage::Chat {
                input,
                respond: TurnResponder::Reply(tx.into()),
            },
        )?;
        // No timeout: a turn is bounded by its step limit and the provider's own timeouts.
        rx.await.map_err(|_| RuntimeError::TurnCrashed)?
    }

    /// One turn as a stream of events; the last is `done` (with the full result) or `error`.
    /// Errors before the turn starts (unknown or degraded agent) are returned directly.
    pub async fn chat_stream(
        &self,
        tenant: TenantId,
        agent: AgentId,
        input: TurnInput,
    ) -> Result<TurnEventStream, RuntimeError> {
        let actor = self.agent(tenant, agent).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        send_counted(
            &self.deps,
            &actor,
            AgentMessage::Chat {
                input,
                respond: TurnResponder::Stream(tx),
            },
        )?;
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })))
    }

    /// The agent's live status (version in use, turns running, health).
    pub async fn status(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<AgentStatus, RuntimeError> {
        let supervisor = self.tenant(tenant).await?;
        answer(
            supervisor
                .call(
                    |reply| TenantMessage::Status(agent, reply),
                    Some(ACTOR_CALL_TIMEOUT),
                )
                .await,
        )?
    }

    pub async fn create_agent(
        &self,
        tenant: TenantId,
        input: NewAgent,
    ) -> Result<AgentSpec, RuntimeError> {
        Ok(self.deps.agents.create(tenant, input).await?)
    }

    pub async fn get_agent(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<AgentSpec, RuntimeError> {
        Ok(self.deps.agents.get(tenant, agent).await?)
    }

    pub async fn get_agent_by_slug(
        &self,
        tenant: TenantId,
        slug: &str,
    ) -> Result<AgentSpec, RuntimeError> {
        Ok(self.deps.agents.get_by_slug(tenant, slug).await?)
    }

    pub async fn list_agents(&self, tenant: TenantId) -> Result<Vec<AgentSpec>, RuntimeError> {
        Ok(self.deps.agents.list(tenant).await?)
    }

    /// Stores the change, then hands the new spec to the running actor: the next turn uses it.
    /// A patch to a degraded agent also returns it to service.
    pub async fn update_agent(
        &self,
        tenant: TenantId,
        agent: AgentId,
        patch: AgentPatch,
        expected_version: Option<i32>,
    ) -> Result<AgentSpec, RuntimeError> {
        let mut spec = self
            .deps
            .agents
            .update(tenant, agent, patch, expected_version)
            .await?;
        if spec.status == AgentHealth::Degraded {
            self.deps
                .agents
                .set_health(tenant, agent, AgentHealth::Active)
                .await?;
            spec.status = AgentHealth::Active;
        }
        self.config_changed(tenant, &spec).await;
        Ok(spec)
    }

    /// Replaces the agent's tool grants; revoked ones stop working on the next call.
    pub async fn replace_tools(
        &self,
        tenant: TenantId,
        agent: AgentId,
        tools: Vec<ToolGrant>,
        expected_version: Option<i32>,
    ) -> Result<AgentSpec, RuntimeError> {
        let spec = self
            .deps
            .agents
            .replace_tools(tenant, agent, tools, expected_version)
            .await?;
        self.config_changed(tenant, &spec).await;
        Ok(spec)
    }

    /// Replaces the agent's delegate grants (`PUT /v1/agents/{id}/delegates`); the running
    /// actor's next turn offers the new `ask_<slug>` tools, and a revoked grant fails the very
    /// next delegated call.
    pub async fn replace_delegates(
        &self,
        tenant: TenantId,
        agent: AgentId,
        delegates: Vec<DelegateGrant>,
        expected_version: Option<i32>,
    ) -> Result<AgentSpec, RuntimeError> {
        let spec = self
            .deps
            .agents
            .replace_delegates(tenant, agent, delegates, expected_version)
            .await?;
        self.config_changed(tenant, &spec).await;
        Ok(spec)
    }

    /// The delegation tools `agent` holds now (`ask_<slug>`, with their grants), for plans
    /// made outside a turn (durable tasks) to offer.
    pub async fn delegation_tools(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<Vec<DelegationTool>, RuntimeError> {
        let deps = Arc::clone(&self.deps);
        self.at_home(async move {
            // 404 for an unknown agent rather than an empty list.
            deps.agents.get(tenant, agent).await?;
            Ok(deps
                .agents
                .delegate_targets(tenant, agent)
                .await?
                .iter()
                .map(DelegationTool::from_target)
                .collect())
        })
        .await
    }

    /// `request.from` asks `request.target` outside a chat turn (a durable task's step): the
    /// same path and checks as an `ask_<slug>` call, with a chain starting at `from` and a
    /// fresh budget of delegated calls. A refusal is `RuntimeError::Agent(AgentError::Tool(_))`
    /// with a code such as `tool_not_granted`, `delegation_cycle`, `approval_required`
    /// (unless `request.approved`), `tool_call_limit` or `delegation_limit`; a failure of the
    /// target's turn is that turn's error.
    pub async fn delegate(
        &self,
        tenant: TenantId,
        request: DelegationRequest,
    ) -> Result<DelegationOutcome, RuntimeError> {
        let this = self.clone();
        self.at_home(async move { this.delegate_here(tenant, request).await })
            .await
    }

    async fn delegate_here(
        &self,
        tenant: TenantId,
        request: DelegationRequest,
    ) -> Result<DelegationOutcome, RuntimeError> {
        if request.question.trim().is_empty() {
            return Err(
                brain_agents::AgentError::Validation(brain_agents::FieldError::new(
                    "question",
                    "must not be empty",
                ))
                .into(),
            );
        }
        let caller = self.deps.agents.get(tenant, request.from).await?;
        let supervisor = self.tenant(tenant).await?;
        let context = DelegationContext::root(&caller, self.deps.config.delegation);
        crate::delegation::hop(
            &self.deps,
            &supervisor,
            Hop {
                tenant,
                context: &context,
                target: request.target,
                label: format!("agent {}", request.target),
                question: request.question,
                extra: request.context,
                approved: request.approved,
                calls_to_target: request.prior_calls.saturating_add(1),
                run_grant: request.run_grant,
            },
        )
        .await
        .map_err(HopError::into_runtime_error)
    }

    /// Audits a delegation that a durable task's gate refused before it reached the runtime
    /// (over the grant's per-run limit, arguments not an object) as `agent.delegate`, as chat
    /// audits its own. A call that names no agent of the tenant asked no one and is not
    /// audited.
    pub async fn audit_refused_delegation(
        &self,
        tenant: TenantId,
        from: AgentId,
        call: &ToolCall,
        why: &ToolError,
    ) -> Result<(), RuntimeError> {
        let Some(slug) = brain_agents::tool::delegate_target(&call.name) else {
            return Ok(());
        };
        let target = match self.deps.agents.get_by_slug(tenant, slug).await {
            Ok(target) => target,
            Err(brain_agents::AgentError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let caller = self.deps.agents.get(tenant, from).await?;
        let context = DelegationContext::root(&caller, self.deps.config.delegation);
        crate::delegation::refused_call(&self.deps, tenant, &context, target.id, call, why).await
    }

    pub async fn delete_agent(&self, tenant: TenantId, agent: AgentId) -> Result<(), RuntimeError> {
        self.deps.agents.delete(tenant, agent).await?;
        self.directory.forget(agent);
        self.notify_running(tenant, TenantMessage::AgentDeleted(agent))
            .await;
        Ok(())
    }

    pub async fn list_conversations(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<Vec<Conversation>, RuntimeError> {
        // 404 for an agent of another tenant rather than an empty list.
        self.deps.agents.get(tenant, agent).await?;
        Ok(self
            .deps
            .conversations
            .list_conversations(tenant, agent)
            .await?)
    }

    pub async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Result<Vec<StoredMessage>, RuntimeError> {
        Ok(self
            .deps
            .conversations
            .list_messages(tenant, conversation)
            .await?)
    }

    /// Tenant supervisors running now.
    pub async fn running_tenants(&self) -> Result<usize, RuntimeError> {
        answer(
            self.root
                .call(RuntimeMessage::TenantCount, Some(ACTOR_CALL_TIMEOUT))
                .await,
        )
    }
}
