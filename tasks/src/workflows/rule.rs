//! One run of an automation rule: its steps in order, each step's output in the context the
//! next one renders its input from.

use std::collections::HashMap;

use serde_json::{Value, json};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowResult};

use super::{
    ChildRun, Decisions, Ledger, Report, Stop, await_decision, conclude, finish, new_id,
    note_options, run_child, tool_options,
};
use crate::activities::TaskActivities;
use crate::model::{
    AgentTaskInput, ApprovalDecision, CrewRunInput, PlannedStep, RuleActionInput, RuleRunInput,
    StepKind, StepRecord, StepStatus, TaskOutcome, TaskStatus,
};
use brain_automation::rules::render_text;

/// One run of an automation rule.
#[workflow]
#[derive(Default)]
pub struct RuleRunWorkflow {
    decisions: HashMap<String, ApprovalDecision>,
}

impl Decisions for RuleRunWorkflow {
    fn decision(&self, call_id: &str) -> Option<&ApprovalDecision> {
        self.decisions.get(call_id)
    }
}

#[workflow_methods]
impl RuleRunWorkflow {
    #[run(name = "RuleRun")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: RuleRunInput,
    ) -> WorkflowResult<Value> {
        let t = input.timeouts;
        let plan = ctx
            .execute_activity(
                TaskActivities::begin_rule_run,
                input.clone(),
                note_options(&t),
            )
            .await?;
        let task_id = plan.task_id;
        let Some(steps) = plan.steps else {
            let outcome = TaskOutcome {
                task_id,
                tenant: input.tenant,
                status: TaskStatus::Cancelled,
                output: None,
                error: Some("the rule was disabled or deleted before this run began".into()),
                usage: None,
                tool_calls: 0,
            };
            finish(ctx, &t, outcome, None).await?;
            return Ok(Value::Null);
        };
        let ledger = Ledger {
            task_id,
            tenant: input.tenant,
            timeouts: t,
        };
        let mut context = json!({
            "event": input.event,
            "steps": [],
            "rule": {"id": input.rule_id, "name": plan.rule_name},
        });
        let result = Self::steps(ctx, &input, &ledger, &steps, &mut context).await;
        let outputs = context["steps"].clone();
        let report = Report {
            output: Some(json!({"steps": outputs})),
            ..Report::default()
        };
        conclude(ctx, &ledger, result, report).await?;
        Ok(json!({"task_id": task_id, "steps": outputs}))
    }

    #[signal(name = "decide")]
    pub fn decide(&mut self, _ctx: &mut SyncWorkflowContext<Self>, decision: ApprovalDecision) {
        self.decisions
            .entry(decision.call_id.clone())
            .or_insert(decision);
    }

    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &RuleRunInput,
        ledger: &Ledger,
        steps: &[PlannedStep],
        context: &mut Value,
    ) -> Result<(), Stop> {
        for (index, step) in steps.iter().enumerate() {
            let seq = u32::try_from(index).unwrap_or(u32::MAX);
            let output = Self::step(ctx, input, ledger, seq, step, context).await?;
            if let Some(list) = context["steps"].as_array_mut() {
                list.push(json!({"output": output}));
            }
        }
        Ok(())
    }

    /// Runs the step at `seq`; its output.
    async fn step(
        ctx: &mut WorkflowContext<Self>,
        input: &RuleRunInput,
        ledger: &Ledger,
        seq: u32,
        step: &PlannedStep,
        context: &Value,
    ) -> Result<Value, Stop> {
        let (t, task_id, tenant) = (ledger.timeouts, ledger.task_id, input.tenant);
        match step {
            PlannedStep::ConnectorAction {
                connector,
                action,
                args,
            } => {
                let action = RuleActionInput {
                    task_id,
                    tenant,
                    rule_id: input.rule_id,
                    seq,
                    connector: connector.clone(),
                    action: action.clone(),
                    args: args.clone(),
                    context: context.clone(),
                    idempotency_key: format!("{}/{seq}", ctx.workflow_id()),
                };
                Ok(ctx
                    .execute_activity(TaskActivities::rule_action, action, tool_options(&t))
                    .await?)
            }
            PlannedStep::AgentTask {
                agent_id: agent,
                input: template,
            } => {
                let agent = *agent;
                let child = |child_task, text| {
                    ChildRun::Agent(AgentTaskInput {
                        task_id: child_task,
                        tenant,
                        agent_id: agent,
                        input: text,
                        callback_url: None,
                        parent_task: Some(task_id),
                        delegates: Vec::new(),
                        timeouts: t,
                        output_schema: None,
                    })
                };
                let detail = json!({"agent_id": agent});
                child_step(ctx, ledger, seq, (template, context), detail, child).await
            }
            PlannedStep::CrewRun {
                crew_id: crew,
                input: template,
            } => {
                let crew = *crew;
                let child = |child_task, text| {
                    ChildRun::Crew(CrewRunInput {
                        task_id: child_task,
                        tenant,
                        crew_id: crew,
                        input: text,
                        parent_task: Some(task_id),
                        timeouts: t,
                    })
                };
                let detail = json!({"crew_id": crew});
                child_step(ctx, ledger, seq, (template, context), detail, child).await
            }
            PlannedStep::Approval { role } => {
                let waiting = StepRecord {
                    call_id: Some(format!("step-{seq}")),
                    ..StepRecord::new(
                        seq,
                        StepKind::Approval,
                        StepStatus::AwaitingApproval,
                        json!({"role": role}),
                    )
                };
                let decision = await_decision(ctx, ledger, waiting).await?;
                if !decision.approve {
                    return Err(Stop::Failed(format!(
                        "step {seq} was rejected by {}",
                        decision.actor
                    )));
                }
                Ok(json!({"approved_by": decision.actor, "note": decision.note}))
            }
        }
    }
}

/// A rule step that runs a child task (an agent task or a crew run) on its rendered input,
/// recording it as one step of the rule run; the child's reply is the step's output.
async fn child_step<W>(
    ctx: &mut WorkflowContext<W>,
    ledger: &Ledger,
    seq: u32,
    (template, context): (&str, &Value),
    mut detail: Value,
    child: impl FnOnce(uuid::Uuid, String) -> ChildRun,
) -> Result<Value, Stop> {
    let mut step = StepRecord::new(
        seq,
        StepKind::AgentTask,
        StepStatus::Running,
        detail.clone(),
    );
    let text = match render_text(template, context) {
        Ok(text) => text,
        Err(e) => {
            step.status = StepStatus::Failed;
            step.error = Some(e.to_string());
            ledger.note(ctx, step, None).await?;
            return Err(Stop::Failed(e.to_string()));
        }
    };
    let child_task = new_id(ctx);
    detail["task_id"] = json!(child_task);
    detail["input"] = json!(text);
    step.detail = detail;
    ledger.note(ctx, step.clone(), None).await?;
    let workflow_id = format!("{}/step-{seq}", ctx.workflow_id());
    let reply = run_child(ctx, child(child_task, text), workflow_id).await;
    step.status = if reply.is_ok() {
        StepStatus::Succeeded
    } else {
        StepStatus::Failed
    };
    step.error = reply.as_ref().err().cloned();
    step.detail = json!({"output": reply.as_ref().ok()});
    ledger.note(ctx, step, None).await?;
    match reply {
        Ok(reply) => Ok(Value::String(reply)),
        Err(_) if ctx.cancellation_token().is_cancelled() => Err(Stop::Cancelled),
        Err(e) => Err(Stop::Failed(format!("step {seq} failed: {e}"))),
    }
}
