//! CI smoke: a few cases of the suites over the real runtime and the local model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod smoke;
