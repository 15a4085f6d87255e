use brain_migrations::testing::TestDb;

const TENANT_TABLES: &[&str] = &[
    "tenants",
    "users",
    "memberships",
    "user_identities",
    "knowledge_collections",
    "agents",
    "tool_grants",
    "delegate_grants",
    "conversations",
    "messages",
    "documents",
    "document_sources",
    "chunks",
    "connector_connections",
    "webhooks",
    "webhook_deliveries",
    "api_keys",
    "rules",
    "tasks",
    "task_steps",
    "crews",
    "audit_events",
    "usage",
    "connector_idempotency",
    "tenant_model_keys",
    "mcp_servers",
    "a2a_published_agents",
    "a2a_tasks",
];

#[tokio::test]
async fn migrations_apply_on_a_fresh_database() {
    let db = TestDb::empty().await.unwrap();
    let before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(before, 0, "a fresh database starts empty");

    brain_migrations::run(&db.owner).await.unwrap();
    // Running again is a no-op, not an error.
    brain_migrations::run(&db.owner).await.unwrap();

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(applied as usize, brain_migrations::MIGRATOR.iter().count());

    let vector: String =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(
        vector.starts_with("0.8"),
        "pgvector 0.8 expected, got {vector}"
    );
}

#[tokio::test]
async fn every_tenant_table_forces_row_level_security() {
    let db = TestDb::new().await.unwrap();
    for table in TENANT_TABLES {
        let (enabled, forced, policies): (bool, bool, i64) = sqlx::query_as(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, \
                    (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname) \
             FROM pg_class c WHERE c.relname = $1 AND c.relkind = 'r'",
        )
        .bind(table)
        .fetch_one(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("table {table}: {e}"));
        assert!(
            enabled && forced,
            "{table}: RLS enabled={enabled} forced={forced}"
        );
        assert_eq!(policies, 1, "{table}: expected exactly one policy");
    }
    // Nothing tenant-owned was forgotten: every public table with a tenant_id column is listed.
    let with_tenant: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    for table in with_tenant {
        assert!(
            TENANT_TABLES.contains(&table.as_str()),
            "{table} has no RLS check here"
        );
    }
}

#[tokio::test]
async fn the_application_role_is_subject_to_rls() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.app_connection().await.unwrap();
    let (user, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, r.rolsuper, r.rolbypassrls \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(
        !superuser && !bypass,
        "{user} must be neither superuser nor BYPASSRLS"
    );
    let member: bool =
        sqlx::query_scalar("SELECT pg_has_role(current_user, 'brain_app', 'member')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(member, "{user} must be a member of brain_app");
    let owns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owns, 0, "{user} must not own tables");
}
