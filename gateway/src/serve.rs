//! `brain serve`: the gateway (:8000), the auth service (:8009) and the portal (:3003),
//! together in one process or each alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use brain_auth::Authenticator;
use brain_auth::keys::KeyRing;
use brain_auth::ratelimit::{RateLimiter, RateLimits};
use brain_auth::refresh::RefreshStore;
use brain_auth::secrets::SecretString;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_auth::service::AuthState;
use brain_auth::sso::{ProviderConfig, Sso};
use brain_auth::throttle::{LoginThrottle, ThrottleSettings};
use brain_auth::token::{KeySource, RemoteJwks, TokenIssuer, TokenSettings, TokenVerifier};

use crate::config::Config;
use crate::error;
use crate::metrics::HttpMetrics;
use crate::readiness::{self, Readiness};
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Gateway,
    Auth,
    Portal,
    /// The Temporal worker: durable tasks and rule runs (no HTTP).
    Worker,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Gateway,
        Service::Auth,
        Service::Portal,
        Service::Worker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Auth => "auth",
            Service::Portal => "portal",
            Service::Worker => "worker",
        }
    }

    fn addr(self, config: &Config) -> Option<SocketAddr> {
        match self {
            Service::Gateway => Some(config.gateway_addr),
            Service::Auth => Some(config.auth_addr),
            Service::Portal => Some(config.portal_addr),
            Service::Worker => None,
        }
    }
}

/// The gateway's routes: health, readiness and the v1 API.
pub fn gateway_router(state: AppState, readiness: Readiness) -> Router {
    let api = crate::api::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::audit_writes,
        ))
        .with_state(state);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness::readyz).with_state(readiness))
        .merge(api)
        .fallback(error::not_found)
}

/// The shared handles of a running Brain: the gateway's state, and the auth service's when
/// this process holds the signing keys.
pub struct App {
    pub state: AppState,
    pub auth: Option<AuthState>,
    pub task_metrics: brain_runtime::tasks::TaskMetrics,
}

/// Where Temporal is, from the configuration.
pub fn temporal_settings(
    config: &Config,
) -> anyhow::Result<brain_runtime::tasks::TemporalSettings> {
    let mut settings =
        brain_runtime::tasks::TemporalSettings::new(config.require_temporal_address()?);
    settings.namespace = config.temporal_namespace.clone();
    settings.task_queue = config.temporal_task_queue.clone();
    Ok(settings)
}

/// Connects to Postgres, Redis and Vault and assembles both services' state. With
/// `signing_keys`, this process loads (or creates) the token signing keys and verifies tokens
/// with them; without, it verifies against the auth service's JWKS at `BRAIN_AUTH_URL`.
pub async fn app(config: &Config, signing_keys: bool) -> anyhow::Result<App> {
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
    let secrets: Arc<dyn SecretStore> = Arc::new(VaultSecretStore::new(
        config.require_vault_addr()?,
        config.require_vault_token()?,
        &config.vault_kv_mount,
    )?);
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
            KeyRing::load_or_create(secrets.clone(), grace)
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
    let authenticator = Arc::new(Authenticator::new(verifier, db.clone(), Some(limiter)));
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
    });
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
            ..brain_tools::ServiceConfig::default()
        },
    )?);
    let knowledge = Arc::new(crate::knowledge::service(config, db.clone())?);
    let registry = crate::metrics::service_registry("gateway")?;
    knowledge.register_metrics(&registry)?;
    let runtime =
        Arc::new(runtime(config, &db, &secrets, &connectors, &knowledge, &registry).await?);
    let webhooks = Arc::new(
        brain_tools::webhooks::WebhookService::new(db.clone(), secrets.clone())
            .with_metrics(brain_tools::webhooks::WebhookMetrics::new(&registry)?)
            .with_public_base_url(config.public_gateway_url.trim_end_matches('/')),
    );
    let tasks = Arc::new(brain_runtime::tasks::TaskService::new(
        db.clone(),
        runtime.deps().agents.clone(),
        secrets.clone(),
        temporal_settings(config)?,
        brain_runtime::tasks::StepTimeouts::default(),
    )?);
    let task_metrics = brain_runtime::tasks::TaskMetrics::new(&registry)?;
    let redis_for_events = redis.clone();
    let state = AppState {
        runtime,
        registry,
        db,
        redis,
        secrets,
        authenticator,
        connectors,
        knowledge,
        tasks,
        webhooks,
        events: brain_runtime::tasks::RunEvents::new(redis_client, redis_for_events),
    };
    Ok(App {
        state,
        auth,
        task_metrics,
    })
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
    use brain_agents::ProviderRegistry;
    use brain_agents::knowledge::{KnowledgeRetriever, Retriever};
    use brain_agents::providers::local::LocalConfig;
    use brain_agents::providers::openai::OpenAiConfig;

    let local = LocalConfig::from_env();
    if local.is_none() {
        tracing::warn!("BRAIN_LOCAL_MODEL is not set: `local:*` models are unavailable");
    }
    let mut openai = OpenAiConfig::new(config.openai_base_url.clone());
    openai.api_key = config
        .openai_api_key
        .as_ref()
        .map(|k| SecretString::new(k.expose()));
    openai.secrets = Some(secrets.clone());
    let providers = ProviderRegistry::standard(local, Some(openai)).context("model providers")?;
    let retriever: Arc<dyn Retriever> = Arc::new(KnowledgeRetriever::new(knowledge.clone()));
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

