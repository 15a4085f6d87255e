//! Session revocation: disabling, demoting or deleting a user ends their access tokens at
//! once instead of when the tokens expire.
//!
//! A revocation is one Redis key per user holding the time (Unix milliseconds) it happened,
//! kept as long as an access token lives. A token issued at or before that time is refused.
//! The issue time comes from the token's `jti`, a UUIDv7 carrying its milliseconds (`iat`
//! has whole seconds only, which would refuse a login made in the same second after the
//! change); a token whose `jti` is not v7 counts as issued at the end of its `iat` second.
//!
//! Verifying a token stays local: each process keeps what it read for half a second, so a
//! token is refused on every instance within that time, and an active user costs at most
//! two Redis reads a second per instance. When Redis cannot be read, tokens are admitted
//! (their signature and expiry still hold), as the rate limiter does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::AuthError;
use crate::token::Claims;

/// How long a revocation read from Redis is trusted by this process.
const FRESH: Duration = Duration::from_millis(500);
/// Past this many cached users, stale entries are dropped.
const MAX_CACHED: usize = 10_000;

pub struct Revocations {
    redis: ConnectionManager,
    /// How long a marker lives: the access-token lifetime (older tokens expired anyway).
    keep: Duration,
    cache: Mutex<HashMap<Uuid, Cached>>,
}

#[derive(Clone, Copy)]
struct Cached {
    read: Instant,
    revoked_ms: Option<i64>,
}

fn key(user: Uuid) -> String {
    format!("brain:auth:revoked:{user}")
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// When `claims` were issued, in Unix milliseconds.
fn issued_ms(claims: &Claims) -> i64 {
    match claims.jti.get_timestamp() {
        Some(ts) if claims.jti.get_version_num() == 7 => {
            let (secs, nanos) = ts.to_unix();
            i64::try_from(secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000)
                .saturating_add(i64::from(nanos / 1_000_000))
        }
        _ => claims.iat.saturating_mul(1000).saturating_add(999),
    }
}

impl Revocations {
    pub fn new(redis: ConnectionManager, access_ttl: Duration) -> Self {
        Self {
            redis,
            keep: access_ttl + Duration::from_secs(60),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Ends every access token `user` holds now. Refresh tokens need no revocation: a
    /// refresh reads the user's current role and refuses disabled or removed users.
    pub async fn revoke(&self, user: Uuid) -> Result<(), AuthError> {
        let at = now_ms();
        let mut redis = self.redis.clone();
        let _: () = redis.set_ex(key(user), at, self.keep.as_secs()).await?;
        self.remember(user, Some(at));
        Ok(())
    }

    /// Whether the token with `claims` was issued before its user's sessions were revoked.
    pub async fn is_revoked(&self, claims: &Claims) -> bool {
        match self.revoked_at(claims.sub).await {
            Some(at) => issued_ms(claims) <= at,
            None => false,
        }
    }

    async fn revoked_at(&self, user: Uuid) -> Option<i64> {
        if let Some(cached) = self.cached(user) {
            return cached;
        }
        let mut redis = self.redis.clone();
        match redis.get::<_, Option<i64>>(key(user)).await {
            Ok(revoked_ms) => {
                self.remember(user, revoked_ms);
                revoked_ms
            }
            Err(e) => {
                tracing::warn!(error = %e, "session revocations unavailable; admitting");
                None
            }
        }
    }

    fn cached(&self, user: Uuid) -> Option<Option<i64>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&user)
            .filter(|c| c.read.elapsed() < FRESH)
            .map(|c| c.revoked_ms)
    }

    fn remember(&self, user: Uuid, revoked_ms: Option<i64>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| c.read.elapsed() < FRESH);
        }
        cache.insert(
            user,
            Cached {
                read: Instant::now(),
                revoked_ms,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, TenantId};

    fn claims(jti: Uuid, iat: i64) -> Claims {
        Claims {
            sub: Uuid::nil(),
            tid: TenantId(Uuid::nil()),
            role: Role::Editor,
            exp: iat + 900,
            iat,
            jti,
            iss: String::new(),
            aud: String::new(),
        }
    }

    #[test]
    fn the_issue_time_has_the_milliseconds_of_a_v7_jti_and_the_end_of_the_second_otherwise() {
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_700_000_000, 123_456_789);
        let v7 = Uuid::new_v7(ts);
        assert_eq!(issued_ms(&claims(v7, 1_700_000_000)), 1_700_000_000_123);
        assert_eq!(
            issued_ms(&claims(Uuid::new_v4(), 1_700_000_000)),
            1_700_000_000_999
        );
    }
}
