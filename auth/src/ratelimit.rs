//! Request rate limits per tenant and per API key, shared by every instance through Redis.
//!
//! GCRA (the generic cell rate algorithm) in one Lua script: each key stores a theoretical
//! arrival time; a request is allowed while it is no more than one window ahead of now. A
//! fresh key therefore admits exactly `limit` requests at once, then one every
//! `window / limit` — no bursts at window edges as with fixed windows.

use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::principal::{Actor, Principal};

/// KEYS[1] = key; ARGV[1] = emission interval (µs); ARGV[2] = window (µs).
/// Returns 0 when allowed, else the microseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - window - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(window / 1000) + 1)
return 0
";

#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Requests per `window` per tenant (all its users and keys together); 0 = unlimited.
    pub per_tenant: u32,
    /// Requests per `window` per API key; 0 = unlimited.
    pub per_api_key: u32,
    pub window: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_tenant: 1200,
            per_api_key: 300,
            window: Duration::from_secs(60),
        }
    }
}

pub struct RateLimiter {
    redis: ConnectionManager,
    limits: RateLimits,
    script: Script,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, limits: RateLimits) -> Self {
        Self {
            redis,
            limits,
            script: Script::new(GCRA),
        }
    }

    /// `Some(wait)` when `principal` is over a limit. Redis being down admits the request
    /// (logged): availability wins over strictness for rate limits.
    pub async fn check(&self, principal: &Principal) -> Option<Duration> {
        let mut checks = vec![(
            format!("brain:rl:tenant:{}", principal.tenant),
            self.limits.per_tenant,
        )];
        if let Actor::ApiKey(id) = principal.actor {
            checks.push((format!("brain:rl:key:{id}"), self.limits.per_api_key));
        }
        for (key, limit) in checks {
            if limit == 0 {
                continue;
            }
            let window = u64::try_from(self.limits.window.as_micros()).unwrap_or(u64::MAX);
            let interval = (window / u64::from(limit)).max(1);
            let mut redis = self.redis.clone();
            let result: Result<u64, _> = self
                .script
                .key(&key)
                .arg(interval)
                .arg(window)
                .invoke_async(&mut redis)
                .await;
            match result {
                Ok(0) => {}
                Ok(wait_us) => return Some(Duration::from_micros(wait_us)),
                Err(e) => tracing::warn!(error = %e, "rate limiter unavailable; admitting"),
            }
        }
        None
    }
}
