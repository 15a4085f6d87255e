//! Agent-task activities: fixing what a task runs with, model steps and tool steps (a
//! delegation is a tool step that runs another agent's turn).

use std::collections::BTreeMap;

use brain_agents::knowledge::{Citation, Passage};
use brain_agents::prompt::system_prompt;
use brain_agents::providers::fallback::ModelChain;
use brain_agents::providers::{ChatMessage, ChatRequest, ModelReply, ToolDefinition, Usage};
use brain_agents::spec::{AgentId, AgentSpec, ModelRef};
use brain_agents::tool::{call_label, delegate_target};
use brain_agents::{AgentError, Refusal, check_budgets};
use brain_auth::{Code, ErrorCode, TenantId};
use brain_tools::ToolError;
use serde_json::{Value, json};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;

use super::{
    TaskActivities, agent_error, infrastructure, permanent, task_error, transient, with_heartbeats,
};
use crate::model::{
    AgentTaskInput, LlmStepInput, LlmStepOutput, StepKind, StepRecord, StepStatus, TaskKind,
    TaskPlan, ToolStepInput, ToolStepOutput,
};
use crate::store::NewTaskRow;
use brain_runtime::tools::CapabilityInvoker;

/// The tools of a task's plan, with their per-run rules (see [`TaskPlan`]).
struct TaskTools {
    tools: Vec<ToolDefinition>,
    approval: Vec<String>,
    call_limits: BTreeMap<String, u32>,
    run_granted: Vec<String>,
}

impl TaskActivities {
    /// Creates or starts the task row and fixes what the agent runs with: its spec now, the
    /// tools its grants allow now, and the knowledge its input retrieves.
    pub(super) async fn plan_agent_task(
        &self,
        ctx: ActivityContext,
        input: AgentTaskInput,
    ) -> Result<TaskPlan, ActivityError> {
        let tenant = TenantId(input.tenant);
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let (task, first) = self
            .store
            .start(
                tenant,
                &NewTaskRow {
                    id: input.task_id,
                    kind: TaskKind::Agent,
                    agent_id: Some(input.agent_id),
                    rule_id: None,
                    workflow_id: &workflow_id,
                    idempotency_key: None,
                    input: json!({"input": input.input, "parent_task": input.parent_task}),
                    callback_url: input.callback_url.as_deref(),
                    parent_task_id: input.parent_task,
                    crew_id: None,
                },
            )
            .await
            .map_err(task_error)?;
        if first {
            let details = json!({"agent_id": input.agent_id, "workflow_id": workflow_id,
                                 "parent_task": input.parent_task});
            self.started(tenant, task, TaskKind::Agent, "task.start", details)
                .await?;
        }
        let agent = self
            .agents
            .get(tenant, AgentId(input.agent_id))
            .await
            .map_err(agent_error)?;
        // Budgets are checked by every model step (the first comes next), which records the
        // refusal as a step with its code, as a chat turn reports it.
        let tools = self.task_tools(tenant, &input).await?;
        let (messages, citations) = self
            .task_prompt(tenant, &agent, &tools.tools, &input.input)
            .await?;
        Ok(TaskPlan {
            model: format!("{}:{}", agent.model.provider(), agent.model.model()),
            temperature: agent.temperature.get(),
            max_tokens: agent.max_tokens,
            messages,
            tools: tools.tools,
            approval: tools.approval,
            call_limits: tools.call_limits,
            run_granted: tools.run_granted,
            max_steps: u32::try_from(self.limits.max_steps).unwrap_or(u32::MAX),
            citations: serde_json::to_value(citations).unwrap_or(Value::Null),
        })
    }

