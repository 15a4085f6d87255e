//! Uploads and their ingestion: an upload is validated and recorded at once (`queued`), then
//! extracted, chunked and embedded in the background when the fair queue gives its tenant a
//! turn (`processing → ready | failed`); documents whose ingestion stalled are resumed from
//! the bytes kept for them.

use brain_auth::TenantId;
use sha2::{Digest, Sha256};

use crate::chunk::{ChunkDraft, Chunker};
use crate::error::{ExtractError, KnowledgeError};
use crate::extract::extract;
use crate::model::{CollectionId, Document, DocumentId, DocumentStatus, MediaKind, Upload};
use crate::service::KnowledgeService;
use crate::store::NewDocument;

/// What ingestion is doing, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestProgress {
    pub document_id: DocumentId,
    pub status: DocumentStatus,
    pub pages: u32,
    /// Pages whose chunks are embedded.
    pub pages_done: u32,
    pub chunks: u32,
    pub chunks_done: u32,
}

/// The outcome of [`KnowledgeService::ingest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestReport {
    pub document_id: DocumentId,
    /// `Ready` or `Failed` (or the existing document's status when deduplicated).
    pub status: DocumentStatus,
    pub pages: u32,
    pub chunks: u32,
    pub error: Option<String>,
    pub deduplicated: bool,
}

/// A progress callback; called from the ingesting task.
pub type ProgressFn = dyn Fn(&IngestProgress) + Send + Sync;

pub(crate) struct IngestMetrics {
    pub(crate) documents: prometheus::IntCounterVec,
    pub(crate) pages: prometheus::IntCounter,
}

impl KnowledgeService {
    /// Accepts a file for background ingestion and returns at once with the document id
    /// (status `queued`). Identical bytes already in the collection return that document.
    pub async fn upload(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        filename: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Upload, KnowledgeError> {
        let (kind, document, deduplicated) = self
            .register(tenant, collection, filename, media_type, &bytes)
            .await?;
        if !deduplicated {
            self.mark_active(document.id);
            self.spawn_ingest(tenant, collection, document.id, kind, bytes);
        }
        Ok(Upload {
            document_id: document.id,
            status: document.status,
            deduplicated,
        })
    }

    /// Uploads and ingests in the caller's task, reporting progress: the `brain ingest`
    /// CLI's entry point. A file that cannot be read gives `Ok` with status `Failed` and
    /// the reason; `Err` is for a refused upload or an infrastructure failure.
    pub async fn ingest(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        filename: &str,
        media_type: &str,
        bytes: Vec<u8>,
        progress: &ProgressFn,
    ) -> Result<IngestReport, KnowledgeError> {
        let (kind, document, deduplicated) = self
            .register(tenant, collection, filename, media_type, &bytes)
            .await?;
        if !deduplicated {
            self.mark_active(document.id);
            self.run_ingest(tenant, collection, document.id, kind, bytes, progress)
                .await;
        }
        let document = self.inner.store.document(tenant, document.id).await?;
        Ok(IngestReport {
            document_id: document.id,
            status: document.status,
            pages: document.pages,
            chunks: document.chunks,
            error: document.error,
            deduplicated,
        })
    }

    /// Picks up documents whose ingestion stalled — queued or processing, untouched for
    /// `stale`, typically because the process ingesting them died — from the bytes kept
    /// for them, and ingests them again in the background. Returns how many it resumed.
    /// Safe to run from every process at once: each stalled document is claimed by one.
    pub async fn resume_stalled(
        &self,
        stale: std::time::Duration,
    ) -> Result<usize, KnowledgeError> {
        const BATCH: u32 = 16;
        let store = &self.inner.store;
        let mut resumed = 0;
        let max_attempts = self.inner.config.max_ingest_attempts;
        for (tenant, id) in store.claim_stalled(stale, BATCH, max_attempts).await? {
            if !self.mark_active(id) {
                continue;
            }
            let pending = match store.pending_source(tenant, id).await {
                Ok(Some(pending)) => pending,
                Ok(None) | Err(KnowledgeError::DocumentNotFound(_)) => {
                    self.unmark_active(id);
                    continue;
                }
                Err(e) => {
                    self.unmark_active(id);
                    return Err(e);
                }
            };
            let (document, bytes) = pending;
            let Some(kind) = MediaKind::detect(&document.filename, &document.media_type) else {
                self.unmark_active(id);
                store
                    .fail_document(tenant, id, "the file type is not supported")
                    .await?;
                continue;
            };
            tracing::info!(document = %id, %tenant, status = document.status.as_str(), "resuming a stalled document");
            self.spawn_ingest(tenant, document.collection_id, id, kind, bytes);
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Runs [`Self::resume_stalled`] now and then every `every`, for as long as the process
    /// lives (`brain serve` starts it with the gateway).
    pub async fn run_recovery(self, every: std::time::Duration, stale: std::time::Duration) {
        loop {
            match self.resume_stalled(stale).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(documents = n, "resumed stalled ingestion"),
                Err(e) => tracing::warn!(error = %e, "could not look for stalled documents"),
            }
            tokio::time::sleep(every).await;
        }
    }

    fn spawn_ingest(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        id: DocumentId,
        kind: MediaKind,
        bytes: Vec<u8>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            this.run_ingest(tenant, collection, id, kind, bytes, &|_| {})
                .await;
        });
    }

