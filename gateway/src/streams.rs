//! Limits on long-lived event streams (`GET /v1/tasks/{id}/events`): each tenant holds at
//! most `per_tenant` open streams on an instance — one more is refused with 429 before it
//! costs a database read or a place at the instance's shared Redis reader — and a stream
//! ends after `max_age`, when the client reconnects and resumes from `Last-Event-ID`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brain_auth::TenantId;

pub struct StreamLimits {
    per_tenant: usize,
    /// How long one stream stays open.
    pub max_age: Duration,
    open: Mutex<HashMap<TenantId, usize>>,
}

/// One open stream of a tenant; its place is freed when it is dropped (the client went
/// away or the stream ended).
pub struct StreamSlot {
    limits: Arc<StreamLimits>,
    tenant: TenantId,
}

impl StreamLimits {
    pub fn new(per_tenant: usize, max_age: Duration) -> Arc<Self> {
        Arc::new(Self {
            per_tenant,
            max_age,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more stream of `tenant`, or `None` at the limit.
    pub fn acquire(self: &Arc<Self>, tenant: TenantId) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(tenant).or_insert(0);
        if *count >= self.per_tenant {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            limits: Arc::clone(self),
            tenant,
        })
    }

    /// Open streams of `tenant` on this instance.
    pub fn open(&self, tenant: TenantId) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&tenant).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_its_places_back_when_streams_end() {
        let limits = StreamLimits::new(2, Duration::from_secs(60));
        let (a, b) = (
            TenantId(uuid::Uuid::new_v4()),
            TenantId(uuid::Uuid::new_v4()),
        );
        let first = limits.acquire(a).unwrap();
        let _second = limits.acquire(a).unwrap();
        assert!(limits.acquire(a).is_none());
        assert!(
            limits.acquire(b).is_some(),
            "another tenant is not affected"
        );
        drop(first);
        assert_eq!(limits.open(a), 1);
        assert!(limits.acquire(a).is_some());
    }
}
