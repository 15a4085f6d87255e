//! Errors of durable tasks and rules, each with a stable code for the API edge.

use brain_agents::AgentError;
use brain_auth::{Code, ErrorCode, FieldError};

use brain_automation::rules::RuleError;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task not found")]
    NotFound,
    #[error(transparent)]
    Validation(#[from] FieldError),
    #[error("idempotency key `{0}` was already used for a different request")]
    IdempotencyConflict(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("Temporal is unavailable: {0}")]
    Temporal(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("audit error")]
    Audit(#[from] brain_auth::AuthError),
    #[error("secret store error")]
    Secrets(#[from] brain_auth::secrets::SecretError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl TaskError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError::Validation(FieldError::new(field, message))
    }
}

impl ErrorCode for TaskError {
    fn code(&self) -> Code {
        match self {
            TaskError::NotFound => Code::NotFound,
            TaskError::Validation(_) => Code::ValidationFailed,
            TaskError::IdempotencyConflict(_) => Code::IdempotencyConflict,
            TaskError::Conflict(_) => Code::Conflict,
            TaskError::Forbidden(_) => Code::Forbidden,
            TaskError::Agent(e) => e.code(),
            TaskError::Rule(e) => e.code(),
            TaskError::Temporal(_) => Code::Unavailable,
            TaskError::Database(e) => e.code(),
            TaskError::Audit(e) => e.code(),
            TaskError::Secrets(_) | TaskError::Internal(_) => Code::Internal,
        }
    }
}
