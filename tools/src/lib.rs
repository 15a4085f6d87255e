//! Connectors and tools: the registry of the 13 connectors, their HTTP clients, the
//! [`ConnectorService`] that connects, tests, reads and acts for a tenant, capability handles
//! minted from stored grants (the only way an agent reaches a connector), and webhook
//! signature verification.

pub mod a2a;
pub mod capability;
mod connectors;
pub mod error;
mod idempotency;
pub mod mcp;
mod oauth;
pub mod registry;
mod service;
mod transport;
pub mod webhook;
pub mod webhooks;

pub use capability::{Approval, Capability, CapabilityTool, Tool, ToolSpec, split_tool_name};
pub use connectors::{Endpoints, GOOGLE_ADS_VERSION, META_GRAPH_VERSION, ResourceQuery};
pub use error::ToolError;
pub use registry::{ActionDef, AuthField, ConnectorDef, FieldKind};
pub use service::{ConnectionStatus, ConnectorService, ConnectorView, ServiceConfig};
pub use transport::RetryPolicy;
pub use webhooks::{
    CreatedWebhook, InboundEvent, NewWebhook, Received, RequestMeta, Webhook, WebhookMetrics,
    WebhookService,
};
