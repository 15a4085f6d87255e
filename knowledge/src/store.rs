//! The Postgres side of the knowledge base: collections, documents and their status, and
//! chunks with their vectors (pgvector HNSW, cosine) and full-text index. Every method runs
//! in its own transaction bound to the tenant, and filters by the tenant as well.

use brain_auth::TenantId;
use pgvector::Vector;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::chunk::ChunkDraft;
use crate::error::KnowledgeError;
use crate::model::{
    ChunkId, Collection, CollectionId, Document, DocumentId, DocumentStatus, Hit, NewCollection,
};

/// Rows per `INSERT … SELECT FROM UNNEST(…)`: large enough to amortise round trips, small
/// enough to keep one statement's parameters a few megabytes.
const INSERT_BATCH: usize = 500;

/// Postgres storage for one deployment; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

#[derive(sqlx::FromRow)]
struct CollectionRow {
    id: Uuid,
    name: String,
    embedder: String,
    dimension: i32,
    chunk_size: i32,
    chunk_overlap: i32,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<CollectionRow> for Collection {
    fn from(r: CollectionRow) -> Self {
        Self {
            id: CollectionId(r.id),
            name: r.name,
            embedder: r.embedder,
            dimension: usize::try_from(r.dimension).unwrap_or_default(),
            chunk_size: usize::try_from(r.chunk_size).unwrap_or_default(),
            chunk_overlap: usize::try_from(r.chunk_overlap).unwrap_or_default(),
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Uuid,
    collection_id: Uuid,
    title: String,
    filename: String,
    media_type: String,
    size_bytes: i64,
    content_sha256: String,
    status: String,
    error: Option<String>,
    pages: i32,
    pages_done: i32,
    chunks: i32,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Self {
        let count = |n: i32| u32::try_from(n).unwrap_or_default();
        Self {
            id: DocumentId(r.id),
            collection_id: CollectionId(r.collection_id),
            title: r.title,
            filename: r.filename,
            media_type: r.media_type,
            size_bytes: u64::try_from(r.size_bytes).unwrap_or_default(),
            content_sha256: r.content_sha256,
            status: DocumentStatus::parse(&r.status),
            error: r.error,
            pages: count(r.pages),
            pages_done: count(r.pages_done),
            chunks: count(r.chunks),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct HitRow {
    id: Uuid,
    document_id: Uuid,
    collection_id: Uuid,
    title: String,
    page_start: i32,
    page_end: i32,
    text: String,
    score: f64,
}

impl From<HitRow> for Hit {
    fn from(r: HitRow) -> Self {
        Self {
            chunk_id: ChunkId(r.id),
            document_id: DocumentId(r.document_id),
            collection_id: CollectionId(r.collection_id),
            title: r.title,
            page: u32::try_from(r.page_start).unwrap_or(1),
            page_end: u32::try_from(r.page_end).unwrap_or(1),
            text: r.text,
            score: r.score,
        }
    }
}

/// A document row to create.
pub struct NewDocument<'a> {
    pub collection: CollectionId,
    pub title: &'a str,
    pub filename: &'a str,
    pub media_type: &'a str,
    pub size_bytes: u64,
    pub content_sha256: &'a str,
    /// The uploaded bytes, kept until ingestion ends so a stalled document can be resumed.
    pub bytes: &'a [u8],
}

const COLLECTION_COLUMNS: &str =
    "id, name, embedder, dimension, chunk_size, chunk_overlap, created_at";
const DOCUMENT_COLUMNS: &str = "id, collection_id, title, filename, media_type, size_bytes, \
     content_sha256, status, error, pages, pages_done, chunks, created_at, updated_at";

fn to_i32(n: usize, what: &str) -> Result<i32, KnowledgeError> {
    i32::try_from(n).map_err(|_| KnowledgeError::InvalidCollection(format!("{what} is too large")))
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction inside `tenant`.
    pub async fn begin(
        &self,
        tenant: TenantId,
    ) -> Result<Transaction<'static, Postgres>, KnowledgeError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        Ok(tx)
    }

    pub async fn create_collection(
        &self,
        tenant: TenantId,
        new: &NewCollection,
    ) -> Result<Collection, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let sql = format!(
            "INSERT INTO knowledge_collections \
               (tenant_id, name, embedder, dimension, chunk_size, chunk_overlap) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLLECTION_COLUMNS}"
        );
        let row = sqlx::query_as::<_, CollectionRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(&new.name)
            .bind(&new.embedder)
            .bind(to_i32(new.dimension, "dimension")?)
            .bind(to_i32(new.chunk_size, "chunk_size")?)
            .bind(to_i32(new.chunk_overlap, "chunk_overlap")?)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    KnowledgeError::CollectionExists(new.name.clone())
                }
                sqlx::Error::Database(db) if db.is_check_violation() => {
                    KnowledgeError::InvalidCollection(db.message().to_owned())
                }
                _ => KnowledgeError::Database(e),
            })?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn list_collections(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<Collection>, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let sql = format!(
            "SELECT {COLLECTION_COLUMNS} FROM knowledge_collections \
             WHERE tenant_id = $1 ORDER BY created_at, name"
        );
        let rows = sqlx::query_as::<_, CollectionRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn collection(
        &self,
        tenant: TenantId,
        id: CollectionId,
    ) -> Result<Collection, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let found = collection_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        found.ok_or(KnowledgeError::CollectionNotFound(id))
    }

    /// The collections among `ids` that exist for the tenant.
    pub async fn collections(
        &self,
        tenant: TenantId,
        ids: &[CollectionId],
    ) -> Result<Vec<Collection>, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let sql = format!(
            "SELECT {COLLECTION_COLUMNS} FROM knowledge_collections \
             WHERE tenant_id = $1 AND id = ANY($2) ORDER BY name"
        );
        let ids: Vec<Uuid> = ids.iter().map(|c| c.0).collect();
        let rows = sqlx::query_as::<_, CollectionRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Deletes a collection with its documents and chunks (foreign keys cascade).
    pub async fn delete_collection(
        &self,
        tenant: TenantId,
        id: CollectionId,
    ) -> Result<(), KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let done =
            sqlx::query("DELETE FROM knowledge_collections WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(KnowledgeError::CollectionNotFound(id));
        }
        Ok(())
    }

