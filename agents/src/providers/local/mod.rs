//! The embedded default model (`local:default`): a Qwen2-family GGUF run in-process with
//! candle, tokenizer read from the GGUF, ChatML prompts with Qwen's native `<tool_call>` format.
//! No network, no key. The key/value cache outlives a call, so a turn that repeats the
//! previous prompt's beginning (system prompt, tools, history) only runs what is new.

mod chatml;
mod prefix;
mod qwen2;
mod requantize;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_transformers::generation::LogitsProcessor;
use tokenizers::Tokenizer;

pub use self::chatml::{chatml_prompt, parse_tool_calls};
pub use self::requantize::{ensure_requantized, requantized_path};

use self::chatml::streamable_len;
use self::prefix::PrefixCache;
use self::qwen2::{Kernels, Qwen2};
use super::{ChatRequest, FinishReason, LlmProvider, ModelEvent, ModelStream, Usage};
use crate::error::ProviderError;

/// Where the model is and how to run it.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// A Qwen2-family GGUF (`BRAIN_LOCAL_MODEL`).
    pub model_path: PathBuf,
    /// CPU threads generation computes on: the provider runs the model inside a thread pool
    /// of this size (`BRAIN_LOCAL_THREADS`; `brain` defaults it to the number of cores).
    /// candle's quantised matrix products use a pool of their own, sized once per process
    /// from `CANDLE_NUM_THREADS` (default: the physical cores).
    pub threads: usize,
    /// Seed for sampling at temperature > 0.
    pub seed: u64,
    /// Run Q5 tensors as Q8_0 from a cached copy (≈4× faster); off only to measure that.
    pub requantize: bool,
    /// Tokens of prompt and reply together (`BRAIN_LOCAL_CONTEXT`), at most the model's own
    /// context: turns fit their prompt into it, and a longer prompt is refused before it
    /// costs a forward pass. It bounds the key/value cache and the attention work of one call.
    pub context_tokens: usize,
}

/// The default [`LocalConfig::context_tokens`].
pub const DEFAULT_CONTEXT_TOKENS: usize = 8192;

/// Prompt tokens run per forward pass: attention scores of one pass grow with
/// `chunk × context`, so a long prompt runs in slices.
const PREFILL_CHUNK: usize = 512;

impl LocalConfig {
    /// One thread, a fixed seed, re-quantised.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            threads: 1,
            seed: 299_792_458,
            requantize: true,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
        }
    }
}

/// Where the time of one call went, and how much of its prompt the cache saved.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GenerationStats {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were still cached from the previous call.
    pub reused_tokens: usize,
    /// Tokens generated (the stop token not counted).
    pub completion_tokens: usize,
    /// From the request to the first sampled token: queueing, tokenising and `prefill`.
    pub time_to_first_token: Duration,
    /// Running the prompt tokens that were not reused.
    pub prefill: Duration,
    /// Forward passes of one generated token each, and their total time.
    pub decode_steps: usize,
    pub decode: Duration,
}

impl GenerationStats {
    /// Prompt tokens the model ran.
    pub fn prefilled_tokens(&self) -> usize {
        self.prompt_tokens - self.reused_tokens
    }
}

struct Loaded {
    model: Qwen2,
    /// The previous call's tokens and their keys and values.
    cache: PrefixCache,
    tokenizer: Tokenizer,
    stop_tokens: Vec<u32>,
    /// candle's parallel kernels run on the pool they are called from: generation runs
    /// inside this one, so `threads` bounds it whatever the process-wide default is.
    pool: Arc<rayon::ThreadPool>,
}

/// The in-process model; loaded on first use, one generation at a time.
pub struct LocalProvider {
    config: LocalConfig,
    loaded: Arc<Mutex<Option<Loaded>>>,
    last: Arc<Mutex<Option<GenerationStats>>>,
}

impl LocalProvider {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            loaded: Arc::new(Mutex::new(None)),
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// Loads the model now (otherwise the first call does), re-quantising first if needed.
    pub async fn warm_up(&self) -> Result<(), ProviderError> {
        let loaded = self.loaded.clone();
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = loaded
                .lock()
                .map_err(|_| ProviderError::Local("model lock poisoned".into()))?;
            if guard.is_none() {
                *guard = Some(load(&config)?);
            }
            Ok(())
        })
        .await
        .map_err(|e| ProviderError::Local(e.to_string()))?
    }

    /// The most recent finished call's numbers.
    pub fn last_generation(&self) -> Option<GenerationStats> {
        self.last.lock().ok().and_then(|last| *last)
    }
}

fn local_err(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Local(e.to_string())
}

fn load(config: &LocalConfig) -> Result<Loaded, ProviderError> {
    let path = if config.requantize {
        ensure_requantized(&config.model_path)?
    } else {
        config.model_path.clone()
    };
    let mut reader = std::fs::File::open(&path)
        .map_err(|e| local_err(format!("opening {}: {e}", path.display())))?;
    let content = gguf_file::Content::read(&mut reader).map_err(local_err)?;
    let tokenizer = Tokenizer::from_gguf(&content).map_err(local_err)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads.max(1))
        .thread_name(|i| format!("local-model-{i}"))
        .build()
        .map_err(local_err)?;
    let model = pool.install(|| -> candle_core::Result<Qwen2> {
        let model = Qwen2::from_gguf(&content, &mut reader, Kernels::Fast)?;
        // candle repacks each weight for its fast kernels on first use (some only when
        // several rows run at once): do it now, not during somebody's first request.
        model.forward(&[0, 0], &mut model.new_cache())?;
        Ok(model)
    });
    let model = model.map_err(local_err)?;
    let stop_tokens = ["<|im_end|>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| tokenizer.token_to_id(t))
        .collect();
    Ok(Loaded {
        cache: PrefixCache::new(&model),
        model,
        tokenizer,
        stop_tokens,
        pool: Arc::new(pool),
    })
}

