//! Redis 7 from Debian's `redis-server` package (installed with apt when missing), started
//! on its own port without persistence.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{Env, Started, process};

pub struct Redis {
    dir: PathBuf,
    port: u16,
}

impl Redis {
    pub fn new(brain_dir: &Path, port: u16) -> Self {
        Self {
            dir: brain_dir.join("redis"),
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn env(&self) -> Env {
        Env::from([(
            "REDIS_URL".to_owned(),
            format!("redis://127.0.0.1:{}", self.port),
        )])
    }

    pub fn is_ready(&self) -> bool {
        self.command("PING")
            .is_some_and(|reply| reply.starts_with("+PONG"))
    }

    pub fn up(&self) -> anyhow::Result<Started> {
        if self.is_ready() {
            return Ok(Started::AlreadyRunning);
        }
        if process::port_open(self.port) {
            bail!(
                "port {} is taken by a program that is not Redis; set BRAIN_REDIS_PORT",
                self.port
            );
        }
        let server = ensure_installed()?;
        std::fs::create_dir_all(&self.dir)?;
        let pid_file = self.dir.join("redis.pid");
        // A pid file from a crashed run is only a leftover; redis rewrites it.
        let _ = process::running_pid(&pid_file, "redis-server");
        let log = self.dir.join("redis.log");
        process::run(
            Command::new(server)
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
                .arg("--pidfile")
                .arg(&pid_file)
                .arg("--logfile")
                .arg(&log)
                .arg("--dir")
                .arg(&self.dir),
        )
        .context("starting redis-server")?;
        process::wait_until("redis", Duration::from_secs(20), Some(&log), || {
            self.is_ready()
        })?;
        Ok(Started::Started)
    }

    pub fn down(&self) -> anyhow::Result<()> {
        if self.is_ready() {
            let _ = self.command("SHUTDOWN NOSAVE");
            process::wait_until("redis shutdown", Duration::from_secs(10), None, || {
                !process::port_open(self.port)
            })?;
        }
        Ok(())
    }

    /// Sends one inline command and returns the first reply line.
    fn command(&self, line: &str) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// `redis-server` on PATH, else installed from Debian's packages.
fn ensure_installed() -> anyhow::Result<PathBuf> {
    super::apt::ensure("redis-server", "redis-server")
}
