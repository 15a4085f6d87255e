//! End to end with the real embedded model: a chat through the actor tree to candle and back.

use std::path::PathBuf;
use std::sync::Arc;

use brain_agents::ProviderRegistry;
use brain_agents::providers::local::{LocalConfig, LocalProvider};
use brain_agents::providers::scripted::ScriptedProvider;
use brain_agents::spec::{AgentSpec, NewAgent};
use brain_auth::TenantId;
use brain_migrations::testing::TestDb;
use brain_runtime::{NoToolSource, RuntimeHandle};

use crate::harness::{fast_config, runtime, say};

fn model_path() -> PathBuf {
    brain_migrations::testing::setting("BRAIN_LOCAL_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.brain/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            ))
        })
}

/// A runtime whose `local` provider is `local`, and a greeter agent on it.
async fn greeter(
    db: &TestDb,
    local: Arc<LocalProvider>,
    max_tokens: u32,
) -> (RuntimeHandle, TenantId, AgentSpec) {
    let (rt, _) = runtime(
        db,
        &ScriptedProvider::default(),
        ProviderRegistry::new().with("local", local),
        Arc::new(NoToolSource),
        fast_config(),
    )
    .await;
    let tenant = TenantId(
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
                max_tokens: Some(max_tokens),
                ..NewAgent::default()
            },
        )
        .await
        .unwrap();
    (rt, tenant, agent)
}

#[tokio::test]
async fn chatting_with_the_local_model_gets_a_reply() {
    let local = Arc::new(LocalProvider::new(LocalConfig::new(model_path())));
    let db = TestDb::new().await.unwrap();
    let (rt, tenant, agent) = greeter(&db, local, 12).await;
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

#[tokio::test]
async fn a_follow_up_turn_only_runs_what_is_new() {
    let local = Arc::new(LocalProvider::new(LocalConfig::new(model_path())));
    let db = TestDb::new().await.unwrap();
    let (rt, tenant, agent) = greeter(&db, local.clone(), 16).await;

    let first = rt.chat(tenant, agent.id, say("Say hello.")).await.unwrap();
    let turn1 = local.last_generation().unwrap();
    let follow_up = brain_agents::TurnInput {
        conversation_id: Some(first.conversation_id),
        ..say("Now say goodbye.")
    };
    let second = rt.chat(tenant, agent.id, follow_up).await.unwrap();
    let turn2 = local.last_generation().unwrap();

    assert!(!second.reply.trim().is_empty());
    assert_eq!(turn1.reused_tokens, 0, "{turn1:?}");
    // Turn 2's prompt is turn 1's (system prompt, greeting) plus the reply and the new
    // message: at least turn 1's prompt comes from the cache.
    assert!(turn2.prompt_tokens > turn1.prompt_tokens, "{turn2:?}");
    assert!(
        turn2.reused_tokens >= turn1.prompt_tokens - 1,
        "{turn1:?} {turn2:?}"
    );
    assert!(
        turn2.prefilled_tokens() < turn1.prefilled_tokens(),
        "{turn1:?} {turn2:?}"
    );
}

/// A conversation of `messages` long messages, stored as if earlier turns had made them.
async fn long_conversation(
    db: &TestDb,
    tenant: TenantId,
    agent: &AgentSpec,
    messages: usize,
) -> uuid::Uuid {
    let conversation: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO conversations (tenant_id, agent_id, title) VALUES ($1, $2, 'long') RETURNING id",
    )
    .bind(tenant.0)
    .bind(agent.id.0)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    for i in 0..messages {
        let (role, text) = if i % 2 == 0 {
            (
                "user",
                format!(
                    "Message {i}: tell me about our spring campaign, the audiences, the channels and the budget split. "
                ),
            )
        } else {
            (
                "assistant",
                format!(
                    "Reply {i}: the spring campaign targets returning customers through e-mail and search, with most of the budget on search. "
                ),
            )
        };
        sqlx::query(
            "INSERT INTO messages (tenant_id, conversation_id, role, content, created_at) \
             VALUES ($1, $2, $3, $4, now() - make_interval(secs => $5))",
        )
        .bind(tenant.0)
        .bind(conversation)
        .bind(role)
        .bind(text.repeat(3))
        .bind((messages - i) as f64)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    conversation
}

#[tokio::test]
async fn a_long_conversation_is_fitted_into_the_local_models_window() {
    let local = Arc::new(LocalProvider::new(LocalConfig {
        context_tokens: 1024,
        ..LocalConfig::new(model_path())
    }));
    let db = TestDb::new().await.unwrap();
    let (rt, tenant, agent) = greeter(&db, local.clone(), 12).await;
    // 60 messages of ~100 tokens: six times the window.
    let conversation = long_conversation(&db, tenant, &agent, 60).await;

    let turn = brain_agents::TurnInput {
        conversation_id: Some(conversation),
        ..say("Say hello.")
    };
    let result = rt.chat(tenant, agent.id, turn).await.unwrap();
    assert!(!result.reply.trim().is_empty());
    let fit = result.prompt_fit.expect("the prompt was fitted");
    assert_eq!(fit.window, 1024);
    assert!(fit.history_dropped >= 30, "{fit:?}");
    assert!(fit.prompt_tokens <= fit.budget, "{fit:?}");
    let generation = local.last_generation().unwrap();
    assert!(
        generation.prompt_tokens + generation.completion_tokens <= 1024,
        "{generation:?}"
    );
    // The reply records what was left out.
    let stored = rt.list_messages(tenant, conversation).await.unwrap();
    let reply = stored.last().unwrap();
    assert_eq!(reply.content, result.reply);
    let usage = reply.usage.as_ref().unwrap();
    assert_eq!(
        usage["prompt_fit"]["history_dropped"],
        serde_json::json!(fit.history_dropped)
    );

    // A message that cannot fit on its own is refused before any forward pass.
    let too_long = brain_agents::TurnInput {
        conversation_id: Some(conversation),
        ..say(&"Describe the campaign in detail. ".repeat(150))
    };
    let refused = rt.chat(tenant, agent.id, too_long).await.unwrap_err();
    assert!(
        matches!(
            refused,
            brain_runtime::RuntimeError::Agent(brain_agents::AgentError::Provider(
                brain_agents::ProviderError::ContextTooLong { .. }
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(
        local.last_generation(),
        Some(generation),
        "no model call was made"
    );
    assert_eq!(
        rt.list_messages(tenant, conversation).await.unwrap().len(),
        stored.len(),
        "nothing stored for the refused turn"
    );
}
