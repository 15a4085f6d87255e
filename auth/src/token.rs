//! Access tokens: short-lived EdDSA JWTs carrying `sub`, `tid`, `role`, `exp`, `iat`, `jti`
//! (and `kid` in the header), verified locally — from the key ring in the same process, or
//! from the auth service's JWKS, fetched once and refreshed when an unknown `kid` appears.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{Jwks, KeyRing};
use crate::{AuthError, Role, TenantId, unix_now};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: Uuid,
    pub tid: TenantId,
    pub role: Role,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
}

#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "brain".to_owned(),
            audience: "brain".to_owned(),
            access_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// Signs access tokens with the key ring's current key.
pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    settings: TokenSettings,
}

impl TokenIssuer {
    pub fn new(keys: Arc<KeyRing>, settings: TokenSettings) -> Self {
        Self { keys, settings }
    }

    pub fn access_ttl(&self) -> Duration {
        self.settings.access_ttl
    }

    /// A signed access token for `user` acting as `role` in `tenant`.
    pub fn issue(&self, tenant: TenantId, user: Uuid, role: Role) -> Result<String, AuthError> {
        let now = unix_now();
        let ttl = i64::try_from(self.settings.access_ttl.as_secs()).unwrap_or(900);
        let claims = Claims {
            sub: user,
            tid: tenant,
            role,
            iat: now,
            exp: now + ttl,
            jti: Uuid::now_v7(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
        };
        self.sign(&claims)
    }

    /// Signs `claims` as they are with the current key (tokens for other flows, and tests
    /// that need an expired or foreign-issuer token).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let (kid, key) = self.keys.signing_key()?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &key).map_err(|_| AuthError::KeyMaterial)
    }
}

/// Where verification keys come from.
pub enum KeySource {
    /// The key ring of this process (the auth service runs here).
    Local(Arc<KeyRing>),
    /// The auth service's `/.well-known/jwks.json`, cached.
    Remote(RemoteJwks),
}

pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: RwLock<Option<Instant>>,
}

/// An unknown `kid` triggers at most one JWKS fetch per this interval.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

impl RemoteJwks {
    pub fn new(url: impl Into<String>) -> Result<Self, AuthError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        Ok(Self {
            url: url.into(),
            http,
            keys: RwLock::new(HashMap::new()),
            last_fetch: RwLock::new(None),
        })
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, AuthError> {
        if let Some(key) = self.cached(kid) {
            return Ok(Some(key));
        }
        let recently = self
            .last_fetch
            .read()
            .ok()
            .and_then(|t| *t)
            .is_some_and(|t| t.elapsed() < REFETCH_INTERVAL);
        if recently {
            return Ok(None);
        }
        if let Ok(mut t) = self.last_fetch.write() {
            *t = Some(Instant::now());
        }
        let jwks: Jwks = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        let fresh: HashMap<String, DecodingKey> = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                DecodingKey::from_ed_components(&k.x)
                    .ok()
                    .map(|d| (k.kid.clone(), d))
            })
            .collect();
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        Ok(self.cached(kid))
    }
}

/// Verifies access tokens: EdDSA only (no `none`, no HMAC), known `kid`, issuer, audience,
/// expiry.
pub struct TokenVerifier {
    source: KeySource,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(source: KeySource, settings: &TokenSettings) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self { source, validation }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::InvalidToken);
        }
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let key = match &self.source {
            KeySource::Local(ring) => ring.decoding_key(&kid),
            KeySource::Remote(remote) => remote.key(&kid).await?,
        }
        .ok_or(AuthError::InvalidToken)?;
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::InvalidToken)
    }
}