    /// The tools a task's agent holds now (its grants' connector actions and delegations, and
    /// whom the run lets it ask), with their per-run limits and approvals.
    async fn task_tools(
        &self,
        tenant: TenantId,
        input: &AgentTaskInput,
    ) -> Result<TaskTools, ActivityError> {
        let capabilities = self
            .connectors
            .capabilities(tenant, input.agent_id)
            .await
            .map_err(transient)?;
        let mcp = self
            .connectors
            .mcp()
            .tools_for(tenant, input.agent_id)
            .await
            .map_err(transient)?;
        let (tools, rules) = CapabilityInvoker::new(&self.connectors, &capabilities)
            .with_mcp(mcp)
            .into_parts();
        let mut approval: Vec<String> = rules.approval.into_iter().collect();
        approval.sort();
        let mut plan = TaskTools {
            tools,
            approval,
            call_limits: rules.call_limits,
            run_granted: Vec::new(),
        };
        let Some(runtime) = &self.runtime else {
            return Ok(plan);
        };
        let granted = runtime
            .delegation_tools(tenant, AgentId(input.agent_id))
            .await
            .map_err(transient)?;
        for d in granted {
            if d.approval == brain_agents::spec::Approval::Always {
                plan.approval.push(d.definition.name.clone());
            }
            if let Some(max) = d.max_calls_per_run {
                plan.call_limits.insert(d.definition.name.clone(), max);
            }
            plan.tools.push(d.definition);
        }
        for target in &input.delegates {
            let d =
                brain_runtime::delegation::run_granted_tool(&self.agents, tenant, AgentId(*target))
                    .await
                    .map_err(agent_error)?;
            if !plan.tools.iter().any(|t| t.name == d.definition.name) {
                plan.run_granted.push(d.definition.name.clone());
                plan.tools.push(d.definition);
            }
        }
        Ok(plan)
    }

    /// The task's opening messages (system prompt with the knowledge `text` retrieves, then
    /// `text`) and what they cite. Fitted into the model's window like a chat turn (a task
    /// has no history): the lowest-ranked passages go first; an input too long on its own
    /// fails for good.
    async fn task_prompt(
        &self,
        tenant: TenantId,
        agent: &AgentSpec,
        tools: &[ToolDefinition],
        text: &str,
    ) -> Result<(Vec<ChatMessage>, Vec<Citation>), ActivityError> {
        let mut passages: Vec<Passage> = match &self.retriever {
            Some(r)
                if !agent.knowledge_collections.is_empty()
                    && self.limits.knowledge_passages > 0 =>
            {
                brain_agents::knowledge::retrieve(
                    r.as_ref(),
                    tenant,
                    &agent.knowledge_collections,
                    text,
                    self.limits.knowledge_passages,
                )
                .await
                .map_err(transient)?
            }
            _ => Vec::new(),
        };
        let user = ChatMessage::user(text.to_owned());
        let window = self
            .providers
            .resolve(&agent.model)
            .ok()
            .and_then(|p| p.context_window(agent.model.model()));
        if let Some(window) = window {
            let system_for = |p: &[Passage]| system_prompt(agent, tools, p);
            let parts = brain_agents::fit::PromptParts {
                window,
                reply_tokens: agent.max_tokens as usize,
                system: &system_for,
                passages: &passages,
                history: &[],
                current: std::slice::from_ref(&user),
                tools,
            };
            let fitted = brain_agents::fit::fit(&parts, None).map_err(|e| {
                permanent(brain_agents::ProviderError::ContextTooLong {
                    needed: e.needed,
                    budget: e.budget,
                })
            })?;
            passages.truncate(fitted.passages);
        }
        let citations = passages.iter().map(|p| p.citation.clone()).collect();
        let system = ChatMessage::system(system_prompt(agent, tools, &passages));
        Ok((vec![system, user], citations))
    }

    /// One model call; its answer (text or tool calls) and usage are recorded as a step.
    pub(super) async fn run_llm_step(
        &self,
        ctx: ActivityContext,
        input: LlmStepInput,
    ) -> Result<LlmStepOutput, ActivityError> {
        let tenant = TenantId(input.tenant);
        let agent = AgentId(input.agent_id);
        let mut step = StepRecord::new(
            input.seq,
            StepKind::Llm,
            StepStatus::Running,
            json!({"model": input.model, "attempt": ctx.info().attempt}),
        );
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let spec = self.agents.get(tenant, agent).await.map_err(agent_error)?;
        match check_budgets(self.turns.as_ref(), tenant, &spec).await {
            Ok(()) => {}
            Err(refused @ (AgentError::BudgetExhausted | AgentError::TenantBudgetExhausted)) => {
                step.status = StepStatus::Failed;
                step.detail["refused"] = json!(refused.code());
                step.error = Some(refused.to_string());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                return Err(permanent(refused));
            }
            Err(other) => return Err(agent_error(other)),
        }
        let model: ModelRef = input.model.parse().map_err(permanent)?;
        let provider = ModelChain::new(&self.providers, &model, &spec.fallback_models)
            .map_err(permanent)?
            .into_provider();
        let request = ChatRequest {
            tenant,
            model: model.model().to_owned(),
            messages: input.messages,
            tools: input.tools,
            temperature: input.temperature,
            max_tokens: input.max_tokens,
        };
        let span = brain_agents::telemetry::chat_span(model.provider(), &request);
        let call = provider.complete(request).instrument(span.clone());
        let reply: ModelReply = tokio::select! {
            reply = call => reply.inspect(|r| brain_agents::telemetry::record_reply(&span, r))
                .inspect_err(|e| brain_agents::telemetry::record_error(&span, e))
                .map_err(|e| match e {
                // The prompt grew past the window (large tool results): no retry fits it.
                brain_agents::ProviderError::ContextTooLong { .. } => permanent(e),
                e => transient(format!("model call failed: {e}")),
            })?,
            () = ctx.cancelled() => return Err(ActivityError::cancelled()),
        };
        self.turns
            .record_usage(tenant, agent, reply.usage, 0)
            .await
            .map_err(agent_error)?;
        step.status = StepStatus::Succeeded;
        step.detail = json!({
            "content": reply.content,
            "tool_calls": reply.tool_calls.iter().map(|c| json!({"id": c.id, "name": c.name})).collect::<Vec<_>>(),
            "usage": reply.usage,
        });
        if !reply.fallbacks.is_empty() {
            step.detail["fallbacks"] = json!(reply.fallbacks);
        }
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        Ok(LlmStepOutput {
            content: reply.content,
            tool_calls: reply.tool_calls,
            usage: reply.usage,
        })
    }

