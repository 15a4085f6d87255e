//! Search over a tenant's collections — vector, full-text, or both fused by reciprocal rank —
//! and the [`Retriever`] an agent's turn calls, which turns hits into cited passages.

use std::collections::HashMap;

use async_trait::async_trait;
use brain_auth::TenantId;

use crate::error::KnowledgeError;
use crate::model::{Citation, Collection, CollectionId, Hit, Passage, SearchMode};
use crate::service::KnowledgeService;

/// Reciprocal-rank-fusion constant from Cormack et al.; 60 damps the head of each list.
const RRF_K: f64 = 60.0;

impl KnowledgeService {
    // ---- search ----

    /// Hybrid search of one collection.
    pub async fn search(
        &self,
        tenant: TenantId,
        collection: CollectionId,
        query: &str,
        k: usize,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        self.search_with(tenant, &[collection], query, k, SearchMode::Hybrid)
            .await
    }

    /// Searches several collections with the given ranking. Every collection must exist;
    /// collections with different embedders are searched per embedder and fused.
    pub async fn search_with(
        &self,
        tenant: TenantId,
        collections: &[CollectionId],
        query: &str,
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let found = self.inner.store.collections(tenant, collections).await?;
        if let Some(missing) = collections
            .iter()
            .find(|id| !found.iter().any(|c| c.id == **id))
        {
            return Err(KnowledgeError::CollectionNotFound(*missing));
        }
        self.search_collections(tenant, &found, query, k, mode)
            .await
    }

    async fn search_collections(
        &self,
        tenant: TenantId,
        collections: &[Collection],
        query: &str,
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(KnowledgeError::EmptyQuery);
        }
        let k = k.clamp(1, self.inner.config.max_k.max(1));
        if collections.is_empty() {
            return Ok(Vec::new());
        }
        let store = &self.inner.store;
        let ids: Vec<CollectionId> = collections.iter().map(|c| c.id).collect();
        // Fusion needs more candidates than it returns, or a hit ranked well by one
        // method but just outside the other's top k is lost.
        let candidates = if mode == SearchMode::Hybrid {
            (k * 4).max(20)
        } else {
            k
        };
        // The full-text query runs on its own connection while the query is embedded and
        // the vector index searched.
        let semantic = async {
            let mut lists: Vec<Vec<Hit>> = Vec::new();
            if mode != SearchMode::FullText {
                let mut by_embedder: HashMap<(&str, usize), Vec<CollectionId>> = HashMap::new();
                for c in collections {
                    by_embedder
                        .entry((c.embedder.as_str(), c.dimension))
                        .or_default()
                        .push(c.id);
                }
                for ((embedder_id, dimension), group) in by_embedder {
                    let embedder = self.embedder_for(embedder_id, dimension)?;
                    let vector = embedder
                        .embed(&[query.to_owned()])
                        .await?
                        .into_iter()
                        .next()
                        .ok_or(crate::error::EmbedError::Count {
                            expected: 1,
                            got: 0,
                        })?;
                    lists.push(
                        store
                            .search_vector(tenant, &group, &vector, candidates)
                            .await?,
                    );
                }
            }
            Ok::<_, KnowledgeError>(lists)
        };
        let lexical = async {
            if mode == SearchMode::Vector {
                return Ok(None);
            }
            store
                .search_text(tenant, &ids, query, candidates)
                .await
                .map(Some)
        };
        let (semantic, lexical) = tokio::join!(semantic, lexical);
        let mut lists = semantic?;
        lists.extend(lexical?);
        Ok(match (mode, lists.len()) {
            (SearchMode::Hybrid, _) | (_, 2..) => reciprocal_rank_fusion(lists, k),
            _ => lists.into_iter().next().unwrap_or_default(),
        })
    }
}

/// Fuses ranked lists: each hit scores Σ 1/(60 + rank) over the lists it appears in.
pub fn reciprocal_rank_fusion(lists: Vec<Vec<Hit>>, k: usize) -> Vec<Hit> {
    let mut fused: HashMap<crate::model::ChunkId, Hit> = HashMap::new();
    for list in lists {
        for (rank, hit) in list.into_iter().enumerate() {
            let contribution = 1.0 / (RRF_K + rank as f64 + 1.0);
            fused
                .entry(hit.chunk_id)
                .and_modify(|h| h.score += contribution)
                .or_insert(Hit {
                    score: contribution,
                    ..hit
                });
        }
    }
    let mut hits: Vec<Hit> = fused.into_values().collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    hits.truncate(k);
    hits
}

/// What an agent's turn loop calls to ground a reply in the tenant's documents.
#[async_trait]
pub trait Retriever: Send + Sync {
    /// The best `k` passages for `query` across `collections`. Collections that no
    /// longer exist are skipped, so a stale agent setting does not break the agent.
    async fn retrieve(
        &self,
        tenant: TenantId,
        collections: &[CollectionId],
        query: &str,
        k: usize,
    ) -> Result<Vec<Passage>, KnowledgeError>;
}

/// Characters of a chunk shown as a citation's snippet.
const SNIPPET_CHARS: usize = 240;

#[async_trait]
impl Retriever for KnowledgeService {
    async fn retrieve(
        &self,
        tenant: TenantId,
        collections: &[CollectionId],
        query: &str,
        k: usize,
    ) -> Result<Vec<Passage>, KnowledgeError> {
        if collections.is_empty() || query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let found = self.inner.store.collections(tenant, collections).await?;
        let hits = self
            .search_collections(tenant, &found, query, k, SearchMode::Hybrid)
            .await?;
        Ok(hits.into_iter().map(Passage::from).collect())
    }
}

impl From<Hit> for Passage {
    fn from(hit: Hit) -> Self {
        let snippet = snippet(&hit.text);
        Self {
            citation: Citation {
                document_id: hit.document_id,
                title: hit.title,
                page: hit.page,
                snippet,
            },
            text: hit.text,
            score: hit.score,
        }
    }
}

/// The start of `text`, cut at a word boundary, with an ellipsis when shortened.
fn snippet(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= SNIPPET_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(SNIPPET_CHARS).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > SNIPPET_CHARS / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChunkId, DocumentId};
    use uuid::Uuid;

    fn hit(id: u128, score: f64) -> Hit {
        Hit {
            chunk_id: ChunkId(Uuid::from_u128(id)),
            document_id: DocumentId(Uuid::from_u128(1)),
            collection_id: CollectionId(Uuid::from_u128(2)),
            title: "t".into(),
            page: 1,
            page_end: 1,
            text: format!("chunk {id}"),
            score,
        }
    }

    #[test]
    fn fusion_rewards_agreement() {
        let vector = vec![hit(1, 0.9), hit(2, 0.8), hit(3, 0.7)];
        let text = vec![hit(3, 5.0), hit(4, 4.0)];
        let fused = reciprocal_rank_fusion(vec![vector, text], 3);
        let ids: Vec<u128> = fused.iter().map(|h| h.chunk_id.0.as_u128()).collect();
        // 3 is in both lists, so it beats 1 which tops only one; 2 and 4 tie at second
        // place of one list each and the chunk id breaks the tie.
        assert_eq!(ids, vec![3, 1, 2]);
        assert!((fused[0].score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-12);
    }

    #[test]
    fn snippets_cut_at_words() {
        let text = "word ".repeat(100);
        let s = snippet(&text);
        assert!(s.ends_with('…'));
        assert!(s.chars().count() <= SNIPPET_CHARS + 1);
        assert!(!s.contains("wo…"));
    }
}
