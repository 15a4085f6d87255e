//! The runtime's errors: an agent-level failure, a crashed turn, or an unavailable tree.

use brain_agents::AgentError;
use brain_auth::{Code, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The turn panicked; its agent actor is being restarted. Nothing of the turn was kept.
    #[error("the agent crashed during the turn and is being restarted")]
    TurnCrashed,
    #[error("the agent runtime is unavailable ({0})")]
    Unavailable(String),
}

impl ErrorCode for RuntimeError {
    fn code(&self) -> Code {
        match self {
            RuntimeError::Agent(e) => e.code(),
            RuntimeError::TurnCrashed => Code::AgentCrashed,
            RuntimeError::Unavailable(_) => Code::Unavailable,
        }
    }
}

impl<T> From<ractor::MessagingErr<T>> for RuntimeError {
    fn from(e: ractor::MessagingErr<T>) -> Self {
        RuntimeError::Unavailable(e.to_string())
    }
}
