//! Automation activities: starting crew and rule runs, and a rule's connector actions.

use brain_agents::AgentError;
use brain_agents::spec::AgentId;
use brain_auth::audit::AuditEvent;
use brain_auth::{ErrorCode, TenantId};
use serde_json::{Value, json};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;

use super::{
    TaskActivities, agent_error, infrastructure, permanent, task_error, transient, with_heartbeats,
};
use crate::model::{
    CrewMember, CrewPlan, CrewPlanTask, CrewRunInput, PlannedStep, RuleActionInput, RulePlan,
    RuleRunInput, StepKind, StepRecord, StepStatus, TaskKind,
};
use crate::store::NewTaskRow;
use brain_automation::rules::render_args;

impl TaskActivities {
    /// Starts a crew run: its task row, and the crew as it is now — members by name, and who
    /// does which task.
    pub(super) async fn plan_crew_run(
        &self,
        ctx: ActivityContext,
        input: CrewRunInput,
    ) -> Result<CrewPlan, ActivityError> {
        let tenant = TenantId(input.tenant);
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let crew = match self.crews.get(tenant, input.crew_id).await {
            Ok(crew) => crew,
            Err(brain_automation::crews::CrewError::NotFound) => {
                return Err(permanent("the crew no longer exists"));
            }
            Err(e) => return Err(transient(e)),
        };
        let (task, first) = self
            .store
            .start(
                tenant,
                &NewTaskRow {
                    id: input.task_id,
                    kind: TaskKind::Crew,
                    agent_id: None,
                    rule_id: None,
                    workflow_id: &workflow_id,
                    idempotency_key: None,
                    input: json!({"input": input.input}),
                    callback_url: None,
                    parent_task_id: input.parent_task,
                    crew_id: Some(crew.id),
                },
            )
            .await
            .map_err(task_error)?;
        if first {
            let details = json!({"crew_id": crew.id, "process": crew.process,
                                 "workflow_id": workflow_id, "parent_task": input.parent_task});
            self.started(tenant, task, TaskKind::Crew, "task.start", details)
                .await?;
        }
        let member = |id: Uuid| {
            let agents = self.agents.clone();
            async move {
                let spec = agents.get(tenant, AgentId(id)).await?;
                Ok::<_, AgentError>(CrewMember {
                    agent_id: id,
                    name: spec.name,
                    slug: spec.slug.to_string(),
                    role: spec.role.as_str().to_owned(),
                })
            }
        };
        let mut members = Vec::with_capacity(crew.members.len());
        for id in &crew.members {
            members.push(member(*id).await.map_err(|e| match e {
                AgentError::NotFound => permanent(format!("crew member {id} no longer exists")),
                other => agent_error(other),
            })?);
        }
        let manager = match crew.manager_agent_id {
            Some(id) => Some(member(id).await.map_err(agent_error)?),
            None => None,
        };
        let tasks = (0..crew.tasks.len())
            .filter_map(|i| {
                let t = &crew.tasks[i];
                crew.assignee(i).map(|agent_id| CrewPlanTask {
                    description: t.description.clone(),
                    expected_output: t.expected_output.clone(),
                    agent_id,
                })
            })
            .collect();
        Ok(CrewPlan {
            task_id: task,
            name: crew.name,
            process: crew.process,
            manager,
            members,
            tasks,
        })
    }

