//! One run of a crew: its tasks in order (sequential), each member's turn seeing the earlier
//! results, or its manager handing them out (hierarchical); every member turn is a child
//! agent task with its own steps.

use serde_json::{Value, json};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};
use uuid::Uuid;

use super::{
    ChildRun, Ledger, Report, Stop, conclude, ending, finish, new_id, note_options, run_child,
};
use crate::activities::TaskActivities;
use crate::model::{
    AgentTaskInput, CrewMember, CrewPlan, CrewPlanTask, CrewRunInput, StepKind, StepRecord,
    StepStatus, TaskOutcome, TaskStatus,
};
use brain_automation::crews::Process;

/// What a member of a sequential crew is asked to do.
fn member_prompt(crew_input: &str, task: &CrewPlanTask, earlier: &[(String, String)]) -> String {
    let mut prompt = format!(
        "{crew_input}\n\nYour task: {}\nExpected output: {}\n",
        task.description, task.expected_output
    );
    if !earlier.is_empty() {
        prompt.push_str("\nResults of the earlier tasks of this crew, in order:\n");
        for (i, (who, output)) in earlier.iter().enumerate() {
            prompt.push_str(&format!("{}. {who}: {output}\n", i + 1));
        }
    }
    prompt
}

/// What a hierarchical crew's manager is asked to do.
fn manager_prompt(crew_input: &str, plan: &CrewPlan) -> String {
    let mut prompt = format!(
        "{crew_input}\n\nYou manage the crew \"{}\". Hand each task to the member best suited \
         for it with the ask_<member> tools, then assemble the members' results into the final \
         answer.\n\nMembers:\n",
        plan.name
    );
    for m in &plan.members {
        prompt.push_str(&format!("- {} (ask_{}): {}\n", m.name, m.slug, m.role));
    }
    prompt.push_str("\nTasks:\n");
    for (i, t) in plan.tasks.iter().enumerate() {
        prompt.push_str(&format!(
            "{}. {} (expected output: {})\n",
            i + 1,
            t.description,
            t.expected_output
        ));
    }
    prompt
}

fn member_name(plan: &CrewPlan, agent: Uuid) -> String {
    plan.members
        .iter()
        .chain(plan.manager.iter())
        .find(|m| m.agent_id == agent)
        .map_or_else(|| agent.to_string(), |m: &CrewMember| m.name.clone())
}

/// One run of a crew: its tasks in order (sequential) or its manager delegating them
/// (hierarchical); every member turn is a child agent task with its own steps.
#[workflow]
#[derive(Default)]
pub struct CrewRunWorkflow;

#[workflow_methods]
impl CrewRunWorkflow {
    #[run(name = "CrewRun")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: CrewRunInput,
    ) -> WorkflowResult<String> {
        let t = input.timeouts;
        let plan = match ctx
            .execute_activity(
                TaskActivities::begin_crew_run,
                input.clone(),
                note_options(&t),
            )
            .await
        {
            Ok(plan) => plan,
            Err(e) => {
                let stop = Stop::from(e);
                if let Stop::Failed(message) = &stop {
                    let outcome = TaskOutcome {
                        task_id: input.task_id,
                        tenant: input.tenant,
                        status: TaskStatus::Failed,
                        output: None,
                        error: Some(message.clone()),
                        usage: None,
                        tool_calls: 0,
                    };
                    finish(ctx, &t, outcome, None).await?;
                }
                return ending(stop);
            }
        };
        let mut results: Vec<Value> = Vec::new();
        let ledger = Ledger {
            task_id: plan.task_id,
            tenant: input.tenant,
            timeouts: t,
        };
        let result = Self::steps(ctx, &input, &ledger, &plan, &mut results).await;
        let output = match &result {
            Ok(answer) => json!({"reply": answer, "tasks": results}),
            Err(_) => json!({"tasks": results}),
        };
        let report = Report {
            output: Some(output),
            ..Report::default()
        };
        conclude(ctx, &ledger, result, report).await
    }

    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &CrewRunInput,
        ledger: &Ledger,
        plan: &CrewPlan,
        results: &mut Vec<Value>,
    ) -> Result<String, Stop> {
        let t = ledger.timeouts;
        // (agent, task text) per member turn, in order.
        let turns: Vec<(Uuid, String, Vec<Uuid>)> = match plan.process {
            Process::Sequential => plan
                .tasks
                .iter()
                .map(|task| (task.agent_id, String::new(), Vec::new()))
                .collect(),
            Process::Hierarchical => {
                let manager = plan
                    .manager
                    .as_ref()
                    .ok_or_else(|| Stop::Failed("the crew has no manager".into()))?;
                vec![(
                    manager.agent_id,
                    manager_prompt(&input.input, plan),
                    plan.members.iter().map(|m| m.agent_id).collect(),
                )]
            }
        };
        let mut earlier: Vec<(String, String)> = Vec::new();
        let mut answer = String::new();
        for (index, (agent, text, delegates)) in turns.into_iter().enumerate() {
            let seq = u32::try_from(index).unwrap_or(u32::MAX);
            let text = match plan.process {
                Process::Sequential => member_prompt(&input.input, &plan.tasks[index], &earlier),
                Process::Hierarchical => text,
            };
            let child_task = new_id(ctx);
            let who = member_name(plan, agent);
            let running = StepRecord::new(
                seq,
                StepKind::AgentTask,
                StepStatus::Running,
                json!({"agent_id": agent, "agent": who, "task_id": child_task,
                       "crew_task": plan.tasks.get(index).map(|t| &t.description)}),
            );
            ledger.note(ctx, running.clone(), None).await?;
            let reply = run_child(
                ctx,
                ChildRun::Agent(AgentTaskInput {
                    task_id: child_task,
                    tenant: input.tenant,
                    agent_id: agent,
                    input: text,
                    callback_url: None,
                    parent_task: Some(plan.task_id),
                    delegates,
                    timeouts: t,
                    output_schema: None,
                }),
                format!("{}/turn-{seq}", ctx.workflow_id()),
            )
            .await;
            let done = StepRecord {
                status: if reply.is_ok() {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed
                },
                error: reply.as_ref().err().cloned(),
                detail: json!({"output": reply.as_ref().ok()}),
                ..running
            };
            ledger.note(ctx, done, None).await?;
            match reply {
                Ok(reply) => {
                    results.push(json!({"agent_id": agent, "agent": who, "output": reply}));
                    earlier.push((who, reply.clone()));
                    answer = reply;
                }
                Err(_) if ctx.cancellation_token().is_cancelled() => return Err(Stop::Cancelled),
                Err(e) => return Err(Stop::Failed(format!("{who}'s turn failed: {e}"))),
            }
        }
        Ok(answer)
    }
}
