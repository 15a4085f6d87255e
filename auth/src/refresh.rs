//! Refresh sessions in Redis: opaque tokens stored only as SHA-256, grouped in families.
//! Each refresh spends its token and issues the next one of the same family; presenting a
//! spent token again means it was stolen or replayed, so the whole family is revoked.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{AuthError, TenantId};

const PREFIX: &str = "rt_";

/// What a refresh token stands for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub tenant: TenantId,
    pub user: Uuid,
    pub family: Uuid,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// The token was live: here is its session (the caller issues the next token).
    Valid(Session),
    /// Unknown, expired or revoked.
    Invalid,
    /// Already spent: the family has just been revoked.
    Replayed,
}

pub struct RefreshStore {
    redis: ConnectionManager,
    ttl: Duration,
}

fn token_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("brain:auth:rt:{hex}")
}

fn family_key(family: Uuid) -> String {
    format!("brain:auth:rtf:{family}")
}

impl RefreshStore {
    pub fn new(redis: ConnectionManager, ttl: Duration) -> Self {
        Self { redis, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new family with its first token.
    pub async fn start(&self, tenant: TenantId, user: Uuid) -> Result<String, AuthError> {
        let session = Session {
            tenant,
            user,
            family: Uuid::now_v7(),
        };
        let mut redis = self.redis.clone();
        let _: () = redis
            .set_ex(family_key(session.family), "active", self.ttl.as_secs())
            .await?;
        self.mint(&session).await
    }

    async fn mint(&self, session: &Session) -> Result<String, AuthError> {
        let mut random = [0u8; 32];
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| AuthError::KeyMaterial)?;
        let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
        let value = serde_json::to_string(session).map_err(|_| AuthError::KeyMaterial)?;
        let mut redis = self.redis.clone();
        let _: () = redis
            .set_ex(token_key(&token), value, self.ttl.as_secs())
            .await?;
        Ok(token)
    }

    /// Spends `token`. On success returns the session and the next token of its family.
    pub async fn rotate(&self, token: &str) -> Result<(Refreshed, Option<String>), AuthError> {
        let mut redis = self.redis.clone();
        let key = token_key(token);
        let Some(value): Option<String> = redis.get(&key).await? else {
            return Ok((Refreshed::Invalid, None));
        };
        let session: Session = match serde_json::from_str(&value) {
            Ok(s) => s,
            Err(_) => return Ok((Refreshed::Invalid, None)),
        };
        let family: Option<String> = redis.get(family_key(session.family)).await?;
        if family.as_deref() != Some("active") {
            return Ok((Refreshed::Invalid, None));
        }
        // SET NX on the spent marker is the atomic "first use wins".
        let first_use: bool = redis::cmd("SET")
            .arg(format!("{key}:spent"))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl.as_secs())
            .query_async::<Option<String>>(&mut redis)
            .await?
            .is_some();
        if !first_use {
            self.revoke_family(session.family).await?;
            return Ok((Refreshed::Replayed, None));
        }
        let next = self.mint(&session).await?;
        Ok((Refreshed::Valid(session), Some(next)))
    }

    /// Revokes the family `token` belongs to (logout). Unknown tokens are ignored.
    pub async fn revoke(&self, token: &str) -> Result<(), AuthError> {
        let mut redis = self.redis.clone();
        let value: Option<String> = redis.get(token_key(token)).await?;
        if let Some(session) = value.and_then(|v| serde_json::from_str::<Session>(&v).ok()) {
            self.revoke_family(session.family).await?;
        }
        Ok(())
    }

    async fn revoke_family(&self, family: Uuid) -> Result<(), AuthError> {
        let mut redis = self.redis.clone();
        let _: () = redis
            .set_ex(family_key(family), "revoked", self.ttl.as_secs())
            .await?;
        Ok(())
    }
}
