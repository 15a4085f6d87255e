//! What every gateway handler can reach. Built once in `serve`, cloned per request (all
//! fields are cheap handles).

use std::sync::Arc;

use axum::extract::FromRef;
use brain_auth::Authenticator;
use brain_auth::secrets::SecretStore;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    /// The agent runtime: the actor tree every chat and agent change goes through.
    pub runtime: Arc<brain_runtime::RuntimeHandle>,
    /// The gateway's metrics registry (`/metrics` on :8000); components register here.
    pub registry: prometheus::Registry,
    /// Postgres as the RLS-bound application role; enter a tenant with
    /// `principal.begin(&state.db)`.
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub secrets: Arc<dyn SecretStore>,
    pub authenticator: Arc<Authenticator>,
    /// The 13 connectors: connections, tests, resources and actions per tenant.
    pub connectors: Arc<brain_tools::ConnectorService>,
    /// Tenants' own model provider keys (BYOK).
    pub model_keys: Arc<brain_agents::providers::keys::ProviderKeys>,
    /// Collections, uploads with background ingestion, and search per tenant.
    pub knowledge: Arc<brain_knowledge::KnowledgeService>,
    /// Durable tasks, approvals, automation rules and their schedules (Temporal).
    pub tasks: Arc<brain_tasks::TaskService>,
    /// Inbound webhooks: endpoints, verified deliveries.
    pub webhooks: Arc<brain_tools::webhooks::WebhookService>,
    /// Failed-delivery limits checked before a delivery costs a lookup or a secret read.
    pub hook_guard: Arc<crate::hook_guard::HookGuard>,
    /// Run events of tasks (Redis streams), for live watchers on any gateway instance.
    pub events: brain_tasks::RunEvents,
    /// Open event streams per tenant on this instance, and how long each may last.
    pub streams: Arc<crate::streams::StreamLimits>,
    /// Where clients reach the gateway (`BRAIN_PUBLIC_GATEWAY_URL`, no trailing `/`), for
    /// URLs Brain hands out such as A2A agent cards.
    pub public_url: Arc<str>,
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.authenticator.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}
