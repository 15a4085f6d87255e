//! `/v1/knowledge…`: collections, document uploads (multipart, ingested in the background),
//! document status and hybrid search, as thin handlers over
//! `brain_knowledge::KnowledgeService`.

use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use brain_auth::{Authorized, require};
use brain_knowledge::{
    ChunkId, Collection, CollectionId, Document, DocumentId, DocumentStatus, Hit, NewCollection,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

/// Room for the multipart framing and small fields around a file of the largest allowed
/// size; the file itself is held to `max_upload_bytes` exactly.
const MULTIPART_HEADROOM: u64 = 64 * 1024;

/// Hits a search returns when the body gives no `k`.
const DEFAULT_K: usize = 10;

pub fn routes() -> OpenApiRouter<AppState> {
    // The gateway-wide body limit is for JSON; uploads are held to the configured
    // `max_upload_bytes` (plus framing) while they stream in, see `read_upload`. Only the
    // upload reads a body on this path, so the limit is lifted for the whole path.
    let (schemas, paths, documents) = routes!(upload, list_documents);
    let documents = documents.layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(create_collection, list_collections))
        .routes(routes!(delete_collection))
        .routes((schemas, paths, documents))
        .routes(routes!(show_document, delete_document))
        .routes(routes!(search))
}

// ---- wire types ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateCollectionBody {
    /// Unique within the tenant.
    name: String,
    /// Characters per chunk (default 1000).
    chunk_size: Option<usize>,
    /// Characters shared by consecutive chunks (default 100).
    chunk_overlap: Option<usize>,
}

/// A knowledge collection: documents embedded the same way, searched together.
#[derive(Serialize, ToSchema)]
struct CollectionView {
    id: CollectionId,
    name: String,
    /// `provider:model` that embeds the chunks, e.g. `local:all-minilm-l6-v2`.
    embedder: String,
    /// Width of the embedding vectors.
    dimension: usize,
    /// Characters per chunk.
    chunk_size: usize,
    /// Characters shared by consecutive chunks.
    chunk_overlap: usize,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Collection> for CollectionView {
    fn from(c: Collection) -> Self {
        Self {
            id: c.id,
            name: c.name,
            embedder: c.embedder,
            dimension: c.dimension,
            chunk_size: c.chunk_size,
            chunk_overlap: c.chunk_overlap,
            created_at: c.created_at,
        }
    }
}

/// An uploaded document with its ingestion progress.
#[derive(Serialize, ToSchema)]
struct DocumentView {
    id: DocumentId,
    collection_id: CollectionId,
    title: String,
    filename: String,
    /// `application/pdf`, `text/plain` or `text/markdown`.
    media_type: String,
    size_bytes: u64,
    status: DocumentStatus,
    /// Set only when `failed`: why, as a sentence for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    pages: u32,
    /// Pages whose chunks are embedded.
    pages_done: u32,
    chunks: u32,
    /// Share of the pages done, 0.0 to 1.0 (1.0 once `ready`).
    progress: f64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        let progress = match d.status {
            DocumentStatus::Ready => 1.0,
            _ if d.pages == 0 => 0.0,
            _ => f64::from(d.pages_done.min(d.pages)) / f64::from(d.pages),
        };
        Self {
            id: d.id,
            collection_id: d.collection_id,
            title: d.title,
            filename: d.filename,
            media_type: d.media_type,
            size_bytes: d.size_bytes,
            status: d.status,
            error: d.error,
            pages: d.pages,
            pages_done: d.pages_done,
            chunks: d.chunks,
            progress,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// The answer to an upload: the document being ingested in the background.
#[derive(Serialize, ToSchema)]
struct UploadView {
    document_id: DocumentId,
    status: DocumentStatus,
    /// True when identical bytes were already in the collection; `document_id` is then
    /// that document.
    deduplicated: bool,
}

/// The upload form; parts other than `file` are ignored. Only described, never built:
/// `read_upload` streams the parts itself.
#[derive(ToSchema)]
#[expect(dead_code, reason = "the schema of a form read part by part")]
struct UploadForm {
    /// The document (PDF, plain text or Markdown, told apart by the part's `Content-Type`
    /// and file name); at most the server's `max_upload_bytes`.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    /// Free text, matched by meaning and by words (hybrid search).
    query: String,
    /// Hits to return, 1 to the server's maximum (default 10).
    k: Option<usize>,
}

/// One matching chunk, best first.
#[derive(Serialize, ToSchema)]
struct HitView {
    chunk_id: ChunkId,
    document_id: DocumentId,
    title: String,
    page: u32,
    /// The last page the chunk spans (equal to `page` for most chunks).
    page_end: u32,
    text: String,
    /// Higher is better (reciprocal-rank-fusion sum of the vector and full-text ranks).
    score: f64,
}

impl From<Hit> for HitView {
    fn from(h: Hit) -> Self {
        Self {
            chunk_id: h.chunk_id,
            document_id: h.document_id,
            title: h.title,
            page: h.page,
            page_end: h.page_end,
            text: h.text,
            score: h.score,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct SearchView {
    hits: Vec<HitView>,
}

// ---- collections ----

/// Creates a collection. Needs `knowledge:write`.
#[utoipa::path(post, path = "/v1/knowledge/collections", tag = "knowledge",
    request_body = CreateCollectionBody,
    responses((status = 201, description = "The new collection", body = CollectionView)))]
async fn create_collection(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeWrite>,
    ApiJson(body): ApiJson<CreateCollectionBody>,
) -> Result<(StatusCode, Json<CollectionView>), ApiError> {
    let tenant = auth.principal().tenant;
    let mut new = NewCollection::named(body.name);
    if let Some(size) = body.chunk_size {
        new.chunk_size = size;
    }
    if let Some(overlap) = body.chunk_overlap {
        new.chunk_overlap = overlap;
    }
    let collection = state.knowledge.create_collection(tenant, new).await?;
    Ok((StatusCode::CREATED, Json(collection.into())))
}

/// The tenant's collections. Needs `agents:read` or `knowledge:write`.
#[utoipa::path(get, path = "/v1/knowledge/collections", tag = "knowledge",
    responses((status = 200, description = "Every collection", body = Vec<CollectionView>)))]
async fn list_collections(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeRead>,
) -> Result<Json<Vec<CollectionView>>, ApiError> {
    let tenant = auth.principal().tenant;
    let collections = state.knowledge.list_collections(tenant).await?;
    Ok(Json(collections.into_iter().map(Into::into).collect()))
}

/// Deletes a collection with its documents and chunks. Needs `knowledge:write`.
#[utoipa::path(delete, path = "/v1/knowledge/collections/{id}", tag = "knowledge",
    params(("id" = Uuid, Path, description = "The collection")),
    responses((status = 204, description = "Deleted")))]
