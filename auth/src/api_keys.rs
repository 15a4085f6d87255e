//! API keys: `bk_` + 32 random bytes, shown once. Only the SHA-256 and a display prefix are
//! stored; verification hashes the presented key and looks the hash up.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{AuthError, Scope, TenantId};

pub const PREFIX: &str = "bk_";
/// Characters of the key kept for display (`bk_` + 6).
const DISPLAY_LEN: usize = 9;

/// A key as listed: never the key itself.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub name: String,
    /// `bk_ab12cd…`
    pub prefix: String,
    #[schema(schema_with = scopes_schema)]
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The OpenAPI schema of a key's scopes: an array of [`Scope`] names (`agents:read`, …).
pub(crate) fn scopes_schema() -> utoipa::openapi::schema::Array {
    let scope = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(Scope::ALL.map(Scope::as_str)));
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(scope)
        .build()
}

/// A verified key.
#[derive(Clone, Debug)]
pub struct VerifiedKey {
    pub id: Uuid,
    pub tenant: TenantId,
    pub scopes: Vec<Scope>,
}

fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates a key inside the caller's tenant transaction; returns its info and the key, which
/// is never retrievable again.
pub async fn create(
    tx: &mut PgConnection,
    tenant: TenantId,
    created_by: Option<Uuid>,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKeyInfo, String), AuthError> {
    let mut random = [0u8; 32];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| AuthError::KeyMaterial)?;
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let prefix = format!("{}…", &key[..DISPLAY_LEN]);
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let info = sqlx::query_as::<_, ApiKeyInfo>(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_sha256, scopes, created_by, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         RETURNING id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.0)
    .bind(name)
    .bind(&prefix)
    .bind(digest(&key))
    .bind(&scopes)
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await?;
    Ok((info, key))
}

pub async fn list(tx: &mut PgConnection) -> Result<Vec<ApiKeyInfo>, AuthError> {
    Ok(sqlx::query_as::<_, ApiKeyInfo>(
        "SELECT id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at \
         FROM api_keys ORDER BY created_at DESC",
    )
    .fetch_all(&mut *tx)
    .await?)
}

/// Revokes a key of the transaction's tenant; `false` when there is no such (live) key.
pub async fn revoke(tx: &mut PgConnection, id: Uuid) -> Result<bool, AuthError> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Looks a presented key up; `None` for unknown, revoked or expired keys.
pub async fn verify(db: &PgPool, key: &str) -> Result<Option<VerifiedKey>, AuthError> {
    if !key.starts_with(PREFIX) || key.len() > 128 {
        return Ok(None);
    }
    type Row = (
        Uuid,
        Uuid,
        Vec<String>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let row: Option<Row> = sqlx::query_as("SELECT * FROM auth_api_key_lookup($1)")
        .bind(digest(key))
        .fetch_optional(db)
        .await?;
    let Some((id, tenant, scopes, expires_at, revoked_at, last_used_at)) = row else {
        return Ok(None);
    };
    let now = Utc::now();
    if revoked_at.is_some() || expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    // Bounded write amplification: stamp last use at most once a minute per key, and skip
    // the write (one round trip in all) when the stamp is recent.
    if last_used_at.is_none_or(|at| now - at > chrono::Duration::minutes(1)) {
        let mut tx = brain_migrations::begin_tenant(db, tenant).await?;
        sqlx::query(
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(Some(VerifiedKey {
        id,
        tenant: TenantId(tenant),
        scopes: scopes.iter().filter_map(|s| s.parse().ok()).collect(),
    }))
}
