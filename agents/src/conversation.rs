//! Conversations, their messages and token usage: the [`TurnStore`] seam the turn loop
//! persists through, and its Postgres implementation.

use brain_auth::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::AgentError;
use crate::providers::{ChatMessage, ChatRole, ToolCall, Usage};
use crate::spec::AgentId;

/// A message to store as part of a turn.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub role: ChatRole,
    pub content: String,
    /// Assistant: the calls it made. Tool: one record naming the call it answers.
    pub tool_calls: serde_json::Value,
    pub citations: serde_json::Value,
    pub usage: Option<Usage>,
}

/// Everything one successful turn writes, in one transaction.
#[derive(Clone, Debug)]
pub struct CommittedTurn {
    pub agent: AgentId,
    pub conversation: Uuid,
    /// Set when the turn started a new conversation (its title).
    pub new_conversation_title: Option<String>,
    pub user_id: Option<Uuid>,
    pub messages: Vec<NewMessage>,
    pub usage: Usage,
    pub tool_calls: u64,
    /// What was left out of the prompt to fit the model's window; kept with the reply.
    pub prompt_fit: Option<crate::fit::PromptFit>,
}

/// Where turns are persisted.
#[async_trait::async_trait]
pub trait TurnStore: Send + Sync {
    /// Tokens the agent used today (UTC), for its daily budget.
    async fn tokens_used_today(&self, tenant: TenantId, agent: AgentId) -> Result<u64, AgentError>;
    /// Whether the tenant has a daily token budget (all agents together) and spent it today.
    async fn tenant_budget_spent(&self, _tenant: TenantId) -> Result<bool, AgentError> {
        Ok(false)
    }
    /// Checks that `conversation` exists and belongs to `agent`.
    async fn check_conversation(
        &self,
        tenant: TenantId,
        agent: AgentId,
        conversation: Uuid,
    ) -> Result<(), AgentError>;
    /// The last `limit` messages of a conversation, oldest first.
    async fn history(
        &self,
        tenant: TenantId,
        conversation: Uuid,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, AgentError>;
    /// Writes a finished turn (messages and usage) atomically.
    async fn commit_turn(&self, tenant: TenantId, turn: &CommittedTurn) -> Result<(), AgentError>;
    /// Records tokens spent by a turn that failed (nothing else is kept).
    async fn record_usage(
        &self,
        tenant: TenantId,
        agent: AgentId,
        usage: Usage,
        tool_calls: u64,
    ) -> Result<(), AgentError>;
}

/// A conversation as listed by the API.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow, ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub agent_id: Uuid,
    /// The first 80 characters of its first message.
    pub title: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored message as listed by the API.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow, ToSchema)]