/// Adds what every service has: `/metrics`, request metrics, request ids and a span per
/// request carrying the route template and the request id.
pub fn with_common_layers(service: &'static str, router: Router) -> anyhow::Result<Router> {
    let metrics = HttpMetrics::new(service).context("registering metrics")?;
    Ok(with_metrics_and_tracing(service, metrics, router))
}

/// The gateway as served: routes, edge limits, and metrics in the shared gateway registry
/// (with the database pool's gauges).
pub fn gateway_service(
    state: &AppState,
    readiness: Readiness,
    config: &Config,
) -> anyhow::Result<Router> {
    let router = with_edge_limits(gateway_router(state.clone(), readiness), config)?;
    let pool_gauges = crate::metrics::db_pool_metrics(&state.registry, &state.db)?;
    let metrics = HttpMetrics::with_registry(state.registry.clone())?.on_scrape(pool_gauges);
    Ok(with_metrics_and_tracing("gateway", metrics, router))
}

/// The auth service as served.
pub fn auth_service(auth: AuthState, config: &Config) -> anyhow::Result<Router> {
    let router = brain_auth::service::router(auth).fallback(error::not_found);
    with_common_layers("auth", with_edge_limits(router, config)?)
}

fn with_metrics_and_tracing(service: &'static str, metrics: HttpMetrics, router: Router) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(move |request: &Request| {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            service,
            method = %request.method(),
            route = route.unwrap_or("unmatched"),
            request_id,
            trace_id = trace_id(request),
            tenant = tracing::field::Empty,
        )
    });
    metrics
        .instrument(router)
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The edge protections of the public services: a body-size limit (uploads set their own),
/// a request timeout (408), security headers, and CORS for the portal's origin only.
pub fn with_edge_limits(router: Router, config: &Config) -> anyhow::Result<Router> {
    use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    use tower_http::set_header::SetResponseHeaderLayer;
    use tower_http::timeout::TimeoutLayer;

    let origin = HeaderValue::from_str(config.portal_origin.trim_end_matches('/'))
        .context("BRAIN_PORTAL_ORIGIN is not a valid origin")?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::exact(origin))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    let security_headers: [(HeaderName, &'static str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    let mut router = router
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ));
    for (name, value) in security_headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    Ok(router.layer(cors))
}

/// The W3C `traceparent` trace id when the caller sent one, else the request id, so log
/// lines of one request always share a trace id.
fn trace_id(request: &Request) -> String {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    header("traceparent")
        .and_then(|tp| tp.split('-').nth(1))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .or_else(|| header("x-request-id"))
        .unwrap_or_default()
        .to_owned()
}

/// The activities of this process's Temporal worker, on the shared runtime's components.
pub fn task_activities(
    state: &AppState,
    metrics: &brain_runtime::tasks::TaskMetrics,
) -> anyhow::Result<brain_runtime::tasks::TaskActivities> {
    let deps = state.runtime.deps();
    Ok(brain_runtime::tasks::TaskActivities::new(
        brain_runtime::tasks::TaskDeps {
            db: state.db.clone(),
            agents: deps.agents.clone(),
            turns: deps.turns.clone(),
            providers: deps.providers.clone(),
            connectors: state.connectors.clone(),
            retriever: deps.retriever.clone(),
            secrets: state.secrets.clone(),
            limits: deps.config.turn_limits,
            metrics: Some(metrics.clone()),
            events: Some(state.events.clone()),
            runtime: Some((*state.runtime).clone()),
        },
    )?)
}

