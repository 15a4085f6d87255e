//! The secret store: where every credential, signing key and webhook secret lives.
//! Postgres only ever holds a [`SecretPath`] pointing here.
//!
//! The trait is consumed across crates as `Arc<dyn SecretStore>`; [`VaultSecretStore`]
//! implements it on Vault's (or OpenBao's) KV version 2 engine through `vaultrs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
            .timeout(Some(Duration::from_secs(10)))
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

/// A read-through cache in front of another store: a secret read on every model call and
/// tool call (BYOK keys, connector credentials) costs a Vault round trip at most once per
/// `ttl`. Writes and deletes through this store drop the cached entry at once; a change made
/// by another Brain instance is seen within `ttl`. Absent secrets are cached too (most
/// tenants bring no model key). Values stay in process memory, as they do while in use.
pub struct CachedSecretStore {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    entries: Mutex<HashMap<SecretPath, CachedSecret>>,
}

struct CachedSecret {
    value: Option<SecretMap>,
    read_at: Instant,
}

/// Cached paths beyond this are dropped wholesale (a bound, not an eviction policy: the
/// working set is a few secrets per active tenant).
const CACHE_CAPACITY: usize = 10_000;

impl CachedSecretStore {
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<SecretPath, CachedSecret>> {
        // A panic while holding the lock cannot leave a half-written entry behind.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SecretStore for CachedSecretStore {
    async fn put(&self, path: &SecretPath, values: &SecretMap) -> Result<(), SecretError> {
        self.entries().remove(path);
        let result = self.inner.put(path, values).await;
        self.entries().remove(path);
        result
    }

    async fn get(&self, path: &SecretPath) -> Result<Option<SecretMap>, SecretError> {
        if let Some(hit) = self.entries().get(path)
            && hit.read_at.elapsed() < self.ttl
        {
            return Ok(hit.value.clone());
        }
        let read_at = Instant::now();
        let value = self.inner.get(path).await?;
        let mut entries = self.entries();
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(
            path.clone(),
            CachedSecret {
                value: value.clone(),
                read_at,
            },
        );
        Ok(value)
    }

    async fn destroy(&self, path: &SecretPath) -> Result<(), SecretError> {
        self.entries().remove(path);
        let result = self.inner.destroy(path).await;
        self.entries().remove(path);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A store in memory that counts its reads.
    #[derive(Default)]
    struct Counting {
        values: Mutex<HashMap<SecretPath, SecretMap>>,
        reads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SecretStore for Counting {
        async fn put(&self, path: &SecretPath, values: &SecretMap) -> Result<(), SecretError> {
            self.values
                .lock()
                .unwrap()
                .insert(path.clone(), values.clone());
            Ok(())
        }

        async fn get(&self, path: &SecretPath) -> Result<Option<SecretMap>, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.values.lock().unwrap().get(path).cloned())
        }

        async fn destroy(&self, path: &SecretPath) -> Result<(), SecretError> {
            self.values.lock().unwrap().remove(path);
            Ok(())
        }
    }

    fn key(value: &str) -> SecretMap {
        SecretMap::from([("api_key".to_owned(), SecretString::new(value))])
    }

    #[tokio::test]
    async fn the_cache_reads_once_per_ttl_and_sees_its_own_writes_at_once() {
        let inner = Arc::new(Counting::default());
        let cache = CachedSecretStore::new(inner.clone(), Duration::from_secs(3600));
        let path = SecretPath::tenant(TenantId::new(), "llm", "openai").unwrap();

        assert_eq!(cache.get(&path).await.unwrap(), None);
        assert_eq!(cache.get(&path).await.unwrap(), None);
        assert_eq!(inner.reads.load(Ordering::SeqCst), 1, "absence is cached");

        cache.put(&path, &key("k1")).await.unwrap();
        assert_eq!(cache.get(&path).await.unwrap(), Some(key("k1")));
        assert_eq!(cache.get(&path).await.unwrap(), Some(key("k1")));
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2);

        cache.destroy(&path).await.unwrap();
        assert_eq!(
            cache.get(&path).await.unwrap(),
            None,
            "a delete is seen at once"
        );
    }

    #[tokio::test]
    async fn a_change_made_elsewhere_is_seen_after_the_ttl() {
        let inner = Arc::new(Counting::default());
        let cache = CachedSecretStore::new(inner.clone(), Duration::from_millis(50));
        let path = SecretPath::connector(TenantId::new(), "slack").unwrap();
        inner.put(&path, &key("old")).await.unwrap();
        assert_eq!(cache.get(&path).await.unwrap(), Some(key("old")));
        // Another instance rotates the credential behind this cache's back.
        inner.put(&path, &key("new")).await.unwrap();
        assert_eq!(cache.get(&path).await.unwrap(), Some(key("old")));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.get(&path).await.unwrap(), Some(key("new")));
    }

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
