//! The knowledge base as `brain` runs it: the service with the configured limits, the
//! local embedding model loaded on first use (so `brain serve` does not wait for it), and
//! `brain ingest`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use brain_auth::TenantId;
use brain_knowledge::{
    CollectionId, DocumentStatus, EmbedError, Embedder, EmbedderRegistry, IngestProgress,
    KnowledgeConfig, KnowledgeError, KnowledgeService, LOCAL_EMBEDDER, LocalEmbedder,
    NewCollection, STORED_DIMENSION,
};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::config::Config;

/// The files the model folder must hold.
const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// The local all-MiniLM-L6-v2 model, read from disk the first time something is embedded.
/// Reading and parsing ~90 MB of weights is the slow part of starting; a gateway that
/// never ingests or searches never pays it.
pub struct LazyLocalEmbedder {
    /// `None` when no model is configured: every embedding then fails with that reason.
    dir: Option<PathBuf>,
    model: OnceCell<LocalEmbedder>,
}

impl LazyLocalEmbedder {
    /// Checks now that `dir` holds the model's files, so a wrong setting stops `brain`
    /// at start rather than failing the first upload.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        check_model_dir(dir)?;
        Ok(Self {
            dir: Some(dir.to_path_buf()),
            model: OnceCell::new(),
        })
    }

    /// No model configured: collections and listings work, embedding fails saying why.
    pub fn unconfigured() -> Self {
        Self {
            dir: None,
            model: OnceCell::new(),
        }
    }

    /// Loads the model now if it is not loaded yet.
    pub async fn model(&self) -> Result<&LocalEmbedder, EmbedError> {
        self.model
            .get_or_try_init(|| async {
                let dir = self.dir.clone().ok_or_else(|| EmbedError::ModelLoad {
                    path: String::new(),
                    reason: "BRAIN_EMBED_MODEL_DIR is not set".to_owned(),
                })?;
                let started = Instant::now();
                let load_dir = dir.clone();
                let model = tokio::task::spawn_blocking(move || LocalEmbedder::load(&load_dir))
                    .await
                    .map_err(|e| EmbedError::ModelLoad {
                        path: dir.display().to_string(),
                        reason: e.to_string(),
                    })??;
                tracing::info!(
                    dir = %dir.display(),
                    ms = started.elapsed().as_millis(),
                    "embedding model loaded"
                );
                Ok(model)
            })
            .await
    }
}

#[async_trait]
impl Embedder for LazyLocalEmbedder {
    fn id(&self) -> &str {
        LOCAL_EMBEDDER
    }

    fn dimension(&self) -> usize {
        STORED_DIMENSION
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.model().await?.embed(texts).await
    }
}