    /// The call itself: a granted MCP tool, or a connector action through a capability minted
    /// now. The outer error is the infrastructure's (the grants could not be read).
    async fn tool_call(
        &self,
        ctx: &ActivityContext,
        tenant: TenantId,
        input: &ToolStepInput,
        mcp: bool,
    ) -> Result<Result<Value, ToolError>, ToolError> {
        if mcp {
            return Ok(self.mcp_call(tenant, input).await);
        }
        let (connector, action) = call_label(&input.call.name);
        let capabilities = self.connectors.capabilities(tenant, input.agent_id).await?;
        Ok(
            match capabilities.iter().find(|c| c.connector() == connector) {
                None => Err(ToolError::GrantRevoked {
                    connector: connector.to_owned(),
                }),
                Some(cap) if cap.requires_approval() && input.approved_by.is_none() => {
                    Err(ToolError::ActionNotGranted {
                        connector: connector.to_owned(),
                        action: format!("{action} (without approval)"),
                    })
                }
                Some(cap) => {
                    self.connectors
                        .invoke_attempt(
                            cap,
                            action,
                            input.call.arguments.clone(),
                            Some(&input.idempotency_key),
                            ctx.info().attempt > 1,
                        )
                        .await
                }
            },
        )
    }

    /// One call of a granted MCP tool, minted now from the stored grant (revoked, disabled or
    /// unlisted while the task waited fails here); a tool that needs approval runs only
    /// with one.
    async fn mcp_call(&self, tenant: TenantId, input: &ToolStepInput) -> Result<Value, ToolError> {
        let tools = self
            .connectors
            .mcp()
            .tools_for(tenant, input.agent_id)
            .await?;
        let Some(tool) = tools.iter().find(|t| t.function_name() == input.call.name) else {
            return Err(ToolError::GrantRevoked {
                connector: call_label(&input.call.name).0.to_owned(),
            });
        };
        if tool.requires_approval() && input.approved_by.is_none() {
            return Err(ToolError::ActionNotGranted {
                connector: tool.grant_key(),
                action: format!("{} (without approval)", call_label(&input.call.name).1),
            });
        }
        tool.call(input.call.arguments.clone()).await
    }

