//! `cargo xtask bench load`: starts Brain as `cargo xtask up` builds it on spare loopback
//! ports and drives it with `gateway/examples/load.rs` for a bounded time.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::infra::Infra;
use crate::workspace;

const GATEWAY: &str = "127.0.0.1:18000";
const AUTH: &str = "127.0.0.1:18009";
const PORTAL: &str = "127.0.0.1:13003";
/// The per-API-key limit the server runs with, which the load checks exactly.
const KEY_RATE_PER_MINUTE: &str = "300";

pub fn run(infra: &Infra) -> anyhow::Result<()> {
    let mut env = infra.up()?;
    let root = workspace::root();
    crate::models::export(&root, &mut env)?;
    workspace::cargo(
        &root,
        &[
            "build",
            "--package",
            "brain-gateway",
            "--bin",
            "brain",
            "--example",
            "load",
        ],
    )?;
    let built = workspace::target_dir(&root).join("debug");
    let brain = built.join("brain");
    let envs = || env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let status = Command::new(&brain).arg("migrate").envs(envs()).status()?;
    if !status.success() {
        bail!("brain migrate failed");
    }
    let mut server = Command::new(&brain)
        .arg("serve")
        .envs(envs())
        .env("BRAIN_GATEWAY_ADDR", GATEWAY)
        .env("BRAIN_AUTH_ADDR", AUTH)
        .env("BRAIN_PORTAL_ADDR", PORTAL)
        .env("BRAIN_AUTH_URL", format!("http://{AUTH}"))
        .env("BRAIN_RATE_LIMIT_TENANT_PER_MINUTE", "0")
        .env("BRAIN_RATE_LIMIT_API_KEY_PER_MINUTE", KEY_RATE_PER_MINUTE)
        .env("BRAIN_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting brain serve")?;
    let result = (|| {
        let port = |addr: &str| addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        for addr in [GATEWAY, AUTH] {
            let port = port(addr).context("port")?;
            crate::infra::wait_for_http(port, "/healthz", Duration::from_secs(60))
                .with_context(|| format!("brain did not answer on {addr}"))?;
        }
        let status = Command::new(built.join("examples/load"))
            .env("BRAIN_LOAD_GATEWAY", format!("http://{GATEWAY}"))
            .env("BRAIN_LOAD_AUTH", format!("http://{AUTH}"))
            .env("BRAIN_LOAD_PID", server.id().to_string())
            .env("BRAIN_LOAD_KEY_RATE", KEY_RATE_PER_MINUTE)
            .status()
            .context("running the load generator")?;
        if !status.success() {
            bail!("the load run failed ({status})");
        }
        Ok(())
    })();
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    result
}