fn check_model_dir(dir: &Path) -> anyhow::Result<()> {
    for file in MODEL_FILES {
        if !dir.join(file).is_file() {
            bail!(
                "BRAIN_EMBED_MODEL_DIR={} has no {file}; point it at the all-MiniLM-L6-v2 \
                 model folder (`cargo xtask up` fetches it into .brain/models)",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The service settings `brain` runs with.
pub fn service_config(config: &Config) -> KnowledgeConfig {
    KnowledgeConfig {
        max_upload_bytes: u64::try_from(config.max_upload_bytes).unwrap_or(u64::MAX),
        ingest_concurrency: config.ingest_concurrency,
        ingest_per_tenant: config.ingest_per_tenant,
        ..KnowledgeConfig::default()
    }
}

/// The service `brain serve` shares between requests: the model directory is checked
/// now, the model itself loaded on first use. Without `BRAIN_EMBED_MODEL_DIR` the rest of
/// Brain still serves (an auth-only process, a load test) and says loudly that ingestion
/// and search cannot work; a folder that lacks the model stops `brain` here.
pub fn service(config: &Config, db: PgPool) -> anyhow::Result<KnowledgeService> {
    let embedder = match config.require_embed_model_dir() {
        Ok(dir) => LazyLocalEmbedder::new(dir)?,
        Err(missing) => {
            tracing::warn!("{missing}; knowledge ingestion and search will fail until it is set");
            LazyLocalEmbedder::unconfigured()
        }
    };
    let embedders = EmbedderRegistry::new().with(Arc::new(embedder));
    Ok(KnowledgeService::new(db, embedders, service_config(config)))
}

/// `brain ingest FILE… --collection NAME --tenant SLUG`: ingests each file in turn with a
/// progress bar, creating the collection if needed. Fails if any file fails.
pub async fn ingest(
    config: &Config,
    files: &[PathBuf],
    collection: &str,
    tenant_slug: &str,
) -> anyhow::Result<()> {
    let url = config.require_database_url()?;
    let options: sqlx::postgres::PgConnectOptions = url.parse().context("DATABASE_URL")?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to Postgres as the application role")?;
    let tenant = brain_auth::accounts::tenant_by_slug(&db, tenant_slug)
        .await
        .context("looking up the tenant")?
        .with_context(|| format!("no tenant `{tenant_slug}`"))?;

    let dir = config.require_embed_model_dir()?;
    let embedder = LazyLocalEmbedder::new(dir)?;
    // Loaded up front: every file needs it, and a broken model should fail before any
    // document is recorded.
    embedder
        .model()
        .await
        .context("loading the embedding model")?;
    let embedders = EmbedderRegistry::new().with(Arc::new(embedder));
    let service = KnowledgeService::new(db, embedders, service_config(config));
    let collection_id = find_or_create(&service, tenant, collection).await?;

    let mut failed = 0usize;
    for path in files {
        if let Err(e) = ingest_file(&service, tenant, collection_id, path).await {
            failed += 1;
            eprintln!("{}: {e:#}", path.display());
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files failed", files.len());
    }
    Ok(())
}

async fn find_or_create(
    service: &KnowledgeService,
    tenant: TenantId,
    name: &str,
) -> anyhow::Result<CollectionId> {
    let find = || async {
        let all = service.list_collections(tenant).await?;
        Ok::<_, KnowledgeError>(
            all.into_iter()
                .find(|c| c.name == name.trim())
                .map(|c| c.id),
        )
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    match service
        .create_collection(tenant, NewCollection::named(name))
        .await
    {
        Ok(created) => {
            println!("created collection `{}` ({})", created.name, created.id);
            Ok(created.id)
        }
        // Someone else created it in between.
        Err(KnowledgeError::CollectionExists(_)) => find()
            .await?
            .with_context(|| format!("collection `{name}` vanished")),
        Err(e) => Err(e).context("creating the collection"),
    }
}

async fn ingest_file(
    service: &KnowledgeService,
    tenant: TenantId,
    collection: CollectionId,
    path: &Path,
) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} pages · {msg} ({elapsed})")?
            .progress_chars("=> "),
    );
    bar.set_prefix(filename.clone());
    bar.set_message("extracting");
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let progress_bar = bar.clone();
    let progress = move |p: &IngestProgress| {
        progress_bar.set_length(u64::from(p.pages));
        progress_bar.set_position(u64::from(p.pages_done));
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        progress_bar.set_message(format!(
            "{}/{} chunks, {:.1} chunks/s",
            p.chunks_done,
            p.chunks,
            f64::from(p.chunks_done) / secs
        ));
    };
    // The media type is left to the file name (`.pdf`, `.txt`, `.md`).
    let report = service
        .ingest(tenant, collection, &filename, "", bytes, &progress)
        .await;
    bar.finish_and_clear();
    let report = report?;
    let secs = started.elapsed().as_secs_f64();
    match report.status {
        _ if report.deduplicated => println!(
            "{}: already in the collection as document {} ({})",
            path.display(),
            report.document_id,
            report.status.as_str()
        ),
        DocumentStatus::Failed => bail!(
            "failed: {}",
            report.error.as_deref().unwrap_or("unknown reason")
        ),
        _ => println!(
            "{}: {} pages, {} chunks in {secs:.1} s ({:.1} chunks/s), document {}",
            path.display(),
            report.pages,
            report.chunks,
            f64::from(report.chunks) / secs.max(1e-3),
            report.document_id
        ),
    }
    Ok(())
}
