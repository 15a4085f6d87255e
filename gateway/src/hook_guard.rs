//! Failed webhook deliveries are rate-limited before they cost anything: a delivery whose
//! signature fails (or whose endpoint does not exist) is counted per source address and per
//! webhook, and past a limit further deliveries are answered 429 before the endpoint lookup,
//! the secret's read from Vault and the failure counter's UPDATE. Genuine deliveries are
//! never counted; platforms retry a 429 later.

use std::net::IpAddr;

use axum::http::HeaderMap;
use brain_auth::client_ip::TrustedProxies;
use brain_auth::throttle::FailureWindows;
use uuid::Uuid;

use crate::error::{ApiError, Code};

/// Limits of [`HookGuard`].
#[derive(Clone, Copy, Debug)]
pub struct HookLimits {
    /// Failed deliveries from one address per window (all webhooks).
    pub per_address: u32,
    /// Failed deliveries to one webhook per window (all addresses).
    pub per_webhook: u32,
    pub window_secs: u64,
}

pub struct HookGuard {
    windows: FailureWindows,
    limits: HookLimits,
    proxies: TrustedProxies,
}

fn address_key(address: &str) -> String {
    format!("brain:hooks:fail:ip:{address}")
}

fn webhook_key(webhook: Uuid) -> String {
    format!("brain:hooks:fail:wh:{webhook}")
}

impl HookGuard {
    pub fn new(
        redis: redis::aio::ConnectionManager,
        limits: HookLimits,
        proxies: TrustedProxies,
    ) -> Self {
        Self {
            windows: FailureWindows::new(redis, limits.window_secs),
            limits,
            proxies,
        }
    }

    /// The delivering client's address: the connection's peer, or the hop a trusted proxy
    /// names; none without a connection (in-process calls), which only the per-webhook
    /// limit then covers.
    pub fn address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<String> {
        peer.map(|peer| self.proxies.client(peer, headers).to_string())
    }

    /// 429 while the address or the webhook is over its failure limit. Redis being
    /// unreachable lets deliveries through (their signatures are still checked).
    pub async fn admit(&self, webhook: Uuid, address: Option<&str>) -> Result<(), ApiError> {
        let (by_address, by_webhook) = (address.map(address_key), webhook_key(webhook));
        let mut limits = vec![(by_webhook.as_str(), self.limits.per_webhook)];
        limits.extend(by_address.as_deref().map(|k| (k, self.limits.per_address)));
        match self.windows.blocked(&limits).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(ApiError::new(
                Code::TooManyFailedDeliveries,
                "too many deliveries failed their signature check; try again later",
            )
            .with_retry_after(wait)),
            Err(e) => {
                tracing::warn!(error = %e, "webhook failure counters unavailable");
                Ok(())
            }
        }
    }

    /// Counts a failed delivery: against the address, and the webhook when it exists.
    pub async fn failed(&self, webhook: Option<Uuid>, address: Option<&str>) {
        let by_address = address.map(address_key);
        let by_webhook = webhook.map(webhook_key);
        let keys: Vec<&str> = by_address
            .iter()
            .chain(&by_webhook)
            .map(String::as_str)
            .collect();
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.windows.record(&keys).await {
            tracing::warn!(error = %e, "could not count a failed webhook delivery");
        }
    }
}
