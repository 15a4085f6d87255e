//! The knowledge seam: the turn loop grounds replies through the `knowledge` crate's own
//! [`Retriever`] contract and cites its [`Passage`]s (one definition for both crates); the
//! prompt marks passages untrusted.

use brain_auth::TenantId;
pub use brain_knowledge::{Citation, CollectionId, Passage, Retriever};
use uuid::Uuid;

use crate::error::AgentError;

/// The best `k` passages for `query` across an agent's collections (those that no longer
/// exist are skipped).
pub async fn retrieve(
    retriever: &dyn Retriever,
    tenant: TenantId,
    collections: &[Uuid],
    query: &str,
    k: usize,
) -> Result<Vec<Passage>, AgentError> {
    let ids: Vec<CollectionId> = collections.iter().copied().map(CollectionId).collect();
    retriever
        .retrieve(tenant, &ids, query, k)
        .await
        .map_err(|e| AgentError::Retrieval(e.to_string()))
}