    /// Creates a queued document, or returns the existing one with the same content in
    /// the same collection (`true` in the second field).
    pub async fn insert_document(
        &self,
        tenant: TenantId,
        new: &NewDocument<'_>,
    ) -> Result<(Document, bool), KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        if collection_in(&mut tx, tenant, new.collection)
            .await?
            .is_none()
        {
            return Err(KnowledgeError::CollectionNotFound(new.collection));
        }
        let size = i64::try_from(new.size_bytes).unwrap_or(i64::MAX);
        let sql = format!(
            "INSERT INTO documents \
               (tenant_id, collection_id, title, filename, media_type, size_bytes, content_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (collection_id, content_sha256) DO NOTHING \
             RETURNING {DOCUMENT_COLUMNS}"
        );
        let inserted = sqlx::query_as::<_, DocumentRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(new.collection.0)
            .bind(new.title)
            .bind(new.filename)
            .bind(new.media_type)
            .bind(size)
            .bind(new.content_sha256)
            .fetch_optional(&mut *tx)
            .await?;
        let result = match inserted {
            Some(row) => {
                sqlx::query(
                    "INSERT INTO document_sources (document_id, tenant_id, bytes) \
                     VALUES ($1, $2, $3)",
                )
                .bind(row.id)
                .bind(tenant.0)
                .bind(new.bytes)
                .execute(&mut *tx)
                .await?;
                (row.into(), false)
            }
            None => {
                let sql = format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents \
                     WHERE tenant_id = $1 AND collection_id = $2 AND content_sha256 = $3"
                );
                let row = sqlx::query_as::<_, DocumentRow>(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(new.collection.0)
                    .bind(new.content_sha256)
                    .fetch_one(&mut *tx)
                    .await?;
                (row.into(), true)
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    pub async fn document(
        &self,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<Document, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let sql =
            format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query_as::<_, DocumentRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.map(Into::into)
            .ok_or(KnowledgeError::DocumentNotFound(id))
    }

    pub async fn documents(
        &self,
        tenant: TenantId,
        collection: CollectionId,
    ) -> Result<Vec<Document>, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents \
             WHERE tenant_id = $1 AND collection_id = $2 ORDER BY created_at"
        );
        let rows = sqlx::query_as::<_, DocumentRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(collection.0)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Deletes a document and (by cascade) its chunks.
    pub async fn delete_document(
        &self,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<(), KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let done = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(KnowledgeError::DocumentNotFound(id));
        }
        Ok(())
    }

