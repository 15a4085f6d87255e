//! Benchmarks that drive a running Brain: `brain serve`, built as `cargo xtask up` builds it,
//! on spare loopback ports, with a client (a gateway example, or any program) run against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::infra::Env;
use crate::workspace;

const GATEWAY: &str = "127.0.0.1:18000";
const AUTH: &str = "127.0.0.1:18009";
const PORTAL: &str = "127.0.0.1:13003";

/// A running `brain serve`, where it listens, for the client. Dropping it stops the server,
/// so an error in the client (or in waiting for the server) never leaves one behind.
pub struct Served {
    pub gateway: String,
    pub auth: String,
    pub pid: u32,
    server: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM rather than `Child::kill`'s SIGKILL: Brain shuts down gracefully.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let _ = self.server.wait();
    }
}

/// Builds `brain`, migrates, and starts `brain serve` with `env` plus `server_env`; returns
/// once the gateway and the auth service answer `/healthz`.
pub fn start(env: &Env, server_env: &[(&str, &str)]) -> anyhow::Result<Served> {
    let built = build(&[])?;
    serve(&built.join("brain"), env, server_env)
}

/// Builds `brain` and the gateway example `example`, starts `brain serve` as [`start`] does,
/// runs the example with the variables `client` returns, stops the server.
pub fn run(
    env: &Env,
    example: &str,
    server_env: &[(&str, &str)],
    client: impl FnOnce(&Served) -> Vec<(String, String)>,
) -> anyhow::Result<()> {
    let built = build(&["--example", example])?;
    let served = serve(&built.join("brain"), env, server_env)?;
    let status = Command::new(built.join("examples").join(example))
        .envs(client(&served))
        .status()
        .with_context(|| format!("running {example}"))?;
    if !status.success() {
        bail!("{example} failed ({status})");
    }
    Ok(())
}

/// Builds the `brain` binary (plus `extra` targets of the gateway package) with the dev
/// profile, the optimised one; returns the folder the binaries are in.
fn build(extra: &[&str]) -> anyhow::Result<PathBuf> {
    let root = workspace::root();
    let args = [
        &["build", "--package", "brain-gateway", "--bin", "brain"][..],
        extra,
    ]
    .concat();
    workspace::cargo(&root, &args)?;
    Ok(workspace::target_dir(&root).join("debug"))
}

/// Migrates, spawns `brain serve` on the spare ports and waits until it answers.
fn serve(brain: &Path, env: &Env, server_env: &[(&str, &str)]) -> anyhow::Result<Served> {
    let envs = || env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let status = Command::new(brain)
        .arg("migrate")
        .envs(envs())
        .status()
        .context("running brain migrate")?;
    if !status.success() {
        bail!("brain migrate failed");
    }
    let server = Command::new(brain)
        .arg("serve")
        .envs(envs())
        .env("BRAIN_GATEWAY_ADDR", GATEWAY)
        .env("BRAIN_AUTH_ADDR", AUTH)
        .env("BRAIN_PORTAL_ADDR", PORTAL)
        .env("BRAIN_AUTH_URL", format!("http://{AUTH}"))
        .env("BRAIN_LOG", "warn")
        .envs(server_env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .context("starting brain serve")?;
    let served = Served {
        gateway: format!("http://{GATEWAY}"),
        auth: format!("http://{AUTH}"),
        pid: server.id(),
        server,
    };
    for addr in [GATEWAY, AUTH] {
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .with_context(|| format!("no port in {addr}"))?;
        crate::infra::wait_for_http(port, "/healthz", Duration::from_secs(60))
            .with_context(|| format!("brain did not answer on {addr}"))?;
    }
    Ok(served)
}
