//! The one assembly of Brain's services: the shared state and every router with all its
//! layers, built from the configuration. `brain serve` (any subset of its services) and the
//! integration tests both build through [`assemble`]; nothing else constructs them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;

use brain_auth::Authenticator;
use brain_auth::client_ip::TrustedProxies;
use brain_auth::keys::KeyRing;
use brain_auth::ratelimit::{RateLimiter, RateLimits};
use brain_auth::refresh::RefreshStore;
use brain_auth::revocation::Revocations;
use brain_auth::secrets::SecretString;
use brain_auth::secrets::{CachedSecretStore, SecretStore, VaultSecretStore};
use brain_auth::service::AuthState;
use brain_auth::sso::{ProviderConfig, Sso};
use brain_auth::throttle::{LoginThrottle, ThrottleSettings};
use brain_auth::token::{KeySource, RemoteJwks, TokenIssuer, TokenSettings, TokenVerifier};

use super::Service;
use super::layers::{with_edge_limits, with_metrics_and_tracing, with_portal_limits};
use crate::config::Config;
use crate::error;
use crate::metrics::HttpMetrics;
use crate::readiness::{self, Readiness};
use crate::state::AppState;

/// What one `brain` process serves: the shared state (absent for a portal alone) and the
/// router of each requested HTTP service, ready to bind.
pub struct Assembly {
    pub app: Option<App>,
    pub gateway: Option<Router>,
    pub auth: Option<Router>,
    pub portal: Option<Router>,
}

impl Assembly {
    /// The router of `service` (`None` for the worker, which serves no HTTP, or for a
    /// service that was not requested).
    pub fn router(&self, service: Service) -> Option<&Router> {
        match service {
            Service::Gateway => self.gateway.as_ref(),
            Service::Auth => self.auth.as_ref(),
            Service::Portal => self.portal.as_ref(),
            Service::Worker => None,
        }
    }
}

/// Connects what `services` need and builds their routers. Every service's `/metrics`
/// shows its own registry; the gateway's is the registry the runtime, tools, knowledge,
/// tasks, webhooks and the database pool register in, so what `deploy/` charts is there.
pub async fn assemble(config: &Config, services: &[Service]) -> anyhow::Result<Assembly> {
    let needs_app = services.iter().any(|s| *s != Service::Portal);
    let app = if needs_app {
        Some(app(config, services.contains(&Service::Auth)).await?)
    } else {
        None
    };
    let gateway = match (&app, services.contains(&Service::Gateway)) {
        (Some(app), true) => Some(gateway_service(&app.state, config)?),
        _ => None,
    };
    let auth = match (&app, services.contains(&Service::Auth)) {
        (
            Some(App {
                auth: Some(auth), ..
            }),
            true,
        ) => Some(auth_service(auth.clone(), config)?),
        (_, true) => anyhow::bail!("the auth service has no signing keys to run with"),
        _ => None,
    };
    let portal = if services.contains(&Service::Portal) {
        let metrics = HttpMetrics::new("portal").context("registering metrics")?;
        let router = with_portal_limits(brain_portal::router(portal_config(config)), config);
        Some(with_metrics_and_tracing("portal", metrics, router))
    } else {
        None
    };
    Ok(Assembly {
        app,
        gateway,
        auth,
        portal,
    })
}

/// The gateway as served: routes, edge limits, and metrics in the shared gateway registry
/// (with the database pool's gauges refreshed per scrape).
fn gateway_service(state: &AppState, config: &Config) -> anyhow::Result<Router> {
    let readiness = Readiness::from_config(config)?;
    let router = with_edge_limits(gateway_router(state.clone(), readiness, config)?, config)?;
    let pool_gauges = crate::metrics::db_pool_metrics(&state.registry, &state.db)?;
    let metrics = HttpMetrics::with_registry(state.registry.clone())?.on_scrape(pool_gauges);
    Ok(with_metrics_and_tracing("gateway", metrics, router))
}

/// The auth service as served, with a registry of its own.
fn auth_service(auth: AuthState, config: &Config) -> anyhow::Result<Router> {
    let router = brain_auth::service::router(auth).fallback(error::not_found);
    let router = with_edge_limits(router, config)?;
    let metrics = HttpMetrics::new("auth").context("registering metrics")?;
    Ok(with_metrics_and_tracing("auth", metrics, router))
}

