//! The gateway: Brain's public HTTP API on :8000 and the composition root behind the
//! `brain` binary, which wires the runtime, the auth service and the portal together.

pub mod a2a;
pub mod api;
pub mod audit;
pub mod chat;
pub mod config;
pub mod error;
pub mod hook_guard;
pub mod knowledge;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod readiness;
pub mod seed;
pub mod serve;
pub mod state;
pub mod streams;
pub mod telemetry;

pub use brain_auth::install_crypto_provider;
