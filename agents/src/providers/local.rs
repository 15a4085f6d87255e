//! The embedded default model (`local:default`): a Qwen2-family GGUF run in-process with
//! candle, tokenizer read from the GGUF, ChatML prompts with Qwen's native `<tool_call>` format.
//! No network, no key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_qwen2::ModelWeights;
use serde_json::{Value, json};
use tokenizers::Tokenizer;

use super::{
    ChatMessage, ChatRequest, ChatRole, FinishReason, LlmProvider, ModelEvent, ModelStream,
    ToolCall, ToolDefinition, Usage,
};
use crate::error::ProviderError;

/// Where the model is and how to run it.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// A Qwen2-family GGUF (`BRAIN_LOCAL_MODEL`).
    pub model_path: PathBuf,
    /// CPU threads generation computes on: the provider runs the model inside a thread pool
    /// of this size (`BRAIN_LOCAL_THREADS`; `brain` defaults it to the number of cores).
    pub threads: usize,
    /// Seed for sampling at temperature > 0.
    pub seed: u64,
    /// Run Q5 tensors as Q8_0 from a cached copy (≈4× faster); off only to measure that.
    pub requantize: bool,
}

impl LocalConfig {
    /// One thread, a fixed seed, re-quantised.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            threads: 1,
            seed: 299_792_458,
            requantize: true,
        }
    }
}

struct Loaded {
    model: ModelWeights,
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
}

impl LocalProvider {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            loaded: Arc::new(Mutex::new(None)),
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
}

fn local_err(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Local(e.to_string())
}

/// The cached copy of `model` with slow-kernel tensors re-quantised to Q8_0.
pub fn requantized_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".q8_0.gguf");
    model.with_file_name(name)
}

/// candle has no fast Q5 kernels; Q8_0 runs ~4× faster with the same greedy output.
fn needs_requant(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Writes the re-quantised copy once; returns the file to load.
pub fn ensure_requantized(model: &Path) -> Result<PathBuf, ProviderError> {
    let cached = requantized_path(model);
    if cached.exists() {
        return Ok(cached);
    }
    let mut reader = std::fs::File::open(model)
        .map_err(|e| local_err(format!("opening {}: {e}", model.display())))?;
    let content = gguf_file::Content::read(&mut reader).map_err(local_err)?;
    if !content
        .tensor_infos
        .values()
        .any(|t| needs_requant(t.ggml_dtype))
    {
        return Ok(model.to_path_buf());
    }
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(content.tensor_infos.len());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let tensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(local_err)?;
        let tensor = if needs_requant(tensor.dtype()) {
            let dense = tensor.dequantize(&Device::Cpu).map_err(local_err)?;
            QTensor::quantize(&dense, GgmlDType::Q8_0).map_err(local_err)?
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    // Write beside the target and rename, so a crash never leaves a half-written cache.
    let partial = cached.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(local_err)?);
    gguf_file::write(&mut out, &metadata, &tensor_refs).map_err(local_err)?;
    std::io::Write::flush(&mut out).map_err(local_err)?;
    drop(out);
    std::fs::rename(&partial, &cached).map_err(local_err)?;
    Ok(cached)
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
    let model = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).map_err(local_err)?;
    let stop_tokens = ["<|im_end|>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| tokenizer.token_to_id(t))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads.max(1))
        .thread_name(|i| format!("local-model-{i}"))
        .build()
        .map_err(local_err)?;
    Ok(Loaded {
        model,
        tokenizer,
        stop_tokens,
        pool: Arc::new(pool),
    })
}

/// The ChatML prompt Qwen2.5 was trained on, tools in its `<tools>` block.
pub fn chatml_prompt(messages: &[ChatMessage], tools: &[ToolDefinition]) -> String {
    let mut prompt = String::new();
    let mut rest = messages;
    let system = match messages.first() {
        Some(m) if m.role == ChatRole::System => {
            rest = &messages[1..];
            m.content.clone()
        }
        _ => "You are a helpful assistant.".to_owned(),
    };
    prompt.push_str("<|im_start|>system\n");
    prompt.push_str(&system);
    if !tools.is_empty() {
        prompt.push_str(
            "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
             You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
        );
        for tool in tools {
            let signature = json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": tool.parameters,
            }});
            prompt.push('\n');
            prompt.push_str(&signature.to_string());
        }
        prompt.push_str(
            "\n</tools>\n\nFor each function call, return a json object with function name and \
             arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
             {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
        );
    }
    prompt.push_str("<|im_end|>\n");
    for m in rest {
        match m.role {
            ChatRole::Tool => {
                prompt.push_str("<|im_start|>user\n<tool_response>\n");
                prompt.push_str(&m.content);
                prompt.push_str("\n</tool_response><|im_end|>\n");
            }
            role => {
                prompt.push_str("<|im_start|>");
                prompt.push_str(role.as_str());
                prompt.push('\n');
                prompt.push_str(&m.content);
                for call in &m.tool_calls {
                    let body = json!({"name": call.name, "arguments": call.arguments});
                    prompt.push_str("\n<tool_call>\n");
                    prompt.push_str(&body.to_string());
                    prompt.push_str("\n</tool_call>");
                }
                prompt.push_str("<|im_end|>\n");
            }
        }
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// Splits generated text into the reply and the `<tool_call>` blocks it contains.
pub fn parse_tool_calls(text: &str) -> (String, Vec<ToolCall>) {
    let mut reply = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        reply.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let (body, next) = match after.find(CLOSE) {
            Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
            None => (after, ""),
        };
        if let Ok(v) = serde_json::from_str::<Value>(body.trim())
            && let Some(name) = v["name"].as_str()
        {
            let arguments = match &v["arguments"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                Value::Null => json!({}),
                other => other.clone(),
            };
            calls.push(ToolCall {
                id: format!("call_{}", calls.len()),
                name: name.to_owned(),
                arguments,
            });
        }
        rest = next;
    }
    reply.push_str(rest);
    (reply.trim().to_owned(), calls)
}

