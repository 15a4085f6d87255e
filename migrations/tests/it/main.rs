//! Schema tests against the real Postgres + pgvector started by `cargo xtask infra up`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod fixtures;
mod rls;
mod schema;
mod vector;
