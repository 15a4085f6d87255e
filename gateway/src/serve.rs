//! `brain serve`: the gateway (:8000), the auth service (:8009) and the portal (:3003),
//! together in one process or each alone.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::error;
use crate::metrics::HttpMetrics;
use crate::readiness::{self, Readiness};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Gateway,
    Auth,
    Portal,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Auth => "auth",
            Service::Portal => "portal",
        }
    }

    fn addr(self, config: &Config) -> SocketAddr {
        match self {
            Service::Gateway => config.gateway_addr,
            Service::Auth => config.auth_addr,
            Service::Portal => config.portal_addr,
        }
    }
}

/// The gateway's routes (health, readiness; the v1 API joins here).
pub fn gateway_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness::readyz).with_state(readiness))
        .fallback(error::not_found)
}

/// Adds what every service has: `/metrics`, request metrics, request ids and a span per
/// request carrying the route template and the request id.
pub fn with_common_layers(service: &'static str, router: Router) -> anyhow::Result<Router> {
    let metrics = HttpMetrics::new(service).context("registering metrics")?;
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
        )
    });
    Ok(metrics
        .instrument(router)
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid)))
}

fn router_for(service: Service, config: &Config) -> anyhow::Result<Router> {
    let router = match service {
        Service::Gateway => gateway_router(Readiness::from_config(config)?),
        Service::Auth => brain_auth::service::router().fallback(error::not_found),
        Service::Portal => brain_portal::router(&config.public_gateway_url),
    };
    with_common_layers(service.name(), router)
}

/// Binds every requested service, then serves until Ctrl-C / SIGTERM.
pub async fn run(config: &Config, services: &[Service]) -> anyhow::Result<()> {
    let mut servers = tokio::task::JoinSet::new();
    for &service in services {
        let router = router_for(service, config)?;
        let addr = service.addr(config);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("{} cannot listen on {addr}", service.name()))?;
        tracing::info!(service = service.name(), %addr, "listening");
        servers.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .with_context(|| format!("{} stopped", service.name()))
        });
    }
    while let Some(done) = servers.join_next().await {
        done.context("a server task failed")??;
    }
    tracing::info!("stopped");
    Ok(())
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