async fn delete_collection(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = auth.principal().tenant;
    let id = collection_id(&id)?;
    state.knowledge.delete_collection(tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- documents ----

/// Uploads a document into a collection; it is ingested in the background (follow it with
/// `GET /v1/knowledge/documents/{id}`). Needs `knowledge:write`.
#[utoipa::path(post, path = "/v1/knowledge/collections/{id}/documents", tag = "knowledge",
    params(("id" = Uuid, Path, description = "The collection")),
    request_body(content = UploadForm, content_type = "multipart/form-data",
        description = "The document in the field `file`"),
    responses((status = 202, description = "Accepted for ingestion, or already there \
        (`deduplicated`)", body = UploadView)))]
async fn upload(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadView>), ApiError> {
    let tenant = auth.principal().tenant;
    let collection = collection_id(&id)?;
    let limit = state.knowledge.config().max_upload_bytes;
    // An honest client announcing too much is refused before a byte is read.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit.saturating_add(MULTIPART_HEADROOM)) {
        return Err(too_large(limit));
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            Code::UnsupportedMediaType,
            format!("send the file as multipart/form-data in the field `file` ({e})"),
        )
    })?;
    let file = read_upload(&mut multipart, limit).await?;
    let upload = state
        .knowledge
        .upload(
            tenant,
            collection,
            &file.filename,
            &file.media_type,
            file.bytes,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(UploadView {
            document_id: upload.document_id,
            status: upload.status,
            deduplicated: upload.deduplicated,
        }),
    ))
}

struct UploadedFile {
    filename: String,
    media_type: String,
    bytes: Vec<u8>,
}

