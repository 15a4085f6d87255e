//! `cargo xtask bench auth`: credential verification throughput on one core, next to an
//! HS256 verify measured in the same run.
//!
//! * JWT verify: the full `TokenVerifier::verify` (EdDSA, kid lookup, claim checks).
//! * API-key verify: `api_keys::verify` (SHA-256 + the lookup in Postgres + the throttled
//!   last-used stamp), against a fresh database on the dev Postgres.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brain_auth::api_keys;
use brain_auth::keys::KeyRing;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_auth::token::{KeySource, TokenIssuer, TokenSettings, TokenVerifier};
use brain_auth::{Role, Scope, TenantId};
use brain_migrations::testing::{TestDb, setting};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

const RUN: Duration = Duration::from_secs(3);

/// Calls `op` repeatedly for `RUN` and returns operations per second.
async fn rate<F, Fut>(mut op: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..100 {
        op().await;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        op().await;
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    // One core: a current-thread runtime, nothing runs in parallel.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let addr = setting("VAULT_ADDR").ok_or_else(|| anyhow::anyhow!("VAULT_ADDR unset"))?;
    let token = setting("VAULT_TOKEN").ok_or_else(|| anyhow::anyhow!("VAULT_TOKEN unset"))?;
    let store: Arc<dyn SecretStore> = Arc::new(VaultSecretStore::new(&addr, &token, "secret")?);
    let ring = Arc::new(KeyRing::load_or_create(store, 3600).await?);
    let settings = TokenSettings::default();
    let issuer = TokenIssuer::new(ring.clone(), settings.clone());
    let verifier = TokenVerifier::new(KeySource::Local(ring), &settings);
    let jwt = issuer.issue(TenantId::new(), uuid::Uuid::now_v7(), Role::Editor)?;

    // The baseline: the cheapest JWT there is, HS256, same claims, same library.
    let claims = verifier.verify(&jwt).await?;
    let secret = b"an hs256 secret of reasonable length!!";
    let hs_token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?;
    let hs_key = DecodingKey::from_secret(secret);
    let mut hs_validation = Validation::new(Algorithm::HS256);
    hs_validation.set_audience(&["brain"]);
    let hs256 = rate(|| {
        let ok =
            jsonwebtoken::decode::<serde_json::Value>(&hs_token, &hs_key, &hs_validation).is_ok();
        assert!(ok);
        async {}
    })
    .await;

    let eddsa = rate(|| async {
        assert!(verifier.verify(&jwt).await.is_ok());
    })
    .await;

    let db = TestDb::new().await?;
    let tenant = TenantId::new();
    let mut tx = brain_migrations::begin_tenant(&db.app, tenant).await?;
    sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')")
        .bind(tenant.0)
        .execute(&mut *tx)
        .await?;
    let (_, key) = api_keys::create(&mut tx, tenant, None, "bench", &[Scope::Chat], None).await?;
    tx.commit().await?;
    let api_key = rate(|| async {
        assert!(
            api_keys::verify(&db.app, &key)
                .await
                .ok()
                .flatten()
                .is_some()
        );
    })
    .await;

    println!("auth verification on one core ({}s each)", RUN.as_secs());
    println!("{:<28} {:>12} {:>14}", "", "ops/s", "× HS256 cost");
    for (name, ops) in [
        ("HS256 verify (baseline)", hs256),
        ("EdDSA JWT verify (Brain)", eddsa),
        ("API-key verify (Brain, PG)", api_key),
    ] {
        println!("{name:<28} {ops:>12.0} {:>14.1}", hs256 / ops);
    }
    Ok(())
}
