//! The OpenAI-compatible chat-completions provider (OpenAI, Azure OpenAI, vLLM, llama.cpp
//! server, Ollama): a small reqwest client speaking the wire format, SSE streaming included.
//!
//! Hand-written rather than async-openai/rig: we need only one endpoint, the crate already
//! pins reqwest 0.13 + rustls/ring (async-openai brings its own reqwest and TLS stack), and
//! owning the SSE reassembly keeps tool-call argument deltas testable byte for byte.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use brain_auth::TenantId;
use brain_auth::egress::EgressPolicy;
use brain_auth::secrets::{SecretStore, SecretString};
use serde_json::{Value, json};

use super::keys::{KeyUse, ProviderKey};
use super::{
    ChatMessage, ChatRequest, ChatRole, FinishReason, LlmProvider, ModelEvent, ModelStream, Usage,
};
use crate::error::ProviderError;

/// Settings of an OpenAI-compatible endpoint.
pub struct OpenAiConfig {
    /// The provider's name in model references (`openai` of `openai:gpt-4o`), errors and the
    /// secret store; a deployment may run several (`mistral`, `groq`, …).
    pub name: String,
    /// e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The deployment-wide key (`OPENAI_API_KEY`), used when a tenant has none of its own.
    pub api_key: Option<SecretString>,
    /// Per-tenant keys ([`ProviderKey`]) in Vault.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Where a tenant's own `base_url` may point (the deployment's `base_url` is trusted).
    pub egress: EgressPolicy,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Refuse a call when neither the tenant nor the deployment has a key (a public cloud),
    /// instead of sending it unauthenticated (a deployment's own server may need no key).
    pub key_required: bool,
}

/// How a call the server refused for now (429, 500, 502, 503, 504, or no connection) is
/// tried again before the turn sees the error: `Retry-After` is honoured when the server
/// sends one, else the wait doubles from `base`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    /// A longer `Retry-After` is not waited for: the error is returned at once.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1`, if there is one.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let doubling = self.base.saturating_mul(1 << (attempt - 1).min(10));
        match retry_after {
            Some(wait) if wait > self.max_wait => None,
            Some(wait) => Some(wait),
            None => Some(doubling.min(self.max_wait)),
        }
    }
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            name: "openai".to_owned(),
            base_url: base_url.into(),
            api_key: None,
            secrets: None,
            egress: EgressPolicy::default(),
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            key_required: false,
        }
    }
}

pub struct OpenAiProvider {
    name: String,
    http: reqwest::Client,
    /// For tenants' own endpoints: every connection obeys the egress policy.
    guarded: reqwest::Client,
    egress: EgressPolicy,
    base_url: String,
    api_key: Option<SecretString>,
    secrets: Option<Arc<dyn SecretStore>>,
    retry: RetryPolicy,
    key_required: bool,
}

/// Where one tenant's calls go, and with which key.
struct Target<'a> {
    http: &'a reqwest::Client,
    base_url: &'a str,
    key: Option<&'a SecretString>,
    organization: Option<&'a str>,
}

impl Target<'_> {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}/{path}", self.base_url.trim_end_matches('/'));
        let mut builder = self.http.request(method, url);
        if let Some(key) = self.key {
            builder = builder.bearer_auth(key.expose());
        }
        if let Some(organization) = self.organization {
            builder = builder.header("OpenAI-Organization", organization);
        }
        builder
    }
}

/// A model provider's two HTTP clients: one for the deployment's endpoint, and one whose
/// every connection obeys `egress`, for tenants' own endpoints.
pub(crate) fn model_clients(
    egress: &EgressPolicy,
    timeout: Duration,
) -> Result<(reqwest::Client, reqwest::Client), ProviderError> {
    brain_auth::install_crypto_provider();
    let unreachable = |e: reqwest::Error| ProviderError::Unreachable(e.to_string());
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(timeout)
        .build()
        .map_err(unreachable)?;
    let guarded = egress
        .client_builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(timeout)
        .build()
        .map_err(unreachable)?;
    Ok((http, guarded))
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        let (http, guarded) = model_clients(&config.egress, config.timeout)?;
        Ok(Self {
            name: config.name,
            http,
            guarded,
            egress: config.egress,
            base_url: config.base_url,
            api_key: config.api_key,
            secrets: config.secrets,
            retry: config.retry,
            key_required: config.key_required,
        })
    }

    /// The tenant's own key, if it set one.
    async fn tenant_key(&self, tenant: TenantId) -> Result<Option<ProviderKey>, ProviderError> {
        match &self.secrets {
            Some(store) => ProviderKey::load(store.as_ref(), tenant, &self.name).await,
            None => Ok(None),
        }
    }

    /// Where calls with `key` go (the deployment's endpoint and key without one).
    fn target<'a>(&'a self, key: Option<&'a ProviderKey>) -> Result<Target<'a>, ProviderError> {
        let Some(key) = key else {
            if self.key_required && self.api_key.is_none() {
                return Err(ProviderError::MissingApiKey(self.name.clone()));
            }
            return Ok(Target {
                http: &self.http,
                base_url: &self.base_url,
                key: self.api_key.as_ref(),
                organization: None,
            });
        };
        let (http, base_url) = match &key.base_url {
            Some(url) => {
                self.egress
                    .check_str(url)
                    .map_err(|e| ProviderError::EgressRefused(e.to_string()))?;
                (&self.guarded, url.as_str())
            }
            None => (&self.http, self.base_url.as_str()),
        };
        Ok(Target {
            http,
            base_url,
            key: Some(&key.api_key),
            organization: key.organization.as_deref(),
        })
    }
}

