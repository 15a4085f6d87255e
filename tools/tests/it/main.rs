//! Integration tests of brain-tools against real Postgres, Redis and OpenBao, with platforms
//! faked by local HTTP servers speaking their documented wire formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod capability;
mod clients;
mod harness;
mod registry;
mod service;
mod webhook;
mod webhooks;
