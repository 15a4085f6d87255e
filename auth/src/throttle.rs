//! Login throttling in Redis, in fixed windows:
//!
//! * per account **and client address**: past `per_account` failures that address waits
//!   out the window for that account (it is guessing the password);
//! * per client address: past `per_ip` failures it waits out the window for every account;
//! * per account from all addresses: past `slow_after` failures each further attempt waits
//!   a delay doubling with every failure up to `max_delay_secs` — slowed, never locked, so a
//!   stranger who knows an e-mail address cannot lock its owner out.
//!
//! The client address is the one [`crate::client_ip::TrustedProxies`] names, so users
//! signing in through the portal do not share the portal's bucket.

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

impl ThrottleSettings {
    /// Failures of one account from all addresses before attempts are slowed.
    fn slow_after(&self) -> u32 {
        self.per_account.saturating_mul(4)
    }

    /// The wait after the `failures`-th failure of an account, once it is slowed.
    fn delay_ms(&self, failures: u32) -> u64 {
        let over = failures.saturating_sub(self.slow_after()).min(15);
        (1000u64 << over).min(MAX_DELAY_MS)
    }
}

/// The longest an account-wide slow-down makes anyone wait between attempts.
const MAX_DELAY_MS: u64 = 30_000;

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

fn account_ip_key(tenant: Option<&str>, email: &str, ip: &str) -> String {
    format!("{}:ip:{ip}", account_key(tenant, email))
}

/// Present while an account-wide slow-down lasts.
fn slowed_key(tenant: Option<&str>, email: &str) -> String {
    format!("{}:slowed", account_key(tenant, email))
}

fn ip_key(ip: &str) -> String {
    format!("brain:auth:fail:ip:{ip}")
}

impl LoginThrottle {
    pub fn new(redis: ConnectionManager, settings: ThrottleSettings) -> Self {
        Self { redis, settings }
    }

    /// `Some(seconds)` to wait when a counter is at its limit or the account is slowed.
    pub async fn blocked(
        &self,
        tenant: Option<&str>,
        email: &str,
        ip: &str,
    ) -> Result<Option<u64>, AuthError> {
        let mut redis = self.redis.clone();
        for (key, limit) in [
            (account_ip_key(tenant, email, ip), self.settings.per_account),
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
        let slowed_ms: i64 = redis::cmd("PTTL")
            .arg(slowed_key(tenant, email))
            .query_async(&mut redis)
            .await?;
        Ok(u64::try_from(slowed_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(|ms| ms.div_ceil(1000)))
    }

    pub async fn record_failure(
        &self,
        tenant: Option<&str>,
        email: &str,
        ip: &str,
    ) -> Result<(), AuthError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        for key in [
            account_key(tenant, email),
            account_ip_key(tenant, email, ip),
            ip_key(ip),
        ] {
            // EXPIRE NX: the window starts at the first failure and is not extended.
            pipe.incr(&key, 1)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(self.settings.window_secs)
                .arg("NX")
                .ignore();
        }
        let (account_failures, _, _): (u32, u32, u32) = pipe.query_async(&mut redis).await?;
        if account_failures >= self.settings.slow_after() {
            let _: () = redis::cmd("SET")
                .arg(slowed_key(tenant, email))
                .arg(1)
                .arg("PX")
                .arg(self.settings.delay_ms(account_failures))
                .query_async(&mut redis)
                .await?;
        }
        Ok(())
    }

    /// Clears the account's counters for `ip` (the address that got in) and account-wide.
    pub async fn record_success(
        &self,
        tenant: Option<&str>,
        email: &str,
        ip: &str,
    ) -> Result<(), AuthError> {
        let mut redis = self.redis.clone();
        let _: () = redis::cmd("DEL")
            .arg(account_key(tenant, email))
            .arg(account_ip_key(tenant, email, ip))
            .arg(slowed_key(tenant, email))
            .query_async(&mut redis)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_failing_from_many_addresses_is_slowed_by_a_doubling_capped_delay() {
        let settings = ThrottleSettings::default();
        assert_eq!(settings.slow_after(), 20);
        assert_eq!(settings.delay_ms(20), 1000);
        assert_eq!(settings.delay_ms(21), 2000);
        assert_eq!(settings.delay_ms(24), 16_000);
        assert_eq!(settings.delay_ms(25), MAX_DELAY_MS);
        assert_eq!(settings.delay_ms(u32::MAX), MAX_DELAY_MS);
    }
}
