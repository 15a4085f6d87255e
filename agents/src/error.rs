//! The agents crate's errors: validation (field named, for 422s), storage, providers, turns.

use crate::tool::ToolError;

pub use brain_auth::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent: {0}")]
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

impl AgentError {
    /// A stable snake_case code for API errors and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::Validation(_) => "validation_failed",
            AgentError::NotFound => "agent_not_found",
            AgentError::ConversationNotFound => "conversation_not_found",
            AgentError::SlugTaken(_) => "slug_taken",
            AgentError::VersionConflict { .. } => "version_conflict",
            AgentError::BudgetExhausted => "budget_exhausted",
            AgentError::TenantBudgetExhausted => "tenant_budget_exhausted",
            AgentError::Degraded => "agent_degraded",
            AgentError::Provider(e) => e.code(),
            AgentError::Tool(e) => e.code(),
            AgentError::Retrieval(_) => "retrieval_failed",
            AgentError::Database(_) => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown model provider `{0}`")]
    UnknownProvider(String),
    #[error("no API key configured for provider `{0}`")]
    MissingApiKey(&'static str),
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
    #[error("scripted provider: {0}")]
    Script(String),
}

impl ProviderError {
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::UnknownProvider(_) => "unknown_model",
            ProviderError::MissingApiKey(_) => "model_not_configured",
            ProviderError::Status { status: 429, .. } => "model_rate_limited",
            ProviderError::ContextTooLong { .. } => "context_too_long",
            _ => "model_error",
        }
    }
}