/// The gateway's routes: health, readiness, the v1 API and its description.
fn gateway_router(
    state: AppState,
    readiness: Readiness,
    config: &Config,
) -> anyhow::Result<Router> {
    let (api, described) = crate::api::router().split_for_parts();
    let document = crate::openapi::document(
        described,
        brain_auth::service::openapi(),
        config.public_auth_url.trim_end_matches('/'),
    )
    .context("describing the API")?;
    let mcp = crate::mcp::router(state.clone());
    let a2a = crate::a2a::router(state.clone());
    let api = api
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::audit_writes,
        ))
        .with_state(state);
    let docs_assets = config
        .portal_site_root
        .clone()
        .unwrap_or_else(brain_portal::PortalConfig::default_site_root)
        .join("docs");
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness::readyz).with_state(readiness))
        .route(
            "/openapi.json",
            get(crate::openapi::openapi_json)
                .with_state(crate::openapi::ApiDocument(Arc::new(document))),
        )
        .route("/docs", get(crate::openapi::docs_page))
        .route(
            "/docs/assets/{file}",
            get(crate::openapi::docs_asset).with_state(Arc::new(docs_assets)),
        )
        .merge(api)
        .merge(mcp)
        .merge(a2a)
        .fallback(error::not_found))
}

/// The shared handles of a running Brain: the gateway's state, and the auth service's when
/// this process holds the signing keys.
#[derive(Clone)]
pub struct App {
    pub state: AppState,
    pub auth: Option<AuthState>,
    pub task_metrics: brain_tasks::TaskMetrics,
}

/// Where Temporal is, from the configuration.
fn temporal_settings(config: &Config) -> anyhow::Result<brain_tasks::TemporalSettings> {
    let mut settings = brain_tasks::TemporalSettings::new(config.require_temporal_address()?);
    settings.namespace = config.temporal_namespace.clone();
    settings.task_queue = config.temporal_task_queue.clone();
    Ok(settings)
}

/// Connects to Postgres, Redis and Vault and assembles the state every service shares (also
/// what commands such as `brain chat` run on without serving). With
/// `signing_keys`, this process loads (or creates) the token signing keys and verifies tokens
/// with them; without, it verifies against the auth service's JWKS at `BRAIN_AUTH_URL`.
pub async fn app(config: &Config, signing_keys: bool) -> anyhow::Result<App> {
    let Stores {
        db,
        redis_client,
        redis,
        vault,
        secrets,
    } = stores(config).await?;
    let egress = config.egress()?;
    let trusted_proxies = config.trusted_proxies()?;
    let (authenticator, auth) = authentication(
        config,
        (&db, &redis, vault),
        &egress,
        &trusted_proxies,
        signing_keys,
    )
    .await?;
    let hook_guard = Arc::new(crate::hook_guard::HookGuard::new(
        redis.clone(),
        crate::hook_guard::HookLimits {
            per_address: config.hook_failures_per_address,
            per_webhook: config.hook_failures_per_webhook,
            window_secs: config.hook_failure_window_secs,
        },
        trusted_proxies,
    ));
    let endpoints = config
        .connector_endpoints()?
        .into_iter()
        .fold(brain_tools::Endpoints::default(), |e, (key, url)| {
            e.with(&key, url)
        });
    let connectors = Arc::new(brain_tools::ConnectorService::new(
        db.clone(),
        redis.clone(),
        secrets.clone(),
        brain_tools::ServiceConfig {
            endpoints,
            egress,
            mcp_timeout: std::time::Duration::from_secs(config.mcp_timeout_secs),
            ..brain_tools::ServiceConfig::default()
        },
    )?);
    let knowledge = Arc::new(crate::knowledge::service(config, db.clone())?);
    let registry = crate::metrics::service_registry("gateway")?;
    knowledge.register_metrics(&registry)?;
    let runtime =
        Arc::new(runtime(config, &db, &secrets, &connectors, &knowledge, &registry).await?);
    let model_keys = Arc::new(brain_agents::providers::keys::ProviderKeys::new(
        db.clone(),
        secrets.clone(),
        runtime.deps().providers.clone(),
    ));
    let webhooks = Arc::new(
        brain_tools::webhooks::WebhookService::new(db.clone(), secrets.clone())
            .with_metrics(brain_tools::webhooks::WebhookMetrics::new(&registry)?)
            .with_public_base_url(config.public_gateway_url.trim_end_matches('/')),
    );
    let tasks = Arc::new(brain_tasks::TaskService::new(
        db.clone(),
        runtime.deps().agents.clone(),
        secrets.clone(),
        connectors.egress().clone(),
        temporal_settings(config)?,
        brain_tasks::StepTimeouts::default(),
    )?);
    let task_metrics = brain_tasks::TaskMetrics::new(&registry)?;
    let redis_for_events = redis.clone();
    let state = AppState {
        runtime,
        registry,
        db,
        redis,
        secrets,
        authenticator,
        connectors,
        model_keys,
        knowledge,
        tasks,
        webhooks,
        hook_guard,
        events: brain_tasks::RunEvents::new(redis_client, redis_for_events),
        streams: crate::streams::StreamLimits::new(
            config.max_streams_per_tenant,
            Duration::from_secs(config.stream_max_secs),
        ),
        public_url: Arc::from(config.public_gateway_url.trim_end_matches('/')),
    };
    Ok(App {
        state,
        auth,
        task_metrics,
    })
}

