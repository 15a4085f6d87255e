//! `RuntimeSupervisor`: the root of the tree. Starts a `TenantSupervisor` on a tenant's first
//! request and forgets it when it stops (idle) or fails; the next request starts a new one.

use std::collections::HashMap;
use std::sync::Arc;

use brain_auth::TenantId;
use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SupervisionEvent,
};

use crate::deps::RuntimeDeps;
use crate::directory::AgentDirectory;
use crate::error::RuntimeError;
use crate::tenant::{TenantArgs, TenantMessage, TenantSupervisor};

pub enum RuntimeMessage {
    /// The tenant's supervisor, started if needed.
    Tenant(
        TenantId,
        RpcReplyPort<Result<ActorRef<TenantMessage>, RuntimeError>>,
    ),
    /// The tenant's supervisor if it is running (config changes need not start one).
    RunningTenant(TenantId, RpcReplyPort<Option<ActorRef<TenantMessage>>>),
    /// How many tenant supervisors run (tests, benchmarks).
    TenantCount(RpcReplyPort<usize>),
}

pub struct RuntimeSupervisor;

pub struct RuntimeArgs {
    pub deps: Arc<RuntimeDeps>,
    pub directory: Arc<AgentDirectory>,
}

pub struct RuntimeState {
    deps: Arc<RuntimeDeps>,
    directory: Arc<AgentDirectory>,
    tenants: HashMap<TenantId, ActorRef<TenantMessage>>,
    by_actor: HashMap<ActorId, TenantId>,
}

fn alive(actor: &ActorRef<TenantMessage>) -> bool {
    matches!(
        actor.get_status(),
        ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
    )
}

impl Actor for RuntimeSupervisor {
    type Msg = RuntimeMessage;
    type State = RuntimeState;
    type Arguments = RuntimeArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        RuntimeArgs { deps, directory }: RuntimeArgs,
    ) -> Result<RuntimeState, ActorProcessingErr> {
        Ok(RuntimeState {
            deps,
            directory,
            tenants: HashMap::new(),
            by_actor: HashMap::new(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut RuntimeState,
    ) -> Result<(), ActorProcessingErr> {
        myself
            .stop_children_and_wait(
                Some("runtime stopped".into()),
                Some(std::time::Duration::from_secs(10)),
            )
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: RuntimeMessage,
        state: &mut RuntimeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RuntimeMessage::Tenant(tenant, reply) => {
                if let Some(actor) = state.tenants.get(&tenant).filter(|a| alive(a)) {
                    let _ = reply.send(Ok(actor.clone()));
                    return Ok(());
                }
                // Stopping (idle) or gone: a fresh supervisor takes over.
                if let Some(old) = state.tenants.remove(&tenant) {
                    state.by_actor.remove(&old.get_id());
                }
                let spawned = myself
                    .get_cell()
                    .spawn_linked(
                        None,
                        TenantSupervisor,
                        TenantArgs {
                            tenant,
                            deps: Arc::clone(&state.deps),
                            directory: Arc::clone(&state.directory),
                        },
                    )
                    .await;
                let result = match spawned {
                    Ok((actor, _)) => {
                        state.by_actor.insert(actor.get_id(), tenant);
                        state.tenants.insert(tenant, actor.clone());
                        Ok(actor)
                    }
                    Err(e) => Err(RuntimeError::Unavailable(format!(
                        "starting tenant supervisor: {e}"
                    ))),
                };
                let _ = reply.send(result);
            }
            RuntimeMessage::RunningTenant(tenant, reply) => {
                let _ = reply.send(state.tenants.get(&tenant).filter(|a| alive(a)).cloned());
            }
            RuntimeMessage::TenantCount(reply) => {
                let _ = reply.send(state.tenants.values().filter(|a| alive(a)).count());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut RuntimeState,
    ) -> Result<(), ActorProcessingErr> {
        let cell = match &event {
            SupervisionEvent::ActorTerminated(cell, _, _) => cell,
            SupervisionEvent::ActorFailed(cell, error) => {
                // Agent failures are handled below the tenant; reaching here is a bug in the
                // tenant supervisor itself. Its tenant restarts on the next request.
                tracing::error!(%error, "tenant supervisor failed");
                cell
            }
            _ => return Ok(()),
        };
        if let Some(tenant) = state.by_actor.remove(&cell.get_id())
            && state
                .tenants
                .get(&tenant)
                .is_some_and(|a| a.get_id() == cell.get_id())
        {
            state.tenants.remove(&tenant);
        }
        Ok(())
    }
}
