//! Delegation between agents. An agent's delegate grants become `ask_<slug>` tools; calling
//! one runs the target agent's own turn (its spec, tools, knowledge and its own delegates)
//! through the supervision tree — tenant supervisor, then the target's `AgentActor` — and
//! returns its answer. Every check lives here, in the runtime, not in a prompt: a fresh grant,
//! no cycles, bounded depth, a budget of delegated calls per root turn, each grant's
//! `max_calls_per_run`, and approvals. Each hop (refused or not) is audited.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use brain_agents::providers::{ToolCall, ToolDefinition, Usage};
use brain_agents::spec::{AgentId, AgentSpec, Approval, DelegateGrant, DelegateTarget};
use brain_agents::tool::{ToolError, ToolInvoker, ToolOutput, delegate_tool_name};
use brain_agents::turn::{ToolCallRecord, TurnInput, TurnResult};
use brain_agents::{AgentError, AgentStore, ToolRules};
use brain_auth::audit::{self, AuditEvent};
use brain_auth::{Code, ErrorCode, TenantId};
use ractor::ActorRef;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::agent::{AgentMessage, TurnResponder, send_counted};
use crate::deps::RuntimeDeps;
use crate::error::RuntimeError;
use crate::tenant::TenantMessage;

/// How far delegation may go from one root turn.
#[derive(Clone, Copy, Debug)]
pub struct DelegationLimits {
    /// Hops from the root agent (A→B→C→D is 3).
    pub max_depth: usize,
    /// Delegated calls in the whole tree of one root turn (or one [`DelegationRequest`]).
    pub max_calls_per_turn: u32,
}

impl Default for DelegationLimits {
    fn default() -> Self {
        Self {
            max_depth: 3,
            max_calls_per_turn: 12,
        }
    }
}

/// One agent on a delegation chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    pub agent: AgentId,
    pub slug: String,
}

/// What travels with a delegated turn: the agents from the root turn's agent to the current
/// one, and the delegated calls the root turn may still make (shared by every hop below it).
#[derive(Clone, Debug)]
pub struct DelegationContext {
    chain: Vec<ChainLink>,
    remaining: Arc<AtomicU32>,
    max_calls: u32,
}

impl DelegationContext {
    /// The context of a root turn of `agent`.
    pub(crate) fn root(agent: &AgentSpec, limits: DelegationLimits) -> Self {
        Self {
            chain: vec![ChainLink {
                agent: agent.id,
                slug: agent.slug.to_string(),
            }],
            remaining: Arc::new(AtomicU32::new(limits.max_calls_per_turn)),
            max_calls: limits.max_calls_per_turn,
        }
    }

    /// Root agent first, the agent running the turn last.
    pub fn chain(&self) -> &[ChainLink] {
        &self.chain
    }

    fn caller(&self) -> Option<&ChainLink> {
        self.chain.last()
    }

    fn extended(&self, link: ChainLink) -> Self {
        let mut chain = self.chain.clone();
        chain.push(link);
        Self {
            chain,
            remaining: Arc::clone(&self.remaining),
            max_calls: self.max_calls,
        }
    }

    fn describe(&self, then: &str) -> String {
        let mut names: Vec<&str> = self.chain.iter().map(|l| l.slug.as_str()).collect();
        names.push(then);
        names.join(" → ")
    }
}

/// A delegation asked for outside a turn (a durable task's step): `from` asks `target`.
#[derive(Clone, Debug)]
pub struct DelegationRequest {
    pub from: AgentId,
    pub target: AgentId,
    pub question: String,
    pub context: Option<String>,
    /// A person approved this call (a durable task's approval step), which lets an
    /// `approval: always` grant through; chat turns never set it.
    pub approved: bool,
    /// Calls `from` already made to `target` in the same run (a durable task counts its own
    /// steps), checked against the grant's `max_calls_per_run`.
    pub prior_calls: u32,
    /// The run itself grants this delegation (a hierarchical crew's manager asking one of the
    /// crew's members): no stored grant is needed, every other check still applies.
    pub run_grant: bool,
}

impl DelegationRequest {
    pub fn new(from: AgentId, target: AgentId, question: impl Into<String>) -> Self {
        Self {
            from,
            target,
            question: question.into(),
            context: None,
            approved: false,
            prior_calls: 0,
            run_grant: false,
        }
    }

    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }
}

