//! Ingestion turns shared fairly between tenants: at most `total` documents are ingested at
//! once, at most `per_tenant` of them of one tenant, and when a turn frees up it goes to the
//! waiting tenant served least recently — so one tenant's hundred uploads queue behind each
//! other, not in front of everyone else's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use brain_auth::TenantId;
use tokio::sync::oneshot;

#[derive(Default)]
struct Slot {
    running: usize,
    waiting: VecDeque<oneshot::Sender<()>>,
    /// When the tenant last got a turn (a counter; 0: not since it was last idle).
    served: u64,
}

#[derive(Default)]
struct State {
    running: usize,
    clock: u64,
    tenants: HashMap<TenantId, Slot>,
}

pub struct FairQueue {
    total: usize,
    per_tenant: usize,
    state: Mutex<State>,
}

/// A granted turn; dropping it hands the turn on.
pub struct Turn {
    queue: Arc<FairQueue>,
    tenant: TenantId,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.queue.release(self.tenant);
    }
}

/// A waiter that gave up after its turn was granted hands the turn on.
struct Waiting {
    rx: Option<oneshot::Receiver<()>>,
    queue: Arc<FairQueue>,
    tenant: TenantId,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.queue.release(self.tenant);
            }
        }
    }
}

impl FairQueue {
    pub fn new(total: usize, per_tenant: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_tenant: per_tenant.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A turn now, if one is free for `tenant`.
    pub fn try_acquire(self: &Arc<Self>, tenant: TenantId) -> Option<Turn> {
        let mut state = self.lock();
        self.grant_now(&mut state, tenant).then(|| Turn {
            queue: self.clone(),
            tenant,
        })
    }

    /// Waits for `tenant`'s turn.
    pub async fn acquire(self: &Arc<Self>, tenant: TenantId) -> Turn {
        let rx = {
            let mut state = self.lock();
            if self.grant_now(&mut state, tenant) {
                return Turn {
                    queue: self.clone(),
                    tenant,
                };
            }
            let (tx, rx) = oneshot::channel();
            state
                .tenants
                .entry(tenant)
                .or_default()
                .waiting
                .push_back(tx);
            rx
        };
        let mut waiting = Waiting {
            rx: Some(rx),
            queue: self.clone(),
            tenant,
        };
        if let Some(rx) = waiting.rx.as_mut() {
            // The sender lives in the queue, which `waiting` keeps alive, until it sends.
            let _ = rx.await;
        }
        waiting.rx = None;
        Turn {
            queue: self.clone(),
            tenant,
        }
    }

    /// Documents being ingested, in all and of `tenant`.
    pub fn running(&self, tenant: TenantId) -> (usize, usize) {
        let state = self.lock();
        let mine = state.tenants.get(&tenant).map_or(0, |s| s.running);
        (state.running, mine)
    }

    /// Takes a turn for `tenant` if nobody of it waits and one is free.
    fn grant_now(&self, state: &mut State, tenant: TenantId) -> bool {
        let slot = state.tenants.entry(tenant).or_default();
        if state.running >= self.total
            || slot.running >= self.per_tenant
            || !slot.waiting.is_empty()
        {
            return false;
        }
        state.clock += 1;
        slot.running += 1;
        slot.served = state.clock;
        state.running += 1;
        true
    }

    fn release(&self, tenant: TenantId) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        if let Some(slot) = state.tenants.get_mut(&tenant) {
            slot.running = slot.running.saturating_sub(1);
        }
        self.dispatch(&mut state);
        state
            .tenants
            .retain(|_, slot| slot.running > 0 || !slot.waiting.is_empty());
    }

    /// Hands free turns to waiting tenants, least recently served first.
    fn dispatch(&self, state: &mut State) {
        while state.running < self.total {
            let next = state
                .tenants
                .iter()
                .filter(|(_, s)| s.running < self.per_tenant && !s.waiting.is_empty())
                .min_by_key(|(_, s)| s.served)
                .map(|(tenant, _)| *tenant);
            let Some(tenant) = next else {
                return;
            };
            state.clock += 1;
            let clock = state.clock;
            let Some(slot) = state.tenants.get_mut(&tenant) else {
                return;
            };
            let Some(waiter) = slot.waiting.pop_front() else {
                continue;
            };
            // A waiter that went away before its turn just leaves the queue.
            if waiter.send(()).is_ok() {
                slot.running += 1;
                slot.served = clock;
                state.running += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId(uuid::Uuid::from_u128(n))
    }

    /// Starts a waiter that records its name when its turn comes and holds the turn until
    /// told to let go.
    fn waiter(
        queue: &Arc<FairQueue>,
        who: TenantId,
        name: &'static str,
        order: &Arc<Mutex<Vec<&'static str>>>,
    ) -> oneshot::Sender<()> {
        let (done, hold) = oneshot::channel::<()>();
        let (queue, order) = (queue.clone(), order.clone());
        tokio::spawn(async move {
            let _turn = queue.acquire(who).await;
            order.lock().unwrap().push(name);
            let _ = hold.await;
        });
        done
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_busy_tenant_does_not_keep_others_waiting() {
        let queue = FairQueue::new(1, 1);
        let (a, b) = (tenant(1), tenant(2));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = queue.try_acquire(a).expect("a free turn");
        let mut holds = Vec::new();
        for name in ["a2", "a3", "a4"] {
            holds.push(waiter(&queue, a, name, &order));
            settle().await;
        }
        holds.push(waiter(&queue, b, "b1", &order));
        settle().await;
        drop(first);
        settle().await;
        // Every waiter finishes as soon as it has its turn.
        for hold in holds {
            let _ = hold.send(());
        }
        settle().await;
        // Not first come, first served (a2 a3 a4 b1): b waited least recently served.
        assert_eq!(*order.lock().unwrap(), ["b1", "a2", "a3", "a4"]);
        assert_eq!(queue.running(a), (0, 0));
    }

    #[tokio::test]
    async fn one_tenant_holds_at_most_its_share() {
        let queue = FairQueue::new(3, 2);
        let (a, b) = (tenant(1), tenant(2));
        let a1 = queue.try_acquire(a).unwrap();
        let _a2 = queue.try_acquire(a).unwrap();
        assert!(queue.try_acquire(a).is_none(), "a's share is two");
        let b1 = queue.try_acquire(b).expect("a free turn for b");
        assert!(queue.try_acquire(b).is_none(), "all three turns taken");
        assert_eq!(queue.running(a), (3, 2));
        drop(b1);
        assert!(queue.try_acquire(a).is_none(), "still a's share");
        drop(a1);
        let _a3 = queue.try_acquire(a).expect("a's share has room again");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_hands_its_turn_on() {
        let queue = FairQueue::new(1, 1);
        let (a, b, c) = (tenant(1), tenant(2), tenant(3));
        let held = queue.try_acquire(a).unwrap();
        let quitter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.acquire(b).await }
        });
        settle().await;
        quitter.abort();
        settle().await;
        drop(held);
        let next = tokio::time::timeout(Duration::from_secs(1), queue.acquire(c)).await;
        assert!(
            next.is_ok(),
            "the turn was not lost to the waiter that left"
        );
    }
}
