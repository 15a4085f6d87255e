//! A runtime on a fresh database with a scripted model registered as provider `scripted`.

use std::sync::Arc;
use std::time::Duration;

use brain_agents::providers::scripted::{ScriptStep, ScriptedProvider};
use brain_agents::spec::{AgentSpec, NewAgent};
use brain_agents::{AgentStore, PgTurnStore, ProviderRegistry};
use brain_auth::TenantId;
use brain_migrations::testing::TestDb;
use brain_runtime::{
    NoToolSource, RuntimeConfig, RuntimeDeps, RuntimeHandle, RuntimeMetrics, ToolSource,
};
use prometheus::Registry;

pub struct Harness {
    pub db: TestDb,
    pub model: ScriptedProvider,
    pub runtime: RuntimeHandle,
    pub registry: Registry,
}

pub fn fast_config() -> RuntimeConfig {
    RuntimeConfig {
        restart_backoff: Duration::from_millis(20),
        restart_backoff_max: Duration::from_millis(200),
        max_restarts: 2,
        ..RuntimeConfig::default()
    }
}

pub async fn runtime(
    db: &TestDb,
    model: &ScriptedProvider,
    providers: ProviderRegistry,
    tools: Arc<dyn ToolSource>,
    config: RuntimeConfig,
) -> (RuntimeHandle, Registry) {
    let registry = Registry::new();
    let deps = RuntimeDeps {
        agents: AgentStore::new(db.app.clone()),
        turns: Arc::new(PgTurnStore::new(db.app.clone())),
        conversations: PgTurnStore::new(db.app.clone()),
        providers: providers.with("scripted", Arc::new(model.clone())),
        tools,
        retriever: None,
        metrics: RuntimeMetrics::new(&registry).unwrap(),
        config,
    };
    (RuntimeHandle::start(deps).await.unwrap(), registry)
}

impl Harness {
    pub async fn new(steps: Vec<ScriptStep>) -> Self {
        Self::with(steps, Arc::new(NoToolSource), fast_config()).await
    }

    pub async fn with(
        steps: Vec<ScriptStep>,
        tools: Arc<dyn ToolSource>,
        config: RuntimeConfig,
    ) -> Self {
        let db = TestDb::new().await.unwrap();
        let model = ScriptedProvider::new(steps);
        let (runtime, registry) =
            runtime(&db, &model, ProviderRegistry::new(), tools, config).await;
        Self {
            db,
            model,
            runtime,
            registry,
        }
    }

    pub async fn tenant(&self, slug: &str) -> TenantId {
        TenantId(
            sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id")
                .bind(slug)
                .fetch_one(&self.db.owner)
                .await
                .unwrap(),
        )
    }

    pub async fn agent(&self, tenant: TenantId, name: &str) -> AgentSpec {
        self.runtime
            .create_agent(tenant, new_agent(name))
            .await
            .unwrap()
    }

    /// The value of a counter or gauge in the registry (summing its label sets).
    pub fn metric(&self, name: &str) -> f64 {
        metric(&self.registry, name)
    }
}

/// Sums the samples of `name` in the registry's text exposition.
pub fn metric(registry: &Registry, name: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn new_agent(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        role: "a marketing assistant".into(),
        goal: "help the team".into(),
        model: Some("scripted:default".into()),
        temperature: Some(0.2),
        ..NewAgent::default()
    }
}

pub fn say(message: &str) -> brain_agents::TurnInput {
    brain_agents::TurnInput {
        message: message.into(),
        ..Default::default()
    }
}

/// Polls `check` every 10 ms for up to 30 s (generous: CI runs many tests on two cores).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..3000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
