//! A2A (Agent2Agent): the wire format of its JSON-RPC binding, shared by Brain's published
//! agents (the gateway's `/a2a/…`) and remote agents Brain calls.

pub(crate) mod client;
pub mod wire;