/// What every service stores in: Postgres, Redis and Vault (and Vault behind the secret
/// cache, for everything but the signing keys).
struct Stores {
    db: sqlx::PgPool,
    redis_client: redis::Client,
    redis: redis::aio::ConnectionManager,
    vault: Arc<dyn SecretStore>,
    secrets: Arc<dyn SecretStore>,
}

async fn stores(config: &Config) -> anyhow::Result<Stores> {
    let db_options: sqlx::postgres::PgConnectOptions = config
        .require_database_url()?
        .parse()
        .context("DATABASE_URL")?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(db_options);
    let redis_client = redis::Client::open(config.require_redis_url()?).context("REDIS_URL")?;
    let redis = redis::aio::ConnectionManager::new(redis_client.clone())
        .await
        .context("connecting to Redis (REDIS_URL)")?;
    let vault: Arc<dyn SecretStore> = Arc::new(VaultSecretStore::new(
        config.require_vault_addr()?,
        config.require_vault_token()?,
        &config.vault_kv_mount,
    )?);
    // Signing keys are read uncached: a key another instance rotated in must verify at once.
    let secrets: Arc<dyn SecretStore> = match config.secret_cache_secs {
        0 => vault.clone(),
        secs => Arc::new(CachedSecretStore::new(
            vault.clone(),
            Duration::from_secs(secs),
        )),
    };
    Ok(Stores {
        db,
        redis_client,
        redis,
        vault,
        secrets,
    })
}

/// Who calls: the authenticator every API request goes through and, with `signing_keys`,
/// the auth service's own state (issuing and refreshing tokens, login throttling, SSO).
async fn authentication(
    config: &Config,
    (db, redis, vault): (
        &sqlx::PgPool,
        &redis::aio::ConnectionManager,
        Arc<dyn SecretStore>,
    ),
    egress: &brain_auth::egress::EgressPolicy,
    trusted_proxies: &TrustedProxies,
    signing_keys: bool,
) -> anyhow::Result<(Arc<Authenticator>, Option<AuthState>)> {
    let tokens = TokenSettings {
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_issuer.clone(),
        access_ttl: Duration::from_secs(config.access_token_ttl_secs),
    };
    let (source, auth_parts) = if signing_keys {
        // A rotated-out key verifies for twice the token lifetime, then goes.
        let grace =
            i64::try_from(config.access_token_ttl_secs.saturating_mul(2)).unwrap_or(i64::MAX);
        let keys = Arc::new(
            KeyRing::load_or_create(vault, grace)
                .await
                .context("loading the token signing keys from Vault")?,
        );
        (KeySource::Local(keys.clone()), Some(keys))
    } else {
        let url = format!(
            "{}/.well-known/jwks.json",
            config.auth_url.trim_end_matches('/')
        );
        (KeySource::Remote(RemoteJwks::new(url)?), None)
    };
    let verifier = Arc::new(TokenVerifier::new(source, &tokens));
    let limiter = RateLimiter::new(
        redis.clone(),
        RateLimits {
            per_tenant: config.rate_limit_tenant_per_minute,
            per_api_key: config.rate_limit_api_key_per_minute,
            window: Duration::from_secs(60),
        },
    );
    let revocations = Revocations::new(redis.clone(), tokens.access_ttl);
    let authenticator = Arc::new(
        Authenticator::new(verifier, db.clone(), Some(limiter)).with_revocations(revocations),
    );
    let sso_providers = config
        .sso_providers()
        .into_iter()
        .map(|(name, issuer, id, secret)| {
            let provider = ProviderConfig {
                issuer: issuer.to_owned(),
                client_id: id.to_owned(),
                client_secret: SecretString::new(secret),
            };
            (name.to_owned(), provider)
        })
        .collect();
    let sso = Arc::new(Sso::new(
        sso_providers,
        &config.public_auth_url,
        egress,
        redis.clone(),
        db.clone(),
    )?);
    let auth = auth_parts.map(|keys| AuthState {
        db: db.clone(),
        issuer: Arc::new(TokenIssuer::new(keys.clone(), tokens.clone())),
        keys,
        refresh: Arc::new(RefreshStore::new(
            redis.clone(),
            Duration::from_secs(config.refresh_token_ttl_secs),
        )),
        throttle: Arc::new(LoginThrottle::new(
            redis.clone(),
            ThrottleSettings {
                per_account: config.login_failures_per_account,
                per_ip: config.login_failures_per_ip,
                window_secs: config.login_window_secs,
            },
        )),
        authenticator: authenticator.clone(),
        sso,
        trusted_proxies: trusted_proxies.clone(),
    });
    Ok((authenticator, auth))
}

