//! Where a chat finds its agent's actor without a round trip through the tree.
//!
//! Without it every turn asks the root for the tenant supervisor and the tenant supervisor for
//! the agent's actor: two calls through mailboxes, four task wake-ups on top of the turn's own.
//! The tenant supervisors, which start and stop agent actors, record each running actor here;
//! a chat that finds a live actor of the right tenant sends to it directly, and anything else
//! (nothing recorded, a stopped actor, another tenant's id) takes the tree as before — which
//! starts the actor, reports a degraded agent, or refuses the agent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use brain_agents::spec::AgentId;
use brain_auth::TenantId;
use ractor::{ActorId, ActorRef, ActorStatus};

use crate::agent::AgentMessage;

/// The running agent actors, by agent.
#[derive(Default)]
pub struct AgentDirectory {
    actors: RwLock<HashMap<AgentId, (TenantId, ActorRef<AgentMessage>)>>,
}

impl AgentDirectory {
    /// The agent's actor if it runs, for this tenant only.
    pub(crate) fn running(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Option<ActorRef<AgentMessage>> {
        let actors = self.actors.read().unwrap_or_else(PoisonError::into_inner);
        actors
            .get(&agent)
            .filter(|(owner, actor)| *owner == tenant && alive(actor))
            .map(|(_, actor)| actor.clone())
    }

    pub(crate) fn insert(&self, tenant: TenantId, agent: AgentId, actor: ActorRef<AgentMessage>) {
        self.actors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent, (tenant, actor));
    }

    /// Forgets the agent's actor whichever it is (the agent was deleted: no turn may reach it
    /// while its supervisor is still to stop it).
    pub(crate) fn forget(&self, agent: AgentId) {
        self.actors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&agent);
    }

    /// Forgets `actor` as the agent's actor; a newer actor recorded meanwhile stays.
    pub(crate) fn remove(&self, agent: AgentId, actor: ActorId) {
        let mut actors = self.actors.write().unwrap_or_else(PoisonError::into_inner);
        if actors.get(&agent).is_some_and(|(_, a)| a.get_id() == actor) {
            actors.remove(&agent);
        }
    }
}

pub(crate) fn alive(actor: &ActorRef<AgentMessage>) -> bool {
    matches!(
        actor.get_status(),
        ActorStatus::Running | ActorStatus::Starting
    )
}

/// A tenant's turn counters, shared by its supervisor and its agents' actors: the supervisor
/// stays up while a turn runs, and a turn that reached an actor directly still counts as
/// activity for the idle check.
#[derive(Debug, Default)]
pub struct TenantLoad {
    running: AtomicUsize,
    started: AtomicU64,
}

impl TenantLoad {
    pub(crate) fn turn_started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn turn_finished(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Turns started so far (the idle check compares it with its last reading).
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}
