//! What the actor tree runs with: stores, providers, tools, knowledge, limits and metrics.

use std::sync::Arc;
use std::time::Duration;

use brain_agents::conversation::TurnStore;
use brain_agents::knowledge::Retriever;
use brain_agents::{AgentStore, PgTurnStore, ProviderRegistry, TurnLimits};

use crate::delegation::DelegationLimits;
use crate::metrics::RuntimeMetrics;
use crate::tools::ToolSource;

/// Supervision and lifecycle settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// A tenant supervisor with no activity and no running turn for this long stops.
    pub tenant_idle_timeout: Duration,
    /// How often a tenant supervisor checks for idleness.
    pub idle_check_interval: Duration,
    /// Restarts allowed within `restart_window` before an agent is marked degraded.
    pub max_restarts: usize,
    pub restart_window: Duration,
    /// First restart delay; doubles per failure in the window, capped at `restart_backoff_max`.
    pub restart_backoff: Duration,
    pub restart_backoff_max: Duration,
    pub turn_limits: TurnLimits,
    /// Depth and call budget of delegation between agents.
    pub delegation: DelegationLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            tenant_idle_timeout: Duration::from_secs(15 * 60),
            idle_check_interval: Duration::from_secs(30),
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
            restart_backoff: Duration::from_millis(100),
            restart_backoff_max: Duration::from_secs(10),
            turn_limits: TurnLimits::default(),
            delegation: DelegationLimits::default(),
        }
    }
}

/// Shared by every actor of the tree (one `Arc`, so an idle agent costs a pointer).
pub struct RuntimeDeps {
    pub agents: AgentStore,
    /// Where turns are persisted (Postgres in production).
    pub turns: Arc<dyn TurnStore>,
    /// Conversation listings for the API.
    pub conversations: PgTurnStore,
    pub providers: ProviderRegistry,
    pub tools: Arc<dyn ToolSource>,
    pub retriever: Option<Arc<dyn Retriever>>,
    pub metrics: RuntimeMetrics,
    pub config: RuntimeConfig,
}

impl RuntimeDeps {
    /// The production wiring: agents and turns in Postgres (`db` is the RLS-bound pool),
    /// grants checked against the connector registry, models limited to the registered
    /// providers, tools through capability handles, metrics registered in `registry`.
    pub fn standard(
        db: sqlx::PgPool,
        providers: ProviderRegistry,
        connectors: Arc<brain_tools::ConnectorService>,
        retriever: Option<Arc<dyn Retriever>>,
        registry: &prometheus::Registry,
        config: RuntimeConfig,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            agents: AgentStore::new(db.clone())
                .with_known_providers(providers.names())
                .with_catalog(Arc::new(crate::tools::ConnectorRegistryCatalog)),
            turns: Arc::new(PgTurnStore::new(db.clone())),
            conversations: PgTurnStore::new(db),
            providers,
            tools: Arc::new(crate::tools::ConnectorTools::new(connectors)),
            retriever,
            metrics: RuntimeMetrics::new(registry)?,
            config,
        })
    }
}
