//! Connectors and tools: the registry of the 13 connectors, the `Tool` trait with
//! JSON-schema arguments, capability handles minted from stored grants, and webhook
//! signature verification.
