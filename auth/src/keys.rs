//! Token signing keys: Ed25519 key pairs created on first start, kept in the secret store
//! (never in Postgres, never on disk in the clear), rotated on demand. The public halves are
//! published as a JWKS; a rotated-out key keeps verifying until tokens signed with it expire.

use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::secrets::{SecretMap, SecretPath, SecretStore, SecretString};
use crate::{AuthError, unix_now};

const FIELD: &str = "keys";

/// One key as stored (inside the secret store only).
#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#8 DER, base64.
    pkcs8: String,
    created_at: i64,
    retired_at: Option<i64>,
}

struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The raw public key, base64url (JWK `x`).
    public_x: String,
    retired_at: Option<i64>,
}

/// A JSON Web Key Set with the public keys that currently verify.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One Ed25519 public key (RFC 8037: `kty` `OKP`, `crv` `Ed25519`, `alg` `EdDSA`); `kid`
/// names it in the tokens' header.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

pub struct KeyRing {
    store: std::sync::Arc<dyn SecretStore>,
    path: SecretPath,
    /// How long a retired key keeps verifying: at least the access-token lifetime.
    grace_secs: i64,
    keys: RwLock<Vec<LoadedKey>>,
}

impl KeyRing {
    /// Loads the keys from the secret store, creating the first one if there is none.
    pub async fn load_or_create(
        store: std::sync::Arc<dyn SecretStore>,
        grace_secs: i64,
    ) -> Result<Self, AuthError> {
        let path = SecretPath::system("jwt-signing-keys")?;
        let ring = Self {
            store,
            path,
            grace_secs,
            keys: RwLock::new(Vec::new()),
        };
        let stored = ring.read_stored().await?;
        if stored.is_empty() {
            ring.persist(vec![new_key()?]).await?;
        } else {
            ring.install(&stored)?;
        }
        Ok(ring)
    }

    async fn read_stored(&self) -> Result<Vec<StoredKey>, AuthError> {
        let Some(map) = self.store.get(&self.path).await? else {
            return Ok(Vec::new());
        };
        let Some(json) = map.get(FIELD) else {
            return Ok(Vec::new());
        };
        serde_json::from_str(json.expose()).map_err(|_| AuthError::KeyMaterial)
    }

    async fn persist(&self, stored: Vec<StoredKey>) -> Result<(), AuthError> {
        let json = serde_json::to_string(&stored).map_err(|_| AuthError::KeyMaterial)?;
        let map: SecretMap = [(FIELD.to_owned(), SecretString::new(json))]
            .into_iter()
            .collect();
        self.store.put(&self.path, &map).await?;
        self.install(&stored)
    }

    fn install(&self, stored: &[StoredKey]) -> Result<(), AuthError> {
        let loaded = stored.iter().map(load).collect::<Result<Vec<_>, _>>()?;
        let mut keys = self.keys.write().map_err(|_| AuthError::KeyMaterial)?;
        *keys = loaded;
        Ok(())
    }

    /// Makes a new key the signing key; older keys verify for `grace_secs` more, then go.
    pub async fn rotate(&self) -> Result<String, AuthError> {
        let now = unix_now();
        let mut stored = self.read_stored().await?;
        for key in &mut stored {
            key.retired_at.get_or_insert(now);
        }
        stored.retain(|k| k.retired_at.is_none_or(|at| now - at < self.grace_secs));
        let fresh = new_key()?;
        let kid = fresh.kid.clone();
        stored.push(fresh);
        self.persist(stored).await?;
        Ok(kid)
    }

    /// Signs with the current key: (kid, key).
    pub(crate) fn signing_key(&self) -> Result<(String, EncodingKey), AuthError> {
        let keys = self.keys.read().map_err(|_| AuthError::KeyMaterial)?;
        keys.iter()
            .rev()
            .find(|k| k.retired_at.is_none())
            .map(|k| (k.kid.clone(), k.encoding.clone()))
            .ok_or(AuthError::KeyMaterial)
    }

    /// The verification key for `kid`, if it is still valid.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        let now = unix_now();
        let keys = self.keys.read().ok()?;
        keys.iter()
            .find(|k| k.kid == kid && k.retired_at.is_none_or(|at| now - at < self.grace_secs))
            .map(|k| k.decoding.clone())
    }

    pub fn jwks(&self) -> Jwks {
        let now = unix_now();
        let keys = match self.keys.read() {
            Ok(keys) => keys
                .iter()
                .filter(|k| k.retired_at.is_none_or(|at| now - at < self.grace_secs))
                .map(|k| jwk(&k.kid, &k.public_x))
                .collect(),
            Err(_) => Vec::new(),
        };
        Jwks { keys }
    }
}

pub(crate) fn jwk(kid: &str, x: &str) -> Jwk {
    Jwk {
        kty: "OKP".to_owned(),
        crv: "Ed25519".to_owned(),
        x: x.to_owned(),
        kid: kid.to_owned(),
        use_: "sig".to_owned(),
        alg: "EdDSA".to_owned(),
    }
}

fn new_key() -> Result<StoredKey, AuthError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| AuthError::KeyMaterial)?;
    let kid = format!("k{}", uuid::Uuid::now_v7().simple());
    Ok(StoredKey {
        kid,
        pkcs8: STANDARD.encode(pkcs8.as_ref()),
        created_at: unix_now(),
        retired_at: None,
    })
}

fn load(stored: &StoredKey) -> Result<LoadedKey, AuthError> {
    let der = STANDARD
        .decode(&stored.pkcs8)
        .map_err(|_| AuthError::KeyMaterial)?;
    let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| AuthError::KeyMaterial)?;
    let public_x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let decoding =
        DecodingKey::from_ed_components(&public_x).map_err(|_| AuthError::KeyMaterial)?;
    Ok(LoadedKey {
        kid: stored.kid.clone(),
        encoding: EncodingKey::from_ed_der(&der),
        decoding,
        public_x,
        retired_at: stored.retired_at,
    })
}
