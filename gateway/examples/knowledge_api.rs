//! `cargo xtask bench knowledge`, the end-to-end half: drives a running `brain serve` through
//! its public API as a user would — upload real PDFs and time upload → `ready`, then grow the
//! collection to 10k chunks and time searches (query embedding + hybrid retrieval).
//!
//! Settings: `BRAIN_BENCH_GATEWAY`, `BRAIN_BENCH_AUTH` (base URLs), `BRAIN_BENCH_PDFS`
//! (paths, `:`-separated), `BRAIN_BENCH_OWNER_DB` (Postgres as the schema owner, only to
//! seed the 10k chunks quickly).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

const SEARCH_CHUNKS: i64 = 10_000;
const SEARCHES: usize = 300;
const QUESTIONS: &[&str] = &[
    "How do I factorize a sparse matrix?",
    "What does the analysis step compute?",
    "Which ordering reduces fill-in?",
    "How is memory freed after solving?",
    "What are the input arguments of the solve routine?",
    "How do I install the library?",
    "What license is the software under?",
    "How are rational numbers represented?",
    "What happens when the matrix is singular?",
    "Which MATLAB function calls the factorization?",
];

fn env(key: &str) -> anyhow::Result<String> {
    std::env::var(key)
        .with_context(|| format!("{key} is not set (run `cargo xtask bench knowledge`)"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn json_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, &url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A signed-up user of the running Brain and the collection the benchmark fills.
struct Session {
    http: reqwest::Client,
    gateway: String,
    token: String,
    tenant: String,
    collection: String,
}

impl Session {
    /// Signs up a new tenant and creates its "Manuals" collection.
    async fn start(gateway: String, auth: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let email = format!("bench-{}@brain.test", uuid::Uuid::new_v4().simple());
        let signup = json_call(
            &http,
            reqwest::Method::POST,
            format!("{auth}/v1/auth/signup"),
            None,
            Some(json!({"tenant_name": "Knowledge Bench", "email": email,
                        "password": "correct horse battery staple"})),
        )
        .await?;
        let token = signup["access_token"]
            .as_str()
            .context("no token")?
            .to_owned();
        let tenant = signup["tenant"]["id"]
            .as_str()
            .context("no tenant")?
            .to_owned();
        let collection = json_call(
            &http,
            reqwest::Method::POST,
            format!("{gateway}/v1/knowledge/collections"),
            Some(&token),
            Some(json!({"name": "Manuals"})),
        )
        .await?;
        let collection = collection["id"]
            .as_str()
            .context("no collection")?
            .to_owned();
        Ok(Session {
            http,
            gateway,
            token,
            tenant,
            collection,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        json_call(&self.http, method, url, Some(&self.token), body).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    brain_gateway::install_crypto_provider();
    let gateway = env("BRAIN_BENCH_GATEWAY")?;
    let auth = env("BRAIN_BENCH_AUTH")?;
    let pdfs = env("BRAIN_BENCH_PDFS")?;
    let owner_db = env("BRAIN_BENCH_OWNER_DB")?;
    let session = Session::start(gateway, &auth).await?;

    println!("== upload → ready through the API (real PDFs, default embedding model)");
    for path in pdfs.split(':').filter(|p| !p.is_empty()) {
        upload_until_ready(&session, path).await?;
    }
    seed_chunks(&session, &owner_db).await?;
    search(&session).await
}

/// Uploads the PDF at `path`, waits until it is `ready` and prints how fast that was.
async fn upload_until_ready(session: &Session, path: &str) -> anyhow::Result<()> {
    let Session {
        http,
        gateway,
        token,
        collection,
        ..
    } = session;
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let name = std::path::Path::new(path)
        .file_name()
        .map_or_else(|| "manual.pdf".into(), |n| n.to_string_lossy().into_owned());
    let boundary = format!("bench{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let started = Instant::now();
    let response = http
        .post(format!(
            "{gateway}/v1/knowledge/collections/{collection}/documents"
        ))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        bail!(
            "upload of {name}: {} {}",
            response.status(),
            response.text().await?
        );
    }
    let accepted: Value = response.json().await?;
    let document = accepted["document_id"].as_str().context("no document id")?;
    let doc = wait_ready(session, &name, document, started).await?;
    let secs = started.elapsed().as_secs_f64();
    let pages = doc["pages"].as_f64().unwrap_or(0.0);
    println!(
        "{name}: {pages} pages, {} chunks, ready in {secs:.2} s = {:.1} pages/s (goal ≥ 10)",
        doc["chunks"],
        pages / secs
    );
    Ok(())
}

/// Polls the document until it is `ready` (its JSON), fails, or 600 s have passed since
/// `started`.
async fn wait_ready(
    session: &Session,
    name: &str,
    document: &str,
    started: Instant,
) -> anyhow::Result<Value> {
    let gateway = &session.gateway;
    loop {
        let doc = session
            .call(
                reqwest::Method::GET,
                format!("{gateway}/v1/knowledge/documents/{document}"),
                None,
            )
            .await?;
        match doc["status"].as_str() {
            Some("ready") => return Ok(doc),
            Some("failed") => bail!("{name} failed: {doc}"),
            _ if started.elapsed() > Duration::from_secs(600) => bail!("{name} never ready"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Grows the collection to 10k chunks: the real chunks' texts and vectors, copied with a
/// little noise on the vectors so the index has distinct points to search.
async fn seed_chunks(session: &Session, owner_db: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let Session {
        tenant, collection, ..
    } = session;
    // One connection inside the tenant: row-level security applies to the owner too.
    let mut pool = sqlx::PgConnection::connect(owner_db).await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
        .bind(tenant)
        .execute(&mut pool)
        .await?;
    let have: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chunks WHERE collection_id = $1::uuid")
            .bind(collection)
            .fetch_one(&mut pool)
            .await?;
    if have == 0 {
        bail!("no chunks were ingested");
    }
    let seeded = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO documents (id, tenant_id, collection_id, title, filename, media_type, \
         size_bytes, content_sha256, status, pages, pages_done, chunks) \
         VALUES ($1, $2::uuid, $3::uuid, 'Seeded copies', 'seeded.pdf', 'application/pdf', 0, \
         repeat('0', 64), 'ready', 1, 1, $4)",
    )
    .bind(seeded)
    .bind(tenant)
    .bind(collection)
    .bind(i32::try_from(SEARCH_CHUNKS - have).unwrap_or(i32::MAX))
    .execute(&mut pool)
    .await?;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO chunks (tenant_id, collection_id, document_id, ordinal, page_start, \
         page_end, text, embedding) \
         SELECT c.tenant_id, c.collection_id, $1, n - 1, 1, 1, c.text, \
                l2_normalize(c.embedding + (SELECT array_agg((random() - 0.5) * 0.05 + 0 * n + 0 * d) \
                                            FROM generate_series(1, 384) d)::vector) \
         FROM generate_series(1, $3) AS n \
         JOIN LATERAL (SELECT * FROM chunks WHERE collection_id = $2::uuid \
                       AND document_id <> $1 ORDER BY id OFFSET (n % $4) LIMIT 1) c ON true",
    )
    .bind(seeded)
    .bind(collection)
    .bind(SEARCH_CHUNKS - have)
    .bind(have)
    .execute(&mut pool)
    .await?;
    sqlx::query("ANALYZE chunks").execute(&mut pool).await?;
    println!(
        "seeded the collection to {SEARCH_CHUNKS} chunks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Search latency through the API at `SEARCH_CHUNKS` chunks, after a few warm-up queries.
async fn search(session: &Session) -> anyhow::Result<()> {
    println!("== search through the API at {SEARCH_CHUNKS} chunks (query embedding + hybrid)");
    let (gateway, collection) = (&session.gateway, &session.collection);
    let url = format!("{gateway}/v1/knowledge/collections/{collection}/search");
    for question in QUESTIONS.iter().take(3) {
        session
            .call(
                reqwest::Method::POST,
                url.clone(),
                Some(json!({"query": question, "k": 5})),
            )
            .await?;
    }
    let mut latencies = Vec::with_capacity(SEARCHES);
    for i in 0..SEARCHES {
        let question = format!("{} ({i})", QUESTIONS[i % QUESTIONS.len()]);
        let started = Instant::now();
        let hits = session
            .call(
                reqwest::Method::POST,
                url.clone(),
                Some(json!({"query": question, "k": 5})),
            )
            .await?;
        latencies.push(started.elapsed());
        if hits["hits"].as_array().is_none_or(Vec::is_empty) {
            bail!("no hits for {question}: {hits}");
        }
    }
    latencies.sort();
    println!(
        "search p50 {:.1} ms, p99 {:.1} ms over {SEARCHES} queries (goal ≤ 25 / ≤ 60 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(())
}
