//! Identity and tenancy: tenants, users, roles and permissions, tokens, API keys, SSO,
//! the tenant context every request runs in, and the secret store (Vault/OpenBao).

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod client_ip;
pub mod egress;
pub mod error;
pub mod http;
pub mod keys;
pub mod password;
pub mod permission;
pub mod principal;
pub mod ratelimit;
pub mod refresh;
pub mod revocation;
pub mod secrets;
pub mod service;
pub mod sso;
pub mod tenant;
pub mod throttle;
pub mod token;

pub use error::{AuthError, FieldError};
pub use http::{Code, ErrorCode};
pub use permission::{Permission, Scope};
pub use principal::{Actor, Authenticated, Authenticator, Authorized, Principal, require};
pub use tenant::{Role, TenantId};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Makes rustls use `ring` for every TLS client in the process (one TLS stack, no aws-lc
/// build). Every constructor of an HTTP client in Brain calls it; safe to call repeatedly.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
