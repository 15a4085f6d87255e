//! How a task ends: its final row, usage and audit event, and its signed callback.

use brain_auth::TenantId;
use brain_auth::audit::{self, AuditEvent};
use serde_json::json;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::{TaskActivities, permanent, task_error, transient};
use crate::error::TaskError;
use crate::events::RunEvent;
use crate::model::{CallbackInput, CallbackStatus, TaskOutcome};
use crate::store::TaskStore;

impl TaskActivities {
    /// Writes how the task ended, its usage, and its audit event.
    pub(super) async fn write_end(&self, outcome: TaskOutcome) -> Result<(), ActivityError> {
        let tenant = TenantId(outcome.tenant);
        let usage = outcome.usage.map(|u| json!(u));
        let mut tx = self.store.transaction(tenant).await.map_err(task_error)?;
        let ended = TaskStore::finish(&mut tx, &outcome)
            .await
            .map_err(task_error)?
            .ok_or_else(|| permanent(TaskError::NotFound))?;
        if ended.first {
            audit::append(
                &mut tx,
                tenant,
                AuditEvent {
                    actor_kind: "system",
                    actor_id: "tasks".into(),
                    action: "task.end",
                    resource: format!("tasks/{}", outcome.task_id),
                    details: json!({"status": outcome.status, "error": outcome.error,
                                    "tool_calls": outcome.tool_calls, "usage": usage}),
                },
            )
            .await
            .map_err(transient)?;
        }
        tx.commit().await.map_err(transient)?;
        if ended.first
            && let Some(m) = &self.metrics
        {
            m.finished
                .with_label_values(&[&ended.kind, outcome.status.as_str()])
                .inc();
        }
        self.announce(
            tenant,
            outcome.task_id,
            RunEvent::Done {
                task_id: outcome.task_id,
                status: outcome.status,
            },
        )
        .await;
        Ok(())
    }

    /// POSTs the finished task to its `callback_url`, signed like Brain's webhooks
    /// (`X-Brain-Signature: sha256=HMAC(secret, "{timestamp}.{body}")`).
    pub(super) async fn send_callback(
        &self,
        ctx: ActivityContext,
        input: CallbackInput,
    ) -> Result<(), ActivityError> {
        let tenant = TenantId(input.tenant);
        let task = self
            .store
            .get(tenant, input.task_id)
            .await
            .map_err(task_error)?;
        let attempt = ctx.info().attempt;
        let last_attempt = ctx
            .info()
            .retry_policy
            .as_ref()
            .map(|p| p.maximum_attempts())
            .is_some_and(|max| max > 0 && attempt >= max);
        match self.callbacks.deliver(tenant, &input.url, &task).await {
            Ok(()) => {
                self.store
                    .set_callback_status(tenant, input.task_id, CallbackStatus::Delivered)
                    .await
                    .map_err(task_error)?;
                Ok(())
            }
            Err((retryable, message)) => {
                if !retryable || last_attempt {
                    self.store
                        .set_callback_status(tenant, input.task_id, CallbackStatus::Failed)
                        .await
                        .map_err(task_error)?;
                }
                if retryable {
                    Err(transient(message))
                } else {
                    Err(permanent(message))
                }
            }
        }
    }
}
