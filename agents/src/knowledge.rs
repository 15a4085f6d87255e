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

/// The knowledge crate's retrieval (its `KnowledgeService`) as the turn loop's [`Retriever`].
pub struct KnowledgeRetriever {
    inner: std::sync::Arc<dyn brain_knowledge::Retriever>,
}

impl KnowledgeRetriever {
    pub fn new(inner: std::sync::Arc<dyn brain_knowledge::Retriever>) -> Self {
        Self { inner }
    }
}

#[async_trait::async_trait]
impl Retriever for KnowledgeRetriever {
    async fn retrieve(
        &self,
        tenant: TenantId,
        collections: &[Uuid],
        query: &str,
        k: usize,
    ) -> Result<Vec<Passage>, RetrievalError> {
        let ids: Vec<brain_knowledge::CollectionId> = collections
            .iter()
            .map(|id| brain_knowledge::CollectionId(*id))
            .collect();
        let passages = self
            .inner
            .retrieve(tenant, &ids, query, k)
            .await
            .map_err(|e| RetrievalError(e.to_string()))?;
        Ok(passages
            .into_iter()
            .map(|p| Passage {
                document_id: p.citation.document_id.0,
                title: p.citation.title,
                page: p.citation.page,
                text: p.text,
                score: p.score as f32,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    #[async_trait::async_trait]
    impl brain_knowledge::Retriever for Fixed {
        async fn retrieve(
            &self,
            _tenant: TenantId,
            collections: &[brain_knowledge::CollectionId],
            query: &str,
            k: usize,
        ) -> Result<Vec<brain_knowledge::Passage>, brain_knowledge::KnowledgeError> {
            assert_eq!((query, k, collections.len()), ("tone?", 3, 1));
            Ok(vec![brain_knowledge::Passage {
                citation: brain_knowledge::Citation {
                    document_id: brain_knowledge::DocumentId(collections[0].0),
                    title: "Voice".into(),
                    page: 2,
                    snippet: "Warm".into(),
                },
                text: "Warm and direct.".into(),
                score: 0.5,
            }])
        }
    }

    #[tokio::test]
    async fn maps_knowledge_passages() {
        let id = Uuid::now_v7();
        let got = KnowledgeRetriever::new(std::sync::Arc::new(Fixed))
            .retrieve(TenantId::new(), &[id], "tone?", 3)
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![Passage {
                document_id: id,
                title: "Voice".into(),
                page: 2,
                text: "Warm and direct.".into(),
                score: 0.5,
            }]
        );
    }
}