pub struct StoredMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    /// An assistant message's calls (`{id, name, arguments}`); for a tool message one
    /// `{call_id, connector, action, status}` naming the call it answers; else empty.
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: serde_json::Value,
    /// What the final assistant message of a turn cites; empty on other messages.
    #[schema(value_type = Vec<crate::knowledge::Citation>)]
    pub citations: serde_json::Value,
    /// The turn's tokens, on its final assistant message.
    #[schema(value_type = Option<crate::providers::Usage>)]
    pub usage: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl StoredMessage {
    /// The message as the model sees it in history.
    pub fn to_chat(&self) -> Option<ChatMessage> {
        let role = ChatRole::parse(&self.role)?;
        let mut m = ChatMessage {
            role,
            content: self.content.clone(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        };
        match role {
            ChatRole::Assistant => {
                m.tool_calls = serde_json::from_value::<Vec<ToolCall>>(self.tool_calls.clone())
                    .unwrap_or_default();
            }
            ChatRole::Tool => {
                m.tool_call_id = self.tool_calls[0]["call_id"].as_str().map(str::to_owned);
            }
            _ => {}
        }
        Some(m)
    }
}

/// Conversations and usage in Postgres.
#[derive(Clone)]
pub struct PgTurnStore {
    pool: PgPool,
}

impl PgTurnStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list_conversations(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<Vec<Conversation>, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, agent_id, title, created_at, updated_at FROM conversations \
             WHERE tenant_id = $1 AND agent_id = $2 ORDER BY updated_at DESC, id DESC",
        )
        .bind(tenant.0)
        .bind(agent.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Every message of a conversation, oldest first.
    pub async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Result<Vec<StoredMessage>, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM conversations WHERE id = $1 AND tenant_id = $2")
                .bind(conversation)
                .bind(tenant.0)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(AgentError::ConversationNotFound);
        }
        let rows = sqlx::query_as(
            "SELECT id, conversation_id, role, content, tool_calls, citations, usage, created_at \
             FROM messages WHERE conversation_id = $1 AND tenant_id = $2 ORDER BY created_at, id",
        )
        .bind(conversation)
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

async fn upsert_usage(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    agent: AgentId,
    usage: Usage,
    tool_calls: u64,
) -> Result<(), sqlx::Error> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO usage (tenant_id, day, agent_id, prompt_tokens, completion_tokens, tool_calls) \
         VALUES ($1, (now() AT TIME ZONE 'utc')::date, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, day, agent_id) DO UPDATE SET \
           prompt_tokens = usage.prompt_tokens + EXCLUDED.prompt_tokens, \
           completion_tokens = usage.completion_tokens + EXCLUDED.completion_tokens, \
           tool_calls = usage.tool_calls + EXCLUDED.tool_calls",
    )
    .bind(tenant.0)
    .bind(agent.0)
    .bind(as_i64(usage.prompt_tokens))
    .bind(as_i64(usage.completion_tokens))
    .bind(as_i64(tool_calls))
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl TurnStore for PgTurnStore {
    async fn tenant_budget_spent(&self, tenant: TenantId) -> Result<bool, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let spent: Option<bool> = sqlx::query_scalar(
            "SELECT coalesce(sum(u.prompt_tokens + u.completion_tokens), 0) >= t.max_tokens_per_day \
             FROM tenants t LEFT JOIN usage u ON u.tenant_id = t.id \
               AND u.day = (now() AT TIME ZONE 'utc')::date \
             WHERE t.id = $1 AND t.max_tokens_per_day IS NOT NULL GROUP BY t.max_tokens_per_day",
        )
        .bind(tenant.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(spent.unwrap_or(false))
    }

    async fn tokens_used_today(&self, tenant: TenantId, agent: AgentId) -> Result<u64, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT prompt_tokens + completion_tokens FROM usage \
             WHERE tenant_id = $1 AND agent_id = $2 AND day = (now() AT TIME ZONE 'utc')::date",
        )
        .bind(tenant.0)
        .bind(agent.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(used.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn check_conversation(
        &self,
        tenant: TenantId,
        agent: AgentId,
        conversation: Uuid,
    ) -> Result<(), AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let found: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE id = $1 AND tenant_id = $2 AND agent_id = $3",
        )
        .bind(conversation)
        .bind(tenant.0)
        .bind(agent.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        found.map(drop).ok_or(AgentError::ConversationNotFound)
    }

    async fn history(
        &self,
        tenant: TenantId,
        conversation: Uuid,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let mut rows: Vec<StoredMessage> = sqlx::query_as(
            "SELECT id, conversation_id, role, content, tool_calls, citations, usage, created_at \
             FROM messages WHERE conversation_id = $1 AND tenant_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(conversation)
        .bind(tenant.0)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.reverse();
        // A window that starts at a tool result has lost its call; models reject that.
        let start = rows
            .iter()
            .position(|m| m.role != "tool")
            .unwrap_or(rows.len());
        Ok(rows[start..]
            .iter()
            .filter_map(StoredMessage::to_chat)
            .collect())
    }

    async fn commit_turn(&self, tenant: TenantId, turn: &CommittedTurn) -> Result<(), AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        if let Some(title) = &turn.new_conversation_title {
            sqlx::query(
                "INSERT INTO conversations (id, tenant_id, agent_id, user_id, title) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(turn.conversation)
            .bind(tenant.0)
            .bind(turn.agent.0)
            .bind(turn.user_id)
            .bind(title)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE conversations SET updated_at = now() WHERE id = $1")
                .bind(turn.conversation)
                .execute(&mut *tx)
                .await?;
        }
        let last = turn.messages.len().saturating_sub(1);
        for (i, m) in turn.messages.iter().enumerate() {
            // The reply's usage also says what fitting left out of its prompt.
            let usage = m.usage.map(|u| {
                let mut usage = serde_json::json!(u);
                if let (true, Some(fit)) = (i == last, &turn.prompt_fit) {
                    usage["prompt_fit"] = serde_json::json!(fit);
                }
                usage
            });
            // clock_timestamp() (not now()) so messages of one transaction keep their order.
            sqlx::query(
                "INSERT INTO messages (id, tenant_id, conversation_id, role, content, tool_calls, \
                 citations, usage, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(turn.conversation)
            .bind(m.role.as_str())
            .bind(&m.content)
            .bind(&m.tool_calls)
            .bind(&m.citations)
            .bind(usage)
            .execute(&mut *tx)
            .await?;
        }
        upsert_usage(&mut tx, tenant, turn.agent, turn.usage, turn.tool_calls).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_usage(
        &self,
        tenant: TenantId,
        agent: AgentId,
        usage: Usage,
        tool_calls: u64,
    ) -> Result<(), AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        upsert_usage(&mut tx, tenant, agent, usage, tool_calls).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Turns kept in memory: tests and the framework-overhead benchmark.
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryTurnStore {
    inner: std::sync::Mutex<MemoryInner>,
}

#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
struct MemoryInner {
    conversations: std::collections::HashMap<Uuid, (AgentId, Vec<ChatMessage>)>,
    tokens: std::collections::HashMap<AgentId, u64>,
}

#[cfg(any(test, feature = "test-support"))]
#[async_trait::async_trait]
impl TurnStore for MemoryTurnStore {
    async fn tokens_used_today(&self, _t: TenantId, agent: AgentId) -> Result<u64, AgentError> {
        Ok(self
            .inner
            .lock()
            .map(|i| i.tokens.get(&agent).copied().unwrap_or(0))
            .unwrap_or(0))
    }

    async fn check_conversation(
        &self,
        _t: TenantId,
        agent: AgentId,
        conversation: Uuid,
    ) -> Result<(), AgentError> {
        let inner = self
            .inner
            .lock()
            .map_err(|_| AgentError::ConversationNotFound)?;
        match inner.conversations.get(&conversation) {
            Some((owner, _)) if *owner == agent => Ok(()),
            _ => Err(AgentError::ConversationNotFound),
        }
    }

    async fn history(
        &self,
        _t: TenantId,
        conversation: Uuid,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, AgentError> {
        let inner = self
            .inner
            .lock()
            .map_err(|_| AgentError::ConversationNotFound)?;
        let all = inner
            .conversations
            .get(&conversation)
            .map(|(_, m)| m.as_slice())
            .unwrap_or_default();
        Ok(all[all.len().saturating_sub(limit)..].to_vec())
    }

    async fn commit_turn(&self, _t: TenantId, turn: &CommittedTurn) -> Result<(), AgentError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| AgentError::ConversationNotFound)?;
        *inner.tokens.entry(turn.agent).or_default() += turn.usage.total();
        let entry = inner
            .conversations
            .entry(turn.conversation)
            .or_insert_with(|| (turn.agent, Vec::new()));
        entry.1.extend(turn.messages.iter().map(|m| ChatMessage {
            role: m.role,
            content: m.content.clone(),
            tool_calls: serde_json::from_value(m.tool_calls.clone()).unwrap_or_default(),
            tool_call_id: m.tool_calls[0]["call_id"].as_str().map(str::to_owned),
        }));
        Ok(())
    }

    async fn record_usage(
        &self,
        _t: TenantId,
        agent: AgentId,
        usage: Usage,
        _tool_calls: u64,
    ) -> Result<(), AgentError> {
        if let Ok(mut inner) = self.inner.lock() {
            *inner.tokens.entry(agent).or_default() += usage.total();
        }
        Ok(())
    }
}
