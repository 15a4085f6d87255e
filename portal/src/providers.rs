//! Model providers as the portal shows them: the tenant's view of each provider's key
//! (`GET /v1/tenant/providers`), and the models the model pickers offer — the well-known
//! models of every provider whose calls have a key to use.

use serde::{Deserialize, Serialize};

/// One provider and which key the tenant's calls use; the key itself is never sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelProvider {
    pub provider: String,
    /// `tenant`, `deployment`, `missing` or `not_needed`.
    pub key: String,
    pub key_hint: Option<String>,
    pub base_url: Option<String>,
    pub organization: Option<String>,
    pub verified_at: Option<String>,
}

impl ModelProvider {
    /// Whether calls to this provider have a key to use.
    pub fn usable(&self) -> bool {
        self.key != "missing"
    }

    /// Whether a tenant may set its own key (the local model takes none).
    pub fn takes_key(&self) -> bool {
        self.key != "not_needed"
    }
}

/// The models a provider is known for, newest first. Any other `provider:model` works
/// through the API.
fn known_models(provider: &str) -> &'static [&'static str] {
    match provider {
        "local" => &["default"],
        "openai" => &["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"],
        "anthropic" => &["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"],
        "gemini" => &[
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "gemini-2.5-flash-lite",
        ],
        "mistral" => &["mistral-large-latest", "mistral-small-latest"],
        "groq" => &["llama-3.3-70b-versatile", "llama-3.1-8b-instant"],
        "deepseek" => &["deepseek-chat"],
        "openrouter" => &["openai/gpt-4o-mini", "anthropic/claude-sonnet-4.5"],
        "xai" => &["grok-4"],
        "ollama" => &["llama3.2", "qwen2.5"],
        _ => &[],
    }
}

/// The model picker's choices: the known models of every usable provider, `local` first,
/// then `current` (the agent's own) when it is not among them.
pub fn model_choices(providers: &[ModelProvider], current: Option<&str>) -> Vec<String> {
    let mut usable: Vec<&ModelProvider> = providers.iter().filter(|p| p.usable()).collect();
    usable.sort_by_key(|p| {
        (
            p.provider != "local",
            p.provider != "openai",
            p.provider.clone(),
        )
    });
    let mut models: Vec<String> = usable
        .iter()
        .flat_map(|p| {
            known_models(&p.provider)
                .iter()
                .map(move |m| format!("{}:{m}", p.provider))
        })
        .collect();
    if let Some(current) = current.filter(|c| !c.is_empty() && !models.iter().any(|m| m == c)) {
        models.insert(0, current.to_owned());
    }
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, key: &str) -> ModelProvider {
        ModelProvider {
            provider: name.into(),
            key: key.into(),
            ..ModelProvider::default()
        }
    }

    #[test]
    fn only_providers_with_a_key_offer_models() {
        let providers = [
            provider("gemini", "missing"),
            provider("anthropic", "tenant"),
            provider("openai", "deployment"),
            provider("local", "not_needed"),
        ];
        let models = model_choices(&providers, Some("groq:llama-3.1-8b-instant"));
        assert_eq!(
            models[0], "groq:llama-3.1-8b-instant",
            "the agent's own first"
        );
        assert_eq!(models[1], "local:default");
        assert_eq!(models[2], "openai:gpt-4o-mini");
        assert!(models.contains(&"anthropic:claude-sonnet-4-5".to_owned()));
        assert!(!models.iter().any(|m| m.starts_with("gemini:")));
        let unchanged = model_choices(&providers, Some("openai:gpt-4o"));
        assert_eq!(
            unchanged.iter().filter(|m| *m == "openai:gpt-4o").count(),
            1
        );
    }
}
