//! The runtime's errors: an agent-level failure, a crashed turn, or an unavailable tree.

use brain_agents::AgentError;

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

impl RuntimeError {
    /// A stable snake_case code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeError::Agent(e) => e.code(),
            RuntimeError::TurnCrashed => "agent_crashed",
            RuntimeError::Unavailable(_) => "runtime_unavailable",
        }
    }
}

impl<T> From<ractor::MessagingErr<T>> for RuntimeError {
    fn from(e: ractor::MessagingErr<T>) -> Self {
        RuntimeError::Unavailable(e.to_string())
    }
}
