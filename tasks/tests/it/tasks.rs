//! Durable agent tasks on the real Temporal dev server, Postgres, Redis and OpenBao: a
//! scripted model, HubSpot faked in its wire format, and workers that are started, stopped
//! and killed mid-activity.

use brain_auth::{Code, ErrorCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brain_agents::providers::scripted::{ScriptStep, ScriptedProvider};
use brain_agents::spec::{AgentId, AgentPatch, Approval, Budget, NewAgent, ToolGrant};
use brain_agents::{AgentStore, PgTurnStore, ProviderRegistry, TurnLimits};
use brain_auth::TenantId;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_migrations::testing::{TestDb, setting};
use brain_tasks::{
    ActivitiesFactory, Approver, NewTask, StepTimeouts, TaskActivities, TaskDeps, TaskService,
    TaskView, TaskWorker, TemporalSettings,
};
use brain_tools::{ConnectorService, Endpoints, ServiceConfig};
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Fast pacing: a dead worker's tool call is retried within a couple of seconds.
pub(crate) fn timeouts() -> StepTimeouts {
    StepTimeouts {
        llm_secs: 60,
        tool_secs: 60,
        heartbeat_secs: 2,
        retry_initial_ms: 200,
    }
}

pub struct Tasks {
    pub db: TestDb,
    pub tenant: TenantId,
    pub model: ScriptedProvider,
    pub platform: MockServer,
    pub settings: TemporalSettings,
    pub service: TaskService,
    pub agents: AgentStore,
    /// The actor tree delegations run in (members' turns of a hierarchical crew).
    pub runtime: brain_runtime::RuntimeHandle,
    pub secrets: Arc<dyn SecretStore>,
}

pub(crate) fn secrets() -> Arc<dyn SecretStore> {
    Arc::new(
        VaultSecretStore::new(
            &setting("VAULT_ADDR").unwrap(),
            &setting("VAULT_TOKEN").unwrap(),
            "secret",
        )
        .unwrap(),
    )
}

pub(crate) async fn connectors_with(
    db: &sqlx::PgPool,
    platform: &str,
    secrets: Arc<dyn SecretStore>,
) -> Arc<ConnectorService> {
    let redis = redis::aio::ConnectionManager::new(
        redis::Client::open(setting("REDIS_URL").unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let config = ServiceConfig {
        endpoints: Endpoints::default().with("hubspot", platform),
        egress: brain_auth::egress::EgressPolicy::loopback(),
        ..ServiceConfig::default()
    };
    Arc::new(ConnectorService::new(db.clone(), redis, secrets, config).unwrap())
}

impl Tasks {
    pub async fn new() -> Self {
        let db = TestDb::new().await.unwrap();
        let tenant = TenantId(
            sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, 'T') RETURNING id")
                .bind(format!("t{}", &Uuid::new_v4().simple().to_string()[..12]))
                .fetch_one(&db.owner)
                .await
                .unwrap(),
        );
        let platform = MockServer::start().await;
        // HubSpot's live check when connecting.
        Mock::given(method("GET"))
            .and(path("/crm/v3/objects/contacts"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&platform)
            .await;
        let mut settings = TemporalSettings::new(setting("TEMPORAL_ADDRESS").unwrap());
        // A queue per test: workers of other tests never take this test's work.
        settings.task_queue = format!("brain-test-{}", Uuid::new_v4().simple());
        let agents = AgentStore::new(db.app.clone())
            .with_catalog(Arc::new(brain_runtime::ConnectorRegistryCatalog));
        let model = ScriptedProvider::new([]);
        let service = TaskService::new(
            db.app.clone(),
            agents.clone(),
            secrets(),
            brain_auth::egress::EgressPolicy::loopback(),
            settings.clone(),
            timeouts(),
        )
        .unwrap();
        let (runtime, _) = crate::harness::runtime(
            &db,
            &model,
            ProviderRegistry::new(),
            Arc::new(brain_runtime::NoToolSource),
            crate::harness::fast_config(),
        )
        .await;
        let t = Self {
            runtime,
            db,
            tenant,
            model,
            platform,
            settings,
            service,
            agents,
            secrets: secrets(),
        };
        let hubspot = connectors_with(&t.db.app, &t.platform.uri(), secrets()).await;
        hubspot
            .connect(
                t.tenant,
                "hubspot",
                [("access_token".to_owned(), "pat-test".to_owned())].into(),
            )
            .await
            .unwrap();
        t
    }

    /// The activities as a worker process would build them: its own pools and clients.
    fn activities(&self) -> ActivitiesFactory {
        let (db_options, platform, model, secrets, runtime) = (
            self.db.app_options(),
            self.platform.uri(),
            self.model.clone(),
            self.secrets.clone(),
            self.runtime.clone(),
        );
        Box::new(move || {
            Box::pin(async move {
                let db = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect_lazy_with(db_options);
                let connectors = connectors_with(&db, &platform, secrets.clone()).await;
                TaskActivities::new(TaskDeps {
                    agents: AgentStore::new(db.clone()),
                    turns: Arc::new(PgTurnStore::new(db.clone())),
                    providers: ProviderRegistry::new().with("scripted", Arc::new(model)),
                    connectors,
                    retriever: None,
                    secrets,
                    limits: TurnLimits::default(),
                    metrics: None,
                    events: None,
                    runtime: Some(runtime),
                    db,
                })
            })
        })
    }

    /// A worker on a runtime of its own (so it can be killed like a crashed process).
    pub async fn worker(&self) -> TaskWorker {
        TaskWorker::start_isolated(self.settings.clone(), self.activities())
            .await
            .unwrap()
    }

    pub async fn agent(&self, grants: Vec<ToolGrant>) -> Uuid {
        self.agent_named("Closer", grants).await
    }

    pub async fn agent_named(&self, name: &str, grants: Vec<ToolGrant>) -> Uuid {
        let input = NewAgent {
            name: name.into(),
            role: "a sales assistant".into(),
            goal: "keep the CRM tidy".into(),
            model: Some("scripted:default".into()),
            temperature: Some(0.2),
            tools: grants,
            ..NewAgent::default()
        };
        self.agents.create(self.tenant, input).await.unwrap().id.0
    }

    pub async fn start(&self, agent: Uuid, input: &str) -> Uuid {
        self.service
            .start_agent_task(
                self.tenant,
                agent,
                NewTask {
                    input: input.into(),
                    idempotency_key: None,
                    callback_url: None,
                    output_schema: None,
                },
            )
            .await
            .unwrap()
            .task_id
    }

    pub async fn task(&self, id: Uuid) -> TaskView {
        self.service.get(self.tenant, id).await.unwrap()
    }

    /// Polls the task until `done` holds (up to three minutes: the local model is slow on a
    /// busy machine).
    pub async fn wait(&self, id: Uuid, what: &str, done: impl Fn(&TaskView) -> bool) -> TaskView {
        for _ in 0..1800 {
            let task = self.task(id).await;
            if done(&task) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}: {:#?}", self.task(id).await);
    }

    pub fn requests_to(&self, received: &[Request], verb: &str, to: &str) -> usize {
        received
            .iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == to)
            .count()
    }
}

pub(crate) fn grant(actions: &[&str], approval: Approval) -> ToolGrant {
    ToolGrant {
        connector: "hubspot".into(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        approval,
        max_calls_per_run: None,
    }
}

pub(crate) fn kinds(task: &TaskView) -> Vec<(String, String, String)> {
    task.steps
        .iter()
        .map(|s| {
            (
                s.kind.to_string(),
                s.action.clone().unwrap_or_default(),
                s.status.to_string(),
            )
        })
        .collect()
}

pub(crate) async fn mount_create(platform: &MockServer, object: &str, id: &str, delay: Duration) {
    Mock::given(method("POST"))
        .and(path(format!("/crm/v3/objects/{object}")))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": id, "properties": {}}))
                .set_delay(delay),
        )
        .mount(platform)
        .await;
}

#[tokio::test]
async fn a_task_whose_agent_calls_two_tools_completes_with_its_steps_in_order() {
    let t = Tasks::new().await;
    mount_create(&t.platform, "contacts", "501", Duration::ZERO).await;
    mount_create(&t.platform, "deals", "901", Duration::ZERO).await;
    let agent = t
        .agent(vec![grant(
            &["create_contact", "create_deal"],
            Approval::Never,
        )])
        .await;
    t.model.push([
        ScriptStep::call(
            "hubspot__create_contact",
            json!({"email": "ada@example.com", "firstname": "Ada"}),
        ),
        ScriptStep::call(
            "hubspot__create_deal",
            json!({"dealname": "Ada's first order", "amount": 120}),
        ),
        ScriptStep::reply("Created contact 501 and deal 901."),
    ]);
    let worker = t.worker().await;
    let id = t.start(agent, "Add Ada as a contact and open a deal").await;
    let task = t
        .wait(id, "the task to end", |task| task.status == "succeeded")
        .await;
    worker.shutdown().await;

    assert_eq!(
        task.output,
        Some(json!({"reply": "Created contact 501 and deal 901."}))
    );
    assert_eq!(
        kinds(&task),
        vec![
            ("llm".into(), String::new(), "succeeded".into()),
            ("tool".into(), "create_contact".into(), "succeeded".into()),
            ("llm".into(), String::new(), "succeeded".into()),
            ("tool".into(), "create_deal".into(), "succeeded".into()),
            ("llm".into(), String::new(), "succeeded".into()),
        ]
    );
    let seqs: Vec<i32> = task.steps.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    // Each tool result went back to the model.
    let last = t.model.requests().last().unwrap().messages.clone();
    assert!(
        last.iter().any(|m| m.content.contains("\"501\"")),
        "{last:?}"
    );
    assert!(
        last.iter().any(|m| m.content.contains("\"901\"")),
        "{last:?}"
    );
    let received = t.platform.received_requests().await.unwrap();
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts"),
        1
    );
    assert_eq!(t.requests_to(&received, "POST", "/crm/v3/objects/deals"), 1);
    // Start and end are in the audit trail, with both tool calls.
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY seq")
            .bind(t.tenant.0)
            .fetch_all(&t.db.owner)
            .await
            .unwrap();
    let calls = actions.iter().filter(|a| *a == "tool.call").count();
    assert_eq!(calls, 2, "{actions:?}");
    assert!(actions.contains(&"task.start".to_owned()), "{actions:?}");
    assert_eq!(
        actions.last().map(String::as_str),
        Some("task.end"),
        "{actions:?}"
    );
}

/// The error code the model was told for each of a chat turn's calls ("" when it ran).
fn chat_codes(turn: &brain_agents::TurnResult) -> Vec<String> {
    turn.tool_calls
        .iter()
        .map(|c| {
            let fed: serde_json::Value = serde_json::from_str(&c.result_summary).unwrap();
            fed["error"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// The refusal code of each of a task's steps of `kind` ("" when it was not refused).
fn refused_codes(task: &TaskView, kind: &str) -> Vec<String> {
    task.steps
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.detail["refused"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn chat_and_durable_tasks_refuse_the_same_calls_and_turns_with_the_same_codes() {
    let t = Tasks::new().await;
    mount_create(&t.platform, "contacts", "501", Duration::ZERO).await;
    let one_call = ToolGrant {
        max_calls_per_run: Some(1),
        ..grant(&["create_contact"], Approval::Never)
    };
    let agent = t.agent(vec![one_call]).await;
    let script = || {
        [
            ScriptStep::call(
                "hubspot__create_contact",
                json!({"email": "ada@example.com"}),
            ),
            ScriptStep::call(
                "hubspot__create_contact",
                json!({"email": "bob@example.com"}),
            ),
            ScriptStep::call("wordpress__create_post", json!({"title": "We grew"})),
            ScriptStep::reply("Added Ada; the rest was refused."),
        ]
    };
    // Chat on an actor tree whose tools are the same capability handles.
    let hubspot = connectors_with(&t.db.app, &t.platform.uri(), secrets()).await;
    let (chat, _) = crate::harness::runtime(
        &t.db,
        &t.model,
        ProviderRegistry::new(),
        Arc::new(brain_runtime::ConnectorTools::new(hubspot)),
        crate::harness::fast_config(),
    )
    .await;
    let ask = "Add Ada and Bob, then announce it";
    t.model.push(script());
    let turn = chat
        .chat(t.tenant, AgentId(agent), crate::harness::say(ask))
        .await
        .unwrap();
    let codes = chat_codes(&turn);
    assert_eq!(codes, ["", "tool_call_limit", "tool_not_granted"]);

    t.model.push(script());
    let worker = t.worker().await;
    let id = t.start(agent, ask).await;
    let task = t
        .wait(id, "the task to end", |task| task.status == "succeeded")
        .await;
    assert_eq!(refused_codes(&task, "tool"), codes, "{:#?}", task.steps);
    let received = t.platform.received_requests().await.unwrap();
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts"),
        2,
        "one contact per run"
    );

    // Over budget: both have spent more than one token today.
    let patch = AgentPatch {
        budget: Some(Budget {
            max_tokens_per_day: Some(1),
        }),
        ..AgentPatch::default()
    };
    chat.update_agent(t.tenant, AgentId(agent), patch, None)
        .await
        .unwrap();
    let refused = chat
        .chat(t.tenant, AgentId(agent), crate::harness::say(ask))
        .await
        .unwrap_err();
    let id = t.start(agent, ask).await;
    let task = t
        .wait(id, "the task to fail", |task| task.status == "failed")
        .await;
    worker.shutdown().await;
    assert_eq!(refused.code(), Code::BudgetExhausted);
    assert_eq!(refused_codes(&task, "llm"), [refused.code().as_str()]);
    assert_eq!(
        t.model.requests().len(),
        8,
        "no refused turn reached the model"
    );
}

/// HubSpot's contact search, answering from what the fake actually created.
struct SearchCreated(Arc<AtomicUsize>);

impl Respond for SearchCreated {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let results = if self.0.load(Ordering::SeqCst) > 0 {
            json!([{"id": "777", "properties": {"email": "grace@example.com"}}])
        } else {
            json!([])
        };
        ResponseTemplate::new(200).set_body_json(
            json!({"total": results.as_array().map_or(0, Vec::len), "results": results}),
        )
    }
}

/// Creates the contact (counting it) and answers slowly, so a worker can die meanwhile.
struct SlowCreate(Arc<AtomicUsize>);

impl Respond for SlowCreate {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(201)
            .set_body_json(json!({"id": "777", "properties": {"email": "grace@example.com"}}))
            .set_delay(Duration::from_secs(4))
    }
}

#[tokio::test]
async fn a_worker_killed_mid_tool_call_is_replaced_and_the_platform_sees_one_write() {
    let t = Tasks::new().await;
    let created = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(SlowCreate(created.clone()))
        .mount(&t.platform)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(SearchCreated(created.clone()))
        .mount(&t.platform)
        .await;
    let agent = t
        .agent(vec![grant(&["create_contact"], Approval::Never)])
        .await;
    t.model.push([
        ScriptStep::call(
            "hubspot__create_contact",
            json!({"email": "grace@example.com"}),
        ),
        ScriptStep::reply("Grace is in the CRM."),
    ]);
    let first = t.worker().await;
    let id = t.start(agent, "Add grace@example.com").await;
    // Kill the worker while the platform is still answering the write (which may take a
    // while to be sent on a busy machine: the model step runs first).
    for _ in 0..3000 {
        if created.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        created.load(Ordering::SeqCst),
        1,
        "the write never reached the platform"
    );
    first.kill().await;
    let running = t.task(id).await;
    assert_eq!(running.status, "running");

    let second = t.worker().await;
    let task = t
        .wait(id, "the task to end", |task| task.status == "succeeded")
        .await;
    second.shutdown().await;

    // Exactly one write reached the platform: the retry found the abandoned claim and asked
    // HubSpot (by e-mail) instead of creating the contact again.
    let received = t.platform.received_requests().await.unwrap();
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts"),
        1
    );
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts/search"),
        1
    );
    assert_eq!(created.load(Ordering::SeqCst), 1);
    let tool = task.steps.iter().find(|s| s.kind == "tool").unwrap();
    assert_eq!(tool.status, "succeeded");
    assert_eq!(tool.detail["attempt"], json!(2), "{tool:?}");
    assert_eq!(task.output, Some(json!({"reply": "Grace is in the CRM."})));
}

pub(crate) async fn parked(t: &Tasks, id: Uuid) -> (TaskView, String) {
    let task = t
        .wait(id, "the approval", |task| {
            task.status == "awaiting_approval"
        })
        .await;
    let call = task
        .steps
        .iter()
        .find(|s| s.kind == "approval" && s.status == "awaiting_approval")
        .and_then(|s| s.call_id.clone())
        .unwrap();
    (task, call)
}

pub(crate) fn admin() -> Approver {
    Approver {
        actor: format!("user:{}", Uuid::new_v4()),
        role: Some(brain_auth::Role::Admin),
    }
}

#[tokio::test]
async fn an_approval_survives_a_worker_restart_and_the_task_completes_after_approve() {
    let t = Tasks::new().await;
    mount_create(&t.platform, "contacts", "42", Duration::ZERO).await;
    let agent = t
        .agent(vec![grant(&["create_contact"], Approval::Always)])
        .await;
    t.model.push([
        ScriptStep::call(
            "hubspot__create_contact",
            json!({"email": "lin@example.com"}),
        ),
        ScriptStep::reply("Lin was added after approval."),
    ]);
    let worker = t.worker().await;
    let id = t.start(agent, "Add lin@example.com").await;
    let (task, call) = parked(&t, id).await;
    assert_eq!(
        task.steps.last().unwrap().connector.as_deref(),
        Some("hubspot")
    );
    // Nothing was written while waiting.
    let received = t.platform.received_requests().await.unwrap();
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts"),
        0
    );

    worker.kill().await;
    let worker = t.worker().await;
    t.service
        .decide(t.tenant, &admin(), id, &call, true, Some("fine".into()))
        .await
        .unwrap();
    let task = t
        .wait(id, "the task to end", |task| task.status == "succeeded")
        .await;
    worker.shutdown().await;
    assert_eq!(
        kinds(&task),
        vec![
            ("llm".into(), String::new(), "succeeded".into()),
            (
                "approval".into(),
                "create_contact".into(),
                "approved".into()
            ),
            ("tool".into(), "create_contact".into(), "succeeded".into()),
            ("llm".into(), String::new(), "succeeded".into()),
        ]
    );
    let received = t.platform.received_requests().await.unwrap();
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts"),
        1
    );
    // A second decision on the same call is refused: it is no longer waiting.
    let again = t
        .service
        .decide(t.tenant, &admin(), id, &call, false, None)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Conflict);
}

