use brain_gateway::seed::{self, NewTenant, SeedError};
use brain_migrations::testing::TestDb;
use sqlx::Connection;

#[tokio::test]
async fn the_demo_seed_runs_once_under_rls() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.app_connection().await.unwrap();
    let created = seed::demo(&mut conn)
        .await
        .unwrap()
        .expect("first seed creates the tenant");
    assert!(
        seed::demo(&mut conn).await.unwrap().is_none(),
        "a second seed does nothing"
    );

    let mut tx = conn.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, created.id)
        .await
        .unwrap();
    let agents: Vec<String> = sqlx::query_scalar("SELECT slug FROM agents ORDER BY slug")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        agents,
        ["content-creator", "data-analyst", "marketing-strategist"]
    );
    // The example rule: disabled, every Saturday 08:00, Google Ads → Data Analyst → WordPress.
    let (name, enabled, trigger, steps): (String, bool, serde_json::Value, serde_json::Value) =
        sqlx::query_as("SELECT name, enabled, trigger, steps FROM rules")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(name, "Weekend report");
    assert!(!enabled);
    assert_eq!(trigger["cron"], "0 8 * * 6");
    assert_eq!(steps[0]["connector_action"]["connector"], "google-ads");
    let analyst: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM agents WHERE slug = 'data-analyst'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(steps[1]["agent_task"]["agent_id"], analyst.to_string());
    assert_eq!(steps[2]["connector_action"]["action"], "create_post");
    // The crew: the strategist manages the creator and the analyst.
    let (process, manager, members): (String, uuid::Uuid, Vec<uuid::Uuid>) = sqlx::query_as(
        "SELECT process, manager_agent_id, members FROM crews WHERE name = 'Campaign crew'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let id = |slug: &'static str| {
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM agents WHERE slug = $1").bind(slug)
    };
    assert_eq!(process, "hierarchical");
    assert_eq!(
        manager,
        id("marketing-strategist")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    );
    assert_eq!(
        members,
        vec![
            id("content-creator").fetch_one(&mut *tx).await.unwrap(),
            analyst
        ]
    );
    let (email, role, hash): (String, String, String) = sqlx::query_as(
        "SELECT u.email, m.role, u.password_hash FROM users u \
         JOIN memberships m ON m.user_id = u.id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        (email.as_str(), role.as_str()),
        ("admin@demo.local", "owner")
    );
    assert!(brain_auth::password::verify(&created.owner_password, &hash));
    assert!(
        !hash.contains(&created.owner_password),
        "only the hash is stored"
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_taken_slug_is_a_clear_error() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.app_connection().await.unwrap();
    let new = NewTenant {
        slug: "acme",
        name: "Acme",
        owner_email: "Owner@Acme.test",
        owner_password: Some("a long enough password"),
    };
    seed::create_tenant(&mut conn, &new).await.unwrap();
    let again = seed::create_tenant(&mut conn, &new).await.unwrap_err();
    assert!(
        matches!(again, SeedError::TenantExists(ref s) if s == "acme"),
        "{again}"
    );
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(tenants, 1, "the failed attempt left nothing behind");
}
