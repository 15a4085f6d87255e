//! Identity and tenancy: tenants, users, roles and permissions, tokens, API keys, SSO,
//! the tenant context every request runs in, and the secret store (Vault/OpenBao).

pub mod error;
pub mod password;
pub mod secrets;
pub mod service;
pub mod tenant;

pub use error::AuthError;
pub use tenant::{Role, TenantId};

/// Makes rustls use `ring` for every TLS client in the process (one TLS stack, no aws-lc
/// build). Every constructor of an HTTP client in Brain calls it; safe to call repeatedly.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
