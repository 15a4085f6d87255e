//! `previous_response_id` of the Responses API: a stored response names the agent and the
//! conversation it answered in, so the next request continues that conversation (the agent
//! sees its history as in a chat). Kept in Redis for 30 days, as OpenAI keeps responses,
//! under the tenant — another tenant's response id is simply not found.

use brain_agents::AgentId;
use brain_auth::TenantId;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::OpenAiError;
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// How long a response can be continued.
const KEPT_SECS: u64 = 30 * 24 * 3600;

/// Where a stored response answered.
#[derive(Serialize, Deserialize)]
struct Stored {
    agent: Uuid,
    conversation: Uuid,
}

fn key(tenant: TenantId, response: &str) -> String {
    format!("brain:responses:{}:{response}", tenant.0)
}

/// Keeps `response` (unless the request said `store: false`) so a later request can
/// continue its conversation. Best effort: a Redis failure loses the chain, not the answer.
pub(super) async fn remember(
    state: &AppState,
    tenant: TenantId,
    response: &str,
    agent: AgentId,
    conversation: Uuid,
) {
    let stored = Stored {
        agent: agent.0,
        conversation,
    };
    let value = serde_json::to_string(&stored).unwrap_or_default();
    let mut redis = state.redis.clone();
    let saved: redis::RedisResult<()> = redis.set_ex(key(tenant, response), value, KEPT_SECS).await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not keep a response for previous_response_id");
    }
}

/// The conversation `previous` answered in, which must be `agent`'s.
pub(super) async fn conversation_of(
    state: &AppState,
    tenant: TenantId,
    previous: &str,
    agent: AgentId,
) -> Result<Uuid, OpenAiError> {
    let mut redis = state.redis.clone();
    let found: Option<String> = redis
        .get(key(tenant, previous))
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, format!("redis: {e}")))?;
    let stored = found
        .and_then(|v| serde_json::from_str::<Stored>(&v).ok())
        .ok_or_else(|| {
            OpenAiError::invalid(
                "previous_response_id",
                format!(
                    "no stored response `{previous}` (responses are kept 30 days, and not at \
                     all with `store: false`)"
                ),
            )
        })?;
    if stored.agent != agent.0 {
        return Err(OpenAiError::invalid(
            "previous_response_id",
            format!("response `{previous}` was answered by another agent than `model` names"),
        ));
    }
    Ok(stored.conversation)
}