/// The target's answer to one delegated question.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DelegationOutcome {
    pub target: AgentId,
    pub target_slug: String,
    pub answer: String,
    /// The target's conversation that holds the delegated turn.
    pub conversation_id: Uuid,
    /// The target's own tool calls (its delegations carry theirs in `nested`).
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Usage,
    /// From the asking agent to the target.
    pub chain: Vec<ChainLink>,
}

/// A delegation tool an agent holds, with its grant: for plans that offer tools outside a
/// turn (durable tasks).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DelegationTool {
    /// `ask_<slug>` with JSON-Schema parameters `{question, context?}`.
    pub definition: ToolDefinition,
    pub target: AgentId,
    pub slug: String,
    pub approval: Approval,
    pub max_calls_per_run: Option<u32>,
}

impl DelegationTool {
    pub(crate) fn from_target(target: &DelegateTarget) -> Self {
        Self {
            definition: definition(target),
            target: target.grant.agent,
            slug: target.slug.to_string(),
            approval: target.grant.approval,
            max_calls_per_run: target.grant.max_calls_per_run,
        }
    }
}

/// The model-facing tool for asking `target`.
fn definition(target: &DelegateTarget) -> ToolDefinition {
    ToolDefinition {
        name: delegate_tool_name(target.slug.as_str()),
        description: format!(
            "Ask {name} ({role}), another agent of your organisation, whose goal is: {goal}. \
             {name} answers with its own tools and knowledge. Give a self-contained question \
             and any context it needs.",
            name = target.name,
            role = target.role.as_str(),
            goal = target.goal.as_str(),
        ),
        parameters: json!({
            "type": "object",
            "properties": {
                "question": {"type": "string", "description": "What to ask"},
                "context": {
                    "type": "string",
                    "description": "Background the other agent needs to answer well",
                },
            },
            "required": ["question"],
            "additionalProperties": false,
        }),
    }
}

/// Why a hop did not produce an answer.
#[derive(Debug)]
pub(crate) enum HopError {
    /// A check refused it; nothing reached the target.
    Refused(ToolError),
    /// The target could not be reached, or its turn failed.
    Failed { agent: String, error: RuntimeError },
}

impl HopError {
    pub(crate) fn into_tool_error(self) -> ToolError {
        match self {
            HopError::Refused(e) => e,
            HopError::Failed { agent, error } => ToolError::DelegationFailed {
                agent,
                message: error.to_string(),
            },
        }
    }

    pub(crate) fn into_runtime_error(self) -> RuntimeError {
        match self {
            HopError::Refused(e) => RuntimeError::Agent(AgentError::Tool(e)),
            HopError::Failed { error, .. } => error,
        }
    }

    fn code(&self) -> Code {
        match self {
            HopError::Refused(e) => e.code(),
            HopError::Failed { .. } => Code::DelegationFailed,
        }
    }
}

/// One delegated question, before the checks.
pub(crate) struct Hop<'a> {
    pub tenant: TenantId,
    /// The chain so far; its last link is the asking agent.
    pub context: &'a DelegationContext,
    pub target: AgentId,
    /// How the caller named the target (`ask_<slug>`, or its id), for refusals.
    pub label: String,
    pub question: String,
    pub extra: Option<String>,
    pub approved: bool,
    /// Calls the caller made to this target in this run, this one included.
    pub calls_to_target: u32,
    /// The run grants this hop (see [`DelegationRequest::run_grant`]).
    pub run_grant: bool,
}

/// How long asking the tenant supervisor for the target's actor may take (not the turn).
const ACTOR_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks, sends and audits one hop.
pub(crate) async fn hop(
    deps: &RuntimeDeps,
    supervisor: &ActorRef<TenantMessage>,
    hop: Hop<'_>,
) -> Result<DelegationOutcome, HopError> {
    let started = std::time::Instant::now();
    let result = checked_hop(deps, supervisor, &hop).await;
    tracing::debug!(
        tenant = %hop.tenant,
        target = %hop.target,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "delegation"
    );
    if let Err(e) = account(deps, &hop, &result).await {
        return Err(HopError::Refused(ToolError::Failed(format!("audit: {e}"))));
    }
    result
}

