//! Idempotency records for connector writes (table `connector_idempotency`): key → first
//! result, so a retried side effect is answered from Postgres instead of the platform.

use brain_auth::TenantId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::ToolError;

/// A pending claim older than this is assumed to belong to a crashed process and may be taken
/// over. The platform may or may not have seen that call; the alternative, a key blocked
/// forever, is worse for a retrying workflow.
const STALE_PENDING_SECS: i64 = 15 * 60;

pub(crate) enum Claim {
    /// This caller owns the key and must call the platform, then `complete` or `release`.
    Fresh,
    /// A previous call with this key finished; here is its result.
    Done(Value),
}

pub(crate) struct Record<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) connector: &'a str,
    pub(crate) action: &'a str,
    pub(crate) key: &'a str,
}

/// SHA-256 of the arguments in a canonical form (serde_json's maps are sorted by key).
pub(crate) fn request_hash(args: &Value) -> String {
    let digest = Sha256::digest(args.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn claim(db: &PgPool, rec: &Record<'_>, hash: &str) -> Result<Claim, ToolError> {
    let mut tx = db.begin().await?;
    brain_migrations::set_tenant(&mut tx, rec.tenant).await?;
    let inserted = sqlx::query(
        "INSERT INTO connector_idempotency (tenant_id, connector, action, idempotency_key, request_sha256) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(rec.tenant.0)
    .bind(rec.connector)
    .bind(rec.action)
    .bind(rec.key)
    .bind(hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        tx.commit().await?;
        return Ok(Claim::Fresh);
    }
    let (stored_hash, status, result, stale): (String, String, Option<Value>, bool) = sqlx::query_as(
        "SELECT request_sha256, status, result, created_at < now() - make_interval(secs => $5) \
         FROM connector_idempotency \
         WHERE tenant_id = $1 AND connector = $2 AND action = $3 AND idempotency_key = $4 FOR UPDATE",
    )
    .bind(rec.tenant.0)
    .bind(rec.connector)
    .bind(rec.action)
    .bind(rec.key)
    .bind(STALE_PENDING_SECS as f64)
    .fetch_one(&mut *tx)
    .await?;
    if stored_hash != hash {
        return Err(ToolError::IdempotencyConflict(rec.key.to_owned()));
    }
    match (status.as_str(), result) {
        ("done", Some(result)) => Ok(Claim::Done(result)),
        ("done", None) => Ok(Claim::Done(Value::Null)),
        _ if stale => {
            sqlx::query(
                "UPDATE connector_idempotency SET created_at = now() \
                 WHERE tenant_id = $1 AND connector = $2 AND action = $3 AND idempotency_key = $4",
            )
            .bind(rec.tenant.0)
            .bind(rec.connector)
            .bind(rec.action)
            .bind(rec.key)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Claim::Fresh)
        }
        _ => Err(ToolError::IdempotencyInProgress(rec.key.to_owned())),
    }
}

pub(crate) async fn complete(
    db: &PgPool,
    rec: &Record<'_>,
    result: &Value,
) -> Result<(), ToolError> {
    let mut tx = db.begin().await?;
    brain_migrations::set_tenant(&mut tx, rec.tenant).await?;
    sqlx::query(
        "UPDATE connector_idempotency SET status = 'done', result = $5, completed_at = now() \
         WHERE tenant_id = $1 AND connector = $2 AND action = $3 AND idempotency_key = $4",
    )
    .bind(rec.tenant.0)
    .bind(rec.connector)
    .bind(rec.action)
    .bind(rec.key)
    .bind(result)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Drops a claim whose platform call failed, so a retry may try again.
pub(crate) async fn release(db: &PgPool, rec: &Record<'_>) -> Result<(), ToolError> {
    let mut tx = db.begin().await?;
    brain_migrations::set_tenant(&mut tx, rec.tenant).await?;
    sqlx::query(
        "DELETE FROM connector_idempotency \
         WHERE tenant_id = $1 AND connector = $2 AND action = $3 AND idempotency_key = $4 AND status = 'pending'",
    )
    .bind(rec.tenant.0)
    .bind(rec.connector)
    .bind(rec.action)
    .bind(rec.key)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