/// The JSON body of a streamed chat-completions request.
pub fn request_body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(wire_message).collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "temperature": decimal(request.temperature),
        "max_tokens": request.max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    }
                })
            })
            .collect();
    }
    body
}

/// `0.3f32` as the JSON number `0.3`, not `0.30000001192092896`.
fn decimal(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

fn wire_message(m: &ChatMessage) -> Value {
    let mut v = json!({"role": m.role.as_str(), "content": m.content});
    if m.role == ChatRole::Assistant && !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()},
                })
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

#[async_trait::async_trait]
impl LlmProvider for OpenAiProvider {
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let tenant_key = self.tenant_key(request.tenant).await?;
        let target = self.target(tenant_key.as_ref())?;
        let body = request_body(&request);
        let mut attempt = 1;
        let response = loop {
            let builder = target
                .request(reqwest::Method::POST, "chat/completions")
                .json(&body);
            let (error, retry_after) = match builder.send().await {
                Ok(response) if response.status().is_success() => break response,
                Ok(response) => {
                    let transient = matches!(response.status().as_u16(), 429 | 500 | 502..=504);
                    let retry_after = retry_after(&response);
                    let error = status_error(&self.name, response, target.key).await;
                    if !transient {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(e) => match send_error(&e) {
                    error @ ProviderError::Unreachable(_) if e.is_connect() => (error, None),
                    error => return Err(error),
                },
            };
            let Some(wait) = self.retry.delay(attempt, retry_after) else {
                return Err(error);
            };
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, %error, "model call refused for now; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        let state = StreamState {
            response: Some(response),
            parser: SseParser::default(),
            pending: VecDeque::new(),
        };
        Ok(Box::pin(futures::stream::unfold(state, next_event)))
    }

    fn key_use(&self) -> KeyUse {
        KeyUse::TenantOrDeployment
    }

    fn has_deployment_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// Lists the models: free, and refused without a valid key.
    async fn verify_key(&self, key: &ProviderKey) -> Result<(), ProviderError> {
        let target = self.target(Some(key))?;
        let response = target
            .request(reqwest::Method::GET, "models")
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(status_error(&self.name, response, target.key).await)
    }
}

/// A `Retry-After` in seconds (the form model APIs send).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    retry_after_header(response.headers())
}

/// The `Retry-After` of a refused call's headers, in seconds.
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// A request that got no answer: refused by the egress policy, or the server unreachable.
fn send_error(error: &reqwest::Error) -> ProviderError {
    match brain_auth::egress::refusal(error) {
        Some(refused) => ProviderError::EgressRefused(refused.to_string()),
        None => ProviderError::Unreachable(error.to_string()),
    }
}

/// A refused call as an error, with the server's message when it sent one (never the key
/// it was called with, should the server repeat it).
async fn status_error(
    provider: &str,
    response: reqwest::Response,
    key: Option<&SecretString>,
) -> ProviderError {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let mut message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect());
    if let Some(key) = key.map(SecretString::expose).filter(|k| !k.is_empty()) {
        message = message.replace(key, "[the key]");
    }
    ProviderError::refused(provider, status, &text, message)
}

struct StreamState {
    /// `None` once the body has ended.
    response: Option<reqwest::Response>,
    parser: SseParser,
    pending: VecDeque<Result<ModelEvent, ProviderError>>,
}