    /// Starts a rule run: the task row (a schedule's run has none yet) and the rule as it is
    /// now; a rule disabled or deleted since it fired runs nothing.
    pub(super) async fn plan_rule_run(
        &self,
        ctx: ActivityContext,
        input: RuleRunInput,
    ) -> Result<RulePlan, ActivityError> {
        let tenant = TenantId(input.tenant);
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let rule = match self.rules.get(tenant, input.rule_id).await {
            Ok(rule) => Some(rule),
            Err(brain_automation::rules::RuleError::NotFound) => None,
            Err(e) => return Err(transient(e)),
        };
        let (task, first) = self
            .store
            .start(
                tenant,
                &NewTaskRow {
                    id: input.task_id.unwrap_or_else(Uuid::now_v7),
                    kind: TaskKind::Rule,
                    agent_id: None,
                    rule_id: rule.as_ref().map(|r| r.id),
                    workflow_id: &workflow_id,
                    idempotency_key: None,
                    input: json!({"trigger": input.trigger, "event": input.event}),
                    callback_url: None,
                    parent_task_id: None,
                    crew_id: None,
                },
            )
            .await
            .map_err(task_error)?;
        if first {
            let details = json!({"rule_id": input.rule_id, "trigger": input.trigger,
                                 "workflow_id": workflow_id});
            self.started(tenant, task, TaskKind::Rule, "rule.run", details)
                .await?;
        }
        Ok(match rule {
            Some(rule) if rule.enabled || input.trigger == "manual" => RulePlan {
                task_id: task,
                rule_name: rule.name,
                steps: Some(rule.steps.into_iter().map(PlannedStep::from).collect()),
            },
            Some(rule) => RulePlan {
                task_id: task,
                rule_name: rule.name,
                steps: None,
            },
            None => RulePlan {
                task_id: task,
                rule_name: String::new(),
                steps: None,
            },
        })
    }

    /// A rule's connector action: arguments rendered from the event and earlier outputs, then
    /// run with the workflow's idempotency key. The rule, created by an admin, is the grant.
    pub(super) async fn run_rule_action(
        &self,
        ctx: ActivityContext,
        input: RuleActionInput,
    ) -> Result<Value, ActivityError> {
        let tenant = TenantId(input.tenant);
        let mut step = StepRecord {
            connector: Some(input.connector.clone()),
            action: Some(input.action.clone()),
            ..StepRecord::new(
                input.seq,
                StepKind::Action,
                StepStatus::Running,
                json!({"attempt": ctx.info().attempt}),
            )
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let args = match render_args(&input.args, &input.context) {
            Ok(args) => args,
            Err(e) => {
                step.status = StepStatus::Failed;
                step.error = Some(e.to_string());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                return Err(permanent(e));
            }
        };
        let call = self.connectors.action_attempt(
            tenant,
            &input.connector,
            &input.action,
            args.clone(),
            Some(&input.idempotency_key),
            ctx.info().attempt > 1,
        );
        let outcome = with_heartbeats(&ctx, call).await;
        let arg_names: Vec<String> = args
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        match outcome {
            Err(e) if infrastructure(&e) => Err(transient(e)),
            outcome => {
                let code = match &outcome {
                    Ok(_) => "ok",
                    Err(e) => e.code().as_str(),
                };
                self.audit(
                    tenant,
                    AuditEvent {
                        actor_kind: "system",
                        actor_id: format!("rule/{}", input.rule_id),
                        action: "tool.call",
                        resource: format!(
                            "connectors/{}/actions/{}",
                            input.connector, input.action
                        ),
                        details: json!({"args": arg_names, "outcome": code,
                                        "task_id": input.task_id,
                                        "idempotency_key": input.idempotency_key}),
                    },
                )
                .await?;
                match outcome {
                    Ok(result) => {
                        step.status = StepStatus::Succeeded;
                        step.detail = json!({"args": args, "output": result});
                        self.record(input.tenant, input.task_id, &step, None)
                            .await?;
                        Ok(result)
                    }
                    Err(e) => {
                        step.status = StepStatus::Failed;
                        step.detail = json!({"args": args});
                        step.error = Some(e.to_string());
                        self.record(input.tenant, input.task_id, &step, None)
                            .await?;
                        Err(permanent(format!(
                            "step {} ({}.{}) failed: {e}",
                            input.seq, input.connector, input.action
                        )))
                    }
                }
            }
        }
    }
}