    /// One tool call through a capability minted now from the stored grants, so a grant
    /// revoked while the task waited fails here. The outcome is what the model is told.
    pub(super) async fn run_tool_step(
        &self,
        ctx: ActivityContext,
        input: ToolStepInput,
    ) -> Result<ToolStepOutput, ActivityError> {
        let tenant = TenantId(input.tenant);
        if let Some(slug) = delegate_target(&input.call.name) {
            return self.delegation_step(&ctx, &input, slug).await;
        }
        let (connector, action) = call_label(&input.call.name);
        let mut step = StepRecord {
            call_id: Some(input.call.id.clone()),
            connector: Some(connector.to_owned()),
            action: Some(action.to_owned()),
            ..StepRecord::new(
                input.seq,
                StepKind::Tool,
                StepStatus::Running,
                json!({"args": input.call.arguments, "attempt": ctx.info().attempt,
                       "approved_by": input.approved_by}),
            )
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let mcp = brain_agents::tool::is_mcp(connector);
        let span = brain_agents::telemetry::tool_span(&input.call.name, &input.call.id);
        let call = self.tool_call(&ctx, tenant, &input, mcp);
        let outcome = with_heartbeats(&ctx, call.instrument(span.clone()))
            .await
            .map_err(transient)?
            .inspect_err(|_| brain_agents::telemetry::record_tool_failure(&span, "error"));
        let (connector, action) = brain_agents::tool::metric_labels(connector, action);
        let outcome_label = match &outcome {
            Ok(_) => "ok",
            Err(_) => "error",
        };
        if let Some(m) = &self.metrics {
            m.tool_calls
                .with_label_values(&[connector, action, outcome_label])
                .inc();
        }
        match outcome {
            Ok(result) => {
                let summary: String = result.to_string().chars().take(200).collect();
                step.status = StepStatus::Succeeded;
                step.detail = json!({"summary": summary});
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                self.turns
                    .record_usage(tenant, AgentId(input.agent_id), Usage::default(), 1)
                    .await
                    .map_err(agent_error)?;
                Ok(ToolStepOutput {
                    ok: true,
                    fed_back: json!({"summary": summary, "result": result}).to_string(),
                })
            }
            Err(e) if infrastructure(&e) => Err(transient(e)),
            Err(e) => {
                step.status = StepStatus::Failed;
                step.error = Some(e.to_string());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                Ok(ToolStepOutput {
                    ok: false,
                    fed_back: Refusal::new(e.code(), e.to_string()).fed_back(),
                })
            }
        }
    }

    /// A delegation step: `slug`'s own turn in the actor tree, with every delegation check
    /// the runtime makes (the grant — or the run's —, cycles, depth, limits, approval).
    async fn delegation_step(
        &self,
        ctx: &ActivityContext,
        input: &ToolStepInput,
        slug: &str,
    ) -> Result<ToolStepOutput, ActivityError> {
        let tenant = TenantId(input.tenant);
        let mut step = StepRecord {
            call_id: Some(input.call.id.clone()),
            connector: Some(brain_agents::tool::DELEGATE_CONNECTOR.to_owned()),
            action: Some(slug.to_owned()),
            ..StepRecord::new(
                input.seq,
                StepKind::Tool,
                StepStatus::Running,
                json!({"args": input.call.arguments, "approved_by": input.approved_by}),
            )
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let refuse = |refusal: Refusal| ToolStepOutput {
            ok: false,
            fed_back: refusal.fed_back(),
        };
        let outcome = match (&self.runtime, self.agents.get_by_slug(tenant, slug).await) {
            (None, _) => Err(refuse(Refusal::new(
                Code::ToolNotGranted,
                "this worker cannot run delegations",
            ))),
            (_, Err(AgentError::NotFound)) => Err(refuse(Refusal::new(
                Code::ToolNotGranted,
                format!("no agent `{slug}` in this organisation"),
            ))),
            (_, Err(e)) => return Err(agent_error(e)),
            (Some(runtime), Ok(target)) => {
                let args = &input.call.arguments;
                let question = args["question"].as_str().unwrap_or_default().to_owned();
                let mut request = brain_runtime::DelegationRequest::new(
                    AgentId(input.agent_id),
                    target.id,
                    question,
                );
                if let Some(context) = args["context"].as_str() {
                    request = request.with_context(context);
                }
                request.approved = input.approved_by.is_some();
                request.prior_calls = input.prior_calls;
                request.run_grant = input.run_grant;
                match with_heartbeats(ctx, runtime.delegate(tenant, request)).await {
                    Ok(outcome) => Ok(outcome),
                    Err(brain_runtime::RuntimeError::Agent(AgentError::Tool(e))) => {
                        Err(refuse(Refusal::from(&e)))
                    }
                    Err(brain_runtime::RuntimeError::Agent(AgentError::Validation(v))) => {
                        Err(refuse(Refusal::new(Code::InvalidArguments, v.to_string())))
                    }
                    Err(e) => return Err(transient(e)),
                }
            }
        };
        match outcome {
            Ok(outcome) => {
                step.status = StepStatus::Succeeded;
                step.detail = json!({"answer": outcome.answer, "nested": outcome.tool_calls,
                                     "conversation_id": outcome.conversation_id});
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                Ok(ToolStepOutput {
                    ok: true,
                    fed_back: json!({"agent": outcome.target_slug, "answer": outcome.answer})
                        .to_string(),
                })
            }
            Err(refused) => {
                step.status = StepStatus::Failed;
                step.error = Some(refused.fed_back.clone());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                Ok(refused)
            }
        }
    }
}
