//! A tenant in a fresh database, the real Redis and OpenBao, and one local HTTP server that
//! stands in for every platform.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use brain_auth::TenantId;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_migrations::testing::{TestDb, setting};
use brain_tools::{ConnectorService, Endpoints, RetryPolicy, ServiceConfig};
use uuid::Uuid;
use wiremock::MockServer;

pub struct Harness {
    pub db: TestDb,
    pub tenant: TenantId,
    pub server: MockServer,
    pub service: Arc<ConnectorService>,
    pub secrets: Arc<dyn SecretStore>,
    pub redis: redis::aio::ConnectionManager,
}

/// Every platform's base URL pointed at `uri`.
pub fn endpoints(uri: &str) -> Endpoints {
    [
        "zoho-accounts",
        "zoho-api",
        "hubspot",
        "google-oauth",
        "google-ads",
        "google-analytics",
        "meta-graph",
        "shopify",
        "stripe",
        "mailchimp",
        "slack",
    ]
    .into_iter()
    .fold(Endpoints::default(), |e, key| e.with(key, uri))
}

impl Harness {
    pub async fn new() -> Harness {
        Self::with_retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
        })
        .await
    }

    pub async fn with_retry(retry: RetryPolicy) -> Harness {
        let db = TestDb::new().await.unwrap();
        let id: Uuid =
            sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, 'T') RETURNING id")
                .bind(format!("t{}", &Uuid::new_v4().simple().to_string()[..12]))
                .fetch_one(&db.owner)
                .await
                .unwrap();
        let server = MockServer::start().await;
        let redis_client = redis::Client::open(setting("REDIS_URL").unwrap()).unwrap();
        let redis = redis::aio::ConnectionManager::new(redis_client)
            .await
            .unwrap();
        let secrets: Arc<dyn SecretStore> = Arc::new(
            VaultSecretStore::new(
                &setting("VAULT_ADDR").unwrap(),
                &setting("VAULT_TOKEN").unwrap(),
                "secret",
            )
            .unwrap(),
        );
        let config = ServiceConfig {
            endpoints: endpoints(&server.uri()),
            retry,
            egress: brain_auth::egress::EgressPolicy::loopback(),
            ..ServiceConfig::default()
        };
        let service = Arc::new(
            ConnectorService::new(db.app.clone(), redis.clone(), Arc::clone(&secrets), config)
                .unwrap(),
        );
        Harness {
            db,
            tenant: TenantId(id),
            server,
            service,
            secrets,
            redis,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Connects `id` with `fields` (the live check must already be mocked).
    pub async fn connect(&self, id: &str, fields: &[(&str, &str)]) {
        let creds: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let view = self.service.connect(self.tenant, id, creds).await.unwrap();
        assert_eq!(view.status, brain_tools::ConnectionStatus::Connected);
    }

    /// An agent of this tenant, created as the owner.
    pub async fn agent(&self) -> Uuid {
        sqlx::query_scalar(
            "INSERT INTO agents (tenant_id, name, slug, role, goal) VALUES ($1, 'A', $2, 'r', 'g') RETURNING id",
        )
        .bind(self.tenant.0)
        .bind(format!("a{}", &Uuid::new_v4().simple().to_string()[..12]))
        .fetch_one(&self.db.owner)
        .await
        .unwrap()
    }

    pub async fn grant(
        &self,
        agent: Uuid,
        connector: &str,
        actions: &[&str],
        approval: &str,
    ) -> Uuid {
        sqlx::query_scalar(
            "INSERT INTO tool_grants (tenant_id, agent_id, connector, actions, approval) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(self.tenant.0)
        .bind(agent)
        .bind(connector)
        .bind(actions.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
        .bind(approval)
        .fetch_one(&self.db.owner)
        .await
        .unwrap()
    }
}

/// `Basic base64(user:password)`, computed independently of the code under test.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
