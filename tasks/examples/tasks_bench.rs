//! `cargo xtask bench tasks`: what a durable task costs on the Temporal dev server, each
//! figure next to an empty workflow measured in the same run on the same server.
//!
//! * start → complete latency (p50/p99, sequential) of: an empty workflow; a workflow with
//!   one no-op activity; a real agent task with a zero-latency scripted model (its begin,
//!   model and finish activities, with their Postgres writes);
//! * throughput with one worker: N of each started at once, tasks per second until all end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark may fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use brain_agents::providers::scripted::{ScriptStep, ScriptedProvider};
use brain_agents::spec::NewAgent;
use brain_agents::{AgentStore, PgTurnStore, ProviderRegistry, TurnLimits};
use brain_auth::TenantId;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_migrations::testing::{TestDb, setting};
use brain_tasks::{
    AgentTaskWorkflow, NewTask, StepTimeouts, TaskActivities, TaskDeps, TaskService, TaskWorker,
    TemporalSettings, connect,
};
use brain_tools::{ConnectorService, ServiceConfig};
use futures::future::join_all;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, Worker, WorkerOptions, WorkflowContext, WorkflowResult};
use uuid::Uuid;

const LATENCY_SAMPLES: usize = 40;
const THROUGHPUT_TASKS: usize = 100;

#[workflow]
#[derive(Default)]
struct EmptyWorkflow;

#[workflow_methods]
impl EmptyWorkflow {
    #[run(name = "BenchEmpty")]
    async fn run(_ctx: &mut WorkflowContext<Self>, _input: u32) -> WorkflowResult<u32> {
        Ok(0)
    }
}

struct Noop;

#[activities]
impl Noop {
    #[activity]
    async fn noop(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        Ok(n)
    }
}

#[workflow]
#[derive(Default)]
struct OneActivityWorkflow;

#[workflow_methods]
impl OneActivityWorkflow {
    #[run(name = "BenchOneActivity")]
    async fn run(ctx: &mut WorkflowContext<Self>, input: u32) -> WorkflowResult<u32> {
        Ok(ctx
            .execute_activity(
                Noop::noop,
                input,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
            )
            .await?)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A worker for the two baseline workflows, run the way Brain runs its own.
fn baseline_worker(settings: TemporalSettings) {
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        handle.block_on(async move {
            let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default()).unwrap();
            let client = connect(&settings).await.unwrap();
            let options = WorkerOptions::new(settings.task_queue.clone())
                .register_workflow::<EmptyWorkflow>()
                .unwrap()
                .register_workflow::<OneActivityWorkflow>()
                .unwrap()
                .register_activities(Noop)
                .build();
            let mut worker = Worker::new(&runtime, client, options).unwrap();
            worker.run().await.unwrap();
        });
    });
}

struct Stats {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

/// Runs `one` sequentially for latency, then `THROUGHPUT_TASKS` at once for throughput.
async fn measure<F, Fut>(one: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up connections and the worker's caches.
    for i in 0..3 {
        one(1_000_000 + i).await;
    }
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        one(i).await;
        samples.push(started.elapsed());
    }
    samples.sort();
    let started = Instant::now();
    join_all((0..THROUGHPUT_TASKS).map(|i| one(2_000_000 + i))).await;
    let elapsed = started.elapsed();
    Stats {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        per_second: THROUGHPUT_TASKS as f64 / elapsed.as_secs_f64(),
    }
}

async fn run_baseline<W>(client: &Client, queue: &str, workflow: W, prefix: &str, i: usize)
where
    W: temporalio_workflow::common::HasWorkflowDefinition<Input = u32>,
    W::Output: Send,
{
    let options =
        WorkflowStartOptions::new(queue.to_owned(), format!("{prefix}-{i}-{}", Uuid::new_v4()))
            .build();
    let handle = client
        .start_workflow(workflow, u32::try_from(i).unwrap_or(0), options)
        .await
        .unwrap();
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
}

