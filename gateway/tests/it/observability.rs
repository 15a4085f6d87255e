//! The shipped observability configuration works: promtool accepts it, a real Prometheus
//! scrapes a running Brain with it, and the dashboard asks only for metrics Brain exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::TestApp;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn deploy(file: &str) -> PathBuf {
    workspace().join("deploy").join(file)
}

#[test]
fn promtool_accepts_the_shipped_config_and_rules() {
    for args in [
        vec![
            "check",
            "config",
            deploy("prometheus.yml").to_str().unwrap(),
        ],
        vec!["check", "rules", deploy("alerts.yml").to_str().unwrap()],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .output()
            .expect("promtool (apt: prometheus)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn metric_names_in(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(start) = expr[i..].find("brain_").map(|s| s + i) {
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &expr[start..end];
        // Histograms are queried through their series suffixes.
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        found.push(base.to_owned());
        i = end;
    }
    found
}

fn all_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => all_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_exprs(v, out)),
        _ => {}
    }
}

/// Every metric name a query of the dashboard or a rule of `alerts.yml` asks for.
fn metric_names_in_deploy() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/system-health.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["title"], "System Health");
    let mut exprs = Vec::new();
    all_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "{exprs:?}");
    let alerts = std::fs::read_to_string(deploy("alerts.yml")).unwrap();
    exprs
        .iter()
        .map(String::as_str)
        .chain([alerts.as_str()])
        .flat_map(metric_names_in)
        .collect()
}

