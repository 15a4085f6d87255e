//! The knowledge crate's error types: why a document could not be read, why an embedder
//! failed, and what a caller of the service did wrong.

use brain_auth::{Code, ErrorCode};

use crate::model::{CollectionId, DocumentId};

/// Why a document's bytes could not be turned into text. Each variant's message is shown
/// to the user as the `error` of a `failed` document, so it is a plain sentence.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ExtractError {
    #[error("the file is not a PDF (it does not start with a %PDF header)")]
    NotPdf,
    #[error("the PDF is damaged or truncated and cannot be read: {0}")]
    Corrupt(String),
    #[error("the PDF is encrypted; remove the password protection and upload it again")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF has {pages} pages, more than the limit of {limit}")]
    TooManyPages { pages: usize, limit: usize },
    #[error("the PDF has no text layer (it looks like scanned images); run OCR on it first")]
    NoTextLayer,
    #[error("a compressed stream in the PDF expands beyond the {limit}-byte limit")]
    DecompressionBomb { limit: usize },
    /// Pages may share one content stream, so each page within the per-stream limit can
    /// still add up to gigabytes.
    #[error("the PDF's page contents expand beyond the {limit}-byte limit for one document")]
    DocumentBomb { limit: usize },
    #[error("the document holds more than {limit} bytes of text, the limit for one document")]
    TooMuchText { limit: usize },
    #[error(
        "the document splits into {chunks} chunks, more than the limit of {limit}; split the \
         file or use a collection with a larger chunk_size"
    )]
    TooManyChunks { chunks: usize, limit: usize },
    #[error("the text file is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("the file contains no text")]
    Empty,
}

/// Why an embedder could not embed a batch.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot load the embedding model from {path}: {reason}")]
    ModelLoad { path: String, reason: String },
    #[error("the embedding model failed: {0}")]
    Model(String),
    #[error("the embeddings endpoint failed: {0}")]
    Http(String),
    #[error("the embeddings endpoint answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the embedder returned {got} vectors for {expected} inputs")]
    Count { expected: usize, got: usize },
    #[error("the embedder returned a {got}-dimensional vector; {expected} expected")]
    Dimension { expected: usize, got: usize },
}

/// Errors of the knowledge service, the store and the retriever.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("collection not found")]
    CollectionNotFound(CollectionId),
    #[error("document not found")]
    DocumentNotFound(DocumentId),
    #[error("a collection named {0:?} already exists")]
    CollectionExists(String),
    #[error("invalid collection settings: {0}")]
    InvalidCollection(String),
    #[error("the file is {size} bytes, over the {limit}-byte upload limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("unsupported file type {0:?}: upload a PDF, .txt or .md file")]
    UnsupportedMediaType(String),
    #[error("the search query is empty")]
    EmptyQuery,
    #[error("collection uses embedder {collection:?}, which this server does not provide")]
    EmbedderUnavailable { collection: String },
    #[error(
        "embedder {embedder:?} produces {embedder_dimension}-dimensional vectors but the \
         collection stores {collection_dimension}-dimensional ones"
    )]
    DimensionMismatch {
        embedder: String,
        embedder_dimension: usize,
        collection_dimension: usize,
    },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ingestion task failed: {0}")]
    Task(String),
}

impl ErrorCode for KnowledgeError {
    fn code(&self) -> Code {
        match self {
            KnowledgeError::CollectionNotFound(_) | KnowledgeError::DocumentNotFound(_) => {
                Code::NotFound
            }
            KnowledgeError::CollectionExists(_) => Code::CollectionExists,
            KnowledgeError::InvalidCollection(_) | KnowledgeError::EmptyQuery => {
                Code::ValidationFailed
            }
            KnowledgeError::TooLarge { .. } => Code::PayloadTooLarge,
            KnowledgeError::UnsupportedMediaType(_) => Code::UnsupportedMediaType,
            KnowledgeError::EmbedderUnavailable { .. }
            | KnowledgeError::DimensionMismatch { .. } => Code::EmbedderMismatch,
            KnowledgeError::Embed(_) => Code::Unavailable,
            KnowledgeError::Database(e) => e.code(),
            KnowledgeError::Extract(_) | KnowledgeError::Task(_) => Code::Internal,
        }
    }
}
