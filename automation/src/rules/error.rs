//! The errors of rule validation, template rendering and the rule store.

use brain_auth::{Code, ErrorCode};

/// Why a rule could not be stored, found or run.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The rule (or a patch applied to it) breaks a constraint; `field` is a JSON-ish path
    /// such as `trigger.cron` or `steps.1.connector_action.action`.
    #[error("invalid `{}`: {}", .0.field, .0.message)]
    Validation(brain_auth::FieldError),
    /// A step argument's template failed to render; `path` names the argument.
    #[error("template error in `{path}`: {message}")]
    Template { path: String, message: String },
    /// No such rule in this tenant (another tenant's rules are indistinguishable from absent).
    #[error("rule not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl RuleError {
    pub(crate) fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError::Validation(brain_auth::FieldError::new(field, message))
    }
}

impl ErrorCode for RuleError {
    fn code(&self) -> Code {
        match self {
            RuleError::Validation(_) => Code::ValidationFailed,
            RuleError::Template { .. } => Code::TemplateError,
            RuleError::NotFound => Code::NotFound,
            RuleError::Database(e) => e.code(),
        }
    }
}
