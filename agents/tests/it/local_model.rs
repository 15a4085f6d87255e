//! One short generation with the real embedded model (assembled by `cargo xtask`).

use std::path::PathBuf;

use brain_agents::providers::local::{LocalConfig, LocalProvider};
use brain_agents::providers::{ChatMessage, ChatRequest, LlmProvider};
use brain_auth::TenantId;

/// `BRAIN_LOCAL_MODEL`, else where `cargo xtask` puts it.
pub fn model_path() -> PathBuf {
    brain_migrations::testing::setting("BRAIN_LOCAL_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.brain/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            ))
        })
}

#[tokio::test]
async fn the_local_model_answers() {
    let provider = LocalProvider::new(LocalConfig {
        model_path: model_path(),
        threads: 1,
        seed: 1,
    });
    let reply = provider
        .complete(ChatRequest {
            tenant: TenantId::new(),
            model: "default".into(),
            messages: vec![
                ChatMessage::system("You are a helpful assistant. Answer in one short sentence."),
                ChatMessage::user("What colour is the sky on a clear day?"),
            ],
            tools: vec![],
            temperature: 0.0,
            max_tokens: 12,
        })
        .await
        .unwrap();
    assert!(!reply.content.trim().is_empty(), "empty reply");
    assert!(reply.usage.prompt_tokens > 10);
    assert!(reply.usage.completion_tokens > 0 && reply.usage.completion_tokens <= 12);
}