fn print(what: &str, stats: &Stats, baseline: &Stats) {
    println!(
        "{what:<44} p50 {:>7.1} ms  p99 {:>7.1} ms  ({:>4.1}× the empty workflow)   {:>6.1} tasks/s ({:.2}× empty)",
        ms(stats.p50),
        ms(stats.p99),
        ms(stats.p50) / ms(baseline.p50).max(f64::EPSILON),
        stats.per_second,
        stats.per_second / baseline.per_second.max(f64::EPSILON),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

async fn bench() {
    let address = setting("TEMPORAL_ADDRESS").expect("TEMPORAL_ADDRESS (cargo xtask infra up)");
    let mut baseline = TemporalSettings::new(address.clone());
    baseline.task_queue = format!("bench-baseline-{}", Uuid::new_v4().simple());
    baseline_worker(baseline.clone());
    let client = connect(&baseline).await.unwrap();
    let queue = baseline.task_queue.clone();

    let empty = measure(|i| run_baseline(&client, &queue, EmptyWorkflow::run, "empty", i)).await;
    let one = measure(|i| run_baseline(&client, &queue, OneActivityWorkflow::run, "one", i)).await;
    let agent_task = measure_agent_task(address).await;

    println!(
        "Temporal dev server, one worker, {LATENCY_SAMPLES} sequential runs for latency, \
         {THROUGHPUT_TASKS} concurrent for throughput"
    );
    print("empty workflow (baseline)", &empty, &empty);
    print("one no-op activity", &one, &empty);
    print(
        "agent task (begin + model + finish, Postgres)",
        &agent_task,
        &empty,
    );
}

/// A real agent task: Postgres, the task row and steps, a scripted model with no latency.
async fn measure_agent_task(address: String) -> Stats {
    let db = TestDb::new().await.unwrap();
    let tenant = bench_tenant(&db).await;
    let secrets = vault();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(db.app_options())
        .await
        .unwrap();
    let agents = AgentStore::new(pool.clone());
    let agent = bench_agent(&agents, tenant).await;
    let mut settings = TemporalSettings::new(address);
    settings.task_queue = format!("bench-tasks-{}", Uuid::new_v4().simple());
    let activities = task_activities(&pool, &agents, &secrets).await;
    let worker = TaskWorker::start(settings.clone(), activities)
        .await
        .unwrap();
    let service = TaskService::new(
        pool.clone(),
        agents,
        secrets,
        brain_auth::egress::EgressPolicy::default(),
        settings.clone(),
        StepTimeouts::default(),
    )
    .unwrap();
    let task_client = connect(&settings).await.unwrap();
    let stats = measure(|_| async {
        let started = service
            .start_agent_task(
                tenant,
                agent,
                NewTask {
                    input: "Say done".into(),
                    idempotency_key: None,
                    callback_url: None,
                    output_schema: None,
                },
            )
            .await
            .unwrap();
        task_client
            .get_workflow_handle::<AgentTaskWorkflow>(format!(
                "agent-task/{tenant}/{}",
                started.task_id
            ))
            .get_result(WorkflowGetResultOptions::default())
            .await
            .unwrap();
    })
    .await;
    worker.shutdown().await;
    stats
}

async fn bench_tenant(db: &TestDb) -> TenantId {
    TenantId(
        sqlx::query_scalar(
            "INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap(),
    )
}

fn vault() -> Arc<dyn SecretStore> {
    Arc::new(
        VaultSecretStore::new(
            &setting("VAULT_ADDR").unwrap(),
            &setting("VAULT_TOKEN").unwrap(),
            "secret",
        )
        .unwrap(),
    )
}

/// The agent the tasks run: a scripted model that answers at once.
async fn bench_agent(agents: &AgentStore, tenant: TenantId) -> Uuid {
    agents
        .create(
            tenant,
            NewAgent {
                name: "Bench".into(),
                role: "a benchmark".into(),
                goal: "answer at once".into(),
                model: Some("scripted:default".into()),
                ..NewAgent::default()
            },
        )
        .await
        .unwrap()
        .id
        .0
}

/// The task activities as Brain builds them, with the scripted model as the only provider.
async fn task_activities(
    pool: &sqlx::PgPool,
    agents: &AgentStore,
    secrets: &Arc<dyn SecretStore>,
) -> TaskActivities {
    let redis = redis::aio::ConnectionManager::new(
        redis::Client::open(setting("REDIS_URL").unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let model = ScriptedProvider::repeating(ScriptStep::reply("Done."));
    let connectors = Arc::new(
        ConnectorService::new(
            pool.clone(),
            redis,
            secrets.clone(),
            ServiceConfig::default(),
        )
        .unwrap(),
    );
    TaskActivities::new(TaskDeps {
        db: pool.clone(),
        agents: agents.clone(),
        turns: Arc::new(PgTurnStore::new(pool.clone())),
        providers: ProviderRegistry::new().with("scripted", Arc::new(model)),
        connectors,
        retriever: None,
        secrets: secrets.clone(),
        limits: TurnLimits::default(),
        metrics: None,
        events: None,
        runtime: None,
    })
    .unwrap()
}
