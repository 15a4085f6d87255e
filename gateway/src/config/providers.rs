//! The model providers a deployment runs besides `local` and `openai`
//! (`BRAIN_MODEL_PROVIDERS`, `BRAIN_MODEL_PROVIDER_KEYS`).

use brain_agents::providers::rig::Wire;

use super::{Config, ConfigError, Secret};

/// Public clouds registered at their public API even when `BRAIN_MODEL_PROVIDERS` does not
/// name them, so a tenant can bring a key without the deployment configuring anything: two
/// native wires, then OpenAI-compatible APIs (their documented `/v1` bases).
const ALWAYS_ON_PROVIDERS: [(&str, Option<&str>); 7] = [
    ("anthropic", None),
    ("gemini", None),
    ("mistral", Some("https://api.mistral.ai/v1")),
    ("openrouter", Some("https://openrouter.ai/api/v1")),
    ("groq", Some("https://api.groq.com/openai/v1")),
    ("deepseek", Some("https://api.deepseek.com/v1")),
    ("xai", Some("https://api.x.ai/v1")),
];

/// A model provider besides `local` and `openai`: OpenAI-compatible, or one of the native
/// wires (`anthropic`, `gemini`, `ollama`, `azure-openai`) when named so.
#[derive(Debug)]
pub struct ModelProvider {
    pub name: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// A public cloud registered by default: a call without a key is refused before it is
    /// sent (a deployment's own OpenAI-compatible server may need none).
    pub key_required: bool,
}

impl Config {
    /// The extra providers with their deployment keys.
    pub fn model_providers(&self) -> Result<Vec<ModelProvider>, ConfigError> {
        let invalid =
            |setting: &'static str, reason: String| ConfigError::Invalid { setting, reason };
        let pairs =
            |raw: &str, setting: &'static str| -> Result<Vec<(String, String)>, ConfigError> {
                raw.split(',')
                    .map(str::trim)
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (name, value) = pair.split_once('=').ok_or_else(|| {
                            invalid(setting, "an entry is not `name=value`".to_owned())
                        })?;
                        Ok((name.trim().to_owned(), value.trim().to_owned()))
                    })
                    .collect()
            };
        let keys = match &self.model_provider_keys {
            Some(raw) => pairs(raw.expose(), "BRAIN_MODEL_PROVIDER_KEYS")?,
            None => Vec::new(),
        };
        let mut providers = match &self.model_providers {
            Some(raw) => pairs(raw, "BRAIN_MODEL_PROVIDERS")?,
            None => Vec::new(),
        };
        let named = |name: &str| {
            !name.is_empty()
                && name.len() <= 40
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        for (name, url) in &providers {
            if !named(name) || ["local", "openai", "agent"].contains(&name.as_str()) {
                return Err(invalid(
                    "BRAIN_MODEL_PROVIDERS",
                    format!(
                        "`{name}` is not a free provider name ([a-z0-9_-], not local/openai/agent)"
                    ),
                ));
            }
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid("BRAIN_MODEL_PROVIDERS", format!("`{url}`: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    "BRAIN_MODEL_PROVIDERS",
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
        }
        let named_by_deployment = providers.len();
        for (cloud, url) in ALWAYS_ON_PROVIDERS {
            let base_url = url.or_else(|| Wire::named(cloud).and_then(Wire::default_base_url));
            if let Some(url) = base_url.filter(|_| !providers.iter().any(|(p, _)| p == cloud)) {
                providers.push((cloud.to_owned(), url.to_owned()));
            }
        }
        if let Some((name, _)) = keys
            .iter()
            .find(|(k, _)| !providers.iter().any(|(p, _)| p == k))
        {
            return Err(invalid(
                "BRAIN_MODEL_PROVIDER_KEYS",
                format!("`{name}` is not one of BRAIN_MODEL_PROVIDERS"),
            ));
        }
        Ok(providers
            .into_iter()
            .enumerate()
            .map(|(i, (name, base_url))| {
                let api_key = keys
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| Secret::new(v.clone()));
                ModelProvider {
                    name,
                    base_url,
                    api_key,
                    key_required: i >= named_by_deployment,
                }
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn native_wire_clouds_are_always_there_and_others_only_when_named() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "BRAIN_MODEL_PROVIDERS",
                "ollama=http://gpu-box:11434,groq=https://api.groq.com/openai/v1",
            );
            jail.set_env("BRAIN_MODEL_PROVIDER_KEYS", "anthropic=sk-ant-1,groq=gsk_1");
            let config = Config::from_figment(Config::figment(None)).map_err(|e| e.to_string())?;
            let providers = config.model_providers().map_err(|e| e.to_string())?;
            let found = |name: &str| providers.iter().find(|p| p.name == name);
            let names: Vec<_> = providers.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "ollama",
                    "groq",
                    "anthropic",
                    "gemini",
                    "mistral",
                    "openrouter",
                    "deepseek",
                    "xai"
                ]
            );
            assert_eq!(
                found("openrouter").unwrap().base_url,
                "https://openrouter.ai/api/v1"
            );
            // The deployment's own `groq` entry wins over the default one, and may go keyless.
            assert_eq!(
                found("groq").unwrap().base_url,
                "https://api.groq.com/openai/v1"
            );
            assert!(!found("groq").unwrap().key_required);
            assert!(found("mistral").unwrap().key_required);
            assert_eq!(
                found("anthropic").unwrap().base_url,
                "https://api.anthropic.com"
            );
            assert!(found("anthropic").unwrap().api_key.is_some());
            assert!(found("gemini").unwrap().api_key.is_none());
            assert_eq!(found("ollama").unwrap().base_url, "http://gpu-box:11434");
            Ok(())
        });
    }
}
