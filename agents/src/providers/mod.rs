//! The LLM-provider trait, the chat types every provider speaks, and the registry that
//! resolves an agent's `provider:model` to an implementation.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use brain_auth::TenantId;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::spec::ModelRef;

pub mod fallback;
pub mod keys;
pub mod local;
pub mod openai;
pub mod rig;
#[cfg(any(test, feature = "test-support"))]
pub mod scripted;

/// Who said a message in a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    Tool,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
            ChatRole::Tool => "tool",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "system" => Some(ChatRole::System),
            "user" => Some(ChatRole::User),
            "assistant" => Some(ChatRole::Assistant),
            "tool" => Some(ChatRole::Tool),
            _ => None,
        }
    }
}

/// A call the model asked for: a tool name and JSON arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call; tool results refer to it.
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    /// Calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(ChatRole::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(ChatRole::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(ChatRole::Assistant, content)
    }

    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }

    fn plain(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool offered to the model: a function name, a description and a JSON Schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// One model call.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// Whose key pays for the call (BYOK lookups).
    pub tenant: TenantId,
    /// The model's name within its provider (the part after `provider:`).
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    pub temperature: f32,
    pub max_tokens: u32,
}

/// Tokens a call consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.prompt_tokens += rhs.prompt_tokens;
        self.completion_tokens += rhs.completion_tokens;
    }
}

/// Why the model stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    ToolCalls,
    Length,
    Other,
}

/// What a provider streams. Tool calls arrive whole: providers reassemble argument deltas.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelEvent {
    Token(String),
    ToolCall(ToolCall),
    Usage(Usage),
    Finished(FinishReason),
    /// The call left a failing model for the next of the agent's fallbacks (sent first).
    FellBack(fallback::ModelFallback),
}

pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ProviderError>> + Send>>;

/// A complete (non-streamed) model answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelReply {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish: Option<FinishReason>,
    pub fallbacks: Vec<fallback::ModelFallback>,
}

/// An LLM backend.
#[async_trait::async_trait]
pub trait LlmProvider: Send + Sync {
    /// Starts a model call and streams its output.
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError>;

    /// The context window of `model` in tokens, when the provider knows it; turns then fit
    /// their prompt into it (see [`crate::fit`]).
    fn context_window(&self, _model: &str) -> Option<usize> {
        None
    }

    /// Whether tenants may bring their own key for this provider.
    fn key_use(&self) -> keys::KeyUse {
        keys::KeyUse::None
    }

    /// Whether the deployment configured a key that tenants without one fall back to.
    fn has_deployment_key(&self) -> bool {
        false
    }

    /// Checks a tenant's key with a cheap live call before it is kept. Only called on
    /// providers whose [`LlmProvider::key_use`] takes keys.
    async fn verify_key(&self, _key: &keys::ProviderKey) -> Result<(), ProviderError> {
        Err(ProviderError::Malformed(
            "this provider takes no API key".into(),
        ))
    }

    /// The whole answer of one call.
    async fn complete(&self, request: ChatRequest) -> Result<ModelReply, ProviderError> {
        collect(self.stream(request).await?).await
    }
}

/// Drains a model stream into one reply.
pub async fn collect(mut stream: ModelStream) -> Result<ModelReply, ProviderError> {
    let mut reply = ModelReply::default();
    while let Some(event) = stream.next().await {
        match event? {
            ModelEvent::Token(t) => reply.content.push_str(&t),
            ModelEvent::ToolCall(c) => reply.tool_calls.push(c),
            ModelEvent::Usage(u) => reply.usage += u,
            ModelEvent::Finished(f) => reply.finish = Some(f),
            ModelEvent::FellBack(f) => reply.fallbacks.push(f),
        }
    }
    Ok(reply)
}

/// Providers by name (`local`, `openai`, …), as configured at start.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: HashMap<String, Arc<dyn LlmProvider>>,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The production providers: `local` (embedded model) and `openai` (any OpenAI-compatible
    /// server), each when configured. The scripted provider can never be registered here.
    pub fn standard(
        local: Option<local::LocalConfig>,
        openai: Option<openai::OpenAiConfig>,
    ) -> Result<Self, ProviderError> {
        let mut registry = Self::new();
        if let Some(config) = local {
            registry = registry.with("local", Arc::new(local::LocalProvider::new(config)));
        }
        if let Some(config) = openai {
            registry = registry.with("openai", Arc::new(openai::OpenAiProvider::new(config)?));
        }
        Ok(registry)
    }

    pub fn with(mut self, name: impl Into<String>, provider: Arc<dyn LlmProvider>) -> Self {
        self.providers.insert(name.into(), provider);
        self
    }

    pub fn knows(&self, model: &ModelRef) -> bool {
        self.providers.contains_key(model.provider())
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.providers.keys().cloned().collect();
        names.sort();
        names
    }

    /// The provider registered as `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn LlmProvider>> {
        self.providers.get(name).cloned()
    }

    pub fn resolve(&self, model: &ModelRef) -> Result<Arc<dyn LlmProvider>, ProviderError> {
        self.providers
            .get(model.provider())
            .cloned()
            .ok_or_else(|| ProviderError::UnknownProvider(model.provider().to_owned()))
    }
}
