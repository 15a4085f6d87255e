//! Integration tests of durable tasks, rule and crew runs and schedules against the real
//! Temporal, Postgres, Redis and OpenBao, with a scripted model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod crews;
mod events;
/// The runtime's own test harness (a runtime on a fresh database with a scripted model);
/// these tests use part of it.
#[allow(dead_code)]
#[path = "../../../runtime/tests/it/harness.rs"]
mod harness;
mod rules;
mod schedules;
mod structured;
mod tasks;
