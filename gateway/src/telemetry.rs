//! Logging and traces: human-readable lines by default, JSON lines with
//! `BRAIN_LOG_FORMAT=json`; with `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans (the GenAI spans of
//! model and tool calls among them, see `brain_agents::telemetry`) are also exported over
//! OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat};

/// Keeps the trace exporter alive; dropping it sends what is left.
#[must_use = "spans are only exported while this lives"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans ended so far.
    pub fn flush(&self) {
        if let Some(tracer) = &self.tracer
            && let Err(e) = tracer.force_flush()
        {
            eprintln!("brain: exporting spans failed: {e}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `BRAIN_LOG`. Call it
/// outside an async runtime: the OTLP exporter runs its own thread and blocking client.
pub fn init(config: &Config) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match config.log_format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };
    let tracer = match config.otel_exporter_otlp_endpoint.as_deref() {
        Some(endpoint) => match otlp(endpoint) {
            Ok(tracer) => Some(tracer),
            Err(e) => {
                eprintln!("brain: OTLP export is off: {e}");
                None
            }
        },
        None => None,
    };
    let spans = tracer
        .as_ref()
        .map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer("brain")));
    // `try_init`: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .with(filter)
        .try_init();
    Telemetry { tracer }
}

/// A batching exporter to `<endpoint>/v1/traces`.
fn otlp(endpoint: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    // The exporter's HTTP client is built now, with the process's TLS provider.
    crate::install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(10))
        .build()?;
    let resource = Resource::builder().with_service_name("brain").build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
