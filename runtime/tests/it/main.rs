//! Integration tests of the actor tree against the real Postgres, Redis and OpenBao, with a
//! scripted model (and the real local model once).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod delegation;
mod harness;
mod lifecycle;
mod local_model;
mod supervision;
mod tools;