/// One call, as the blocking worker receives it.
struct Job {
    prompt: String,
    /// The configured window; the model's own context caps it.
    context_tokens: usize,
    temperature: f32,
    max_tokens: u32,
    seed: u64,
    /// When the caller asked, for the time to the first token.
    requested: Instant,
}

fn generate(
    loaded: &mut Loaded,
    job: &Job,
    send: &mut dyn FnMut(ModelEvent) -> bool,
) -> Result<GenerationStats, ProviderError> {
    let Loaded {
        model,
        cache,
        tokenizer,
        stop_tokens,
        pool: _,
    } = loaded;
    let prompt_ids = tokenizer
        .encode(job.prompt.as_str(), false)
        .map_err(local_err)?
        .get_ids()
        .to_vec();
    if prompt_ids.is_empty() {
        return Err(ProviderError::Local("empty prompt".into()));
    }
    let window = job.context_tokens.min(model.context_length());
    if prompt_ids.len() >= window {
        return Err(ProviderError::ContextTooLong {
            needed: prompt_ids.len(),
            budget: window.saturating_sub(1),
        });
    }
    let reused = cache.reuse(&prompt_ids);
    let started = Instant::now();
    let mut logits = None;
    for chunk in prompt_ids[reused..].chunks(PREFILL_CHUNK) {
        logits = Some(cache.extend(model, chunk).map_err(local_err)?);
    }
    let Some(mut logits) = logits else {
        return Err(ProviderError::Local("nothing to run".into()));
    };
    let mut stats = GenerationStats {
        prompt_tokens: prompt_ids.len(),
        reused_tokens: reused,
        prefill: started.elapsed(),
        ..GenerationStats::default()
    };
    let temperature = (job.temperature > 0.0).then_some(f64::from(job.temperature));
    let mut sampler = LogitsProcessor::new(job.seed, temperature, None);
    let mut generated: Vec<u32> = Vec::new();
    let mut shown = 0usize;
    let mut finish = FinishReason::Length;
    let mut text = String::new();
    while generated.len() < job.max_tokens as usize {
        let next = sampler.sample(&logits).map_err(local_err)?;
        if generated.is_empty() {
            stats.time_to_first_token = job.requested.elapsed();
        }
        if stop_tokens.contains(&next) {
            finish = FinishReason::Stop;
            break;
        }
        generated.push(next);
        text = tokenizer.decode(&generated, true).map_err(local_err)?;
        // A partial UTF-8 sequence decodes to U+FFFD; wait for the rest of it.
        if !text.ends_with('\u{fffd}') {
            let end = streamable_len(&text);
            if end > shown
                && text.is_char_boundary(shown)
                && !send(ModelEvent::Token(text[shown..end].to_owned()))
            {
                return Ok(stats); // the caller went away
            }
            shown = shown.max(end);
        }
        if generated.len() == job.max_tokens as usize || cache.len() >= window {
            break; // no logits needed after the last token
        }
        let step = Instant::now();
        logits = cache.extend(model, &[next]).map_err(local_err)?;
        stats.decode += step.elapsed();
        stats.decode_steps += 1;
    }
    stats.completion_tokens = generated.len();
    let (_, calls) = parse_tool_calls(&text);
    if !calls.is_empty() {
        finish = FinishReason::ToolCalls;
    } else if shown < text.len() && text.is_char_boundary(shown) {
        // A lone "<tool" prefix that never became a call is ordinary text after all.
        send(ModelEvent::Token(text[shown..].to_owned()));
    }
    for call in calls {
        send(ModelEvent::ToolCall(call));
    }
    send(ModelEvent::Usage(Usage {
        prompt_tokens: prompt_ids.len() as u64,
        completion_tokens: generated.len() as u64,
    }));
    send(ModelEvent::Finished(finish));
    Ok(stats)
}

#[async_trait::async_trait]
impl LlmProvider for LocalProvider {
    fn context_window(&self, _model: &str) -> Option<usize> {
        Some(self.config.context_tokens)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let job = Job {
            prompt: chatml_prompt(&request.messages, &request.tools),
            context_tokens: self.config.context_tokens,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            seed: self.config.seed,
            requested: Instant::now(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ModelEvent, ProviderError>>(64);
        let loaded = self.loaded.clone();
        let last = self.last.clone();
        let config = self.config.clone();
        // Generation is CPU-bound for seconds: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let result = (|| {
                let mut guard = loaded
                    .lock()
                    .map_err(|_| ProviderError::Local("model lock poisoned".into()))?;
                if guard.is_none() {
                    *guard = Some(load(&config)?);
                }
                let Some(model) = guard.as_mut() else {
                    return Err(ProviderError::Local("model not loaded".into()));
                };
                let pool = model.pool.clone();
                pool.install(|| {
                    let mut send = |event| tx.blocking_send(Ok(event)).is_ok();
                    generate(model, &job, &mut send)
                })
            })();
            match result {
                Ok(stats) => {
                    tracing::debug!(
                        prompt_tokens = stats.prompt_tokens,
                        reused_tokens = stats.reused_tokens,
                        completion_tokens = stats.completion_tokens,
                        ttft_ms = stats.time_to_first_token.as_millis() as u64,
                        "local model call"
                    );
                    if let Ok(mut last) = last.lock() {
                        *last = Some(stats);
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })))
    }
}
