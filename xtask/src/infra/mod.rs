//! The local infrastructure: install (first run only), start, check, stop.
//!
//! Everything lives under `.brain/` and listens on 127.0.0.1. Ports come from
//! `BRAIN_{PG,REDIS,VAULT,TEMPORAL}_PORT` (defaults below). `up` is idempotent: a service
//! that already answers is left alone, a stale pid file or half-initialised data directory
//! is repaired.

mod apt;
mod package;
mod postgres;
pub(crate) mod process;
mod redis;
mod temporal;
mod vault;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

pub use apt::ensure as ensure_apt;
pub use postgres::Postgres;

/// The connection settings the infrastructure was started with, as written to `.brain/env`.
pub type Env = BTreeMap<String, String>;

pub struct Infra {
    dir: PathBuf,
    postgres: Postgres,
    redis: redis::Redis,
    vault: vault::Vault,
    temporal: temporal::Temporal,
}

/// What `up` found for one service.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    AlreadyRunning,
    Started,
}

fn port(var: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(var) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{var}={value} is not a port number")),
        Err(_) => Ok(default),
    }
}

impl Infra {
    pub fn new(root: PathBuf) -> anyhow::Result<Self> {
        let dir = root.join(".brain");
        Ok(Self {
            postgres: Postgres::new(&dir, port("BRAIN_PG_PORT", 55432)?),
            redis: redis::Redis::new(&dir, port("BRAIN_REDIS_PORT", 56379)?),
            vault: vault::Vault::new(&dir, port("BRAIN_VAULT_PORT", 58200)?),
            temporal: temporal::Temporal::new(
                &dir,
                port("BRAIN_TEMPORAL_PORT", 57233)?,
                port("BRAIN_TEMPORAL_HTTP_PORT", 57243)?,
            ),
            dir,
        })
    }

    pub fn postgres(&self) -> &Postgres {
        &self.postgres
    }

    /// Installs what is missing, starts what is stopped, waits until all four answer, and
    /// writes `.brain/env`.
    pub fn up(&self) -> anyhow::Result<Env> {
        let started = Instant::now();
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let results = [
            ("postgres", self.postgres.up()?),
            ("redis", self.redis.up()?),
            ("vault", self.vault.up()?),
            ("temporal", self.temporal.up()?),
        ];
        let mut env = Env::new();
        env.extend(self.postgres.env());
        env.extend(self.redis.env());
        env.extend(self.vault.env()?);
        env.extend(self.temporal.env());
        write_env(&self.dir.join("env"), &env)?;
        if results.iter().all(|(_, r)| *r == Started::AlreadyRunning) {
            println!("infra: everything is already running; nothing to do");
        } else {
            for (name, result) in &results {
                let what = match result {
                    Started::AlreadyRunning => "already running",
                    Started::Started => "started",
                };
                println!("infra: {name} {what}");
            }
            println!(
                "infra: ready in {:.1}s; settings in .brain/env",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(env)
    }

    /// Stops all four (in reverse order of dependence); data stays in `.brain/`.
    pub fn down(&self) -> anyhow::Result<()> {
        self.temporal.down()?;
        self.vault.down()?;
        self.redis.down()?;
        self.postgres.down()?;
        println!("infra: stopped");
        Ok(())
    }

    pub fn status(&self) -> anyhow::Result<()> {
        for (name, running, port) in [
            ("postgres", self.postgres.is_ready(), self.postgres.port()),
            ("redis", self.redis.is_ready(), self.redis.port()),
            ("vault", self.vault.is_ready(), self.vault.port()),
            ("temporal", self.temporal.is_ready(), self.temporal.port()),
        ] {
            let state = if running { "running" } else { "stopped" };
            println!("{name:<9} {state:<8} 127.0.0.1:{port}");
        }
        Ok(())
    }
}

/// Writes the infrastructure's settings, keeping settings other tasks added (the model
/// paths written by `up` and `test`).
fn write_env(path: &Path, env: &Env) -> anyhow::Result<()> {
    let mut merged: Env = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    merged.extend(env.clone());
    let mut text =
        String::from("# Written by `cargo xtask`; load with `set -a; . .brain/env; set +a`\n");
    for (key, value) in &merged {
        text.push_str(&format!("{key}={value}\n"));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    process::restrict_to_owner(path)
}

/// Waits until `GET 127.0.0.1:{port}{path}` answers 200.
pub fn wait_for_http(port: u16, path: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    process::wait_until(path, timeout, None, || {
        process::http_status(port, path) == Some(200)
    })
}