    /// Validates an upload and records the document (or finds its duplicate).
    async fn register(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        filename: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(MediaKind, Document, bool), KnowledgeError> {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let limit = self.inner.config.max_upload_bytes;
        if size > limit {
            return Err(KnowledgeError::TooLarge { size, limit });
        }
        let kind = MediaKind::detect(filename, media_type)
            .ok_or_else(|| KnowledgeError::UnsupportedMediaType(media_type.to_owned()))?;
        let filename = sanitize_filename(filename);
        let title = title_from(&filename);
        let sha = hex(&Sha256::digest(bytes));
        let (document, deduplicated) = self
            .inner
            .store
            .insert_document(
                tenant,
                &NewDocument {
                    collection,
                    title: &title,
                    filename: &filename,
                    media_type: kind.media_type(),
                    size_bytes: size,
                    content_sha256: &sha,
                    bytes,
                },
            )
            .await?;
        Ok((kind, document, deduplicated))
    }

    /// Runs one document's ingestion to `ready` or `failed`. Never returns an error and
    /// never panics on input: every failure ends up in the document's `error`.
    async fn run_ingest(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        id: DocumentId,
        kind: MediaKind,
        bytes: Vec<u8>,
        progress: &ProgressFn,
    ) {
        let (_turn, bytes) = match self.inner.jobs.try_acquire(tenant) {
            Some(turn) => (turn, bytes),
            None => {
                // A waiting document holds no file in memory: its kept bytes are read back
                // when its turn comes (unless it was deleted meanwhile).
                drop(bytes);
                let (all, mine) = self.inner.jobs.running(tenant);
                tracing::debug!(document = %id, %tenant, running = all, running_for_tenant = mine, "document waits for an ingestion turn");
                let turn = self.inner.jobs.acquire(tenant).await;
                match self.inner.store.pending_source(tenant, id).await {
                    Ok(Some((_, bytes))) => (turn, bytes),
                    Ok(None) | Err(_) => {
                        self.unmark_active(id);
                        return;
                    }
                }
            }
        };
        let result = self
            .ingest_steps(tenant, collection, id, kind, bytes, progress)
            .await;
        self.unmark_active(id);
        let status = match result {
            Ok(()) => DocumentStatus::Ready,
            Err(e) => {
                let reason = user_reason(&e);
                tracing::info!(document = %id, %reason, "document ingestion failed");
                if let Err(store_error) = self.inner.store.fail_document(tenant, id, &reason).await
                {
                    tracing::warn!(document = %id, error = %store_error, "cannot record failure");
                }
                DocumentStatus::Failed
            }
        };
        if let Some(metrics) = self.inner.metrics.get() {
            let outcome = if status == DocumentStatus::Ready {
                "ready"
            } else {
                "failed"
            };
            metrics.documents.with_label_values(&[outcome]).inc();
        }
        if let Ok(doc) = self.inner.store.document(tenant, id).await {
            if let (Some(metrics), DocumentStatus::Ready) = (self.inner.metrics.get(), status) {
                metrics.pages.inc_by(u64::from(doc.pages));
            }
            progress(&IngestProgress {
                document_id: id,
                status,
                pages: doc.pages,
                pages_done: doc.pages_done,
                chunks: doc.chunks,
                chunks_done: doc.chunks,
            });
        }
    }

    async fn ingest_steps(
        &self,
        tenant: TenantId,
        collection_id: CollectionId,
        id: DocumentId,
        kind: MediaKind,
        bytes: Vec<u8>,
        progress: &ProgressFn,
    ) -> Result<(), KnowledgeError> {
        let store = &self.inner.store;
        let collection = store.collection(tenant, collection_id).await?;
        let embedder = self.embedder_for(&collection.embedder, collection.dimension)?;
        if !store.begin_attempt(tenant, id).await? {
            return Ok(());
        }
        let limits = self.inner.config.extract;
        let (size, overlap) = (collection.chunk_size, collection.chunk_overlap);
        let max_chunks = self.inner.config.max_chunks_per_document;
        // Extraction and chunking are CPU work on untrusted bytes: off the async workers.
        let (page_count, chunks) = tokio::task::spawn_blocking(move || {
            let extracted = extract(kind, &bytes, &limits)?;
            drop(bytes);
            let chunker = Chunker::new(kind, size, overlap)?;
            let chunks = chunker.chunk_all(&extracted.sections);
            if chunks.len() > max_chunks {
                return Err(ExtractError::TooManyChunks {
                    chunks: chunks.len(),
                    limit: max_chunks,
                }
                .into());
            }
            Ok::<_, KnowledgeError>((extracted.page_count, chunks))
        })
        .await
        .map_err(|e| KnowledgeError::Task(e.to_string()))??;
        let total = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        if !store
            .set_progress(tenant, id, DocumentStatus::Processing, page_count, 0, total)
            .await?
        {
            return Ok(());
        }
        let mut report = IngestProgress {
            document_id: id,
            status: DocumentStatus::Processing,
            pages: page_count,
            pages_done: 0,
            chunks: total,
            chunks_done: 0,
        };
        progress(&report);
        let mut vectors = Vec::with_capacity(chunks.len());
        for batch in chunks.chunks(self.inner.config.embed_batch.max(1)) {
            let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
            vectors.extend(embedder.embed(&texts).await?);
            report.chunks_done = u32::try_from(vectors.len()).unwrap_or(u32::MAX);
            report.pages_done = pages_done(batch, &chunks, vectors.len(), page_count);
            if !store
                .set_progress(
                    tenant,
                    id,
                    DocumentStatus::Processing,
                    page_count,
                    report.pages_done,
                    total,
                )
                .await?
            {
                return Ok(());
            }
            progress(&report);
        }
        match store
            .complete_document(tenant, collection_id, id, page_count, &chunks, vectors)
            .await
        {
            // Deleted while embedding: the chunks' foreign key refuses them, and there is
            // nothing left to mark.
            Err(KnowledgeError::Database(sqlx::Error::Database(db)))
                if db.is_foreign_key_violation() =>
            {
                Ok(())
            }
            other => other,
        }
    }
}

/// Pages fully embedded once the first `done` chunks are: every page before the next
/// chunk's page (all pages once every chunk is done).
fn pages_done(batch: &[ChunkDraft], chunks: &[ChunkDraft], done: usize, pages: u32) -> u32 {
    match chunks.get(done) {
        Some(next) => next.page_start.saturating_sub(1),
        None if batch.is_empty() => 0,
        None => pages,
    }
}

/// The sentence a user sees for a failed document; infrastructure details stay in logs.
fn user_reason(e: &KnowledgeError) -> String {
    match e {
        KnowledgeError::Extract(e) => e.to_string(),
        KnowledgeError::Embed(e) => {
            tracing::warn!(error = %e, "embedding failed during ingestion");
            "the embedding model failed on this document; try again later".to_owned()
        }
        KnowledgeError::EmbedderUnavailable { .. } | KnowledgeError::DimensionMismatch { .. } => {
            e.to_string()
        }
        other => {
            tracing::warn!(error = %other, "ingestion failed");
            "an internal error stopped ingestion; try again later".to_owned()
        }
    }
}

/// The last path component, without control characters, at most 255 characters.
fn sanitize_filename(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let clean = clean.trim();
    if clean.is_empty() {
        "upload".to_owned()
    } else {
        clean.to_owned()
    }
}

fn title_from(filename: &str) -> String {
    match filename.rsplit_once('.') {
        Some((stem, _)) if !stem.trim().is_empty() => stem.trim().to_owned(),
        _ => filename.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_controls() {
        assert_eq!(sanitize_filename("../../etc/pass\u{0}wd.txt"), "passwd.txt");
        assert_eq!(
            sanitize_filename("C:\\docs\\Brand Voice.md"),
            "Brand Voice.md"
        );
        assert_eq!(title_from("Brand Voice.md"), "Brand Voice");
        assert_eq!(sanitize_filename(""), "upload");
    }
}
