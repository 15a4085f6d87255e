//! The knowledge seam: passages retrieved for a turn, with what a citation needs. The
//! `knowledge` crate's search implements [`Retriever`]; the prompt marks passages untrusted.

use brain_auth::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A retrieved piece of a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub document_id: Uuid,
    pub title: String,
    pub page: u32,
    pub text: String,
    pub score: f32,
}

/// What a reply cites: `{document_id, title, page, snippet}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub document_id: Uuid,
    pub title: String,
    pub page: u32,
    pub snippet: String,
}

impl From<&Passage> for Citation {
    fn from(p: &Passage) -> Self {
        let snippet: String = p.text.chars().take(240).collect();
        Self {
            document_id: p.document_id,
            title: p.title.clone(),
            page: p.page,
            snippet,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RetrievalError(pub String);

/// Searches an agent's knowledge collections.
#[async_trait::async_trait]
pub trait Retriever: Send + Sync {
    async fn retrieve(
        &self,
        tenant: TenantId,
        collections: &[Uuid],
        query: &str,
        k: usize,
    ) -> Result<Vec<Passage>, RetrievalError>;
}
