//! `brain serve`: the gateway (:8000), the auth service (:8009), the portal (:3003) and the
//! Temporal worker, together in one process or each alone. [`assemble`] builds them; [`run`]
//! binds, runs the background work and stops them gracefully.

mod assembly;
mod layers;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

pub use assembly::{App, Assembly, app, assemble};

use crate::config::Config;

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

/// How often the gateway looks for uploads whose ingestion stalled.
const INGEST_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// An upload untouched this long (ingestion records progress every batch of chunks) is
/// taken to have lost its process.
const INGEST_STALLED_AFTER: Duration = Duration::from_secs(300);

/// Assembles and binds every requested service, then serves until Ctrl-C / SIGTERM.
pub async fn run(config: &Config, services: &[Service]) -> anyhow::Result<()> {
    let assembly = assemble(config, services).await?;
    let mut servers = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(app) = &assembly.app {
        // The audit outbox: committed events reach the `audit-log` stream even if Redis was
        // down when they were written.
        let (db, redis) = (app.state.db.clone(), app.state.redis.clone());
        tokio::spawn(brain_auth::audit::run_publisher(
            db,
            redis,
            Duration::from_millis(500),
        ));
    }
    if let (Some(app), true) = (&assembly.app, services.contains(&Service::Gateway)) {
        // Uploads whose ingestion stalled (their process died) are ingested again from the
        // bytes kept for them; without the embedding model they would only fail, so wait.
        if config.require_embed_model_dir().is_ok() {
            let knowledge = (*app.state.knowledge).clone();
            tokio::spawn(knowledge.run_recovery(INGEST_SWEEP_EVERY, INGEST_STALLED_AFTER));
        }
    }
    let worker = match (&assembly.app, services.contains(&Service::Worker)) {
        (Some(app), true) => Some(tokio::spawn(run_worker(
            app.clone(),
            config.clone(),
            stop_rx.clone(),
        ))),
        _ => None,
    };
    for &service in services {
        let (Some(router), Some(addr)) = (assembly.router(service), service.addr(config)) else {
            continue;
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("{} cannot listen on {addr}", service.name()))?;
        tracing::info!(service = service.name(), %addr, "listening");
        let make = router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        servers.spawn(async move {
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
    if let Some(app) = &assembly.app {
        app.state.runtime.shutdown().await;
    }
    tracing::info!("stopped");
    result
}

/// Runs the Temporal worker until `stop` fires, (re)connecting every few seconds while
/// Temporal is unreachable.
async fn run_worker(app: App, config: Config, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        match app.start_worker(&config).await {
            Ok(worker) => {
                tracing::info!(queue = %config.temporal_task_queue, "Temporal worker running");
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
