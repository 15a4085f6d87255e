//! The runtime: the supervision tree in which every agent is an actor
//! (`RuntimeSupervisor → TenantSupervisor → AgentActor`), and the Temporal worker.
//!
//! Invariant: this is the only crate that knows the actor library.