/// How much of `text` can be shown now: everything before a (possibly partial) `<tool_call>`.
fn streamable_len(text: &str) -> usize {
    if let Some(i) = text.find(OPEN) {
        return i;
    }
    for k in (1..OPEN.len()).rev() {
        if text.ends_with(&OPEN[..k]) {
            return text.len() - k;
        }
    }
    text.len()
}

fn generate(
    loaded: &mut Loaded,
    prompt: &str,
    temperature: f32,
    max_tokens: u32,
    seed: u64,
    send: &mut dyn FnMut(ModelEvent) -> bool,
) -> Result<(), ProviderError> {
    let Loaded {
        model,
        tokenizer,
        stop_tokens,
        pool: _,
    } = loaded;
    let prompt_ids = tokenizer
        .encode(prompt, false)
        .map_err(local_err)?
        .get_ids()
        .to_vec();
    model.clear_kv_cache();
    let temperature = (temperature > 0.0).then_some(f64::from(temperature));
    let mut sampler = LogitsProcessor::new(seed, temperature, None);
    let input = Tensor::new(prompt_ids.as_slice(), &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .map_err(local_err)?;
    let mut logits = model
        .forward(&input, 0)
        .and_then(|l| l.squeeze(0))
        .map_err(local_err)?;
    let mut generated: Vec<u32> = Vec::new();
    let mut shown = 0usize;
    let mut finish = FinishReason::Length;
    let mut text = String::new();
    while generated.len() < max_tokens as usize {
        let next = sampler.sample(&logits).map_err(local_err)?;
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
                return Ok(()); // the caller went away
            }
            shown = shown.max(end);
        }
        let input = Tensor::new(&[next], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(local_err)?;
        logits = model
            .forward(&input, prompt_ids.len() + generated.len() - 1)
            .and_then(|l| l.squeeze(0))
            .map_err(local_err)?;
    }
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
    Ok(())
}

#[async_trait::async_trait]
impl LlmProvider for LocalProvider {
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let prompt = chatml_prompt(&request.messages, &request.tools);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ModelEvent, ProviderError>>(64);
        let loaded = self.loaded.clone();
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
                    generate(
                        model,
                        &prompt,
                        request.temperature,
                        request.max_tokens,
                        config.seed,
                        &mut send,
                    )
                })
            })();
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qwen_tool_calls() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"wordpress__create_post\", \"arguments\": {\"title\": \"Hi\"}}\n</tool_call>";
        let (reply, calls) = parse_tool_calls(text);
        assert_eq!(reply, "Let me check.");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "wordpress__create_post");
        assert_eq!(calls[0].arguments, json!({"title": "Hi"}));
    }

    #[test]
    fn holds_back_a_partial_tool_call_tag() {
        assert_eq!(streamable_len("Hello <tool"), 6);
        assert_eq!(streamable_len("Hello <tool_call>{"), 6);
        assert_eq!(streamable_len("a < b"), 5);
    }

    #[test]
    fn chatml_with_tools_and_results() {
        let messages = vec![
            ChatMessage::system("You are Ada."),
            ChatMessage::user("Post it"),
            ChatMessage {
                role: ChatRole::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "wp__post".into(),
                    arguments: json!({"t": 1}),
                }],
                tool_call_id: None,
            },
            ChatMessage::tool_result("call_0", "{\"ok\":true}"),
        ];
        let tools = vec![ToolDefinition {
            name: "wp__post".into(),
            description: "Post".into(),
            parameters: json!({"type": "object"}),
        }];
        let prompt = chatml_prompt(&messages, &tools);
        assert!(prompt.starts_with("<|im_start|>system\nYou are Ada.\n\n# Tools"));
        assert!(prompt.contains("<tools>\n{\"function\":{\"description\":\"Post\""));
        assert!(prompt.contains("<|im_start|>assistant\n\n<tool_call>\n{\"arguments\":{\"t\":1},\"name\":\"wp__post\"}\n</tool_call><|im_end|>"));
        assert!(prompt.contains("<tool_response>\n{\"ok\":true}\n</tool_response>"));
        assert!(prompt.ends_with("<|im_start|>assistant\n"));
    }
}
