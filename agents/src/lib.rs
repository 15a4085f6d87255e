//! Agents: the agent spec (role, goal, backstory, temperature, model), the LLM-provider
//! trait and its implementations, prompt assembly, the tool-calling loop and budgets.
//!
//! Two seams are traits here, implemented elsewhere: [`tool::ToolInvoker`] (the tools an
//! agent holds, over capability handles in `runtime`) and [`knowledge::Retriever`]
//! (knowledge search).

pub mod conversation;
pub mod error;
pub mod fit;
pub mod knowledge;
pub mod policy;
pub mod prompt;
pub mod providers;
pub mod spec;
pub mod store;
pub mod structured;
pub mod telemetry;
pub mod tool;
pub mod turn;

pub use conversation::{Conversation, PgTurnStore, StoredMessage, TurnStore};
pub use error::{AgentError, FieldError, ProviderError};
pub use policy::{Refusal, ToolGate, ToolRules, check_budgets};
pub use providers::{LlmProvider, ProviderRegistry};
pub use spec::{AgentId, AgentPatch, AgentSpec, NewAgent, ToolGrant};
pub use store::AgentStore;
pub use turn::{TurnEvent, TurnInput, TurnLimits, TurnResult, run_turn};
