//! Providers whose wire is not OpenAI's chat completions — Anthropic Messages, Gemini
//! `streamGenerateContent`, Ollama's native `/api/chat` and Azure OpenAI deployment URLs —
//! reached through rig-core's provider clients. rig is only the transport: Brain's turn loop
//! (grants, approvals, budgets, audit) stays Brain's, and rig sends through Brain's own
//! reqwest client ([`transport`]), so timeouts, TLS and the egress policy are Brain's too.
//!
//! Everything rig-specific is in this module: an upgrade of the crate touches nothing else.

mod convert;
mod transport;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use brain_auth::TenantId;
use brain_auth::egress::EgressPolicy;
use brain_auth::secrets::{SecretStore, SecretString};
use futures::StreamExt;
use rig_core::completion::CompletionRequest;
use rig_core::error::ProviderError as RigError;
use rig_core::providers::{anthropic, gemini, ollama, openai};
use rig_core::streaming::{CompletionStream, Item};

use super::keys::{KeyUse, ProviderKey};
use super::openai::{RetryPolicy, model_clients};
use super::{ChatRequest, LlmProvider, ModelEvent, ModelStream};
use crate::error::ProviderError;
use transport::Transport;

/// The wire a provider speaks, chosen by its well-known name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Anthropic's Messages API (`anthropic:claude-sonnet-4-5`).
    Anthropic,
    /// Google's Gemini API (`gemini:gemini-2.5-flash`).
    Gemini,
    /// Ollama's native chat API (`ollama:llama3.2`).
    Ollama,
    /// An Azure OpenAI resource; the model is the deployment's name
    /// (`azure-openai:my-gpt-4o`).
    AzureOpenAi,
}

impl Wire {
    /// The wire of a provider named `name`, when it is one of the well-known names.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            "ollama" => Some(Self::Ollama),
            "azure-openai" => Some(Self::AzureOpenAi),
            _ => None,
        }
    }

    /// Where the provider's public API is; `None` when every account has its own
    /// (Azure) and the deployment must say.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com"),
            Self::Ollama => Some("http://127.0.0.1:11434"),
            Self::AzureOpenAi => None,
        }
    }

    /// Whether a call without a key is refused before it is sent (a local Ollama needs none).
    fn needs_key(self) -> bool {
        self != Self::Ollama
    }
}

