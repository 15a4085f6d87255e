//! The real `brain` binary, spawned as a user runs it: `brain serve` (or one of its services)
//! on free ports against this test's database and the shared infrastructure, configured only
//! through the environment, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use brain_migrations::testing::TestDb;
use serde_json::Value;

use crate::harness::{embed_model_dir, required};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs the browser script `script` (relative to the workspace) with node, its parameters
/// as JSON in the environment variable `env`; returns its stdout, or panics with both
/// streams and the tail of `brain`'s log.
pub async fn node_script(script: &str, env: &str, params: &Value, brain: &BrainProcess) -> String {
    run_script(Command::new("node"), script, env, params, brain).await
}

/// Runs the Python script `script` (relative to the workspace) with the official SDKs
/// `cargo xtask` installed (`BRAIN_PEERS_PYTHONPATH`) on its path, like [`node_script`].
pub async fn python_script(
    script: &str,
    env: &str,
    params: &Value,
    brain: &BrainProcess,
) -> String {
    let mut python = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    python.env(
        "PYTHONPATH",
        crate::harness::required("BRAIN_PEERS_PYTHONPATH"),
    );
    run_script(python, script, env, params, brain).await
}

async fn run_script(
    mut program: Command,
    script: &str,
    env: &str,
    params: &Value,
    brain: &BrainProcess,
) -> String {
    let script = workspace().join(script);
    program.arg(script).env(env, params.to_string());
    let run = tokio::task::spawn_blocking(move || {
        program
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "the script failed:\n{stdout}\n{stderr}\n--- brain serve log (tail) ---\n{}",
        brain.log_tail(60)
    );
    stdout
}

/// A running `brain` process and where its services listen.
pub struct BrainProcess {
    child: Child,
    pub gateway: String,
    pub auth: String,
    pub portal: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Drop for BrainProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BrainProcess {
    /// `brain <args>` with only the settings a deployment gives it (database, Redis, Vault,
    /// Temporal, the embedding model, three free ports, a task queue of its own) plus `env`,
    /// which may override any of them. Returns once every HTTP service it runs answers
    /// `/healthz`.
    pub async fn start(db: &TestDb, args: &[&str], env: &[(&str, String)]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let database_url = {
            let url = required("DATABASE_URL");
            let (base, _) = url.rsplit_once('/').unwrap();
            format!("{base}/{}", db.name)
        };
        let (gateway_port, auth_port, portal_port) = (free_port(), free_port(), free_port());
        let gateway = format!("http://127.0.0.1:{gateway_port}");
        let auth = format!("http://127.0.0.1:{auth_port}");
        let portal = format!("http://127.0.0.1:{portal_port}");
        let out = workspace().join("target/brain-processes");
        std::fs::create_dir_all(&out).unwrap();
        let log = out.join(format!("{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_brain"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("DATABASE_URL", &database_url)
            .env("REDIS_URL", required("REDIS_URL"))
            .env("VAULT_ADDR", required("VAULT_ADDR"))
            .env("VAULT_TOKEN", required("VAULT_TOKEN"))
            .env("TEMPORAL_ADDRESS", required("TEMPORAL_ADDRESS"))
            .env(
                "BRAIN_TEMPORAL_TASK_QUEUE",
                format!("brain-test-{}", uuid::Uuid::new_v4().simple()),
            )
            .env("BRAIN_EMBED_MODEL_DIR", embed_model_dir())
            .env("BRAIN_GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}"))
            .env("BRAIN_AUTH_ADDR", format!("127.0.0.1:{auth_port}"))
            .env("BRAIN_PORTAL_ADDR", format!("127.0.0.1:{portal_port}"))
            .env("BRAIN_PUBLIC_GATEWAY_URL", &gateway)
            .env("BRAIN_AUTH_URL", &auth)
            .env("BRAIN_PUBLIC_AUTH_URL", &auth)
            .env("BRAIN_PORTAL_ORIGIN", &portal)
            // Throttle counters live in the shared Redis across tests and runs.
            .env("BRAIN_LOGIN_FAILURES_PER_IP", "100000")
            .env("BRAIN_RATE_LIMIT_TENANT_PER_MINUTE", "0")
            // The fakes a test talks to through Brain listen on loopback.
            .env("BRAIN_EGRESS_ALLOW", crate::harness::LOOPBACK)
            .env("BRAIN_EGRESS_ALLOW_HTTP", "true")
            .env("BRAIN_LOG", "warn")
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut brain = Self {
            child: command.spawn().unwrap(),
            gateway,
            auth,
            portal,
            log,
        };
        let services: Vec<&str> = match args {
            ["serve"] => vec!["gateway", "auth", "portal"],
            ["serve", one] => vec![one],
            _ => Vec::new(),
        };
        let http = reqwest::Client::new();
        for service in services {
            let base = match service {
                "gateway" => brain.gateway.clone(),
                "auth" => brain.auth.clone(),
                "portal" => brain.portal.clone(),
                _ => continue,
            };
            brain.wait_healthy(&http, &format!("{base}/healthz")).await;
        }
        brain
    }

    async fn wait_healthy(&mut self, http: &reqwest::Client, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("brain exited ({status}):\n{}", self.log_tail(80));
            }
            assert!(Instant::now() < deadline, "{url} never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last `lines` lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// JSON over HTTP to a spawned Brain's gateway and auth service.
pub struct Api {
    pub http: reqwest::Client,
    pub gateway: String,
    pub auth: String,
}

impl Api {
    pub fn new(brain: &BrainProcess) -> Self {
        Self {
            http: reqwest::Client::new(),
            gateway: brain.gateway.clone(),
            auth: brain.auth.clone(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn gateway(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.send(method, format!("{}{path}", self.gateway), Some(token), body)
            .await
    }

    pub async fn auth(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        self.send(method, format!("{}{path}", self.auth), token, Some(body))
            .await
    }

    /// Polls `GET path` until `done` holds for the body; panics with the last body after
    /// `within`.
    pub async fn wait_for(
        &self,
        path: &str,
        token: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (_, body) = self.gateway(reqwest::Method::GET, path, token, None).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
