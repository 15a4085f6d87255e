//! `cargo xtask bench runtime` (MCP part): the cost of an MCP tool call through Brain — the
//! grant re-checked in Postgres, the server and its secret looked up, the arguments validated
//! against the tool's schema, the call audited, the result capped and fenced — against
//! calling the same server directly from this bench, with the official Rust SDK, in the same
//! run. The server is the reference `@modelcontextprotocol/server-everything` (installed by
//! `cargo xtask`), its `echo` tool.
//!
//! Two direct baselines: one SDK session kept open for every call (what a long-lived client
//! does), and a new session per call over pooled connections (what Brain does: a session
//! lives for one call, so no state of one tenant's call outlives it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark may fail loudly

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brain_auth::TenantId;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_migrations::testing::{TestDb, setting};
use brain_tools::mcp::{McpAuth, NewMcpServer, Protocol};
use brain_tools::{ConnectorService, ServiceConfig};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};
use uuid::Uuid;

const CALLS: usize = 300;
const WARMUP: usize = 20;

fn main() {
    brain_auth::install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

async fn timed<F, Fut>(mut call: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..WARMUP {
        call().await;
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        call().await;
        samples.push(started.elapsed());
    }
    samples
}

fn arguments() -> Map<String, Value> {
    let Value::Object(map) = json!({"message": "hello from the bench"}) else {
        unreachable!()
    };
    map
}

async fn run() {
    let (mut server, url) = everything().await;

    let direct_session = {
        let session =
            ().serve(StreamableHttpClientTransport::from_uri(url.as_str()))
                .await
                .unwrap();
        let samples = timed(|| async {
            let params = CallToolRequestParams::new("echo").with_arguments(arguments());
            let result = session.call_tool(params).await.unwrap();
            assert_ne!(result.is_error, Some(true));
        })
        .await;
        let _ = session.cancel().await;
        samples
    };
    // Connections pooled in one HTTP client, as Brain's are.
    let http = reqwest::Client::new();
    let direct_fresh = timed(|| async {
        let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
        let transport = StreamableHttpClientTransport::with_client(http.clone(), config);
        let session = ().serve(transport).await.unwrap();
        let params = CallToolRequestParams::new("echo").with_arguments(arguments());
        session.call_tool(params).await.unwrap();
        let _ = session.cancel().await;
    })
    .await;

    let through_brain = through_brain(&url).await;
    let _ = server.kill();

    let (session_p50, session_p99) = percentiles(direct_session);
    let (fresh_p50, fresh_p99) = percentiles(direct_fresh);
    let (brain_p50, brain_p99) = percentiles(through_brain);
    println!("\n== MCP tool call: server-everything `echo`, {CALLS} calls each ==");
    println!("direct, one open session : p50 {session_p50:7.2} ms  p99 {session_p99:7.2} ms");
    println!("direct, session per call : p50 {fresh_p50:7.2} ms  p99 {fresh_p99:7.2} ms");
    println!("through Brain (McpTool)  : p50 {brain_p50:7.2} ms  p99 {brain_p99:7.2} ms");
    println!(
        "ratio Brain / direct open session: p50 {:.2}x  p99 {:.2}x; \
         Brain / direct session per call: p50 {:.2}x  p99 {:.2}x",
        brain_p50 / session_p50,
        brain_p99 / session_p99,
        brain_p50 / fresh_p50,
        brain_p99 / fresh_p99,
    );
    println!(
        "Brain's own work per call (p50 over a direct call with a session per call): {:.2} ms",
        brain_p50 - fresh_p50
    );
}

/// The same calls through Brain: a tenant's server registered, an agent granted `echo`, and
/// the granted tool called as a turn would call it.
async fn through_brain(url: &str) -> Vec<Duration> {
    let db = TestDb::new().await.unwrap();
    let (tenant, agent) = tenant_and_agent(&db).await;
    let secrets: Arc<dyn SecretStore> = Arc::new(
        VaultSecretStore::new(
            &setting("VAULT_ADDR").unwrap(),
            &setting("VAULT_TOKEN").unwrap(),
            "secret",
        )
        .unwrap(),
    );
    let redis = redis::aio::ConnectionManager::new(
        redis::Client::open(setting("REDIS_URL").unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let config = ServiceConfig {
        egress: brain_auth::egress::EgressPolicy::loopback(),
        ..ServiceConfig::default()
    };
    let service = ConnectorService::new(db.app.clone(), redis, secrets, config).unwrap();
    let servers = service.mcp();
    let new = NewMcpServer {
        name: "Everything".to_owned(),
        slug: "everything".to_owned(),
        url: url.to_owned(),
        auth: McpAuth::None,
        enabled: true,
        protocol: Protocol::Mcp,
    };
    servers.create(tenant, new).await.unwrap();
    sqlx::query(
        "INSERT INTO tool_grants (tenant_id, agent_id, connector, actions, approval) \
         VALUES ($1, $2, 'mcp:everything', ARRAY['echo'], 'never')",
    )
    .bind(tenant.0)
    .bind(agent)
    .execute(&db.owner)
    .await
    .unwrap();
    let tools = servers.tools_for(tenant, agent).await.unwrap();
    let echo = tools
        .into_iter()
        .find(|t| t.function_name() == "mcp_everything__echo")
        .expect("the echo tool is granted");
    timed(|| async {
        let result = echo.call(Value::Object(arguments())).await.unwrap();
        assert!(
            result["text"]
                .as_str()
                .unwrap()
                .contains("hello from the bench")
        );
    })
    .await
}

async fn tenant_and_agent(db: &TestDb) -> (TenantId, Uuid) {
    let tenant: Uuid =
        sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, 'Bench') RETURNING id")
            .bind(format!("b{}", &Uuid::new_v4().simple().to_string()[..12]))
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let agent: Uuid = sqlx::query_scalar(
        "INSERT INTO agents (tenant_id, name, slug, role, goal) \
         VALUES ($1, 'A', 'bench', 'r', 'g') RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    (TenantId(tenant), agent)
}

/// The reference server on a free port: (process, its `/mcp` URL).
async fn everything() -> (std::process::Child, String) {
    let modules = setting("BRAIN_PORTAL_NODE_MODULES")
        .expect("BRAIN_PORTAL_NODE_MODULES (cargo xtask bench runtime installs the server)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("node")
        .arg(format!("{modules}/.bin/mcp-server-everything"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs mcp-server-everything");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "mcp-server-everything did not listen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, format!("http://127.0.0.1:{port}/mcp"))
}
