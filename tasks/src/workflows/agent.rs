//! One agent, one input, until it answers: model step, tool calls, model step, … Each call
//! goes through the agents crate's [`ToolGate`] — the same policy a chat turn obeys — and
//! then, where the grant says so, waits for a person's decision.

use std::collections::{HashMap, HashSet};

use brain_agents::providers::{ChatMessage, ChatRole, ToolCall, Usage};
use brain_agents::structured::{MAX_ATTEMPTS, OutputSchema};
use brain_agents::tool::{ToolError, call_label, delegate_target};
use brain_agents::{Refusal, ToolGate, ToolRules};
use brain_auth::Code;
use serde_json::{Value, json};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, SyncWorkflowContext, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};

use super::{
    Decisions, Ledger, Report, Stop, await_decision, conclude, delegation_options, llm_options,
    note_options, tool_options,
};
use crate::activities::TaskActivities;
use crate::model::{
    AgentTaskInput, ApprovalDecision, LlmStepInput, LlmStepOutput, RefusedCall, StepKind,
    StepRecord, StepStatus, TaskPlan, ToolStepInput,
};

/// One agent, one input, until it answers.
#[workflow]
#[derive(Default)]
pub struct AgentTaskWorkflow {
    decisions: HashMap<String, ApprovalDecision>,
}

impl Decisions for AgentTaskWorkflow {
    fn decision(&self, call_id: &str) -> Option<&ApprovalDecision> {
        self.decisions.get(call_id)
    }
}

/// What a task spent, reported however it ends.
#[derive(Clone, Copy, Default)]
struct Spent {
    usage: Usage,
    tool_calls: u64,
}

#[workflow_methods]
impl AgentTaskWorkflow {
    #[run(name = "AgentTask")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: AgentTaskInput,
    ) -> WorkflowResult<String> {
        let ledger = Ledger {
            task_id: input.task_id,
            tenant: input.tenant,
            timeouts: input.timeouts,
        };
        let mut spent = Spent::default();
        let result = Self::steps(ctx, &input, ledger, &mut spent).await;
        let report = Report {
            output: result.as_ref().ok().map(Answer::output),
            usage: Some(spent.usage),
            tool_calls: spent.tool_calls,
            callback_url: input.callback_url.clone(),
        };
        conclude(ctx, &ledger, result.map(|answer| answer.reply), report).await
    }

    /// A person's answer to a parked tool call. The first answer counts.
    #[signal(name = "decide")]
    pub fn decide(&mut self, _ctx: &mut SyncWorkflowContext<Self>, decision: ApprovalDecision) {
        self.decisions
            .entry(decision.call_id.clone())
            .or_insert(decision);
    }

    /// Calls waiting for a decision.
    #[query(name = "decided")]
    pub fn decided(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.decisions.keys().cloned().collect()
    }

    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &AgentTaskInput,
        ledger: Ledger,
        spent: &mut Spent,
    ) -> Result<Answer, Stop> {
        let plan = ctx
            .execute_activity(
                TaskActivities::begin_agent_task,
                input.clone(),
                note_options(&ledger.timeouts),
            )
            .await?;
        let mut run = AgentRun::new(input, ledger, plan);
        let result = run.drive(ctx).await;
        *spent = run.spent;
        result
    }
}

/// How a task answered: the reply, and with an output schema the checked JSON value.
struct Answer {
    reply: String,
    json: Option<Value>,
}

impl Answer {
    fn output(&self) -> Value {
        match &self.json {
            Some(value) => json!({"reply": self.reply, "json": value}),
            None => json!({"reply": self.reply}),
        }
    }
}

/// A task whose `answers` never fit its output schema; `problem` is the last one's.
fn unusable(answers: usize, problem: &str) -> Stop {
    Stop::Failed(format!(
        "{}: after {answers} answers the output is still unusable: {problem}",
        Code::InvalidModelOutput
    ))
}

/// A running agent task: what it was given, what it may do, where it is.
struct AgentRun<'a> {
    input: &'a AgentTaskInput,
    ledger: Ledger,
    plan: TaskPlan,
    gate: ToolGate,
    messages: Vec<ChatMessage>,
    /// The position of the next recorded step.
    seq: u32,
    /// Approval ids handed out so far (model call ids may repeat across steps).
    approval_ids: HashSet<String>,
    spent: Spent,
    /// What the answer must be, how many answers were given, and what was wrong with the
    /// last one sent back.
    schema: Option<OutputSchema>,
    answers: usize,
    refused: Option<String>,
}

