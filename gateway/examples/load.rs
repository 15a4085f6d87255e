//! The load generator of `cargo xtask bench load`: authenticated requests against a running
//! Brain (loopback only), bounded in time and count. Prints throughput, p50/p99, errors and
//! the server's RSS at start and end, then checks the API-key rate limiter admits exactly its
//! rate.
//!
//! Settings (set by xtask): BRAIN_LOAD_GATEWAY, BRAIN_LOAD_AUTH (base URLs), BRAIN_LOAD_PID
//! (the server's pid, for RSS), BRAIN_LOAD_SECS (default 60), BRAIN_LOAD_CONCURRENCY (32),
//! BRAIN_LOAD_KEY_RATE (the server's per-key limit per minute).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

fn setting<T: std::str::FromStr>(key: &str, default: Option<T>) -> anyhow::Result<T> {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{key}={v} is not valid")),
        Err(_) => default.with_context(|| format!("{key} is not set")),
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// What xtask sets (see the module comment).
struct Settings {
    gateway: String,
    auth: String,
    pid: u32,
    secs: u64,
    concurrency: usize,
    key_rate: u64,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let settings = Settings {
            gateway: setting("BRAIN_LOAD_GATEWAY", None)?,
            auth: setting("BRAIN_LOAD_AUTH", None)?,
            pid: setting("BRAIN_LOAD_PID", None)?,
            secs: setting("BRAIN_LOAD_SECS", Some(60))?,
            concurrency: setting("BRAIN_LOAD_CONCURRENCY", Some(32))?,
            key_rate: setting("BRAIN_LOAD_KEY_RATE", None)?,
        };
        for url in [&settings.gateway, &settings.auth] {
            if !(url.starts_with("http://127.") || url.starts_with("http://localhost")) {
                bail!("load is only ever sent to loopback, not {url}");
            }
        }
        Ok(settings)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    brain_gateway::install_crypto_provider();
    let settings = Settings::from_env()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency * 2)
        .build()?;
    let (token, key) = credentials(&http, &settings).await?;
    let url = format!("{}/v1/usage", settings.gateway);
    sustained_load(&http, &settings, &url, &token).await?;
    check_key_limit(&http, &url, &key, settings.key_rate).await
}

/// A new tenant's access token (JWT), and an API key it creates.
async fn credentials(
    http: &reqwest::Client,
    settings: &Settings,
) -> anyhow::Result<(String, String)> {
    let (auth, gateway) = (&settings.auth, &settings.gateway);
    let email = format!("load-{}@load.test", uuid::Uuid::new_v4().simple());
    let signup: Value = http
        .post(format!("{auth}/v1/auth/signup"))
        .json(&json!({"tenant_name": "Load test", "email": email, "password": "load test password 123"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = signup["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let key: Value = http
        .post(format!("{gateway}/v1/integrations/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "load", "scopes": ["agents:read"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = key["key"].as_str().context("no api key")?.to_owned();
    Ok((token, key))
}

/// Phase 1: sustained authenticated load (JWT, tenant-scoped query) for `settings.secs`.
async fn sustained_load(
    http: &reqwest::Client,
    settings: &Settings,
    url: &str,
    token: &str,
) -> anyhow::Result<()> {
    let concurrency = settings.concurrency;
    let rss_start = rss_kib(settings.pid);
    let deadline = Instant::now() + Duration::from_secs(settings.secs);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, url, token) = (http.clone(), url.to_owned(), token.to_owned());
        workers.spawn(load_worker(http, url, token, deadline));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = workers.join_next().await {
        let (l, e) = done?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = rss_kib(settings.pid);
    latencies.sort_unstable();
    println!("load: GET /v1/usage with a JWT, {concurrency} connections, {elapsed:.0} s");
    println!("  requests ok     {:>10}", latencies.len());
    println!("  errors          {errors:>10}");
    println!(
        "  throughput      {:>10.0} req/s",
        latencies.len() as f64 / elapsed
    );
    println!(
        "  latency p50     {:>10.2} ms",
        percentile(&latencies, 0.50)
    );
    println!(
        "  latency p99     {:>10.2} ms",
        percentile(&latencies, 0.99)
    );
    println!(
        "  server RSS      {:>10} KiB at start, {} KiB at end",
        rss_start.map_or("?".into(), |v| v.to_string()),
        rss_end.map_or("?".into(), |v| v.to_string())
    );
    Ok(())
}

/// One connection's requests until `deadline`: latencies of the successes (µs) and the
/// number of errors.
async fn load_worker(
    http: reqwest::Client,
    url: String,
    token: String,
    deadline: Instant,
) -> (Vec<u64>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    // Bounded in count too: at most 1M requests per worker.
    while Instant::now() < deadline && latencies.len() < 1_000_000 {
        let started = Instant::now();
        match http.get(&url).bearer_auth(&token).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            _ => errors += 1,
        }
    }
    (latencies, errors)
}

/// Phase 2: the per-key limiter admits exactly its rate (plus what refills meanwhile).
async fn check_key_limit(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    key_rate: u64,
) -> anyhow::Result<()> {
    let attempts = key_rate * 2;
    let started = Instant::now();
    let (mut ok, mut limited, mut other) = (0u64, 0u64, 0u64);
    for _ in 0..attempts {
        match http
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .map(|r| r.status().as_u16())
        {
            Ok(200) => ok += 1,
            Ok(429) => limited += 1,
            _ => other += 1,
        }
    }
    let burst = started.elapsed().as_secs_f64();
    let refilled = (burst * key_rate as f64 / 60.0).floor() as u64;
    println!(
        "rate limit: {attempts} requests with one API key (limit {key_rate}/min) in {burst:.1} s"
    );
    println!("  admitted {ok}, refused with 429 {limited}, other {other}");
    println!("  expected admitted: {key_rate} + {refilled} refilled during the burst");
    if ok < key_rate || ok > key_rate + refilled + 1 || other > 0 {
        bail!(
            "the rate limiter admitted {ok}, outside [{key_rate}, {}]",
            key_rate + refilled + 1
        );
    }
    Ok(())
}
