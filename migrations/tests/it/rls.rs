use brain_migrations::testing::TestDb;
use sqlx::Connection;
use uuid::Uuid;

use crate::fixtures;

async fn visible_agents(db: &TestDb, tenant: Option<Uuid>) -> Vec<String> {
    let mut conn = db.app_connection().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    if let Some(tenant) = tenant {
        brain_migrations::set_tenant(&mut tx, tenant).await.unwrap();
    }
    let slugs = sqlx::query_scalar("SELECT slug FROM agents ORDER BY slug")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    slugs
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_rows() {
    let db = TestDb::new().await.unwrap();
    let a = fixtures::tenant(&db, "tenant-a").await;
    let b = fixtures::tenant(&db, "tenant-b").await;
    fixtures::agent(&db, a, "a-writer").await;
    fixtures::agent(&db, b, "b-analyst").await;
    fixtures::chunks(&db, b, 3).await;

    assert_eq!(visible_agents(&db, Some(a)).await, ["a-writer"]);
    assert_eq!(visible_agents(&db, Some(b)).await, ["b-analyst"]);

    // Even a query with no tenant filter at all cannot read B's chunks from A's session.
    let mut conn = db.app_connection().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, a).await.unwrap();
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(chunks, 0);
    let tenants: Vec<String> = sqlx::query_scalar("SELECT slug FROM tenants")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tenants, ["tenant-a"]);
    // Updates and deletes aimed at B's rows touch nothing.
    let updated = sqlx::query("UPDATE agents SET goal = 'hijacked' WHERE tenant_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("DELETE FROM chunks")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    tx.commit().await.unwrap();

    let b_chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE tenant_id = $1")
        .bind(b)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(b_chunks, 3, "B's rows are untouched");
}

#[tokio::test]
async fn a_session_without_tenant_sees_no_tenant_rows() {
    let db = TestDb::new().await.unwrap();
    let a = fixtures::tenant(&db, "tenant-a").await;
    fixtures::agent(&db, a, "a-writer").await;
    fixtures::chunks(&db, a, 2).await;

    assert!(visible_agents(&db, None).await.is_empty());
    let mut conn = db.app_connection().await.unwrap();
    for table in [
        "tenants",
        "agents",
        "chunks",
        "documents",
        "knowledge_collections",
    ] {
        let sql = format!("SELECT count(*) FROM {table}");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} leaked rows to a session with no tenant");
    }
}

#[tokio::test]
async fn writing_into_another_tenant_is_refused() {
    let db = TestDb::new().await.unwrap();
    let a = fixtures::tenant(&db, "tenant-a").await;
    let b = fixtures::tenant(&db, "tenant-b").await;
    let mut conn = db.app_connection().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, a).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO agents (tenant_id, name, slug, role, goal) VALUES ($1, 'x', 'x', 'r', 'g')",
    )
    .bind(b)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .unwrap_or_default();
    assert_eq!(code, "42501", "expected an RLS violation, got {err}");
}

#[tokio::test]
async fn the_tenant_setting_ends_with_its_transaction() {
    let db = TestDb::new().await.unwrap();
    let a = fixtures::tenant(&db, "tenant-a").await;
    fixtures::agent(&db, a, "a-writer").await;
    let mut conn = db.app_connection().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, a).await.unwrap();
    tx.commit().await.unwrap();
    // Same connection, next transaction: the pooled connection forgot the tenant.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM agents")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn audit_events_are_append_only() {
    let db = TestDb::new().await.unwrap();
    let a = fixtures::tenant(&db, "tenant-a").await;
    let mut conn = db.app_connection().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, a).await.unwrap();
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO audit_events (tenant_id, seq, actor_kind, actor_id, action, resource, \
         prev_hash, hash) VALUES ($1, 1, 'system', 'test', 'agent.update', 'agents/x', '', 'h') \
         RETURNING id",
    )
    .bind(a)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // The outbox stamp is allowed ...
    sqlx::query("UPDATE audit_events SET published_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // ... rewriting history is not, for the app role nor for the owner.
    for pool in [&db.app, &db.owner] {
        let mut tx = pool.begin().await.unwrap();
        brain_migrations::set_tenant(&mut tx, a).await.unwrap();
        let err = sqlx::query("UPDATE audit_events SET action = 'nothing.happened' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only") || err.to_string().contains("denied"));
        tx.rollback().await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        brain_migrations::set_tenant(&mut tx, a).await.unwrap();
        assert!(
            sqlx::query("DELETE FROM audit_events")
                .execute(&mut *tx)
                .await
                .is_err()
        );
        tx.rollback().await.unwrap();
    }
}