/// Counts a hop's outcome in `brain_agent_delegations_total` and audits it as
/// `agent.delegate` — for hops that ran and for delegations a turn's gate refused alike.
async fn account(
    deps: &RuntimeDeps,
    hop: &Hop<'_>,
    result: &Result<DelegationOutcome, HopError>,
) -> Result<(), RuntimeError> {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    };
    deps.metrics.delegations.with_label_values(&[outcome]).inc();
    record(deps, hop, result).await.inspect_err(|e| {
        tracing::error!(tenant = %hop.tenant, target = %hop.target, error = %e, "could not audit a delegation");
    })
}

async fn checked_hop(
    deps: &RuntimeDeps,
    supervisor: &ActorRef<TenantMessage>,
    hop: &Hop<'_>,
) -> Result<DelegationOutcome, HopError> {
    let slug = admit(deps, hop).await?;
    ask(deps, supervisor, hop, slug).await
}

/// The checks of a hop, in order: a grant (read fresh, or the run's), no cycle, depth,
/// approval, the grant's per-run limit, the root turn's budget of delegated calls. The
/// target's slug if they pass.
async fn admit(deps: &RuntimeDeps, hop: &Hop<'_>) -> Result<String, HopError> {
    let refused = |e: ToolError| Err(HopError::Refused(e));
    let Some(caller) = hop.context.caller() else {
        return refused(ToolError::NotGranted(hop.label.clone()));
    };
    // The grant is read fresh: a grant revoked since the turn began fails this call.
    let target = fresh_grant(&deps.agents, hop.tenant, caller.agent, hop.target)
        .await
        .map_err(|e| HopError::Failed {
            agent: hop.label.clone(),
            error: e.into(),
        })?;
    let target = match target {
        Some(target) => target,
        None if hop.run_grant => run_granted(&deps.agents, hop.tenant, hop.target)
            .await
            .map_err(|e| HopError::Failed {
                agent: hop.label.clone(),
                error: e.into(),
            })?,
        None => return refused(ToolError::NotGranted(hop.label.clone())),
    };
    let slug = target.slug.to_string();
    let name = delegate_tool_name(&slug);
    if hop.context.chain.iter().any(|l| l.agent == hop.target) {
        return refused(ToolError::DelegationCycle(hop.context.describe(&slug)));
    }
    let limits = deps.config.delegation;
    if hop.context.chain.len() > limits.max_depth {
        return refused(ToolError::DelegationDepth {
            chain: hop.context.describe(&slug),
            max: limits.max_depth,
        });
    }
    if target.grant.approval == Approval::Always && !hop.approved {
        return refused(ToolError::ApprovalRequired(name));
    }
    if let Some(max) = target.grant.max_calls_per_run
        && hop.calls_to_target > max
    {
        return refused(ToolError::CallLimit(name));
    }
    let spent = hop
        .context
        .remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if spent.is_err() {
        return refused(ToolError::DelegationLimit(hop.context.max_calls));
    }
    Ok(slug)
}

