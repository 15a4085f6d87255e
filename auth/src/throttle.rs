//! Login throttling in Redis: failures counted per (tenant, e-mail) and per client IP in a
//! fixed window; past the limit, logins are refused with the window's remaining time.

use redis::aio::ConnectionManager;

use crate::AuthError;

#[derive(Clone, Debug)]
pub struct ThrottleSettings {
    pub per_account: u32,
    pub per_ip: u32,
    pub window_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_ip: 50,
            window_secs: 15 * 60,
        }
    }
}

pub struct LoginThrottle {
    redis: ConnectionManager,
    settings: ThrottleSettings,
}

fn account_key(tenant: Option<&str>, email: &str) -> String {
    format!(
        "brain:auth:fail:acct:{}:{}",
        tenant.unwrap_or("*"),
        email.to_lowercase()
    )
}

fn ip_key(ip: &str) -> String {
    format!("brain:auth:fail:ip:{ip}")
}

impl LoginThrottle {
    pub fn new(redis: ConnectionManager, settings: ThrottleSettings) -> Self {
        Self { redis, settings }
    }

    /// `Some(seconds)` to wait when either counter is at its limit.
    pub async fn blocked(
        &self,
        tenant: Option<&str>,
        email: &str,
        ip: &str,
    ) -> Result<Option<u64>, AuthError> {
        let mut redis = self.redis.clone();
        for (key, limit) in [
            (account_key(tenant, email), self.settings.per_account),
            (ip_key(ip), self.settings.per_ip),
        ] {
            let (count, ttl): (Option<u32>, i64) = redis::pipe()
                .get(&key)
                .ttl(&key)
                .query_async(&mut redis)
                .await?;
            if count.unwrap_or(0) >= limit {
                return Ok(Some(
                    u64::try_from(ttl)
                        .unwrap_or(self.settings.window_secs)
                        .max(1),
                ));
            }
        }
        Ok(None)
    }

    pub async fn record_failure(
        &self,
        tenant: Option<&str>,
        email: &str,
        ip: &str,
    ) -> Result<(), AuthError> {
        let mut redis = self.redis.clone();
        for key in [account_key(tenant, email), ip_key(ip)] {
            // EXPIRE NX: the window starts at the first failure and is not extended.
            let _: () = redis::pipe()
                .incr(&key, 1)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(self.settings.window_secs)
                .arg("NX")
                .query_async(&mut redis)
                .await?;
        }
        Ok(())
    }

    pub async fn record_success(&self, tenant: Option<&str>, email: &str) -> Result<(), AuthError> {
        let mut redis = self.redis.clone();
        let _: () = redis::cmd("DEL")
            .arg(account_key(tenant, email))
            .query_async(&mut redis)
            .await?;
        Ok(())
    }
}
