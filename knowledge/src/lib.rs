//! The knowledge base: PDF/text ingest, chunking, the embedding-model trait and its
//! implementations, the pgvector store and hybrid retrieval with page-level citations.
//!
//! Invariant: nothing in this crate ever sees a connector credential.

pub mod chunk;
pub mod embed;
mod error;
pub mod extract;
mod fair;
mod ingest;
mod model;
pub mod normalize;
mod search;
mod service;
pub mod store;

pub use embed::{Embedder, EmbedderRegistry, LocalEmbedder, OpenAiEmbedder, OpenAiEmbedderConfig};
pub use error::{EmbedError, ExtractError, KnowledgeError};
pub use ingest::{IngestProgress, IngestReport, ProgressFn};
pub use model::*;
pub use search::{Retriever, reciprocal_rank_fusion};
pub use service::{KnowledgeConfig, KnowledgeService};