/// Sends an admitted hop's question to the target's actor and waits for its turn.
async fn ask(
    deps: &RuntimeDeps,
    supervisor: &ActorRef<TenantMessage>,
    hop: &Hop<'_>,
    slug: String,
) -> Result<DelegationOutcome, HopError> {
    let failed = |error: RuntimeError| HopError::Failed {
        agent: slug.clone(),
        error,
    };
    let actor = crate::handle::answer(
        supervisor
            .call(
                |reply| TenantMessage::Agent(hop.target, reply),
                Some(ACTOR_CALL_TIMEOUT),
            )
            .await,
    )
    .and_then(|r| r)
    .map_err(failed)?;
    let context = hop.context.extended(ChainLink {
        agent: hop.target,
        slug: slug.clone(),
    });
    let message = match hop.extra.as_deref().map(str::trim) {
        Some(extra) if !extra.is_empty() => format!("{}\n\nContext:\n{extra}", hop.question),
        _ => hop.question.clone(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    send_counted(
        deps,
        &actor,
        AgentMessage::Delegate {
            input: TurnInput {
                message,
                ..TurnInput::default()
            },
            context: context.clone(),
            respond: TurnResponder::Reply(tx.into()),
        },
    )
    .map_err(failed)?;
    // No timeout: the target's turn is bounded by its own step limit, as any turn.
    let result: TurnResult = rx
        .await
        .map_err(|_| RuntimeError::TurnCrashed)
        .and_then(|r| r)
        .map_err(failed)?;
    Ok(DelegationOutcome {
        target: hop.target,
        target_slug: slug,
        answer: result.reply,
        conversation_id: result.conversation_id,
        tool_calls: result.tool_calls,
        usage: result.usage,
        chain: context.chain,
    })
}

/// The grant a run gives for its own duration (no approval, no per-run limit beyond the
/// turn's budget), for a target that must still be an agent of the tenant.
async fn run_granted(
    agents: &AgentStore,
    tenant: TenantId,
    target: AgentId,
) -> Result<DelegateTarget, AgentError> {
    let spec = agents.get(tenant, target).await?;
    Ok(DelegateTarget {
        grant: DelegateGrant {
            agent: target,
            approval: Approval::Never,
            max_calls_per_run: None,
        },
        slug: spec.slug,
        name: spec.name,
        role: spec.role,
        goal: spec.goal,
    })
}

/// The delegation tool for asking `target` on a run's own grant (a crew's member).
pub async fn run_granted_tool(
    agents: &AgentStore,
    tenant: TenantId,
    target: AgentId,
) -> Result<DelegationTool, AgentError> {
    Ok(DelegationTool::from_target(
        &run_granted(agents, tenant, target).await?,
    ))
}

async fn fresh_grant(
    agents: &AgentStore,
    tenant: TenantId,
    caller: AgentId,
    target: AgentId,
) -> Result<Option<DelegateTarget>, AgentError> {
    Ok(agents
        .delegate_targets(tenant, caller)
        .await?
        .into_iter()
        .find(|t| t.grant.agent == target))
}

/// The audit event of a hop: who asked whom along which chain, and how it ended. Lengths of
/// the texts, never the texts.
async fn record(
    deps: &RuntimeDeps,
    hop: &Hop<'_>,
    result: &Result<DelegationOutcome, HopError>,
) -> Result<(), RuntimeError> {
    let caller = hop
        .context
        .caller()
        .map(|l| l.agent.to_string())
        .unwrap_or_default();
    let mut chain: Vec<String> = hop
        .context
        .chain
        .iter()
        .map(|l| l.agent.to_string())
        .collect();
    chain.push(hop.target.to_string());
    let mut details = json!({
        "chain": chain,
        "depth": hop.context.chain.len(),
        "outcome": match result { Ok(_) => "ok", Err(e) => e.code().as_str() },
        "question_chars": hop.question.chars().count(),
        "context_chars": hop.extra.as_deref().map_or(0, |c| c.chars().count()),
        "approved": hop.approved,
    });
    match result {
        Ok(outcome) => {
            details["answer_chars"] = json!(outcome.answer.chars().count());
            details["nested_calls"] = json!(outcome.tool_calls.len());
            details["conversation_id"] = json!(outcome.conversation_id);
        }
        Err(HopError::Failed { error, .. }) => details["error"] = json!(error.code()),
        Err(HopError::Refused(_)) => {}
    }
    let mut tx = deps.agents.pool().begin().await.map_err(AgentError::from)?;
    brain_migrations::set_tenant(&mut tx, hop.tenant)
        .await
        .map_err(AgentError::from)?;
    let event = AuditEvent {
        actor_kind: "agent",
        actor_id: caller,
        action: "agent.delegate",
        resource: format!("agents/{}", hop.target),
        details,
    };
    audit::append(&mut tx, hop.tenant, event)
        .await
        .map_err(|e| RuntimeError::Unavailable(format!("audit: {e}")))?;
    tx.commit().await.map_err(AgentError::from)?;
    Ok(())
}

/// One turn's tools: the agent's connector tools plus an `ask_<slug>` tool per delegate grant.
pub(crate) struct TurnTools {
    inner: Arc<dyn ToolInvoker>,
    deps: Arc<RuntimeDeps>,
    supervisor: ActorRef<TenantMessage>,
    tenant: TenantId,
    context: DelegationContext,
    /// By function name: the target and the calls made to it in this turn.
    delegates: HashMap<String, (AgentId, AtomicU32)>,
    definitions: Vec<ToolDefinition>,
    /// `inner`'s rules plus each delegate grant's limit and approval.
    rules: ToolRules,
}

/// The tools of one turn of `agent`: `inner` alone when it holds no delegate grants (or runs
/// outside a tenant supervisor, as in benchmarks), else `inner` plus its delegation tools.
pub(crate) async fn turn_tools(
    deps: &Arc<RuntimeDeps>,
    supervisor: Option<&ActorRef<TenantMessage>>,
    tenant: TenantId,
    agent: &AgentSpec,
    context: Option<DelegationContext>,
    inner: Arc<dyn ToolInvoker>,
) -> Result<Arc<dyn ToolInvoker>, AgentError> {
    // The actor's spec is kept current by config updates; its grants are re-read here and
    // again on every call, so a stale spec can hide nothing that is not also re-checked.
    let Some(supervisor) = supervisor.filter(|_| !agent.delegates.is_empty()) else {
        return Ok(inner);
    };
    let targets = deps.agents.delegate_targets(tenant, agent.id).await?;
    if targets.is_empty() {
        return Ok(inner);
    }
    let mut definitions = inner.definitions();
    let mut rules = inner.rules();
    let mut delegates = HashMap::new();
    for target in &targets {
        let def = definition(target);
        rules.offered.insert(def.name.clone());
        if target.grant.approval == Approval::Always {
            rules.approval.insert(def.name.clone());
        }
        if let Some(max) = target.grant.max_calls_per_run {
            rules.call_limits.insert(def.name.clone(), max);
        }
        delegates.insert(def.name.clone(), (target.grant.agent, AtomicU32::new(0)));
        definitions.push(def);
    }
    Ok(Arc::new(TurnTools {
        inner,
        deps: Arc::clone(deps),
        supervisor: supervisor.clone(),
        tenant,
        context: context.unwrap_or_else(|| DelegationContext::root(agent, deps.config.delegation)),
        delegates,
        definitions,
        rules,
    }))
}

fn text_argument(call: &ToolCall, field: &str) -> Result<Option<String>, ToolError> {
    match call.arguments.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{field}` must be a string"
        ))),
    }
}

#[async_trait::async_trait]
impl ToolInvoker for TurnTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        self.definitions.clone()
    }

    fn rules(&self) -> ToolRules {
        self.rules.clone()
    }

    async fn invoke(
        &self,
        tenant: TenantId,
        call: &ToolCall,
        idempotency_key: &str,
    ) -> Result<ToolOutput, ToolError> {
        let Some((target, calls)) = self.delegates.get(&call.name) else {
            return self.inner.invoke(tenant, call, idempotency_key).await;
        };
        let question = text_argument(call, "question")?
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| ToolError::InvalidArguments("`question` is required".into()))?;
        let extra = text_argument(call, "context")?;
        let outcome = hop(
            &self.deps,
            &self.supervisor,
            Hop {
                tenant: self.tenant,
                context: &self.context,
                target: *target,
                label: call.name.clone(),
                question,
                extra,
                approved: false,
                calls_to_target: calls.fetch_add(1, Ordering::SeqCst).saturating_add(1),
                run_grant: false,
            },
        )
        .await
        .map_err(HopError::into_tool_error)?;
        Ok(ToolOutput {
            summary: format!("answer from `{}`", outcome.target_slug),
            content: json!({"agent": outcome.target_slug, "answer": outcome.answer}),
            nested: outcome.tool_calls,
        })
    }

    /// A delegation the turn's gate refused (over its per-run limit, or needing an approval
    /// a chat turn cannot wait for) is audited like one the hop's own checks refuse.
    async fn refused(&self, tenant: TenantId, call: &ToolCall, why: &ToolError) {
        let Some((target, _)) = self.delegates.get(&call.name) else {
            return self.inner.refused(tenant, call, why).await;
        };
        // A failure to audit is logged by `account`; the refusal stands either way.
        let _ = refused_call(&self.deps, tenant, &self.context, *target, call, why).await;
    }
}

/// Counts and audits a delegation `call` to `target` that a run's gate refused before any hop
/// check ran.
pub(crate) async fn refused_call(
    deps: &RuntimeDeps,
    tenant: TenantId,
    context: &DelegationContext,
    target: AgentId,
    call: &ToolCall,
    why: &ToolError,
) -> Result<(), RuntimeError> {
    let hop = Hop {
        tenant,
        context,
        target,
        label: call.name.clone(),
        question: text_argument(call, "question")
            .ok()
            .flatten()
            .unwrap_or_default(),
        extra: text_argument(call, "context").ok().flatten(),
        approved: false,
        // Not checked again, and not part of the audit event.
        calls_to_target: 0,
        run_grant: false,
    };
    account(deps, &hop, &Err(HopError::Refused(why.clone()))).await
}
