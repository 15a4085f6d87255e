//! Gateway tests against the real Postgres, Redis, OpenBao and Temporal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod a2a;
mod agents;
mod audit;
mod auth;
mod connectors;
mod crews;
mod delegation;
mod egress;
mod fakes;
mod fallbacks;
mod hardening;
mod harness;
mod http;
mod knowledge;
mod leaks;
mod mcp;
mod mcp_server;
mod mcp_sources;
mod model_keys;
mod observability;
mod openai_json;
mod openai_sdk;
mod openapi;
mod otlp;
mod portal;
mod process;
mod responses_chain;
mod seed;
mod sso;
mod tasks;
mod tokens;
mod usage;
