//! OAuth access tokens for the connectors that need one (Zoho CRM, Google Ads, GA4):
//! refresh-token and service-account (JWT bearer) grants, cached in Redis until shortly
//! before they expire so every call does not cost a token round trip.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use brain_auth::TenantId;
use brain_auth::secrets::SecretString;
use redis::AsyncCommands as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ToolError;
use crate::transport::{Redactor, Req, Transport};

/// Tokens are dropped from the cache this long before the platform says they expire, so a
/// token is never used in its last seconds.
const EXPIRY_MARGIN_SECS: u64 = 60;

/// The Redis-backed cache of access tokens.
#[derive(Clone)]
pub(crate) struct TokenCache {
    redis: redis::aio::ConnectionManager,
}

impl TokenCache {
    pub(crate) fn new(redis: redis::aio::ConnectionManager) -> Self {
        Self { redis }
    }

    /// Where one tenant's connector token is cached. `identity` (client id + refresh token,
    /// or the service-account key) is hashed into a fingerprint stored with the token, so
    /// new credentials never reuse an old token.
    pub(crate) fn key(tenant: TenantId, connector: &str, identity: &[&str]) -> TokenKey {
        let mut h = Sha256::new();
        for part in identity {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let digest = h.finalize();
        TokenKey {
            redis_key: Self::redis_key(tenant, connector),
            fingerprint: digest.iter().take(12).map(|b| format!("{b:02x}")).collect(),
        }
    }

    fn redis_key(tenant: TenantId, connector: &str) -> String {
        format!("brain:tools:oauth:{tenant}:{connector}")
    }

    pub(crate) async fn get(&self, key: &TokenKey) -> Result<Option<SecretString>, ToolError> {
        let mut conn = self.redis.clone();
        let raw: Option<String> = conn.get(&key.redis_key).await?;
        let cached = raw.and_then(|r| serde_json::from_str::<Value>(&r).ok());
        Ok(cached.and_then(|v| {
            let same = v.get("fp").and_then(Value::as_str) == Some(key.fingerprint.as_str());
            let token = v
                .get("token")
                .and_then(Value::as_str)
                .map(SecretString::new);
            token.filter(|_| same)
        }))
    }

    pub(crate) async fn put(
        &self,
        key: &TokenKey,
        token: &SecretString,
        expires_in: u64,
    ) -> Result<(), ToolError> {
        let ttl = expires_in.saturating_sub(EXPIRY_MARGIN_SECS);
        if ttl == 0 {
            return Ok(());
        }
        let value = serde_json::json!({"fp": key.fingerprint, "token": token.expose()}).to_string();
        let mut conn = self.redis.clone();
        let _: () = conn.set_ex(&key.redis_key, value, ttl).await?;
        Ok(())
    }

    /// Forgets the cached token of a tenant's connector (after a 401 or a disconnect).
    pub(crate) async fn forget(&self, tenant: TenantId, connector: &str) -> Result<(), ToolError> {
        let mut conn = self.redis.clone();
        let _: () = conn.del(Self::redis_key(tenant, connector)).await?;
        Ok(())
    }
}

/// A token's cache slot and the fingerprint of the credentials it belongs to.
pub(crate) struct TokenKey {
    redis_key: String,
    fingerprint: String,
}

/// An access token and its lifetime in seconds, from a token endpoint's JSON answer.
/// Zoho answers HTTP 200 with `{"error": "invalid_code"}` for a bad refresh token, so a
/// missing `access_token` next to an `error` counts as rejected credentials.
pub(crate) fn parse_token(connector: &str, body: &Value) -> Result<(SecretString, u64), ToolError> {
    match body.get("access_token").and_then(Value::as_str) {
        Some(token) => {
            let expires_in = body
                .get("expires_in")
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(3600);
            Ok((SecretString::new(token), expires_in))
        }
        None if body.get("error").is_some() => Err(ToolError::Unauthorized {
            connector: connector.to_owned(),
            status: 400,
        }),
        None => Err(ToolError::BadResponse {
            connector: connector.to_owned(),
            reason: "token endpoint answered without access_token".to_owned(),
        }),
    }
}

/// Exchanges a refresh token at `token_url` (RFC 6749 §6), form-encoded in the body so the
/// secrets never sit in a URL.
pub(crate) async fn refresh_token_grant(
    transport: &Transport,
    connector: &str,
    token_url: &str,
    client_id: &str,
    client_secret: &SecretString,
    refresh_token: &SecretString,
    redact: &Redactor,
) -> Result<(SecretString, u64), ToolError> {
    let req = Req::post(token_url)
        .form(vec![
            ("grant_type".into(), "refresh_token".into()),
            ("client_id".into(), client_id.to_owned()),
            ("client_secret".into(), client_secret.expose().to_owned()),
            ("refresh_token".into(), refresh_token.expose().to_owned()),
        ])
        .retry_safe();
    match transport.send(connector, req, redact).await {
        Ok(reply) => parse_token(connector, &reply.body),
        // Token endpoints answer 400 `invalid_grant` for a revoked or wrong refresh token.
        Err(ToolError::Platform { status: 400, .. }) => Err(ToolError::Unauthorized {
            connector: connector.to_owned(),
            status: 400,
        }),
        Err(e) => Err(e),
    }
}

/// The fields of a Google service-account key file that Brain uses.
pub(crate) struct ServiceAccount {
    pub(crate) client_email: String,
    pub(crate) private_key_id: Option<String>,
    private_key_pem: SecretString,
}

impl ServiceAccount {
    pub(crate) fn parse(connector: &str, json: &SecretString) -> Result<Self, ToolError> {
        let bad = |m: &str| ToolError::InvalidCredentials {
            connector: connector.to_owned(),
            message: format!("service_account_json: {m}"),
        };
        let v: Value = serde_json::from_str(json.expose()).map_err(|_| bad("not valid JSON"))?;
        let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            client_email: field("client_email").ok_or_else(|| bad("client_email is missing"))?,
            private_key_id: field("private_key_id"),
            private_key_pem: SecretString::new(
                field("private_key").ok_or_else(|| bad("private_key is missing"))?,
            ),
        })
    }

    /// A signed RS256 JWT asserting this account for `scope`, valid for an hour
    /// (Google's "OAuth 2.0 for server to server applications").
    pub(crate) fn assertion(
        &self,
        connector: &str,
        scope: &str,
        audience: &str,
    ) -> Result<SecretString, ToolError> {
        let bad = |m: &str| ToolError::InvalidCredentials {
            connector: connector.to_owned(),
            message: format!("service_account_json: {m}"),
        };
        let der = pem_body(self.private_key_pem.expose())
            .ok_or_else(|| bad("private_key is not a PEM key"))?;
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| bad("private_key is not an RSA PKCS#8 key"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
        });
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let mut signature = vec![0u8; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| ToolError::Internal("signing the service-account assertion failed".into()))?;
        Ok(SecretString::new(format!(
            "{signing_input}.{}",
            b64.encode(signature)
        )))
    }

    pub(crate) fn private_key(&self) -> &SecretString {
        &self.private_key_pem
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    // Key files written by hand sometimes keep the JSON escape `\n` literally.
    let body = body.replace("\\n", "");
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Exchanges a service-account assertion for an access token (RFC 7523).
pub(crate) async fn jwt_bearer_grant(
    transport: &Transport,
    connector: &str,
    token_url: &str,
    assertion: &SecretString,
    redact: &Redactor,
) -> Result<(SecretString, u64), ToolError> {
    let req = Req::post(token_url)
        .form(vec![
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
            ),
            ("assertion".into(), assertion.expose().to_owned()),
        ])
        .retry_safe();
    match transport.send(connector, req, redact).await {
        Ok(reply) => parse_token(connector, &reply.body),
        Err(ToolError::Platform { status: 400, .. }) => Err(ToolError::Unauthorized {
            connector: connector.to_owned(),
            status: 400,
        }),
        Err(e) => Err(e),
    }
}
