//! The knowledge service the gateway and the CLI call: its settings, collections and
//! documents. Uploads and background ingestion (`queued → processing → ready | failed`) are
//! in [`crate::ingest`], search and the [`crate::Retriever`] agents use in [`crate::search`].
//! Tenant first in every method.

use std::collections::HashSet;
use std::sync::Arc;

use brain_auth::TenantId;
use sqlx::PgPool;

use crate::embed::{Embedder, EmbedderRegistry};
use crate::error::KnowledgeError;
use crate::extract::ExtractLimits;
use crate::ingest::IngestMetrics;
use crate::model::{
    Collection, CollectionId, Document, DocumentId, NewCollection, STORED_DIMENSION,
};
use crate::store::Store;

/// Service settings.
#[derive(Clone, Debug)]
pub struct KnowledgeConfig {
    /// Uploads above this are refused with [`KnowledgeError::TooLarge`] (HTTP 413).
    pub max_upload_bytes: u64,
    pub extract: ExtractLimits,
    /// Chunks per embedding call; progress is recorded after each.
    pub embed_batch: usize,
    /// Documents ingested at once; embedding is CPU-bound, so more rarely helps.
    pub ingest_concurrency: usize,
    /// Of those, at most this many of one tenant; free turns go to the waiting tenant
    /// served least recently.
    pub ingest_per_tenant: usize,
    /// The most hits one search returns.
    pub max_k: usize,
    /// A document that splits into more chunks fails (embedding cost grows with them).
    pub max_chunks_per_document: usize,
    /// A document whose ingestion started this many times and stalled again (the process
    /// died on it) is failed instead of resumed.
    pub max_ingest_attempts: u32,
}

/// The smallest and largest `chunk_size` a collection may have, in characters: a tiny one
/// turns an upload into millions of chunks, a huge one exceeds what embedding models read.
pub const CHUNK_SIZE_RANGE: std::ops::RangeInclusive<usize> = 100..=10_000;

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 50 * 1024 * 1024,
            extract: ExtractLimits::default(),
            embed_batch: 32,
            ingest_concurrency: 1,
            ingest_per_tenant: 1,
            max_k: 100,
            max_chunks_per_document: 20_000,
            max_ingest_attempts: 3,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) embedders: EmbedderRegistry,
    pub(crate) config: KnowledgeConfig,
    pub(crate) jobs: Arc<crate::fair::FairQueue>,
    /// Documents this process is ingesting or about to, so its own recovery sweep leaves
    /// them alone.
    pub(crate) active: std::sync::Mutex<HashSet<DocumentId>>,
    pub(crate) metrics: std::sync::OnceLock<IngestMetrics>,
}

/// The knowledge base of every tenant. Cheap to clone.
#[derive(Clone)]
pub struct KnowledgeService {
    pub(crate) inner: Arc<Inner>,
}

impl KnowledgeService {
    /// `pool` connects as the RLS-bound application role.
    pub fn new(pool: PgPool, embedders: EmbedderRegistry, config: KnowledgeConfig) -> Self {
        let jobs = crate::fair::FairQueue::new(config.ingest_concurrency, config.ingest_per_tenant);
        Self {
            inner: Arc::new(Inner {
                store: Store::new(pool),
                embedders,
                config,
                jobs,
                active: std::sync::Mutex::new(HashSet::new()),
                metrics: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Counts ingested documents by outcome and pages in `registry`
    /// (`brain_ingest_documents_total{outcome}`, `brain_ingest_pages_total`).
    pub fn register_metrics(
        &self,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        let documents = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "brain_ingest_documents_total",
                "Documents ingested by outcome",
            ),
            &["outcome"],
        )?;
        let pages =
            prometheus::IntCounter::new("brain_ingest_pages_total", "Pages of ingested documents")?;
        registry.register(Box::new(documents.clone()))?;
        registry.register(Box::new(pages.clone()))?;
        let _ = self.inner.metrics.set(IngestMetrics { documents, pages });
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &KnowledgeConfig {
        &self.inner.config
    }

    // ---- collections ----

    /// Creates a collection; its embedder must be one this service has, with the
    /// dimension the `chunks` table stores.
    pub async fn create_collection(
        &self,
        tenant: TenantId,
        new: NewCollection,
    ) -> Result<Collection, KnowledgeError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(KnowledgeError::InvalidCollection(
                "name must be 1 to 200 characters".to_owned(),
            ));
        }
        if new.dimension != STORED_DIMENSION {
            return Err(KnowledgeError::InvalidCollection(format!(
                "dimension {} is not supported; collections store {STORED_DIMENSION}-dimensional vectors",
                new.dimension
            )));
        }
        if !CHUNK_SIZE_RANGE.contains(&new.chunk_size) {
            return Err(KnowledgeError::InvalidCollection(format!(
                "chunk_size must be {} to {} characters",
                CHUNK_SIZE_RANGE.start(),
                CHUNK_SIZE_RANGE.end()
            )));
        }
        if new.chunk_overlap >= new.chunk_size {
            return Err(KnowledgeError::InvalidCollection(
                "chunk_overlap must be smaller than chunk_size".to_owned(),
            ));
        }
        let embedder = self.embedder_for(&new.embedder, new.dimension)?;
        drop(embedder);
        let new = NewCollection {
            name: name.to_owned(),
            ..new
        };
        self.inner.store.create_collection(tenant, &new).await
    }

    pub async fn list_collections(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<Collection>, KnowledgeError> {
        self.inner.store.list_collections(tenant).await
    }

    pub async fn get_collection(
        &self,
        tenant: TenantId,
        id: CollectionId,
    ) -> Result<Collection, KnowledgeError> {
        self.inner.store.collection(tenant, id).await
    }

    /// Deletes the collection, its documents and their chunks.
    pub async fn delete_collection(
        &self,
        tenant: TenantId,
        id: CollectionId,
    ) -> Result<(), KnowledgeError> {
        self.inner.store.delete_collection(tenant, id).await
    }

    // ---- documents ----

    pub async fn get_document(
        &self,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<Document, KnowledgeError> {
        self.inner.store.document(tenant, id).await
    }

    pub async fn list_documents(
        &self,
        tenant: TenantId,
        collection: CollectionId,
    ) -> Result<Vec<Document>, KnowledgeError> {
        self.inner.store.collection(tenant, collection).await?;
        self.inner.store.documents(tenant, collection).await
    }

    /// Deletes a document and its chunks.
    pub async fn delete_document(
        &self,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<(), KnowledgeError> {
        self.inner.store.delete_document(tenant, id).await
    }

    // ---- internals ----

    /// `false` when the document is already being handled here.
    pub(crate) fn mark_active(&self, id: DocumentId) -> bool {
        self.inner
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id)
    }

    pub(crate) fn unmark_active(&self, id: DocumentId) {
        self.inner
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }

    pub(crate) fn embedder_for(
        &self,
        id: &str,
        dimension: usize,
    ) -> Result<Arc<dyn Embedder>, KnowledgeError> {
        let embedder =
            self.inner
                .embedders
                .get(id)
                .ok_or_else(|| KnowledgeError::EmbedderUnavailable {
                    collection: id.to_owned(),
                })?;
        if embedder.dimension() != dimension {
            return Err(KnowledgeError::DimensionMismatch {
                embedder: id.to_owned(),
                embedder_dimension: embedder.dimension(),
                collection_dimension: dimension,
            });
        }
        Ok(embedder)
    }
}