    /// Records progress; `false` when the document no longer exists (deleted meanwhile).
    pub async fn set_progress(
        &self,
        tenant: TenantId,
        id: DocumentId,
        status: DocumentStatus,
        pages: u32,
        pages_done: u32,
        chunks: u32,
    ) -> Result<bool, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let done = sqlx::query(
            "UPDATE documents SET status = $3, pages = $4, pages_done = $5, chunks = $6, \
               error = NULL, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(status.as_str())
        .bind(i32::try_from(pages).unwrap_or(i32::MAX))
        .bind(i32::try_from(pages_done).unwrap_or(i32::MAX))
        .bind(i32::try_from(chunks).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Starts an ingestion attempt: `processing` with no progress, one more attempt counted
    /// (see [`Store::claim_stalled`]). False when the document is gone.
    pub async fn begin_attempt(
        &self,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<bool, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let done = sqlx::query(
            "UPDATE documents SET status = 'processing', pages = 0, pages_done = 0, chunks = 0, \
               error = NULL, attempts = attempts + 1, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks a document failed with a reason for the user, removing any chunks it had.
    pub async fn fail_document(
        &self,
        tenant: TenantId,
        id: DocumentId,
        reason: &str,
    ) -> Result<(), KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        sqlx::query("DELETE FROM chunks WHERE tenant_id = $1 AND document_id = $2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', error = $3, chunks = 0, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        drop_source(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores all chunks of a document and marks it ready, in one transaction: readers see
    /// either no chunks or all of them. Replaces chunks from an earlier attempt.
    pub async fn complete_document(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        id: DocumentId,
        pages: u32,
        chunks: &[ChunkDraft],
        vectors: Vec<Vec<f32>>,
    ) -> Result<(), KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        sqlx::query("DELETE FROM chunks WHERE tenant_id = $1 AND document_id = $2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        insert_chunks(&mut tx, tenant, collection, id, chunks, vectors).await?;
        sqlx::query(
            "UPDATE documents SET status = 'ready', error = NULL, pages = $3, pages_done = $3, \
               chunks = $4, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(i32::try_from(pages).unwrap_or(i32::MAX))
        .bind(i32::try_from(chunks.len()).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        drop_source(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` documents of any tenant whose ingestion stalled (queued or
    /// processing, untouched for `stale`, bytes still kept); claimed ones look fresh to the
    /// next sweep, here or in another process. A stalled document whose ingestion already
    /// started `max_attempts` times is failed with a reason instead of returned.
    pub async fn claim_stalled(
        &self,
        stale: std::time::Duration,
        limit: u32,
        max_attempts: u32,
    ) -> Result<Vec<(TenantId, DocumentId)>, KnowledgeError> {
        let stale = sqlx::postgres::types::PgInterval::try_from(stale)
            .map_err(|e| KnowledgeError::Task(format!("stale interval: {e}")))?;
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT tenant_id, document_id FROM claim_stalled_documents($1, $2, $3)",
        )
        .bind(stale)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(tenant, id)| (TenantId(tenant), DocumentId(id)))
            .collect())
    }

    /// A document with the bytes kept for it; `None` once its ingestion has ended.
    pub async fn pending_source(
        &self,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<Option<(Document, Vec<u8>)>, KnowledgeError> {
        let document = self.document(tenant, id).await?;
        let mut tx = self.begin(tenant).await?;
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT bytes FROM document_sources WHERE tenant_id = $1 AND document_id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(bytes.map(|b| (document, b)))
    }

    /// Nearest chunks by cosine distance among `collections` of the tenant.
    ///
    /// pgvector's iterative index scan (`relaxed_order`) keeps walking the HNSW graph until
    /// `k` rows pass the tenant/collection filter, so a selective filter still returns `k`
    /// hits; the materialised CTE restores exact order after the relaxed scan.
    pub async fn search_vector(
        &self,
        tenant: TenantId,
        collections: &[CollectionId],
        query: &[f32],
        k: usize,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order")
            .execute(&mut *tx)
            .await?;
        // ef_search bounds each scan step's candidate list; it must be at least k.
        let ef = k.clamp(40, 1000);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL hnsw.ef_search = {ef}"
        )))
        .execute(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = collections.iter().map(|c| c.0).collect();
        let rows = sqlx::query_as::<_, HitRow>(
            "WITH nearest AS MATERIALIZED ( \
               SELECT id, document_id, collection_id, page_start, page_end, text, \
                      embedding <=> $3 AS distance \
               FROM chunks \
               WHERE tenant_id = $1 AND collection_id = ANY($2) \
               ORDER BY embedding <=> $3 \
               LIMIT $4) \
             SELECT n.id, n.document_id, n.collection_id, d.title, n.page_start, n.page_end, \
                    n.text, (1 - n.distance)::float8 AS score \
             FROM nearest n JOIN documents d ON d.id = n.document_id \
             ORDER BY n.distance, n.id",
        )
        .bind(tenant.0)
        .bind(&ids)
        .bind(Vector::from(query.to_vec()))
        .bind(i64::try_from(k).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Exact nearest chunks (sequential scan, no index): the ground truth for recall.
    pub async fn search_vector_exact(
        &self,
        tenant: TenantId,
        collections: &[CollectionId],
        query: &[f32],
        k: usize,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        sqlx::query("SET LOCAL enable_indexscan = off")
            .execute(&mut *tx)
            .await?;
        let ids: Vec<Uuid> = collections.iter().map(|c| c.0).collect();
        let rows = sqlx::query_as::<_, HitRow>(
            "SELECT c.id, c.document_id, c.collection_id, d.title, c.page_start, c.page_end, \
                    c.text, (1 - (c.embedding <=> $3))::float8 AS score \
             FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE c.tenant_id = $1 AND c.collection_id = ANY($2) \
             ORDER BY c.embedding <=> $3, c.id \
             LIMIT $4",
        )
        .bind(tenant.0)
        .bind(&ids)
        .bind(Vector::from(query.to_vec()))
        .bind(i64::try_from(k).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Full-text matches ranked by `ts_rank_cd`. Any query term may match (the terms are
    /// OR-ed): questions phrased in prose rarely contain every word of the passage. With OR-ed
    /// terms most chunks of a topical collection match, and cover density is the costly rank
    /// (6 ms for `ts_rank` vs 30 ms for `ts_rank_cd` over 7k matches), so the cheap rank
    /// picks the candidates and cover density orders them.
    pub async fn search_text(
        &self,
        tenant: TenantId,
        collections: &[CollectionId],
        query: &str,
        k: usize,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let mut tx = self.begin(tenant).await?;
        let ids: Vec<Uuid> = collections.iter().map(|c| c.0).collect();
        let rows = sqlx::query_as::<_, HitRow>(
            "WITH q AS ( \
               SELECT NULLIF(replace(plainto_tsquery('english', $3)::text, ' & ', ' | '), '') \
                      ::tsquery AS query), \
             candidates AS MATERIALIZED ( \
               SELECT c.id FROM q, chunks c \
               WHERE c.tenant_id = $1 AND c.collection_id = ANY($2) AND c.tsv @@ q.query \
               ORDER BY ts_rank(c.tsv, q.query) DESC, c.id \
               LIMIT $5) \
             SELECT c.id, c.document_id, c.collection_id, d.title, c.page_start, c.page_end, \
                    c.text, ts_rank_cd(c.tsv, q.query)::float8 AS score \
             FROM q, candidates k \
             JOIN chunks c ON c.id = k.id \
             JOIN documents d ON d.id = c.document_id \
             ORDER BY score DESC, c.id \
             LIMIT $4",
        )
        .bind(tenant.0)
        .bind(&ids)
        .bind(query)
        .bind(i64::try_from(k).unwrap_or(i64::MAX))
        .bind(i64::try_from(k.saturating_mul(10).max(200)).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

/// Forgets an upload's bytes once its ingestion has ended.
async fn drop_source(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: DocumentId,
) -> Result<(), KnowledgeError> {
    sqlx::query("DELETE FROM document_sources WHERE tenant_id = $1 AND document_id = $2")
        .bind(tenant.0)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

async fn collection_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: CollectionId,
) -> Result<Option<Collection>, KnowledgeError> {
    let sql = format!(
        "SELECT {COLLECTION_COLUMNS} FROM knowledge_collections WHERE tenant_id = $1 AND id = $2"
    );
    let row = sqlx::query_as::<_, CollectionRow>(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Batch insert through `UNNEST`: one statement per [`INSERT_BATCH`] chunks.
pub async fn insert_chunks(
    conn: &mut PgConnection,
    tenant: TenantId,
    collection: CollectionId,
    document: DocumentId,
    chunks: &[ChunkDraft],
    vectors: Vec<Vec<f32>>,
) -> Result<(), KnowledgeError> {
    if chunks.len() != vectors.len() {
        return Err(KnowledgeError::Embed(crate::error::EmbedError::Count {
            expected: chunks.len(),
            got: vectors.len(),
        }));
    }
    let mut vectors = vectors.into_iter();
    for batch in chunks.chunks(INSERT_BATCH) {
        let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let ordinals: Vec<i32> = batch.iter().map(|c| as_i32(c.ordinal)).collect();
        let starts: Vec<i32> = batch.iter().map(|c| as_i32(c.page_start)).collect();
        let ends: Vec<i32> = batch.iter().map(|c| as_i32(c.page_end)).collect();
        let texts: Vec<&str> = batch.iter().map(|c| c.text.as_str()).collect();
        let embeddings: Vec<Vector> = vectors
            .by_ref()
            .take(batch.len())
            .map(Vector::from)
            .collect();
        sqlx::query(
            "INSERT INTO chunks \
               (tenant_id, collection_id, document_id, ordinal, page_start, page_end, text, embedding) \
             SELECT $1, $2, $3, u.ordinal, u.page_start, u.page_end, u.text, u.embedding \
             FROM UNNEST($4::int4[], $5::int4[], $6::int4[], $7::text[], $8::vector[]) \
               AS u(ordinal, page_start, page_end, text, embedding)",
        )
        .bind(tenant.0)
        .bind(collection.0)
        .bind(document.0)
        .bind(&ordinals)
        .bind(&starts)
        .bind(&ends)
        .bind(&texts)
        .bind(&embeddings)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
