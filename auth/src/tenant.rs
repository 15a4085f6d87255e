//! Tenants and roles: the context every piece of tenant data is read and written in.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a tenant. Passed first to anything that touches tenant data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    /// A new, time-ordered tenant id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub use brain_types::Role;
