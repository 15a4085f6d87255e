//! Integration tests of the agents crate against the real Postgres (`cargo xtask infra up`),
//! a local OpenAI-wire server (wiremock) and the real local model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod fixtures;
mod local_model;
mod openai_wire;
mod store;
mod turn;