async fn next_event(
    mut state: StreamState,
) -> Option<(Result<ModelEvent, ProviderError>, StreamState)> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some((event, state));
        }
        let response = state.response.as_mut()?;
        match response.chunk().await {
            Ok(Some(bytes)) => {
                let events = state.parser.push(&bytes);
                state.pending.extend(events);
            }
            Ok(None) => {
                state.response = None;
                state.pending.extend(state.parser.finish());
            }
            Err(e) => {
                state.response = None;
                state
                    .pending
                    .push_back(Err(ProviderError::Unreachable(e.to_string())));
            }
        }
    }
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Turns SSE bytes into model events, reassembling tool calls whose id, name and arguments
/// arrive in pieces across chunks (keyed by the `index` OpenAI gives each call).
#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    calls: BTreeMap<u64, PartialCall>,
    done: bool,
    flushed: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<ModelEvent, ProviderError>> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_event_end(&self.buffer) {
            let raw: Vec<u8> = self.buffer.drain(..end + sep).collect();
            let Ok(text) = std::str::from_utf8(&raw[..end]) else {
                out.push(Err(ProviderError::Malformed("non-UTF-8 event".into())));
                continue;
            };
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                continue;
            }
            self.handle_data(&data.join("\n"), &mut out);
        }
        out
    }

    /// The end of the body: flushes calls a server left without a finish reason.
    pub fn finish(&mut self) -> Vec<Result<ModelEvent, ProviderError>> {
        let mut out = Vec::new();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            let mut tail = rest;
            tail.extend_from_slice(b"\n\n");
            out.extend(self.push(&tail));
        }
        self.flush_calls(&mut out);
        out
    }

    fn handle_data(&mut self, data: &str, out: &mut Vec<Result<ModelEvent, ProviderError>>) {
        if data.trim() == "[DONE]" {
            self.done = true;
            self.flush_calls(out);
            return;
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                out.push(Err(ProviderError::Malformed(format!("chunk: {e}"))));
                return;
            }
        };
        if let Some(message) = chunk["error"]["message"].as_str() {
            out.push(Err(ProviderError::Status {
                status: 500,
                message: message.to_owned(),
            }));
            return;
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                out.push(Ok(ModelEvent::Token(text.to_owned())));
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap_or(0);
                let partial = self.calls.entry(index).or_default();
                if let Some(id) = call["id"].as_str() {
                    partial.id.push_str(id);
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    partial.name.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    partial.arguments.push_str(args);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.flush_calls(out);
                out.push(Ok(ModelEvent::Finished(match reason {
                    "stop" => FinishReason::Stop,
                    "tool_calls" | "function_call" => FinishReason::ToolCalls,
                    "length" => FinishReason::Length,
                    _ => FinishReason::Other,
                })));
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            out.push(Ok(ModelEvent::Usage(Usage {
                prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
            })));
        }
    }

    fn flush_calls(&mut self, out: &mut Vec<Result<ModelEvent, ProviderError>>) {
        if self.flushed && self.calls.is_empty() {
            return;
        }
        for (index, call) in std::mem::take(&mut self.calls) {
            let arguments = if call.arguments.trim().is_empty() {
                json!({})
            } else {
                // Invalid JSON is passed on as a string so the turn loop can tell the model.
                serde_json::from_str(&call.arguments).unwrap_or(Value::String(call.arguments))
            };
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            out.push(Ok(ModelEvent::ToolCall(super::ToolCall {
                id,
                name: call.name,
                arguments,
            })));
        }
        self.flushed = self.done;
    }
}

/// The end of the first complete SSE event in `buf` and the separator's length.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(parser: &mut SseParser, input: &[&str]) -> Vec<ModelEvent> {
        let mut all = Vec::new();
        for piece in input {
            all.extend(parser.push(piece.as_bytes()));
        }
        all.extend(parser.finish());
        all.into_iter().map(|e| e.unwrap()).collect()
    }

    #[test]
    fn reassembles_split_tool_call_arguments_across_byte_boundaries() {
        let chunks = [
            r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"wordpress__create_post","arguments":""}}]}}]}"#,
            "\n\n",
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"tit"}}]}}]}"#,
            "\n\ndata: ",
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"le\":\"Hi\"}"}}]}}]}"#,
            "\n\n",
            r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "\n\n",
            "data: [DONE]\n\n",
        ];
        let mut parser = SseParser::default();
        let got = events(&mut parser, &chunks);
        assert_eq!(
            got,
            vec![
                ModelEvent::ToolCall(super::super::ToolCall {
                    id: "call_1".into(),
                    name: "wordpress__create_post".into(),
                    arguments: json!({"title": "Hi"}),
                }),
                ModelEvent::Finished(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn tokens_usage_and_crlf_events() {
        let mut parser = SseParser::default();
        let got = events(
            &mut parser,
            &[
                "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\r\n\r\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\r\n\r\n",
                "data: [DONE]\r\n\r\n",
            ],
        );
        assert_eq!(
            got,
            vec![
                ModelEvent::Token("Hel".into()),
                ModelEvent::Token("lo".into()),
                ModelEvent::Finished(FinishReason::Stop),
                ModelEvent::Usage(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 2
                }),
            ]
        );
    }
}
