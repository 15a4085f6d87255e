//! End to end with the real embedded model: a chat through the actor tree to candle and back.

use std::path::PathBuf;
use std::sync::Arc;

use brain_agents::ProviderRegistry;
use brain_agents::providers::local::{LocalConfig, LocalProvider};
use brain_agents::providers::scripted::ScriptedProvider;
use brain_agents::spec::NewAgent;
use brain_migrations::testing::TestDb;
use brain_runtime::NoToolSource;

use crate::harness::{fast_config, runtime, say};

#[tokio::test]
async fn chatting_with_the_local_model_gets_a_reply() {
    let model_path = brain_migrations::testing::setting("BRAIN_LOCAL_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.brain/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            ))
        });
    let local = LocalProvider::new(LocalConfig::new(model_path));
    let db = TestDb::new().await.unwrap();
    let (rt, _) = runtime(
        &db,
        &ScriptedProvider::default(),
        ProviderRegistry::new().with("local", Arc::new(local)),
        Arc::new(NoToolSource),
        fast_config(),
    )
    .await;
    let tenant = brain_auth::TenantId(
        sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id")
            .fetch_one(&db.owner)
            .await
            .unwrap(),
    );
    let agent = rt
        .create_agent(
            tenant,
            NewAgent {
                name: "Greeter".into(),
                role: "a friendly assistant".into(),
                goal: "greet people in one short sentence".into(),
                model: Some("local:default".into()),
                temperature: Some(0.0),
                max_tokens: Some(12),
                ..NewAgent::default()
            },
        )
        .await
        .unwrap();
    let result = rt.chat(tenant, agent.id, say("Say hello.")).await.unwrap();
    assert!(!result.reply.trim().is_empty());
    assert!(result.usage.completion_tokens > 0 && result.usage.completion_tokens <= 12);
    let stored = rt
        .list_messages(tenant, result.conversation_id)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].content, result.reply);
}
