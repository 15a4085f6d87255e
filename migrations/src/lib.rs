//! Brain's Postgres schema: plain SQL migrations in `sql/`, embedded with `sqlx::migrate!`.
//!
//! Two roles matter. Migrations run as the schema owner (`BRAIN_MIGRATE_DATABASE_URL`);
//! the services connect as a member of the `brain_app` role (`DATABASE_URL`), which is not a
//! superuser and does not own the tables, so row-level security always applies to it.

use sqlx::migrate::Migrator;

#[cfg(feature = "testing")]
pub mod testing;

/// All migrations, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./sql");

/// The Postgres role every tenant-owned table grants DML to and whose sessions RLS filters.
pub const APP_ROLE: &str = "brain_app";

/// The session setting RLS policies read; set it per transaction with [`set_tenant`].
pub const TENANT_SETTING: &str = "app.tenant_id";

/// Applies every pending migration.
pub async fn run(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Puts the current transaction inside `tenant`: RLS policies then show only its rows.
///
/// Uses `set_config(.., true)`, the function form of `SET LOCAL`, so the setting ends with
/// the transaction and never leaks to the next user of a pooled connection.
pub async fn set_tenant(
    tx: &mut sqlx::PgConnection,
    tenant: impl std::fmt::Display,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// Begins a transaction inside `tenant` on `pool`: every statement in it is filtered by RLS.
pub async fn begin_tenant(
    pool: &sqlx::PgPool,
    tenant: impl std::fmt::Display,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    set_tenant(&mut tx, tenant).await?;
    Ok(tx)
}
