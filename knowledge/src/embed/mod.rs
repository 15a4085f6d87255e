//! The embedding-model seam: the [`Embedder`] trait, its implementations (the in-process
//! MiniLM model and an OpenAI-compatible HTTP client) and the registry a service picks a
//! collection's embedder from.

mod bert;
mod local;
mod openai;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use local::LocalEmbedder;
pub use openai::{OpenAiEmbedder, OpenAiEmbedderConfig};

use crate::error::EmbedError;

/// Turns texts into unit-length vectors whose dot product is their cosine similarity.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// `provider:model`, as recorded in `knowledge_collections.embedder`.
    fn id(&self) -> &str;
    /// The length of every vector this embedder returns.
    fn dimension(&self) -> usize;
    /// One vector per input, in input order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The embedders a service can use, by id.
#[derive(Clone, Default)]
pub struct EmbedderRegistry {
    by_id: HashMap<String, Arc<dyn Embedder>>,
}

impl EmbedderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an embedder under its own id.
    pub fn with(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.by_id.insert(embedder.id().to_owned(), embedder);
        self
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Embedder>> {
        self.by_id.get(id).cloned()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }
}

/// Cosine similarity of two vectors (1.0 for identical directions).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Checks an embedder's answer: one vector per input, each of the promised width.
pub(crate) fn check_vectors(
    vectors: &[Vec<f32>],
    inputs: usize,
    dimension: usize,
) -> Result<(), EmbedError> {
    if vectors.len() != inputs {
        return Err(EmbedError::Count {
            expected: inputs,
            got: vectors.len(),
        });
    }
    if let Some(bad) = vectors.iter().find(|v| v.len() != dimension) {
        return Err(EmbedError::Dimension {
            expected: dimension,
            got: bad.len(),
        });
    }
    Ok(())
}
