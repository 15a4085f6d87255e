//! Crew runs on the real Temporal dev server: sequential crews passing outputs along (and
//! surviving a worker restart), hierarchical crews whose manager delegates, and a crew on the
//! local model.

use std::sync::Arc;
use std::time::Duration;

use brain_agents::providers::scripted::ScriptStep;
use brain_agents::spec::{AgentId, AgentPatch, Approval, DelegateGrant, NewAgent};
use brain_agents::{AgentStore, PgTurnStore, ProviderRegistry, TurnLimits};
use brain_migrations::testing::setting;
use brain_tasks::{TaskActivities, TaskDeps, TaskFilter, TaskWorker};
use serde_json::json;
use uuid::Uuid;

use crate::tasks::{Tasks, admin, connectors_with, grant, mount_create};

#[tokio::test]
async fn a_sequential_crew_passes_outputs_along_and_survives_a_worker_restart() {
    let t = Tasks::new().await;
    mount_create(&t.platform, "contacts", "77", Duration::ZERO).await;
    let writer = t.agent(vec![]).await;
    let closer = t
        .agent_named(
            "Closer Two",
            vec![grant(&["create_contact"], Approval::Always)],
        )
        .await;
    let crews = brain_automation::crews::CrewStore::new(t.db.app.clone());
    let crew = crews
        .create(
            t.tenant,
            serde_json::from_value(json!({
                "name": "Launch crew",
                "members": [writer, closer],
                "process": "sequential",
                "tasks": [
                    {"description": "Outline the launch email", "expected_output": "An outline",
                     "agent_id": writer},
                    {"description": "Add the lead and confirm", "expected_output": "A confirmation",
                     "agent_id": closer},
                ],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    t.model.push([
        ScriptStep::reply("OUTLINE: hook, offer, call to action"),
        ScriptStep::call(
            "hubspot__create_contact",
            json!({"email": "lead@example.com"}),
        ),
        ScriptStep::reply("Lead added; the outline is ready."),
    ]);
    let worker = t.worker().await;
    let run = t
        .service
        .start_crew_run(
            t.tenant,
            crew.id,
            brain_tasks::NewCrewRun {
                input: "Prepare the spring launch".into(),
                idempotency_key: Some("spring".into()),
            },
        )
        .await
        .unwrap();
    // The second member parks on its tool call; the crew run shows it.
    let parked = t
        .wait(run.task_id, "the crew to wait", |task| {
            task.status == "awaiting_approval"
        })
        .await;
    assert_eq!(parked.kind, "crew");
    let children = t
        .service
        .list(
            t.tenant,
            TaskFilter {
                agent: Some(closer),
                ..TaskFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    let child = t.task(children[0].task_id).await;
    assert_eq!(child.parent_task_id, Some(run.task_id));
    let call = child
        .steps
        .iter()
        .find(|s| s.kind == "approval")
        .and_then(|s| s.call_id.clone())
        .unwrap();

    worker.kill().await;
    let worker = t.worker().await;
    // Approved through the crew run's id: the decision reaches the member's task.
    t.service
        .decide(t.tenant, &admin(), run.task_id, &call, true, None)
        .await
        .unwrap();
    let done = t
        .wait(run.task_id, "the crew to finish", |task| {
            task.status == "succeeded"
        })
        .await;
    worker.shutdown().await;

    // The second member was given the first member's output.
    let requests = t.model.requests();
    let second = requests
        .iter()
        .find(|r| {
            r.messages
                .iter()
                .any(|m| m.content.contains("Add the lead"))
        })
        .unwrap();
    assert!(
        second
            .messages
            .iter()
            .any(|m| m.content.contains("OUTLINE: hook, offer, call to action")),
        "{:?}",
        second.messages
    );
    let steps: Vec<(String, String)> = done
        .steps
        .iter()
        .map(|s| {
            (
                s.kind.to_string(),
                s.detail["agent"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("agent_task".to_owned(), "Closer".to_owned()),
            ("agent_task".to_owned(), "Closer Two".to_owned()),
        ]
    );
    assert_eq!(
        done.output.as_ref().unwrap()["reply"],
        "Lead added; the outline is ready."
    );
    // The same idempotency key answers the same run.
    let again = t
        .service
        .start_crew_run(
            t.tenant,
            crew.id,
            brain_tasks::NewCrewRun {
                input: "Prepare the spring launch".into(),
                idempotency_key: Some("spring".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(again.task_id, run.task_id);
}

#[tokio::test]
async fn a_hierarchical_crews_manager_delegates_to_two_members() {
    let t = Tasks::new().await;
    let manager = t.agent_named("Lead", vec![]).await;
    let writer = t.agent_named("Headline Writer", vec![]).await;
    let copy = t.agent_named("Body Writer", vec![]).await;
    let crews = brain_automation::crews::CrewStore::new(t.db.app.clone());
    let crew = crews
        .create(
            t.tenant,
            serde_json::from_value(json!({
                "name": "Campaign crew",
                "members": [writer, copy],
                "process": "hierarchical",
                "manager_agent_id": manager,
                "tasks": [
                    {"description": "Write the headline", "expected_output": "One line"},
                    {"description": "Write the body", "expected_output": "Two sentences"},
                ],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    t.model.push([
        ScriptStep::call(
            "ask_headline-writer",
            json!({"question": "Write the headline"}),
        ),
        ScriptStep::reply("HEADLINE: Spring into savings"),
        ScriptStep::call(
            "ask_body-writer",
            json!({"question": "Write the body", "context": "HEADLINE: Spring into savings"}),
        ),
        ScriptStep::reply("BODY: Everything 20% off this weekend."),
        ScriptStep::reply("HEADLINE: Spring into savings / BODY: Everything 20% off this weekend."),
    ]);
    let worker = t.worker().await;
    let run = t
        .service
        .start_crew_run(
            t.tenant,
            crew.id,
            brain_tasks::NewCrewRun {
                input: "Announce the spring sale".into(),
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let done = t
        .wait(run.task_id, "the crew to finish", |task| {
            task.status == "succeeded"
        })
        .await;
    worker.shutdown().await;
    assert_eq!(
        done.output.as_ref().unwrap()["reply"],
        "HEADLINE: Spring into savings / BODY: Everything 20% off this weekend."
    );
    // One member turn: the manager's, whose steps show two delegations that succeeded.
    assert_eq!(done.steps.len(), 1);
    assert_eq!(done.steps[0].detail["agent"], "Lead");
    let managed: Uuid = done.steps[0].detail["task_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let manager_task = t.task(managed).await;
    let delegations: Vec<(String, String)> = manager_task
        .steps
        .iter()
        .filter(|s| s.connector.as_deref() == Some("delegate"))
        .map(|s| (s.action.clone().unwrap(), s.status.to_string()))
        .collect();
    assert_eq!(
        delegations,
        vec![
            ("headline-writer".to_owned(), "succeeded".to_owned()),
            ("body-writer".to_owned(), "succeeded".to_owned()),
        ]
    );
    // Each member answered with its own settings: its own system prompt.
    let requests = t.model.requests();
    let member_prompt = |name: &str| {
        requests
            .iter()
            .any(|r| r.messages[0].content.contains(&format!("You are {name}")))
    };
    assert!(member_prompt("Headline Writer"));
    assert!(member_prompt("Body Writer"));
    // The manager was offered exactly the members to ask.
    let offered: Vec<String> = requests[0].tools.iter().map(|d| d.name.clone()).collect();
    assert_eq!(offered, vec!["ask_headline-writer", "ask_body-writer"]);
    // Each hop is audited.
    let hops: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'agent.delegate'",
    )
    .bind(t.tenant.0)
    .fetch_one(&t.db.owner)
    .await
    .unwrap();
    assert_eq!(hops, 2);
}

/// Outcomes of the tenant's `agent.delegate` audit events, oldest first.
async fn delegation_outcomes(t: &Tasks) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT details->>'outcome' FROM audit_events \
         WHERE tenant_id = $1 AND action = 'agent.delegate' ORDER BY seq",
    )
    .bind(t.tenant.0)
    .fetch_all(&t.db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn chat_and_durable_tasks_audit_a_delegation_their_gate_refuses_alike() {
    let t = Tasks::new().await;
    let lead = t.agent_named("Lead", vec![]).await;
    let writer = t.agent_named("Writer", vec![]).await;
    let once = AgentPatch {
        delegates: Some(vec![DelegateGrant {
            agent: AgentId(writer),
            approval: Approval::Never,
            max_calls_per_run: Some(1),
        }]),
        ..AgentPatch::default()
    };
    t.runtime
        .update_agent(t.tenant, AgentId(lead), once, None)
        .await
        .unwrap();
    // The lead asks twice; the second ask is over the grant's limit of one per run.
    let script = || {
        [
            ScriptStep::call("ask_writer", json!({"question": "A headline?"})),
            ScriptStep::reply("Spring into savings"),
            ScriptStep::call("ask_writer", json!({"question": "Another one?"})),
            ScriptStep::reply("Spring into savings it is."),
        ]
    };
    t.model.push(script());
    let ask = "Find a headline";
    t.runtime
        .chat(t.tenant, AgentId(lead), crate::harness::say(ask))
        .await
        .unwrap();
    assert_eq!(delegation_outcomes(&t).await, ["ok", "tool_call_limit"]);

    t.model.push(script());
    let worker = t.worker().await;
    let id = t.start(lead, ask).await;
    let task = t
        .wait(id, "the task to end", |task| task.status == "succeeded")
        .await;
    worker.shutdown().await;
    let refused: Vec<&str> = task
        .steps
        .iter()
        .filter_map(|s| s.detail["refused"].as_str())
        .collect();
    assert_eq!(refused, ["tool_call_limit"], "{:#?}", task.steps);
    assert_eq!(
        delegation_outcomes(&t).await,
        ["ok", "tool_call_limit", "ok", "tool_call_limit"]
    );
}

/// The local Qwen model end to end: a two-member sequential crew on the real worker path.
#[tokio::test]
async fn a_crew_run_with_the_local_model_completes_and_lists_its_steps() {
    use brain_agents::providers::local::{LocalConfig, LocalProvider};
    let model_path = setting("BRAIN_LOCAL_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.brain/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            ))
        });
    let local: Arc<dyn brain_agents::LlmProvider> =
        Arc::new(LocalProvider::new(LocalConfig::new(model_path)));
    let t = Tasks::new().await;
    let mut ids = Vec::new();
    for (name, goal) in [
        ("Namer", "name products in three words or fewer"),
        ("Tagliner", "write one short tagline for a product name"),
    ] {
        let spec = t
            .agents
            .create(
                t.tenant,
                NewAgent {
                    name: name.into(),
                    role: "a copywriter".into(),
                    goal: goal.into(),
                    model: Some("local:default".into()),
                    temperature: Some(0.0),
                    max_tokens: Some(16),
                    ..NewAgent::default()
                },
            )
            .await
            .unwrap();
        ids.push(spec.id.0);
    }
    let crew = brain_automation::crews::CrewStore::new(t.db.app.clone())
        .create(
            t.tenant,
            serde_json::from_value(json!({
                "name": "Copy crew",
                "members": ids,
                "process": "sequential",
                "tasks": [
                    {"description": "Name a reusable water bottle", "expected_output": "A name"},
                    {"description": "Write its tagline", "expected_output": "One line"},
                ],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let (db_options, secrets, platform) = (t.db.app_options(), t.secrets.clone(), t.platform.uri());
    let worker = TaskWorker::start_isolated(
        t.settings.clone(),
        Box::new(move || {
            Box::pin(async move {
                let db = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect_lazy_with(db_options);
                let connectors = connectors_with(&db, &platform, secrets.clone()).await;
                TaskActivities::new(TaskDeps {
                    agents: AgentStore::new(db.clone()),
                    turns: Arc::new(PgTurnStore::new(db.clone())),
                    providers: ProviderRegistry::new().with("local", local),
                    connectors,
                    retriever: None,
                    secrets,
                    limits: TurnLimits::default(),
                    metrics: None,
                    events: None,
                    runtime: None,
                    db,
                })
            })
        }),
    )
    .await
    .unwrap();
    let run = t
        .service
        .start_crew_run(
            t.tenant,
            crew.id,
            brain_tasks::NewCrewRun {
                input: "We are launching a steel water bottle.".into(),
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let done = t
        .wait(run.task_id, "the local crew run", |task| {
            task.status == "succeeded" || task.status == "failed"
        })
        .await;
    worker.shutdown().await;
    assert_eq!(done.status, "succeeded", "{done:#?}");
    assert_eq!(done.steps.len(), 2);
    for step in &done.steps {
        assert_eq!(step.kind, "agent_task");
        assert_eq!(step.status, "succeeded");
        assert!(!step.detail["output"].as_str().unwrap().trim().is_empty());
    }
    assert_eq!(done.steps[0].detail["agent"], "Namer");
    assert_eq!(done.steps[1].detail["agent"], "Tagliner");
}
