//! Idempotency records for connector writes (table `connector_idempotency`): key → first
//! result, so a retried side effect is answered from Postgres instead of the platform.

use brain_auth::TenantId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::ToolError;

/// A pending claim older than this is assumed to belong to a crashed process and is treated as
/// abandoned: settled with the platform (see `Claim::Abandoned`) rather than blocked forever.
const STALE_PENDING_SECS: i64 = 15 * 60;

pub(crate) enum Claim {
    /// This caller owns the key and must call the platform, then `complete` or `release`.
    Fresh,
    /// A previous call with this key finished; here is its result.
    Done(Value),
    /// A previous attempt claimed the key and was abandoned mid-call (the caller knows it
    /// ended): the platform may or may not have written. This caller now holds the claim and
    /// must settle it with the platform before writing.
    Abandoned,
}

pub(crate) struct Record<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) connector: &'a str,
    pub(crate) action: &'a str,
    pub(crate) key: &'a str,
}

/// SHA-256 of the arguments in a canonical form (keys sorted at every depth), so the same
/// arguments hash the same whatever order the model or a replay wrote their keys in.
pub(crate) fn request_hash(args: &Value) -> String {
    let digest = Sha256::digest(brain_auth::audit::canonical_json(args).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims `rec.key`. `earlier_attempts_ended`: the caller knows that whoever claimed the key
/// before is gone (a durable step's retry), so a pending claim is abandoned, not in progress.
pub(crate) async fn claim(
    db: &PgPool,
    rec: &Record<'_>,
    hash: &str,
    earlier_attempts_ended: bool,
) -> Result<Claim, ToolError> {
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
        _ if stale || earlier_attempts_ended => {
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
            Ok(Claim::Abandoned)
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