/// Reads the `file` field, never holding more than `limit` bytes of it nor reading more
/// than `limit` plus framing in total.
async fn read_upload(multipart: &mut Multipart, limit: u64) -> Result<UploadedFile, ApiError> {
    let total_limit = limit.saturating_add(MULTIPART_HEADROOM);
    let mut total: u64 = 0;
    let mut file = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let is_file = field.name() == Some("file") && file.is_none();
        let mut bytes = Vec::new();
        let filename = field.file_name().unwrap_or_default().to_owned();
        let media_type = field.content_type().unwrap_or_default().to_owned();
        while let Some(chunk) = next_chunk(&mut field).await? {
            let n = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            total = total.saturating_add(n);
            if total > total_limit {
                return Err(too_large(limit));
            }
            if is_file {
                if u64::try_from(bytes.len())
                    .unwrap_or(u64::MAX)
                    .saturating_add(n)
                    > limit
                {
                    return Err(too_large(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        if is_file {
            file = Some(UploadedFile {
                filename,
                media_type,
                bytes,
            });
        }
    }
    file.ok_or_else(|| {
        ApiError::invalid(
            "file",
            "missing; send the document in the multipart field `file`",
        )
    })
}

async fn next_chunk(field: &mut Field<'_>) -> Result<Option<axum::body::Bytes>, ApiError> {
    field.chunk().await.map_err(multipart_error)
}

fn multipart_error(e: MultipartError) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            Code::PayloadTooLarge,
            "the upload is larger than the server accepts",
        ),
        _ => ApiError::new(Code::InvalidMultipart, e.body_text()),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the file is over the {limit}-byte upload limit"),
    )
}

/// The documents of a collection with their ingestion progress. Needs `agents:read` or
/// `knowledge:write`.
#[utoipa::path(get, path = "/v1/knowledge/collections/{id}/documents", tag = "knowledge",
    params(("id" = Uuid, Path, description = "The collection")),
    responses((status = 200, description = "Every document", body = Vec<DocumentView>)))]
async fn list_documents(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeRead>,
    Path(id): Path<String>,
) -> Result<Json<Vec<DocumentView>>, ApiError> {
    let tenant = auth.principal().tenant;
    let collection = collection_id(&id)?;
    let documents = state.knowledge.list_documents(tenant, collection).await?;
    Ok(Json(documents.into_iter().map(Into::into).collect()))
}

/// One document with its ingestion status and progress. Needs `agents:read` or
/// `knowledge:write`.
#[utoipa::path(get, path = "/v1/knowledge/documents/{id}", tag = "knowledge",
    params(("id" = Uuid, Path, description = "The document")),
    responses((status = 200, description = "The document", body = DocumentView)))]
async fn show_document(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeRead>,
    Path(id): Path<String>,
) -> Result<Json<DocumentView>, ApiError> {
    let tenant = auth.principal().tenant;
    let id = document_id(&id)?;
    let document = state.knowledge.get_document(tenant, id).await?;
    Ok(Json(document.into()))
}

/// Deletes a document and its chunks. Needs `knowledge:write`.
#[utoipa::path(delete, path = "/v1/knowledge/documents/{id}", tag = "knowledge",
    params(("id" = Uuid, Path, description = "The document")),
    responses((status = 204, description = "Deleted")))]
async fn delete_document(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = auth.principal().tenant;
    let id = document_id(&id)?;
    state.knowledge.delete_document(tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- search ----

/// Hybrid (vector and full-text) search of a collection. Needs `agents:read` or
/// `knowledge:write`.
#[utoipa::path(post, path = "/v1/knowledge/collections/{id}/search", tag = "knowledge",
    params(("id" = Uuid, Path, description = "The collection")),
    request_body = SearchBody,
    responses((status = 200, description = "The best chunks, best first", body = SearchView)))]
async fn search(
    State(state): State<AppState>,
    auth: Authorized<require::KnowledgeRead>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<SearchView>, ApiError> {
    let tenant = auth.principal().tenant;
    let collection = collection_id(&id)?;
    let max_k = state.knowledge.config().max_k;
    let k = body.k.unwrap_or(DEFAULT_K);
    if !(1..=max_k).contains(&k) {
        return Err(ApiError::invalid("k", format!("must be 1 to {max_k}")));
    }
    let hits = state
        .knowledge
        .search(tenant, collection, &body.query, k)
        .await?;
    Ok(Json(SearchView {
        hits: hits.into_iter().map(Into::into).collect(),
    }))
}

// ---- errors ----

/// An id that is not a UUID names nothing, so it is a 404 like any unknown id.
fn collection_id(raw: &str) -> Result<CollectionId, ApiError> {
    Uuid::parse_str(raw)
        .map(CollectionId)
        .map_err(|_| ApiError::not_found("collection"))
}

fn document_id(raw: &str) -> Result<DocumentId, ApiError> {
    Uuid::parse_str(raw)
        .map(DocumentId)
        .map_err(|_| ApiError::not_found("document"))
}
