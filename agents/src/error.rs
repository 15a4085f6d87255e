//! The agents crate's errors: validation (field named, for 422s), storage, providers, turns.

use crate::tool::ToolError;

pub use brain_auth::FieldError;
use brain_auth::{Code, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Validation(#[from] FieldError),
    #[error("agent not found")]
    NotFound,
    #[error("conversation not found")]
    ConversationNotFound,
    #[error("an agent with slug `{0}` already exists")]
    SlugTaken(String),
    #[error("the agent was changed concurrently (expected version {expected})")]
    VersionConflict { expected: i32 },
    #[error("the agent's daily token budget is exhausted")]
    BudgetExhausted,
    #[error("the organisation's daily token budget is exhausted")]
    TenantBudgetExhausted,
    #[error("the agent is degraded after repeated failures")]
    Degraded,
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("knowledge retrieval failed: {0}")]
    Retrieval(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl ErrorCode for AgentError {
    fn code(&self) -> Code {
        match self {
            AgentError::Validation(_) => Code::ValidationFailed,
            AgentError::NotFound | AgentError::ConversationNotFound => Code::NotFound,
            AgentError::SlugTaken(_) => Code::SlugTaken,
            AgentError::VersionConflict { .. } => Code::VersionConflict,
            AgentError::BudgetExhausted => Code::BudgetExhausted,
            AgentError::TenantBudgetExhausted => Code::TenantBudgetExhausted,
            AgentError::Degraded => Code::AgentDegraded,
            AgentError::Provider(e) => e.code(),
            AgentError::Tool(e) => e.code(),
            AgentError::Retrieval(_) => Code::Internal,
            AgentError::Database(e) => e.code(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown model provider `{0}`")]
    UnknownProvider(String),
    #[error("no API key configured for provider `{0}`")]
    MissingApiKey(String),
    #[error("the model provider `{provider}` rejected the API key: {message}")]
    Unauthorized { provider: String, message: String },
    #[error("secret store: {0}")]
    Secrets(String),
    #[error("{0}")]
    EgressRefused(String),
    #[error("model server unreachable: {0}")]
    Unreachable(String),
    #[error("model server answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("model server sent a malformed response: {0}")]
    Malformed(String),
    #[error("local model: {0}")]
    Local(String),
    #[error(
        "the prompt needs about {needed} tokens but the model's context leaves {budget} for it; \
         send a shorter message"
    )]
    ContextTooLong { needed: usize, budget: usize },
    #[error(
        "the conversation does not fit the context window of `{provider}`: {message}; send a \
         shorter message or start a new conversation"
    )]
    ContextWindowExceeded { provider: String, message: String },
    #[error("scripted provider: {0}")]
    Script(String),
}

impl ProviderError {
    pub fn secrets(error: brain_auth::secrets::SecretError) -> Self {
        Self::Secrets(error.to_string())
    }

    /// A refused call as Brain's error: a rejected key, a prompt over the context window
    /// (told apart from other 400s by the provider's documented wording), or the status.
    pub(crate) fn refused(provider: &str, status: u16, body: &str, message: String) -> Self {
        match status {
            401 | 403 => Self::Unauthorized {
                provider: provider.to_owned(),
                message,
            },
            400 | 413 if context_overflow(body) => Self::ContextWindowExceeded {
                provider: provider.to_owned(),
                message,
            },
            status => Self::Status { status, message },
        }
    }
}

/// How providers say a prompt is over the context window: OpenAI, Azure and Mistral's
/// `context_length_exceeded` / "maximum context length", Anthropic's "prompt is too long",
/// Gemini's "input token count … exceeds the maximum", vLLM's and Groq's "context length".
fn context_overflow(body: &str) -> bool {
    const WORDINGS: [&str; 6] = [
        "context_length_exceeded",
        "maximum context length",
        "context length",
        "context window",
        "prompt is too long",
        "input token count",
    ];
    let body = body.to_ascii_lowercase();
    WORDINGS.iter().any(|w| body.contains(w))
}

impl ErrorCode for ProviderError {
    fn code(&self) -> Code {
        match self {
            ProviderError::UnknownProvider(_) => Code::UnknownModel,
            ProviderError::MissingApiKey(_) => Code::ModelNotConfigured,
            ProviderError::Unauthorized { .. } => Code::ModelUnauthorized,
            ProviderError::Secrets(_) => Code::Unavailable,
            ProviderError::EgressRefused(_) => Code::EgressRefused,
            ProviderError::Status { status: 429, .. } => Code::ModelRateLimited,
            ProviderError::ContextTooLong { .. } | ProviderError::ContextWindowExceeded { .. } => {
                Code::ContextTooLong
            }
            _ => Code::ModelError,
        }
    }
}
