//! The secret store: where every credential, signing key and webhook secret lives.
//! Postgres only ever holds a [`SecretPath`] pointing here.
//!
//! The trait is consumed across crates as `Arc<dyn SecretStore>`; [`VaultSecretStore`]
//! implements it on Vault's (or OpenBao's) KV version 2 engine through `vaultrs`.

use std::collections::BTreeMap;
use std::fmt;

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::TenantId;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value; call only where it is sent to the one party that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Field name → secret value, as stored at one path.
pub type SecretMap = BTreeMap<String, SecretString>;

/// Where a secret lives, relative to the KV mount. Built only through the constructors, so
/// a tenant's secrets always sit under `tenants/{tenant}/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretPath(String);

impl SecretPath {
    /// `tenants/{tenant}/connectors/{connector}`: a connector's credentials.
    pub fn connector(tenant: TenantId, connector: &str) -> Result<Self, SecretError> {
        Ok(Self(format!(
            "tenants/{tenant}/connectors/{}",
            segment(connector)?
        )))
    }

    /// `tenants/{tenant}/{kind}/{name}`: any other per-tenant secret (webhook secrets,
    /// BYOK model keys, …).
    pub fn tenant(tenant: TenantId, kind: &str, name: &str) -> Result<Self, SecretError> {
        Ok(Self(format!(
            "tenants/{tenant}/{}/{}",
            segment(kind)?,
            segment(name)?
        )))
    }

    /// `brain/{name}`: secrets of Brain itself (e.g. token signing keys).
    pub fn system(name: &str) -> Result<Self, SecretError> {
        Ok(Self(format!("brain/{}", segment(name)?)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a path read back from Postgres; refuses anything the constructors could not
    /// have produced.
    pub fn parse(stored: &str) -> Result<Self, SecretError> {
        let valid = (stored.starts_with("tenants/") || stored.starts_with("brain/"))
            && stored.split('/').all(|part| segment(part).is_ok());
        if valid {
            Ok(Self(stored.to_owned()))
        } else {
            Err(SecretError::BadPath(stored.to_owned()))
        }
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn segment(part: &str) -> Result<&str, SecretError> {
    let ok = !part.is_empty()
        && part.len() <= 128
        && part != "."
        && part != ".."
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(part)
    } else {
        Err(SecretError::BadPath(part.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("invalid secret path segment `{0}`")]
    BadPath(String),
    #[error("secret store is not reachable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("secret store refused the request (status {status})")]
    Refused { status: u16 },
    #[error("secret store configuration: {0}")]
    Config(String),
}

#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    /// Replaces the secret at `path` with `values`.
    async fn put(&self, path: &SecretPath, values: &SecretMap) -> Result<(), SecretError>;
    /// The secret at `path`, or `None` when there is none.
    async fn get(&self, path: &SecretPath) -> Result<Option<SecretMap>, SecretError>;
    /// Destroys every version of the secret at `path`; no-op when there is none.
    async fn destroy(&self, path: &SecretPath) -> Result<(), SecretError>;
}

/// Vault / OpenBao, KV version 2.
pub struct VaultSecretStore {
    client: VaultClient,
    mount: String,
}

impl VaultSecretStore {
    /// `mount` is the KV v2 mount (`secret` in dev mode).
    pub fn new(addr: &str, token: &str, mount: &str) -> Result<Self, SecretError> {
        crate::install_crypto_provider();
        let settings = VaultClientSettingsBuilder::default()
            .address(addr)
            .token(token)
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| SecretError::Config(e.to_string()))?;
        let client = VaultClient::new(settings).map_err(|e| SecretError::Config(e.to_string()))?;
        Ok(Self {
            client,
            mount: mount.to_owned(),
        })
    }
}

fn classify(error: ClientError) -> SecretError {
    match error {
        ClientError::APIError { code, .. } => SecretError::Refused { status: code },
        other => SecretError::Unavailable(Box::new(other)),
    }
}

#[async_trait::async_trait]
impl SecretStore for VaultSecretStore {
    async fn put(&self, path: &SecretPath, values: &SecretMap) -> Result<(), SecretError> {
        let data: BTreeMap<&str, &str> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        vaultrs::kv2::set(&self.client, &self.mount, path.as_str(), &data)
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn get(&self, path: &SecretPath) -> Result<Option<SecretMap>, SecretError> {
        match vaultrs::kv2::read::<BTreeMap<String, String>>(
            &self.client,
            &self.mount,
            path.as_str(),
        )
        .await
        {
            Ok(data) => Ok(Some(
                data.into_iter()
                    .map(|(k, v)| (k, SecretString(v)))
                    .collect(),
            )),
            Err(ClientError::APIError { code: 404, .. }) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    async fn destroy(&self, path: &SecretPath) -> Result<(), SecretError> {
        match vaultrs::kv2::delete_metadata(&self.client, &self.mount, path.as_str()).await {
            Ok(()) | Err(ClientError::APIError { code: 404, .. }) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_their_tenant() {
        let tenant = TenantId::new();
        let path = SecretPath::connector(tenant, "zoho-crm").unwrap();
        assert_eq!(
            path.as_str(),
            format!("tenants/{tenant}/connectors/zoho-crm")
        );
        for bad in ["", "..", "a/b", "../../brain/jwt", "x y"] {
            assert!(
                SecretPath::connector(tenant, bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert_eq!(SecretPath::parse(path.as_str()).unwrap(), path);
        assert!(SecretPath::parse("tenants/../brain").is_err());
        assert!(SecretPath::parse("sys/mounts").is_err());
    }

    #[test]
    fn secret_strings_never_print() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }
}
