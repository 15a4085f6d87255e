//! Prometheus metrics: request count and latency per route template, one registry per
//! service so each `/metrics` describes only its own service. Every series carries the
//! constant label `service`; the gateway's registry also holds the runtime's, the tools' and
//! the database pool's metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::error::InternalCause;

/// A registry whose every series is labelled `service="<service>"`.
pub fn service_registry(service: &str) -> Result<Registry, prometheus::Error> {
    let labels = [("service".to_owned(), service.to_owned())]
        .into_iter()
        .collect();
    Registry::new_custom(None, Some(labels))
}

/// Refreshes gauges that are read rather than counted (pool sizes) right before a scrape.
pub type OnScrape = Arc<dyn Fn() + Send + Sync>;

/// The HTTP metrics of one service.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    on_scrape: Option<OnScrape>,
}

impl HttpMetrics {
    pub fn new(service: &str) -> Result<Self, prometheus::Error> {
        Self::with_registry(service_registry(service)?)
    }

    pub fn with_registry(registry: Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "brain_http_requests_total",
                "HTTP requests by route template and status",
            ),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "brain_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            on_scrape: None,
        })
    }

    pub fn on_scrape(mut self, refresh: OnScrape) -> Self {
        self.on_scrape = Some(refresh);
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds `GET /metrics` to `router` and measures every request through it.
    pub fn instrument(self, router: Router) -> Router {
        let metrics = Arc::new(self);
        router
            .route("/metrics", get(render).with_state(metrics.clone()))
            .layer(middleware::from_fn_with_state(metrics, record))
    }
}

async fn record(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    // The template (`/v1/agents/{id}`), never the raw path: one series per route.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    metrics
        .requests
        .with_label_values(&[&method, &route, status.as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[&method, &route])
        .observe(elapsed);
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, %route, status = status.as_u16(), error = %cause, "request failed");
    }
    response
}

async fn render(State(metrics): State<Arc<HttpMetrics>>) -> Response {
    if let Some(refresh) = &metrics.on_scrape {
        refresh();
    }
    let mut buffer = Vec::new();
    match TextEncoder::new().encode(&metrics.registry.gather(), &mut buffer) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buffer).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `brain_db_pool_connections{state="in_use"|"idle"|"max"}` for `pool`, refreshed per scrape.
pub fn db_pool_metrics(
    registry: &Registry,
    pool: &sqlx::PgPool,
) -> Result<OnScrape, prometheus::Error> {
    let gauge = prometheus::IntGaugeVec::new(
        Opts::new(
            "brain_db_pool_connections",
            "Postgres pool connections by state",
        ),
        &["state"],
    )?;
    registry.register(Box::new(gauge.clone()))?;
    let pool = pool.clone();
    Ok(Arc::new(move || {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        gauge.with_label_values(&["in_use"]).set(size - idle);
        gauge.with_label_values(&["idle"]).set(idle);
        gauge
            .with_label_values(&["max"])
            .set(i64::from(pool.options().get_max_connections()));
    }))
}