/// A multipart/form-data body with one file field, as a browser sends an upload.
fn multipart(field: &str, file_name: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("brain-{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The metric families a Prometheus text exposition declares (`# TYPE name kind`).
fn exposed_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brain_serve_exports_every_metric_the_dashboard_and_alerts_use() {
    use crate::fakes::{model, serve, wordpress};
    use crate::process::{Api, BrainProcess};
    use reqwest::Method;
    use serde_json::json;

    let wanted = metric_names_in_deploy();
    assert!(wanted.len() >= 10, "{wanted:?}");
    let model_url =
        serve(axum::Router::new().route("/v1/chat/completions", axum::routing::post(model))).await;
    let wordpress_url = serve(wordpress()).await;
    let db = brain_migrations::testing::TestDb::new().await.unwrap();
    let brain = BrainProcess::start(
        &db,
        &["serve"],
        &[
            ("OPENAI_BASE_URL", format!("{model_url}/v1")),
            ("OPENAI_API_KEY", "sk-test".to_owned()),
        ],
    )
    .await;
    let api = Api::new(&brain);
    let within = Duration::from_secs(120);

    // A tenant whose agent may draft WordPress posts.
    let email = format!("owner-{}@brain.test", uuid::Uuid::new_v4().simple());
    let (status, signup) = api
        .auth(
            Method::POST,
            "/v1/auth/signup",
            None,
            json!({"tenant_name": "Metrics Co", "email": email,
                   "password": crate::harness::PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{signup}");
    let token = signup["access_token"].as_str().unwrap().to_owned();
    let (status, body) = api
        .gateway(
            Method::PUT,
            "/v1/connectors/wordpress/connection",
            &token,
            Some(
                json!({"credentials": {"site_url": wordpress_url, "username": "editor",
                                        "application_password": "wp-app-password-9"}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, agent) = api
        .gateway(
            Method::POST,
            "/v1/agents",
            &token,
            Some(
                json!({"name": "Writer", "role": "Writer", "goal": "Write posts",
                        "model": "openai:gpt-4o-mini", "max_tokens": 128,
                        "tools": [{"connector": "wordpress", "actions": ["create_post"],
                                   "approval": "never"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap().to_owned();

    // A chat turn with a tool call.
    let (status, turn) = api
        .gateway(
            Method::POST,
            &format!("/v1/agents/{agent_id}/chat"),
            &token,
            Some(json!({"message": "Draft a post about spring"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(turn["tool_calls"][0]["status"], "ok", "{turn}");

    // The same as a durable task, run by the process's own worker.
    let (status, task) = api
        .gateway(
            Method::POST,
            &format!("/v1/agents/{agent_id}/tasks"),
            &token,
            Some(json!({"input": "Draft a post about autumn"})),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let task_id = task["task_id"].as_str().unwrap().to_owned();

    // An upload ingested in the background.
    let (status, collection) = api
        .gateway(
            Method::POST,
            "/v1/knowledge/collections",
            &token,
            Some(json!({"name": "Brand"})),
        )
        .await;
    assert_eq!(status, 201, "{collection}");
    let collection_id = collection["id"].as_str().unwrap();
    let (content_type, body) = multipart(
        "file",
        "voice.md",
        "text/markdown",
        b"# Brand voice\n\nWarm, concise, and never shouting.\n",
    );
    let upload = api
        .http
        .post(format!(
            "{}/v1/knowledge/collections/{collection_id}/documents",
            api.gateway
        ))
        .bearer_auth(&token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 202);
    let document: Value = upload.json().await.unwrap();
    let document_id = document["document_id"].as_str().unwrap();

    // A signed webhook delivery.
    let secret = "shpss_metrics_secret";
    let (status, hook) = api
        .gateway(
            Method::POST,
            "/v1/integrations/webhooks",
            &token,
            Some(json!({"connector": "shopify", "events": ["orders/create"], "secret": secret})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let order = json!({"id": 1, "email": "ada@example.com", "total_price": "10.00"}).to_string();
    let signature = {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(order.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let delivered = api
        .http
        .post(format!(
            "{}/hooks/{}",
            api.gateway,
            hook["id"].as_str().unwrap()
        ))
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", signature)
        .header("x-shopify-webhook-id", "delivery-1")
        .header("x-shopify-triggered-at", chrono::Utc::now().to_rfc3339())
        .header("x-shopify-shop-domain", "demo.myshopify.com")
        .body(order)
        .send()
        .await
        .unwrap();
    assert!(delivered.status().is_success(), "{:?}", delivered.status());

    api.wait_for(&format!("/v1/tasks/{task_id}"), &token, within, |t| {
        t["status"] == "succeeded"
    })
    .await;
    api.wait_for(
        &format!("/v1/knowledge/documents/{document_id}"),
        &token,
        within,
        |d| d["status"] == "ready",
    )
    .await;

    let scrape = api
        .http
        .get(format!("{}/metrics", api.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exposed = exposed_families(&scrape);
    let missing: Vec<&String> = wanted.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "`brain serve` does not export {missing:?}, which deploy/ charts or alerts on; it \
         exports {exposed:?}"
    );
    // And the series carry the workload, not only declarations.
    for series in [
        "brain_agent_turns_total{outcome=\"ok\",service=\"gateway\"} 1",
        "brain_task_tool_calls_total{action=\"create_post\",connector=\"wordpress\",outcome=\"ok\",service=\"gateway\"} 1",
        "brain_ingest_documents_total{outcome=\"ready\",service=\"gateway\"} 1",
    ] {
        assert!(scrape.contains(series), "no `{series}` in:\n{scrape}");
    }
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn query(http: &reqwest::Client, prometheus: &str, q: &str) -> Value {
    http.get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_brain_with_the_shipped_config() {
    // Brain's gateway, served for real on a free port.
    let app = TestApp::new().await;
    let router = app.gateway.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let brain = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    // The shipped config, pointed at this gateway and scraping every second.
    let dir = std::env::temp_dir().join(format!("brain-prom-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = std::fs::read_to_string(deploy("prometheus.yml"))
        .unwrap()
        .replace("127.0.0.1:8000", &brain.to_string())
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("alerts.yml", deploy("alerts.yml").to_str().unwrap());
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (apt: prometheus)"),
    );
    let prometheus = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(60);
    let up = loop {
        assert!(
            Instant::now() < deadline,
            "prometheus never saw the gateway up"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(response) = http
            .get(format!("{prometheus}/api/v1/targets"))
            .send()
            .await
        else {
            continue;
        };
        let targets: Value = response.json().await.unwrap();
        let gateway = targets["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["labels"]["job"] == "brain-gateway")
            .cloned();
        if let Some(target) = gateway.filter(|t| t["health"] == "up") {
            break target;
        }
    };
    assert_eq!(up["scrapeUrl"], format!("http://{brain}/metrics"));

    // Traffic through Brain shows up in Prometheus.
    for _ in 0..5 {
        http.get(format!("http://{brain}/healthz"))
            .send()
            .await
            .unwrap();
    }
    let counter = r#"brain_http_requests_total{job="brain-gateway",route="/healthz",status="200"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = query(&http, &prometheus, counter).await;
        let value = result["data"]["result"][0]["value"][1]
            .as_str()
            .map(|v| v.parse::<f64>().unwrap());
        if value.is_some_and(|v| v >= 5.0) {
            assert_eq!(result["data"]["result"][0]["metric"]["service"], "gateway");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the request counter never reached Prometheus: {result}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pool = query(
        &http,
        &prometheus,
        r#"brain_db_pool_connections{state="max"}"#,
    )
    .await;
    assert_eq!(pool["data"]["result"][0]["value"][1], "10");
    let _ = std::fs::remove_dir_all(&dir);
}
