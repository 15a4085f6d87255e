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

/// Fixed-window failure counters in Redis: a counter's window starts at its first failure
/// and is not extended; a counter at its limit blocks until its window ends. Login
/// throttling and webhook signature failures both count this way.
#[derive(Clone)]
pub struct FailureWindows {
    redis: ConnectionManager,
    window_secs: u64,
}

impl FailureWindows {
    pub fn new(redis: ConnectionManager, window_secs: u64) -> Self {
        Self { redis, window_secs }
    }

    /// `Some(seconds)` until the first of `limits`' counters at its limit frees up.
    pub async fn blocked(&self, limits: &[(&str, u32)]) -> Result<Option<u64>, redis::RedisError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        for (key, _) in limits {
            pipe.get(key).ttl(key);
        }
        let counts: Vec<(Option<u32>, i64)> = pipe.query_async(&mut redis).await?;
        Ok(limits
            .iter()
            .zip(counts)
            .find(|((_, limit), (count, _))| count.unwrap_or(0) >= *limit)
            .map(|(_, (_, ttl))| u64::try_from(ttl).unwrap_or(self.window_secs).max(1)))
    }

    /// Counts one failure against each of `keys`; returns the new counts.
    pub async fn record(&self, keys: &[&str]) -> Result<Vec<u32>, redis::RedisError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        for key in keys {
            // EXPIRE NX: the window starts at the first failure and is not extended.
            pipe.incr(key, 1)
                .cmd("EXPIRE")
                .arg(key)
                .arg(self.window_secs)
                .arg("NX")
                .ignore();
        }
        pipe.query_async(&mut redis).await
    }

    /// Forgets `keys`' counters.
    pub async fn clear(&self, keys: &[&str]) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        redis::cmd("DEL").arg(keys).query_async(&mut redis).await
    }
}

pub struct LoginThrottle {
    windows: FailureWindows,
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
        Self {
            windows: FailureWindows::new(redis, settings.window_secs),
            settings,
        }
    }

    /// `Some(seconds)` to wait when a counter is at its limit or the account is slowed.
    pub async fn blocked(
        &self,
        tenant: Option<&str>,
        email: &str,
        ip: &str,
    ) -> Result<Option<u64>, AuthError> {
        let account_ip = account_ip_key(tenant, email, ip);
        let ip = ip_key(ip);
        let limits = [
            (account_ip.as_str(), self.settings.per_account),
            (ip.as_str(), self.settings.per_ip),
        ];
        if let Some(wait) = self.windows.blocked(&limits).await? {
            return Ok(Some(wait));
        }
        let mut redis = self.windows.redis.clone();
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
        let keys = [
            account_key(tenant, email),
            account_ip_key(tenant, email, ip),
            ip_key(ip),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let counts = self.windows.record(&keys).await?;
        let account_failures = counts.first().copied().unwrap_or(0);
        if account_failures >= self.settings.slow_after() {
            let mut redis = self.windows.redis.clone();
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
        let keys = [
            account_key(tenant, email),
            account_ip_key(tenant, email, ip),
            slowed_key(tenant, email),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.windows.clear(&keys).await?;
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
