//! The knowledge base's domain types: ids, collections, documents and their status,
//! search hits and the passages handed to agents.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A knowledge collection (`knowledge_collections.id`).
    CollectionId
);
id_type!(
    /// An uploaded document (`documents.id`).
    DocumentId
);
id_type!(
    /// One stored chunk of a document (`chunks.id`).
    ChunkId
);

/// The only vector width the `chunks` table stores (`vector(384)`).
pub const STORED_DIMENSION: usize = 384;

/// The embedder id of the built-in local model, the default for new collections.
pub const LOCAL_EMBEDDER: &str = "local:all-minilm-l6-v2";

/// A collection as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collection {
    pub id: CollectionId,
    pub name: String,
    /// `provider:model`, e.g. `local:all-minilm-l6-v2`.
    pub embedder: String,
    pub dimension: usize,
    /// Chunk size in characters.
    pub chunk_size: usize,
    /// Characters shared by consecutive chunks.
    pub chunk_overlap: usize,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What a new collection should look like; `Default` is the local embedder with
/// 1000-character chunks overlapping by 100.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCollection {
    pub name: String,
    pub embedder: String,
    pub dimension: usize,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
}

impl NewCollection {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            embedder: LOCAL_EMBEDDER.to_owned(),
            dimension: STORED_DIMENSION,
            chunk_size: 1000,
            chunk_overlap: 100,
        }
    }
}

/// Where a document is in its ingestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    Queued,
    Processing,
    Ready,
    Failed,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "processing" => Self::Processing,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

/// A document as stored, with its ingestion progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Document {
    pub id: DocumentId,
    pub collection_id: CollectionId,
    pub title: String,
    pub filename: String,
    pub media_type: String,
    pub size_bytes: u64,
    pub content_sha256: String,
    pub status: DocumentStatus,
    /// Why ingestion failed, as a sentence for the user; set only when `failed`.
    pub error: Option<String>,
    pub pages: u32,
    pub pages_done: u32,
    pub chunks: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The answer to an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Upload {
    pub document_id: DocumentId,
    pub status: DocumentStatus,
    /// True when identical bytes were already in the collection and that document was
    /// returned instead of a new one.
    pub deduplicated: bool,
}

/// How a search ranks chunks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Vector and full-text results fused with reciprocal-rank fusion.
    #[default]
    Hybrid,
    /// Cosine similarity only.
    Vector,
    /// Postgres full-text search only.
    FullText,
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    pub collection_id: CollectionId,
    pub title: String,
    /// The first page the chunk comes from (1-based); text documents are one page.
    pub page: u32,
    pub page_end: u32,
    pub text: String,
    /// Higher is better. Cosine similarity for vector search, `ts_rank_cd` for full-text,
    /// the reciprocal-rank-fusion sum for hybrid.
    pub score: f64,
}

/// A retrieved passage for an agent's prompt, with the citation to show the user.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Passage {
    pub citation: Citation,
    /// The chunk's full text, for the prompt.
    pub text: String,
    pub score: f64,
}

/// What a reply cites: `{document_id, title, page, snippet}` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    pub document_id: DocumentId,
    pub title: String,
    pub page: u32,
    pub snippet: String,
}

/// The kind of file an upload holds, from its name and declared media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Pdf,
    Text,
    Markdown,
}

impl MediaKind {
    /// Decides from the declared media type first and the file extension second, so a
    /// browser's generic `application/octet-stream` still works for `report.pdf`.
    pub fn detect(filename: &str, media_type: &str) -> Option<Self> {
        let media_type = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/pdf" => return Some(Self::Pdf),
            "text/markdown" | "text/x-markdown" => return Some(Self::Markdown),
            _ => {}
        }
        let ext = filename
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase());
        match ext.as_deref() {
            Some("pdf") => Some(Self::Pdf),
            Some("md" | "markdown") => Some(Self::Markdown),
            Some("txt" | "text") => Some(Self::Text),
            _ if media_type == "text/plain" => Some(Self::Text),
            _ => None,
        }
    }

    /// The canonical media type stored with the document.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Text => "text/plain",
            Self::Markdown => "text/markdown",
        }
    }
}
