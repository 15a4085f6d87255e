//! `cargo xtask bench load`: Brain as `cargo xtask up` builds it, driven by
//! `gateway/examples/load.rs` for a bounded time.

use crate::infra::Infra;
use crate::{served, workspace};

/// The per-API-key limit the server runs with, which the load checks exactly.
const KEY_RATE_PER_MINUTE: &str = "300";

pub fn run(infra: &Infra) -> anyhow::Result<()> {
    let mut env = infra.up()?;
    crate::models::export(&workspace::root(), &mut env)?;
    served::run(
        &env,
        "load",
        &[
            ("BRAIN_RATE_LIMIT_TENANT_PER_MINUTE", "0"),
            ("BRAIN_RATE_LIMIT_API_KEY_PER_MINUTE", KEY_RATE_PER_MINUTE),
        ],
        |brain| {
            vec![
                ("BRAIN_LOAD_GATEWAY".into(), brain.gateway.clone()),
                ("BRAIN_LOAD_AUTH".into(), brain.auth.clone()),
                ("BRAIN_LOAD_PID".into(), brain.pid.to_string()),
                ("BRAIN_LOAD_KEY_RATE".into(), KEY_RATE_PER_MINUTE.into()),
            ]
        },
    )
}