impl<'a> AgentRun<'a> {
    fn new(input: &'a AgentTaskInput, ledger: Ledger, plan: TaskPlan) -> Self {
        let gate = ToolGate::new(ToolRules {
            offered: plan.tools.iter().map(|d| d.name.clone()).collect(),
            call_limits: plan.call_limits.clone(),
            approval: plan.approval.iter().cloned().collect(),
        });
        // Checked when the task started; compiled here again (deterministically) on replay.
        let schema = input
            .output_schema
            .clone()
            .and_then(|s| OutputSchema::json_schema("output", s).ok());
        let mut messages = plan.messages.clone();
        if let Some(schema) = &schema
            && let Some(ask) = messages.iter_mut().rev().find(|m| m.role == ChatRole::User)
        {
            ask.content = schema.ask(&ask.content);
        }
        Self {
            input,
            ledger,
            messages,
            plan,
            gate,
            seq: 0,
            approval_ids: HashSet::new(),
            spent: Spent::default(),
            schema,
            answers: 0,
            refused: None,
        }
    }

    /// The model's final `reply` as the task's answer; with an output schema, a reply that
    /// does not fit is sent back (`Ok(None)`) until the attempts run out.
    fn answer(&mut self, reply: String) -> Result<Option<Answer>, Stop> {
        let Some(schema) = &self.schema else {
            return Ok(Some(Answer { reply, json: None }));
        };
        self.answers += 1;
        match schema.check(&reply) {
            Ok(value) => Ok(Some(Answer {
                reply: value.to_string(),
                json: Some(value),
            })),
            Err(problem) if self.answers < MAX_ATTEMPTS => {
                let retry = schema.retry(&problem);
                self.refused = Some(problem);
                self.messages.push(ChatMessage {
                    role: ChatRole::Assistant,
                    content: reply,
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                });
                self.messages.push(ChatMessage {
                    role: ChatRole::User,
                    content: retry,
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                });
                Ok(None)
            }
            Err(problem) => Err(unusable(self.answers, &problem)),
        }
    }

    /// Model step, its tool calls, model step, … until the model answers.
    async fn drive(
        &mut self,
        ctx: &mut WorkflowContext<AgentTaskWorkflow>,
    ) -> Result<Answer, Stop> {
        let max_steps = self.plan.max_steps.max(1);
        for step in 0..max_steps {
            let reply = self.model_step(ctx, step + 1 >= max_steps).await?;
            if reply.tool_calls.is_empty() {
                match self.answer(reply.content)? {
                    Some(answer) => return Ok(answer),
                    None => continue,
                }
            }
            // Whatever was wrong with an earlier answer, the model went on working.
            self.refused = None;
            self.messages.push(ChatMessage {
                role: ChatRole::Assistant,
                content: reply.content.clone(),
                tool_calls: reply.tool_calls.clone(),
                tool_call_id: None,
            });
            for call in &reply.tool_calls {
                let fed_back = self.tool_call(ctx, call).await?;
                self.messages
                    .push(ChatMessage::tool_result(call.id.clone(), fed_back));
            }
        }
        // The steps ran out right after an answer was sent back for not fitting the schema.
        if let Some(problem) = &self.refused {
            return Err(unusable(self.answers, problem));
        }
        // The last step offers no tools, so the loop only ends here without an answer if the
        // model insisted on calling one anyway.
        Err(Stop::Failed(
            "the agent did not answer within its step limit".into(),
        ))
    }

    /// One model call; the last one is offered no tools, so it must answer.
    async fn model_step(
        &mut self,
        ctx: &mut WorkflowContext<AgentTaskWorkflow>,
        last: bool,
    ) -> Result<LlmStepOutput, Stop> {
        let reply = ctx
            .execute_activity(
                TaskActivities::llm_step,
                LlmStepInput {
                    task_id: self.input.task_id,
                    tenant: self.input.tenant,
                    agent_id: self.input.agent_id,
                    seq: self.seq,
                    model: self.plan.model.clone(),
                    temperature: self.plan.temperature,
                    max_tokens: self.plan.max_tokens,
                    messages: self.messages.clone(),
                    tools: if last {
                        Vec::new()
                    } else {
                        self.plan.tools.clone()
                    },
                },
                llm_options(&self.ledger.timeouts),
            )
            .await?;
        self.seq += 1;
        self.spent.usage += reply.usage;
        Ok(reply)
    }

    /// One tool call the model asked for; what the model is told about it.
    async fn tool_call(
        &mut self,
        ctx: &mut WorkflowContext<AgentTaskWorkflow>,
        call: &ToolCall,
    ) -> Result<String, Stop> {
        let admitted = match self.gate.admit(call) {
            Ok(admitted) => admitted,
            Err(e) => return self.refuse(ctx, call, e).await,
        };
        let approved_by = if admitted.needs_approval {
            match self.await_approval(ctx, call).await? {
                Ok(actor) => Some(actor),
                Err(rejected) => return Ok(rejected.fed_back()),
            }
        } else {
            None
        };
        self.execute_call(ctx, call, admitted.prior_calls, approved_by)
            .await
    }