/// Runs the Temporal worker until `stop` fires, (re)connecting every few seconds while
/// Temporal is unreachable.
async fn run_worker(
    settings: brain_runtime::tasks::TemporalSettings,
    activities: impl Fn() -> anyhow::Result<brain_runtime::tasks::TaskActivities>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let started = match activities() {
            Ok(activities) => brain_runtime::tasks::TaskWorker::start(settings.clone(), activities)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match started {
            Ok(worker) => {
                tracing::info!(queue = %settings.task_queue, "Temporal worker running");
                let _ = stop.wait_for(|stopped| *stopped).await;
                worker.shutdown().await;
                tracing::info!("Temporal worker stopped");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Temporal worker not started; retrying in 5 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        }
    }
}

/// Where the portal finds the gateway, the auth service and its browser bundle.
pub fn portal_config(config: &Config) -> brain_portal::PortalConfig {
    brain_portal::PortalConfig {
        gateway_url: config.public_gateway_url.clone(),
        auth_url: config.auth_url.clone(),
        public_origin: config.portal_origin.clone(),
        site_root: brain_portal::PortalConfig::default_site_root(),
        sso_providers: config
            .sso_providers()
            .into_iter()
            .map(|(name, ..)| name.to_owned())
            .collect(),
    }
}

/// How often the gateway looks for uploads whose ingestion stalled.
const INGEST_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// An upload untouched this long (ingestion records progress every batch of chunks) is
/// taken to have lost its process.
const INGEST_STALLED_AFTER: Duration = Duration::from_secs(300);

/// Binds every requested service, then serves until Ctrl-C / SIGTERM.
pub async fn run(config: &Config, services: &[Service]) -> anyhow::Result<()> {
    let needs_app = services.iter().any(|s| *s != Service::Portal);
    let app = if needs_app {
        Some(app(config, services.contains(&Service::Auth)).await?)
    } else {
        None
    };
    let mut servers = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(app) = &app {
        // The audit outbox: committed events reach the `audit-log` stream even if Redis was
        // down when they were written.
        let (db, redis) = (app.state.db.clone(), app.state.redis.clone());
        tokio::spawn(brain_auth::audit::run_publisher(
            db,
            redis,
            Duration::from_millis(500),
        ));
    }
    if let (Some(app), true) = (&app, services.contains(&Service::Gateway)) {
        // Uploads whose ingestion stalled (their process died) are ingested again from the
        // bytes kept for them; without the embedding model they would only fail, so wait.
        if config.require_embed_model_dir().is_ok() {
            let knowledge = (*app.state.knowledge).clone();
            tokio::spawn(knowledge.run_recovery(INGEST_SWEEP_EVERY, INGEST_STALLED_AFTER));
        }
    }
    let mut worker = None;
    for &service in services {
        let router = match (service, &app) {
            (Service::Worker, Some(app)) => {
                let settings = temporal_settings(config)?;
                let stop = stop_rx.clone();
                let (state, metrics) = (app.state.clone(), app.task_metrics.clone());
                let make = move || task_activities(&state, &metrics);
                worker = Some(tokio::spawn(run_worker(settings, make, stop)));
                continue;
            }
            (Service::Gateway, Some(app)) => {
                gateway_router(app.state.clone(), Readiness::from_config(config)?)
            }
            (
                Service::Auth,
                Some(App {
                    auth: Some(auth), ..
                }),
            ) => brain_auth::service::router(auth.clone()).fallback(error::not_found),
            (Service::Portal, _) => brain_portal::router(portal_config(config)),
            _ => anyhow::bail!("{} has no state to run with", service.name()),
        };
        let router = match service {
            Service::Portal | Service::Worker => router,
            Service::Gateway | Service::Auth => with_edge_limits(router, config)?,
        };
        let router = with_common_layers(service.name(), router)?;
        let Some(addr) = service.addr(config) else {
            continue;
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("{} cannot listen on {addr}", service.name()))?;
        tracing::info!(service = service.name(), %addr, "listening");
        servers.spawn(async move {
            let make = router.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, make)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .with_context(|| format!("{} stopped", service.name()))
        });
    }
    if servers.is_empty() && worker.is_some() {
        // A worker alone runs until asked to stop.
        shutdown_signal().await;
    }
    // In-flight requests finish (graceful shutdown of each server), then the worker lets its
    // running activities finish, then the actors stop.
    let mut result = Ok(());
    while let Some(done) = servers.join_next().await {
        if let Err(e) = done.context("a server task failed").and_then(|r| r) {
            result = Err(e);
        }
    }
    let _ = stop_tx.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    if let Some(app) = &app {
        app.state.runtime.shutdown().await;
    }
    tracing::info!("stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