#[tokio::test]
async fn a_rejected_call_is_a_failed_step_the_agent_is_told_about() {
    let t = Tasks::new().await;
    let agent = t
        .agent(vec![grant(&["create_contact"], Approval::Always)])
        .await;
    t.model.push([
        ScriptStep::call(
            "hubspot__create_contact",
            json!({"email": "max@example.com"}),
        ),
        ScriptStep::reply("Understood, I did not add Max."),
    ]);
    let worker = t.worker().await;
    let id = t.start(agent, "Add max@example.com").await;
    let (_, call) = parked(&t, id).await;
    t.service
        .decide(
            t.tenant,
            &admin(),
            id,
            &call,
            false,
            Some("not a real lead".into()),
        )
        .await
        .unwrap();
    let task = t
        .wait(id, "the task to end", |task| task.status == "succeeded")
        .await;
    worker.shutdown().await;
    let approval = task.steps.iter().find(|s| s.kind == "approval").unwrap();
    assert_eq!(approval.status, "rejected");
    assert!(approval.error.is_some());
    assert!(
        task.steps.iter().all(|s| s.kind != "tool"),
        "{:?}",
        kinds(&task)
    );
    // The model heard about the rejection, note included.
    let told = t.model.requests().last().unwrap().messages.clone();
    let tool_message = told
        .iter()
        .find(|m| m.role == brain_agents::providers::ChatRole::Tool)
        .unwrap();
    assert!(
        tool_message.content.contains("rejected"),
        "{}",
        tool_message.content
    );
    assert!(
        tool_message.content.contains("not a real lead"),
        "{}",
        tool_message.content
    );
    let received = t.platform.received_requests().await.unwrap();
    assert_eq!(
        t.requests_to(&received, "POST", "/crm/v3/objects/contacts"),
        0
    );
}

#[tokio::test]
async fn cancel_stops_a_waiting_task() {
    let t = Tasks::new().await;
    let agent = t
        .agent(vec![grant(&["create_contact"], Approval::Always)])
        .await;
    t.model.push([ScriptStep::call(
        "hubspot__create_contact",
        json!({"email": "sam@example.com"}),
    )]);
    let worker = t.worker().await;
    let id = t.start(agent, "Add sam@example.com").await;
    parked(&t, id).await;
    t.service.cancel(t.tenant, id).await.unwrap();
    let task = t
        .wait(id, "the cancellation", |task| task.status == "cancelled")
        .await;
    worker.shutdown().await;
    assert!(task.finished_at.is_some());
    let approval = task.steps.iter().find(|s| s.kind == "approval").unwrap();
    assert_eq!(approval.status, "cancelled");
    // Cancelling an ended task is a conflict.
    let err = t.service.cancel(t.tenant, id).await.unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
}
