//! The gateway: Brain's public HTTP API on :8000 and the composition root behind the
//! `brain` binary, which wires the runtime, the auth service and the portal together.

pub mod config;
pub mod error;
pub mod metrics;
pub mod readiness;
pub mod seed;
pub mod serve;
pub mod telemetry;

/// Makes rustls use `ring` for every TLS client in the process (one TLS stack, no aws-lc
/// build). Safe to call more than once.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