/// The agent runtime with the production providers: the local model when `BRAIN_LOCAL_MODEL`
/// is set, and the OpenAI-compatible endpoint (deployment key, or each tenant's own in Vault).
async fn runtime(
    config: &Config,
    db: &sqlx::PgPool,
    secrets: &Arc<dyn SecretStore>,
    connectors: &Arc<brain_tools::ConnectorService>,
    knowledge: &Arc<brain_knowledge::KnowledgeService>,
    registry: &prometheus::Registry,
) -> anyhow::Result<brain_runtime::RuntimeHandle> {
    use brain_agents::LlmProvider;
    use brain_agents::ProviderRegistry;
    use brain_agents::knowledge::Retriever;
    use brain_agents::providers::local::LocalConfig;
    use brain_agents::providers::openai::{OpenAiConfig, OpenAiProvider};
    use brain_agents::providers::rig::{RigConfig, RigProvider, Wire};

    let local = config.local_model.as_ref().map(|path| LocalConfig {
        threads: config.local_threads,
        context_tokens: config.local_context,
        ..LocalConfig::new(path)
    });
    if local.is_none() {
        tracing::warn!("BRAIN_LOCAL_MODEL is not set: `local:*` models are unavailable");
    }
    let mut openai = OpenAiConfig::new(config.openai_base_url.clone());
    openai.api_key = config
        .openai_api_key
        .as_ref()
        .map(|k| SecretString::new(k.expose()));
    openai.secrets = Some(secrets.clone());
    openai.egress = connectors.egress().clone();
    let mut providers =
        ProviderRegistry::standard(local, Some(openai)).context("model providers")?;
    for extra in config.model_providers()? {
        let api_key = extra.api_key.map(|k| SecretString::new(k.expose()));
        let provider: Arc<dyn LlmProvider> = match Wire::named(&extra.name) {
            Some(wire) => {
                let mut endpoint = RigConfig::new(extra.name.clone(), wire, extra.base_url);
                endpoint.api_key = api_key;
                endpoint.secrets = Some(secrets.clone());
                endpoint.egress = connectors.egress().clone();
                Arc::new(RigProvider::new(endpoint).context("model providers")?)
            }
            None => {
                let mut endpoint = OpenAiConfig::new(extra.base_url);
                endpoint.name = extra.name.clone();
                endpoint.api_key = api_key;
                endpoint.key_required = extra.key_required;
                endpoint.secrets = Some(secrets.clone());
                endpoint.egress = connectors.egress().clone();
                Arc::new(OpenAiProvider::new(endpoint).context("model providers")?)
            }
        };
        providers = providers.with(extra.name, provider);
    }
    let retriever: Arc<dyn Retriever> = knowledge.clone();
    let deps = brain_runtime::RuntimeDeps::standard(
        db.clone(),
        providers,
        connectors.clone(),
        Some(retriever),
        registry,
        brain_runtime::RuntimeConfig::default(),
    )?;
    brain_runtime::RuntimeHandle::start(deps)
        .await
        .context("starting the agent runtime")
}

impl App {
    /// The activities of this process's Temporal worker, on the shared runtime's components.
    pub fn task_activities(&self) -> anyhow::Result<brain_tasks::TaskActivities> {
        let state = &self.state;
        let deps = state.runtime.deps();
        Ok(brain_tasks::TaskActivities::new(brain_tasks::TaskDeps {
            db: state.db.clone(),
            agents: deps.agents.clone(),
            turns: deps.turns.clone(),
            providers: deps.providers.clone(),
            connectors: state.connectors.clone(),
            retriever: deps.retriever.clone(),
            secrets: state.secrets.clone(),
            limits: deps.config.turn_limits,
            metrics: Some(self.task_metrics.clone()),
            events: Some(state.events.clone()),
            runtime: Some((*state.runtime).clone()),
        })?)
    }

    /// Starts a Temporal worker on the configured task queue with this process's activities.
    pub async fn start_worker(&self, config: &Config) -> anyhow::Result<brain_tasks::TaskWorker> {
        let worker =
            brain_tasks::TaskWorker::start(temporal_settings(config)?, self.task_activities()?)
                .await?;
        Ok(worker)
    }
}

/// Where the portal finds the gateway, the auth service and its browser bundle.
fn portal_config(config: &Config) -> brain_portal::PortalConfig {
    brain_portal::PortalConfig {
        gateway_url: config.public_gateway_url.clone(),
        auth_url: config.auth_url.clone(),
        public_origin: config.portal_origin.clone(),
        site_root: config
            .portal_site_root
            .clone()
            .unwrap_or_else(brain_portal::PortalConfig::default_site_root),
        sso_providers: config
            .sso_providers()
            .into_iter()
            .map(|(name, ..)| name.to_owned())
            .collect(),
    }
}
