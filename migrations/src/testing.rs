//! A fresh, migrated database per test, on the Postgres that `cargo xtask infra up` started.
//!
//! Connection settings come from the environment (`BRAIN_MIGRATE_DATABASE_URL`, the owner, and
//! `DATABASE_URL`, the RLS-bound application role) or, when unset, from the `.brain/env` file
//! that xtask writes, so `cargo nextest run` works without sourcing anything.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    #[error("{0} is not set and .brain/env does not define it; run `cargo xtask infra up` first")]
    MissingSetting(&'static str),
    #[error("invalid database url in {0}: {1}")]
    BadUrl(&'static str, sqlx::Error),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A database created for one test. Dropped databases are cleaned up by the next
/// `cargo xtask test` (every name starts with [`TestDb::PREFIX`]).
pub struct TestDb {
    pub name: String,
    /// Connects as the schema owner (superuser in dev): sees everything, bypasses RLS.
    pub owner: PgPool,
    /// Connects as the application role: subject to row-level security.
    pub app: PgPool,
    owner_options: PgConnectOptions,
    app_options: PgConnectOptions,
}

impl TestDb {
    pub const PREFIX: &'static str = "brain_test_";

    /// Creates an empty database and applies every migration.
    pub async fn new() -> Result<Self, TestDbError> {
        let db = Self::empty().await?;
        crate::run(&db.owner).await?;
        Ok(db)
    }

    /// Creates an empty database without running migrations.
    pub async fn empty() -> Result<Self, TestDbError> {
        let owner_base = options("BRAIN_MIGRATE_DATABASE_URL")?;
        let app_base = options("DATABASE_URL")?;
        let name = format!("{}{}", Self::PREFIX, uuid::Uuid::new_v4().simple());

        let mut admin = owner_base.clone().database("postgres").connect().await?;
        // The name is generated above from hex digits only, so it needs no quoting.
        let create = format!("CREATE DATABASE {name}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut admin)
            .await?;
        admin.close().await?;

        let owner_options = owner_base.database(&name);
        let app_options = app_base.database(&name);
        let owner = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(owner_options.clone())
            .await?;
        let app = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(app_options.clone())
            .await?;
        Ok(Self {
            name,
            owner,
            app,
            owner_options,
            app_options,
        })
    }

    /// How to connect as the application role (for pools a test builds itself).
    pub fn app_options(&self) -> PgConnectOptions {
        self.app_options.clone()
    }

    /// A new single connection as the application role.
    pub async fn app_connection(&self) -> Result<PgConnection, sqlx::Error> {
        self.app_options.connect().await
    }

    /// A new single connection as the owner.
    pub async fn owner_connection(&self) -> Result<PgConnection, sqlx::Error> {
        self.owner_options.connect().await
    }
}

fn options(key: &'static str) -> Result<PgConnectOptions, TestDbError> {
    let url = setting(key).ok_or(TestDbError::MissingSetting(key))?;
    PgConnectOptions::from_str(&url).map_err(|e| TestDbError::BadUrl(key, e))
}

/// `key` from the environment, else from the workspace's `.brain/env`.
pub fn setting(key: &str) -> Option<String> {
    if let Ok(value) = std::env::var(key) {
        return Some(value);
    }
    brain_env_file().remove(key)
}

fn brain_env_file() -> HashMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.brain/env");
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}
