//! Tenants and agents the tests start from.

use brain_agents::spec::{NewAgent, ToolGrant};
use brain_auth::TenantId;
use brain_migrations::testing::TestDb;

/// A tenant row, inserted as the owner (RLS does not apply to it).
pub async fn tenant(db: &TestDb, slug: &str) -> TenantId {
    let id: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id")
            .bind(slug)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    TenantId(id)
}

pub fn new_agent(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        role: "a marketing writer".into(),
        goal: "write short, accurate copy".into(),
        backstory: "Ten years at an agency.".into(),
        ..NewAgent::default()
    }
}

pub fn grant(connector: &str, actions: &[&str]) -> ToolGrant {
    ToolGrant {
        connector: connector.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
        approval: Default::default(),
        max_calls_per_run: None,
    }
}
