//! Identity and tenancy: tenants, users, roles and permissions, tokens, API keys, SSO,
//! the tenant context every request runs in, and the secret store (Vault/OpenBao).

pub mod error;
pub mod password;
pub mod service;
pub mod tenant;

pub use error::AuthError;
pub use tenant::{Role, TenantId};
