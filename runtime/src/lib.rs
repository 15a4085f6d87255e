//! The runtime: the supervision tree in which every agent is an actor
//! (`RuntimeSupervisor → TenantSupervisor → AgentActor`), the [`RuntimeHandle`] the gateway
//! calls, tool capabilities and delegation between agents for turns, and the runtime's metrics.
//!
//! Invariant: this is the only crate that knows the actor library.

pub mod agent;
pub mod delegation;
pub mod deps;
pub mod directory;
pub mod error;
pub mod handle;
pub mod metrics;
pub mod supervisor;
pub mod tenant;
pub mod tools;

pub use agent::AgentStatus;
pub use delegation::{
    ChainLink, DelegationLimits, DelegationOutcome, DelegationRequest, DelegationTool,
};
pub use deps::{RuntimeConfig, RuntimeDeps};
pub use directory::TenantLoad;
pub use error::RuntimeError;
pub use handle::{RuntimeHandle, TurnEventStream};
pub use metrics::RuntimeMetrics;
pub use tools::{ConnectorRegistryCatalog, ConnectorTools, NoToolSource, ToolSource};