/// Settings of a provider reached through rig.
pub struct RigConfig {
    /// The provider's name in model references, errors and the secret store.
    pub name: String,
    pub wire: Wire,
    pub base_url: String,
    /// The deployment-wide key, used when a tenant has none of its own.
    pub api_key: Option<SecretString>,
    /// Azure's `api-version` query parameter (rig's default when `None`).
    pub api_version: Option<String>,
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Where a tenant's own `base_url` may point.
    pub egress: EgressPolicy,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl RigConfig {
    /// A provider of `wire` at `base_url`, without keys.
    pub fn new(name: impl Into<String>, wire: Wire, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            wire,
            base_url: base_url.into(),
            api_key: None,
            api_version: None,
            secrets: None,
            egress: EgressPolicy::default(),
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

pub struct RigProvider {
    name: String,
    wire: Wire,
    base_url: String,
    api_key: Option<SecretString>,
    api_version: Option<String>,
    secrets: Option<Arc<dyn SecretStore>>,
    egress: EgressPolicy,
    http: reqwest::Client,
    /// For tenants' own endpoints: every connection obeys the egress policy.
    guarded: reqwest::Client,
    retry: RetryPolicy,
}

/// Where one call goes, and with which key.
struct Target {
    http: reqwest::Client,
    base_url: String,
    key: Option<SecretString>,
}

impl Target {
    /// rig's transport on this target's client, and the key as rig takes it ("" for none).
    fn parts(&self) -> (Transport, String) {
        let key = self.key.as_ref().map(|k| k.expose().to_owned());
        (Transport(self.http.clone()), key.unwrap_or_default())
    }
}

impl RigProvider {
    pub fn new(config: RigConfig) -> Result<Self, ProviderError> {
        let (http, guarded) = model_clients(&config.egress, config.timeout)?;
        Ok(Self {
            name: config.name,
            wire: config.wire,
            base_url: config.base_url,
            api_key: config.api_key,
            api_version: config.api_version,
            secrets: config.secrets,
            egress: config.egress,
            http,
            guarded,
            retry: config.retry,
        })
    }

    async fn tenant_key(&self, tenant: TenantId) -> Result<Option<ProviderKey>, ProviderError> {
        match &self.secrets {
            Some(store) => ProviderKey::load(store.as_ref(), tenant, &self.name).await,
            None => Ok(None),
        }
    }

    /// Where calls with `key` go (the deployment's endpoint and key without one).
    fn target(&self, key: Option<&ProviderKey>) -> Result<Target, ProviderError> {
        let Some(key) = key else {
            return Ok(Target {
                http: self.http.clone(),
                base_url: self.base_url.clone(),
                key: self.api_key.clone(),
            });
        };
        let (http, base_url) = match &key.base_url {
            Some(url) => {
                self.egress
                    .check_str(url)
                    .map_err(|e| ProviderError::EgressRefused(e.to_string()))?;
                (self.guarded.clone(), url.clone())
            }
            None => (self.http.clone(), self.base_url.clone()),
        };
        Ok(Target {
            http,
            base_url,
            key: Some(key.api_key.clone()),
        })
    }

    /// Opens a streamed completion of `model` at `target` (nothing is sent until polled).
    #[expect(clippy::result_large_err, reason = "rig's error, mapped by the caller")]
    fn open(
        &self,
        target: &Target,
        model: &str,
        request: CompletionRequest,
    ) -> Result<CompletionStream, RigError> {
        let (http, key) = target.parts();
        let base = target.base_url.as_str();
        match self.wire {
            Wire::Anthropic => anthropic::AnthropicConfig::new(key)
                .with_base_url(base)
                .connect(http)
                .completion(model)
                .stream(request),
            Wire::Gemini => gemini::GeminiConfig::new(key)
                .with_base_url(base)
                .connect(http)
                .completion(model)
                .stream(request),
            Wire::Ollama => ollama::OllamaConfig::new()
                .with_base_url(base)
                .with_api_key(key)
                .connect(http)
                .native_completion(model)
                .stream(request),
            Wire::AzureOpenAi => {
                let mut config =
                    openai::OpenAIConfig::with_key(&openai::wire::AZURE, key).with_base_url(base);
                if let Some(version) = &self.api_version {
                    config = config.with_api_version(version);
                }
                config.connect(http).chat(model).stream(request)
            }
        }
    }

    /// Checks `target`'s key with a free call that needs it.
    async fn verify(&self, target: &Target) -> Result<(), RigError> {
        let (http, key) = target.parts();
        let base = target.base_url.as_str();
        match self.wire {
            Wire::Anthropic => {
                anthropic::AnthropicConfig::new(key)
                    .with_base_url(base)
                    .connect(http)
                    .verify()
                    .await
            }
            Wire::Gemini => {
                gemini::GeminiConfig::new(key)
                    .with_base_url(base)
                    .connect(http)
                    .verify()
                    .await
            }
            Wire::Ollama => ollama::OllamaConfig::new()
                .with_base_url(base)
                .with_api_key(key)
                .connect(http)
                .list_models()
                .await
                .map(drop),
            Wire::AzureOpenAi => {
                convert::verify_azure(
                    &target.http,
                    base,
                    &key,
                    self.api_version
                        .as_deref()
                        .unwrap_or(openai::wire::AZURE_DEFAULT_API_VERSION),
                )
                .await
            }
        }
    }

    fn error(&self, error: &RigError, key: Option<&SecretString>) -> ProviderError {
        convert::provider_error(&self.name, error, key)
    }
}

#[async_trait::async_trait]
impl LlmProvider for RigProvider {
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let tenant_key = self.tenant_key(request.tenant).await?;
        let target = self.target(tenant_key.as_ref())?;
        if self.wire.needs_key() && target.key.is_none() {
            return Err(ProviderError::MissingApiKey(self.name.clone()));
        }
        let completion = convert::completion_request(&request)?;
        let mut attempt = 1;
        let (stream, first) = loop {
            let mut stream = self
                .open(&target, &request.model, completion.clone())
                .map_err(|e| self.error(&e, target.key.as_ref()))?;
            // A refused call is the stream's first (and last) item.
            let first = stream.next().await;
            let Some(Err(error)) = &first else {
                break (stream, first);
            };
            let mapped = self.error(error, target.key.as_ref());
            let wait = convert::transient(error)
                .then(|| self.retry.delay(attempt, convert::retry_after(error)))
                .flatten();
            let Some(wait) = wait else {
                return Err(mapped);
            };
            tracing::warn!(provider = %self.name, attempt, wait_ms = wait.as_millis() as u64, error = %mapped, "model call refused for now; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        let reading = Reading {
            name: self.name.clone(),
            key: target.key,
            first: Some(first),
            stream: Some(stream),
            pending: VecDeque::new(),
        };
        Ok(Box::pin(futures::stream::unfold(reading, next_event)))
    }

    fn key_use(&self) -> KeyUse {
        KeyUse::TenantOrDeployment
    }

    fn has_deployment_key(&self) -> bool {
        self.api_key.is_some() || !self.wire.needs_key()
    }

    async fn verify_key(&self, key: &ProviderKey) -> Result<(), ProviderError> {
        let target = self.target(Some(key))?;
        self.verify(&target)
            .await
            .map_err(|e| self.error(&e, target.key.as_ref()))
    }
}

/// A streamed reply being turned into Brain's model events.
struct Reading {
    name: String,
    key: Option<SecretString>,
    /// The item read while deciding whether to retry.
    first: Option<Option<Result<Item<rig_core::streaming::StreamEvent>, RigError>>>,
    /// `None` once the reply ended.
    stream: Option<CompletionStream>,
    pending: VecDeque<Result<ModelEvent, ProviderError>>,
}

async fn next_event(mut r: Reading) -> Option<(Result<ModelEvent, ProviderError>, Reading)> {
    loop {
        if let Some(event) = r.pending.pop_front() {
            return Some((event, r));
        }
        let item = match r.first.take() {
            Some(first) => first,
            None => r.stream.as_mut()?.next().await,
        };
        match item {
            Some(Ok(Item::Event(event))) => r.pending.extend(convert::event(event).map(Ok)),
            Some(Ok(Item::Unknown(_))) => {}
            Some(Err(error)) => {
                r.stream = None;
                let mapped = convert::provider_error(&r.name, &error, r.key.as_ref());
                return Some((Err(mapped), r));
            }
            None => {
                let stream = r.stream.take()?;
                match stream.finish().await {
                    Ok(response) => r.pending.extend(convert::ending(&response).map(Ok)),
                    Err(error) => {
                        let mapped = convert::provider_error(&r.name, &error, r.key.as_ref());
                        r.pending.push_back(Err(mapped));
                    }
                }
            }
        }
    }
}