    /// The step record of `call`, at the current position.
    fn tool_step(&self, call: &ToolCall, kind: StepKind, status: StepStatus) -> StepRecord {
        let (connector, action) = call_label(&call.name);
        StepRecord {
            call_id: Some(call.id.clone()),
            connector: Some(connector.to_owned()),
            action: Some(action.to_owned()),
            ..StepRecord::new(self.seq, kind, status, Value::Null)
        }
    }

    /// Records a call the gate refused as a failed step; the model is told why.
    async fn refuse(
        &mut self,
        ctx: &mut WorkflowContext<AgentTaskWorkflow>,
        call: &ToolCall,
        why: ToolError,
    ) -> Result<String, Stop> {
        let refusal = Refusal::from(&why);
        let step = StepRecord {
            detail: json!({"args": call.arguments, "refused": refusal.code}),
            error: Some(refusal.message.clone()),
            ..self.tool_step(call, StepKind::Tool, StepStatus::Failed)
        };
        let refused = RefusedCall {
            agent_id: self.input.agent_id,
            call: call.clone(),
            why,
        };
        self.ledger.note_refusal(ctx, step, refused).await?;
        self.seq += 1;
        Ok(refusal.fed_back())
    }

    /// Parks the task until a person decides on `call`: who approved it, or the refusal the
    /// model is told.
    async fn await_approval(
        &mut self,
        ctx: &mut WorkflowContext<AgentTaskWorkflow>,
        call: &ToolCall,
    ) -> Result<Result<String, Refusal>, Stop> {
        let mut approval_id = call.id.clone();
        if !self.approval_ids.insert(approval_id.clone()) {
            approval_id = format!("{}-{}", call.id, self.seq);
            self.approval_ids.insert(approval_id.clone());
        }
        let waiting = StepRecord {
            call_id: Some(approval_id),
            detail: json!({"args": call.arguments, "tool_call_id": call.id}),
            ..self.tool_step(call, StepKind::Approval, StepStatus::AwaitingApproval)
        };
        let decision = await_decision(ctx, &self.ledger, waiting).await?;
        self.seq += 1;
        if decision.approve {
            return Ok(Ok(decision.actor));
        }
        let mut message = "a person rejected this call; do not retry it".to_owned();
        if let Some(note) = decision.note.as_deref().filter(|n| !n.trim().is_empty()) {
            message.push_str(&format!(" (their note: {note})"));
        }
        Ok(Err(Refusal::new(Code::Rejected, message)))
    }

    /// Runs an admitted call as an activity through a capability minted now, so a grant
    /// revoked meanwhile still fails it.
    async fn execute_call(
        &mut self,
        ctx: &mut WorkflowContext<AgentTaskWorkflow>,
        call: &ToolCall,
        prior_calls: u32,
        approved_by: Option<String>,
    ) -> Result<String, Stop> {
        let step_input = ToolStepInput {
            task_id: self.input.task_id,
            tenant: self.input.tenant,
            agent_id: self.input.agent_id,
            seq: self.seq,
            call: call.clone(),
            idempotency_key: format!("{}/{}", ctx.workflow_id(), self.seq),
            approved_by,
            prior_calls,
            run_grant: self.plan.run_granted.contains(&call.name),
        };
        let timeouts = &self.ledger.timeouts;
        let fed_back = if delegate_target(&call.name).is_some() {
            // Another agent's whole turn: run at most once, and if it is interrupted the
            // agent is told rather than the turn being repeated behind its back.
            let result = ctx
                .execute_activity(
                    TaskActivities::tool_step,
                    step_input,
                    delegation_options(timeouts),
                )
                .await;
            match result {
                Ok(result) => result.fed_back,
                Err(ActivityExecutionError::Cancelled(_)) => return Err(Stop::Cancelled),
                Err(e) => Refusal::new(
                    Code::DelegationInterrupted,
                    format!(
                        "the other agent's turn was interrupted ({}); it may have acted in part",
                        Stop::message(e)
                    ),
                )
                .fed_back(),
            }
        } else {
            ctx.execute_activity(
                TaskActivities::tool_step,
                step_input,
                tool_options(timeouts),
            )
            .await?
            .fed_back
        };
        self.seq += 1;
        self.spent.tool_calls += 1;
        Ok(fed_back)
    }
}
