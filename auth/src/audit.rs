//! The audit trail: append-only events in `audit_events`, chained per tenant
//! (`hash = sha256(prev_hash || canonical JSON)`), published afterwards to the Redis stream
//! `audit-log` through an outbox so a Redis outage loses nothing, and verifiable end to end.

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::principal::Actor;
use crate::{AuthError, TenantId};

/// The Redis stream audit events are published to.
pub const STREAM: &str = "audit-log";
/// Approximate cap of the stream (`XADD … MAXLEN ~`).
const STREAM_MAXLEN: usize = 100_000;

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

/// A response extension saying the handler already wrote its audit event (inside its own
/// transaction), so the audit middleware must not add a second one.
#[derive(Clone, Copy, Debug)]
pub struct Recorded;

/// `value` as compact JSON with every object's keys sorted (byte order), at any depth: equal
/// values always give equal bytes, whatever order their keys were inserted or stored in
/// (Postgres `jsonb` reorders them; serde_json keeps insertion order in this workspace).
/// These are the bytes serde_json wrote before it kept insertion order, so hashes made then
/// still verify.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The exact bytes hashed for an event ([`canonical_json`]), so an event re-read from
/// Postgres hashes as it did when it was written.
#[allow(clippy::too_many_arguments)]
fn canonical(
    tenant: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    actor_kind: &str,
    actor_id: &str,
    action: &str,
    resource: &str,
    details: &Value,
) -> String {
    let event = json!({
        "tenant": tenant.to_string(),
        "seq": seq,
        "at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": {"kind": actor_kind, "id": actor_id},
        "action": action,
        "resource": resource,
        "details": details,
    });
    canonical_json(&event)
}

fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends `event` inside the caller's transaction, which must be inside `tenant`.
pub async fn append(
    tx: &mut PgConnection,
    tenant: TenantId,
    event: AuditEvent<'_>,
) -> Result<(), AuthError> {
    // Serialises appends per tenant so `seq` stays gap-free and the chain linear.
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
    // Postgres keeps microseconds: hash exactly what will be read back.
    let at = truncate_to_micros(Utc::now());
    let text = canonical(
        tenant.0,
        seq,
        at,
        event.actor_kind,
        &event.actor_id,
        event.action,
        &event.resource,
        &event.details,
    );
    let hash = chain_hash(&prev_hash, &text);
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, seq, at, actor_kind, actor_id, action, \
         resource, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(Uuid::now_v7())
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

fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// An event as stored and listed.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub resource: String,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The first place a tenant's chain does not hold.
#[derive(Debug, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub id: Uuid,
    pub reason: String,
}

/// Recomputes `tenant`'s chain (the connection must see that tenant's rows): `Ok(None)` when
/// every link holds, else the first broken one. Returns the number of events checked too.
pub async fn verify_chain(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<(usize, Option<BrokenLink>), AuthError> {
    let events: Vec<StoredEvent> = sqlx::query_as(
        "SELECT id, tenant_id, seq, at, actor_kind, actor_id, action, resource, details, \
         prev_hash, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut prev_hash = String::new();
    for (i, event) in events.iter().enumerate() {
        let expected_seq = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        let broken = |reason: String| BrokenLink {
            seq: event.seq,
            id: event.id,
            reason,
        };
        if event.seq != expected_seq {
            return Ok((
                i,
                Some(broken(format!(
                    "expected seq {expected_seq} (a gap or reorder)"
                ))),
            ));
        }
        if event.prev_hash != prev_hash {
            return Ok((
                i,
                Some(broken("prev_hash does not match the previous event".into())),
            ));
        }
        let text = canonical(
            event.tenant_id,
            event.seq,
            event.at,
            &event.actor_kind,
            &event.actor_id,
            &event.action,
            &event.resource,
            &event.details,
        );
        if chain_hash(&prev_hash, &text) != event.hash {
            return Ok((
                i,
                Some(broken("content does not match its hash (altered)".into())),
            ));
        }
        prev_hash = event.hash.clone();
    }
    Ok((events.len(), None))
}

/// Filters and a cursor for listing a tenant's events, newest first.
#[derive(Debug, Default)]
pub struct Listing<'a> {
    pub limit: i64,
    /// Events with `seq` below this (the previous page's `next_cursor`).
    pub before_seq: Option<i64>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
}

pub async fn list(
    tx: &mut PgConnection,
    query: &Listing<'_>,
) -> Result<Vec<StoredEvent>, AuthError> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, seq, at, actor_kind, actor_id, action, resource, details, \
         prev_hash, hash FROM audit_events \
         WHERE ($1::bigint IS NULL OR seq < $1) \
           AND ($2::text IS NULL OR actor_id = $2 OR actor_kind = $2) \
           AND ($3::text IS NULL OR action = $3 OR action LIKE $3 || '.%') \
         ORDER BY seq DESC LIMIT $4",
    )
    .bind(query.before_seq)
    .bind(query.actor)
    .bind(query.action)
    .bind(query.limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Publishes up to `batch` committed-but-unpublished events (all tenants) to the `audit-log`
/// stream, then stamps them. At least once: a crash between the two republishes; consumers
/// deduplicate by `id`. Returns how many were published.
pub async fn publish_pending(
    db: &PgPool,
    redis: &mut ConnectionManager,
    batch: i32,
) -> Result<usize, AuthError> {
    let events: Vec<StoredEvent> = sqlx::query_as("SELECT * FROM audit_unpublished($1)")
        .bind(batch)
        .fetch_all(db)
        .await?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for e in &events {
        pipe.cmd("XADD")
            .arg(STREAM)
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAXLEN)
            .arg("*")
            .arg("id")
            .arg(e.id.to_string())
            .arg("tenant")
            .arg(e.tenant_id.to_string())
            .arg("seq")
            .arg(e.seq)
            .arg("at")
            .arg(e.at.to_rfc3339_opts(SecondsFormat::Micros, true))
            .arg("actor_kind")
            .arg(&e.actor_kind)
            .arg("actor_id")
            .arg(&e.actor_id)
            .arg("action")
            .arg(&e.action)
            .arg("resource")
            .arg(&e.resource)
            .arg("details")
            .arg(e.details.to_string())
            .arg("hash")
            .arg(&e.hash)
            .ignore();
    }
    let _: () = pipe.query_async(redis).await?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    sqlx::query("SELECT audit_mark_published($1)")
        .bind(&ids)
        .execute(db)
        .await?;
    Ok(events.len())
}

/// Runs the outbox publisher until the process ends: every `every`, publish what is pending.
/// Errors (Redis down) are logged and retried on the next tick; nothing is dropped.
pub async fn run_publisher(db: PgPool, mut redis: ConnectionManager, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match publish_pending(&db, &mut redis, 500).await {
                Ok(500) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "audit events not published yet; will retry");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::canonical_json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_whatever_their_order() {
        let written = json!({"zeta": 1, "alpha": {"b": [{"y": 2, "x": "é\"q"}], "a": null}});
        let stored: serde_json::Value = serde_json::from_str(
            r#"{"alpha": {"a": null, "b": [{"x": "é\"q", "y": 2}]}, "zeta": 1}"#,
        )
        .unwrap();
        let expected = r#"{"alpha":{"a":null,"b":[{"x":"é\"q","y":2}]},"zeta":1}"#;
        assert_eq!(canonical_json(&written), expected);
        assert_eq!(canonical_json(&stored), expected);
    }
}
