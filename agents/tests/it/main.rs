//! Integration tests of the agents crate against the real Postgres (`cargo xtask infra up`)
//! and a local OpenAI-wire server (wiremock); the real local model is exercised end to end
//! in the runtime crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod fixtures;
mod native_wires;
mod openai_wire;
mod provider_keys;
mod store;
mod turn;
