//! Auth tests against the real Postgres, Redis and OpenBao.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod secrets;
