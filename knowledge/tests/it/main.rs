//! Integration tests of the knowledge base: extraction on generated PDFs, the embedders,
//! and the service against the real Postgres + pgvector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod embed;
mod extract;
mod fixtures;
mod pdf;
mod service;
