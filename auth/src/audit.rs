//! Appending audit events to the per-tenant hash chain in `audit_events`.
//!
//! `hash = sha256(prev_hash || canonical JSON of the event)`; a per-tenant advisory lock
//! serialises appends so `seq` stays gap-free. (The full audit pipeline — middleware, Redis
//! stream, verification — builds on this.)

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::principal::Actor;
use crate::{AuthError, TenantId};

pub struct AuditEvent<'a> {
    pub actor_kind: &'a str,
    pub actor_id: String,
    pub action: &'a str,
    pub resource: String,
    /// Never secrets: ids, names, field names.
    pub details: Value,
}

impl<'a> AuditEvent<'a> {
    pub fn by(actor: Actor, action: &'a str, resource: String, details: Value) -> Self {
        Self {
            actor_kind: actor.kind(),
            actor_id: actor.id().to_string(),
            action,
            resource,
            details,
        }
    }
}

/// Appends `event` inside the caller's transaction, which must be inside `tenant`.
pub async fn append(
    tx: &mut PgConnection,
    tenant: TenantId,
    event: AuditEvent<'_>,
) -> Result<(), AuthError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 42))")
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.0)
    .fetch_optional(&mut *tx)
    .await?;
    let (seq, prev_hash) = last.map_or((1, String::new()), |(seq, hash)| (seq + 1, hash));
    let at = chrono::Utc::now();
    let canonical = json!({
        "tenant": tenant.to_string(),
        "seq": seq,
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "actor": {"kind": event.actor_kind, "id": event.actor_id},
        "action": event.action,
        "resource": event.resource,
        "details": event.details,
    });
    // serde_json without `preserve_order` sorts object keys: a canonical form.
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.to_string().as_bytes());
    let hash = hex(&hasher.finalize());
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, seq, at, actor_kind, actor_id, action, \
         resource, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant.0)
    .bind(seq)
    .bind(at)
    .bind(event.actor_kind)
    .bind(&event.actor_id)
    .bind(event.action)
    .bind(&event.resource)
    .bind(&event.details)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
