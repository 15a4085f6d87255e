//! Errors of durable tasks and rules, each with a stable code for the API edge.

use brain_agents::AgentError;
use brain_auth::FieldError;

use crate::rules::RuleError;

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

    pub fn code(&self) -> &'static str {
        match self {
            TaskError::NotFound => "not_found",
            TaskError::Validation(_) => "validation_failed",
            TaskError::IdempotencyConflict(_) => "idempotency_conflict",
            TaskError::Conflict(_) => "conflict",
            TaskError::Forbidden(_) => "forbidden",
            TaskError::Agent(e) => e.code(),
            TaskError::Rule(e) => e.code(),
            TaskError::Temporal(_) => "temporal_unavailable",
            TaskError::Database(_) => "database_error",
            TaskError::Audit(_) => "audit_error",
            TaskError::Secrets(_) => "secret_store_error",
            TaskError::Internal(_) => "internal_error",
        }
    }
}
