//! The agent store on the real schema, under row-level security.

use brain_agents::spec::{AgentHealth, AgentPatch, ConnectorCatalog};
use brain_agents::{AgentError, AgentStore};
use brain_migrations::testing::TestDb;

use crate::fixtures::{grant, new_agent, tenant};

struct Catalog;

impl ConnectorCatalog for Catalog {
    fn actions(&self, connector: &str) -> Option<Vec<String>> {
        (connector == "wordpress").then(|| vec!["create_post".into(), "list_posts".into()])
    }
}

#[tokio::test]
async fn crud_bumps_version_and_keeps_tenants_apart() {
    let db = TestDb::new().await.unwrap();
    let acme = tenant(&db, "acme").await;
    let other = tenant(&db, "other").await;
    let store = AgentStore::new(db.app.clone());

    let mut input = new_agent("Content Creator");
    input.tools = vec![grant("wordpress", &["create_post"])];
    input.temperature = Some(0.3);
    let created = store.create(acme, input).await.unwrap();
    assert_eq!(created.slug.as_str(), "content-creator");
    assert_eq!(created.version, 1);
    assert_eq!(created.tools, vec![grant("wordpress", &["create_post"])]);
    assert_eq!(created.model.to_string(), "local:default");

    let patch = AgentPatch {
        temperature: Some(1.1),
        goal: Some("write longer copy".into()),
        ..AgentPatch::default()
    };
    let updated = store
        .update(acme, created.id, patch, Some(1))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.temperature.get(), 1.1);
    assert_eq!(updated.goal.as_str(), "write longer copy");
    assert_eq!(updated.tools, created.tools, "tools untouched by the patch");

    let replaced = store
        .replace_tools(acme, created.id, vec![], None)
        .await
        .unwrap();
    assert_eq!(replaced.version, 3);
    assert!(replaced.tools.is_empty());
    assert!(store.grants(acme, created.id).await.unwrap().is_empty());

    let stale = store
        .update(acme, created.id, AgentPatch::default(), Some(1))
        .await;
    assert!(matches!(
        stale,
        Err(AgentError::VersionConflict { expected: 1 })
    ));

    // The other tenant sees nothing and can change nothing.
    assert!(store.list(other).await.unwrap().is_empty());
    assert!(matches!(
        store.get(other, created.id).await,
        Err(AgentError::NotFound)
    ));
    assert!(matches!(
        store.delete(other, created.id).await,
        Err(AgentError::NotFound)
    ));

    // Slugs are unique per tenant only.
    let dup = store.create(acme, new_agent("Content Creator")).await;
    assert!(matches!(dup, Err(AgentError::SlugTaken(s)) if s == "content-creator"));
    store
        .create(other, new_agent("Content Creator"))
        .await
        .unwrap();

    store
        .set_health(acme, created.id, AgentHealth::Degraded)
        .await
        .unwrap();
    let got = store.get_by_slug(acme, "content-creator").await.unwrap();
    assert_eq!(got.status, AgentHealth::Degraded);
    assert_eq!(got.version, 3, "health is not a config change");

    store.delete(acme, created.id).await.unwrap();
    assert!(store.list(acme).await.unwrap().is_empty());
}

#[tokio::test]
async fn validation_errors_name_the_field_and_store_nothing() {
    let db = TestDb::new().await.unwrap();
    let acme = tenant(&db, "acme").await;
    let store = AgentStore::new(db.app.clone())
        .with_known_providers(vec!["local".into(), "openai".into()])
        .with_catalog(std::sync::Arc::new(Catalog));

    let field_of = |r: Result<_, AgentError>| match r {
        Err(AgentError::Validation(v)) => v.field,
        Err(other) => panic!("expected a validation error, got {other:?}"),
        Ok(_) => panic!("expected a validation error"),
    };

    let mut bad = new_agent("A");
    bad.temperature = Some(3.7);
    assert_eq!(field_of(store.create(acme, bad).await), "temperature");

    let mut bad = new_agent("A");
    bad.model = Some("anthropic:claude".into());
    assert_eq!(field_of(store.create(acme, bad).await), "model");

    let mut bad = new_agent("A");
    bad.tools = vec![grant("myspace", &["post"])];
    assert_eq!(field_of(store.create(acme, bad).await), "tools");

    let mut bad = new_agent("A");
    bad.tools = vec![grant("wordpress", &["delete_everything"])];
    assert_eq!(field_of(store.create(acme, bad).await), "tools");

    let mut bad = new_agent("A");
    bad.role = " ".into();
    assert_eq!(field_of(store.create(acme, bad).await), "role");

    assert!(store.list(acme).await.unwrap().is_empty());

    let ok = store.create(acme, new_agent("A")).await.unwrap();
    let patch = AgentPatch {
        temperature: Some(-1.0),
        ..AgentPatch::default()
    };
    assert_eq!(
        field_of(store.update(acme, ok.id, patch, None).await),
        "temperature"
    );
    assert_eq!(store.get(acme, ok.id).await.unwrap().version, 1);
}

#[tokio::test]
async fn new_agents_get_the_tenants_default_model() {
    let db = TestDb::new().await.unwrap();
    let acme = tenant(&db, "acme").await;
    sqlx::query("UPDATE tenants SET default_model = 'openai:gpt-4o-mini' WHERE id = $1")
        .bind(acme.0)
        .execute(&db.owner)
        .await
        .unwrap();
    let store = AgentStore::new(db.app.clone());
    let agent = store.create(acme, new_agent("Default")).await.unwrap();
    assert_eq!(agent.model.to_string(), "openai:gpt-4o-mini");
    let mut explicit = new_agent("Explicit");
    explicit.model = Some("local:default".into());
    let agent = store.create(acme, explicit).await.unwrap();
    assert_eq!(agent.model.to_string(), "local:default");
}
