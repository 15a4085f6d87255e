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

/// Metric names Brain registers: every `"brain_…"` literal passed to a prometheus
/// constructor in the workspace's sources.
fn registered_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![workspace()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "tests" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split('"').skip(1).step_by(2) {
                    if piece.starts_with("brain_")
                        && piece.len() > 8
                        && piece
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
                    {
                        names.insert(piece.to_owned());
                    }
                }
            }
        }
    }
    names
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

#[test]
fn the_dashboard_and_alerts_ask_only_for_exported_metrics() {
    let registered = registered_metric_names();
    assert!(
        registered.contains("brain_http_requests_total"),
        "{registered:?}"
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/system-health.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["title"], "System Health");
    let mut exprs = Vec::new();
    all_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "{exprs:?}");
    let alerts = std::fs::read_to_string(deploy("alerts.yml")).unwrap();
    for expr in exprs.iter().map(String::as_str).chain([alerts.as_str()]) {
        for name in metric_names_in(expr) {
            assert!(
                registered.contains(&name),
                "`{name}` is not a metric Brain exports ({expr})"
            );
        }
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
