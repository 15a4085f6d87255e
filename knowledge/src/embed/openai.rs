//! An OpenAI-compatible `/embeddings` client (OpenAI, Azure OpenAI, vLLM, llama.cpp
//! server, Ollama all speak it).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Embedder, check_vectors};
use crate::error::EmbedError;

/// How to reach an embeddings endpoint.
#[derive(Clone)]
pub struct OpenAiEmbedderConfig {
    /// The API root including the version, e.g. `https://api.openai.com/v1`; the client
    /// posts to `{base_url}/embeddings`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// The model name, e.g. `text-embedding-3-small`.
    pub model: String,
    /// The vector width the collection stores.
    pub dimension: usize,
    /// Ask the server for `dimension`-wide vectors (`dimensions` in the request), which the
    /// text-embedding-3 models support; leave off for servers that reject the field.
    pub request_dimensions: bool,
    /// Inputs per request.
    pub batch_size: usize,
}

impl fmt::Debug for OpenAiEmbedderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedderConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("request_dimensions", &self.request_dimensions)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// The embedder id is `openai:{model}`.
pub struct OpenAiEmbedder {
    id: String,
    config: OpenAiEmbedderConfig,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    /// `http` must come from a process that called `brain_auth::install_crypto_provider()`.
    pub fn new(config: OpenAiEmbedderConfig, http: reqwest::Client) -> Self {
        Self {
            id: format!("openai:{}", config.model),
            config,
            http,
        }
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let url = format!("{}/embeddings", self.config.base_url.trim_end_matches('/'));
        let body = EmbeddingsRequest {
            model: &self.config.model,
            input: texts,
            encoding_format: "float",
            dimensions: self
                .config
                .request_dimensions
                .then_some(self.config.dimension),
        };
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| EmbedError::Http(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(EmbedError::Status {
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        let mut parsed: EmbeddingsResponse = response
            .json()
            .await
            .map_err(|e| EmbedError::Http(format!("unexpected response: {}", e.without_url())))?;
        parsed.data.sort_by_key(|item| item.index);
        let vectors: Vec<Vec<f32>> = parsed
            .data
            .into_iter()
            .map(|item| unit(item.embedding))
            .collect();
        check_vectors(&vectors, texts.len(), self.config.dimension)?;
        Ok(vectors)
    }
}

/// Scales to unit length; OpenAI's vectors already are, other servers' may not be.
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.config.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size.max(1)) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}
