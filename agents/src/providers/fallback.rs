//! An agent's fallback models: when its model's provider is rate limiting, failing (5xx)
//! or unreachable — after the provider's own retries — the call goes to the next model of
//! `fallback_models`, and the switch is reported as a [`ModelEvent::FellBack`] at the head of
//! the stream. A refused key, a bad request or a prompt too long moves on to nothing: another
//! model would not fix them. Only the start of a call falls back; a stream that breaks after
//! its first event fails the call as before.

use std::sync::Arc;

use brain_auth::{Code, ErrorCode};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{ChatRequest, LlmProvider, ModelEvent, ModelStream, ProviderRegistry};
use crate::error::ProviderError;
use crate::spec::ModelRef;

/// A call that moved from one model to the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelFallback {
    /// `provider:model` that failed.
    pub from: String,
    /// `provider:model` that took the call.
    pub to: String,
    /// Why `from` was left: `model_rate_limited` or `model_error`.
    pub code: String,
}

/// Whether another model may succeed where this error stopped the call.
pub fn moves_on(error: &ProviderError) -> bool {
    match error {
        ProviderError::Status { status, .. } => *status == 429 || *status >= 500,
        ProviderError::Unreachable(_) => true,
        _ => false,
    }
}

/// An agent's model and its fallbacks, as one provider.
pub struct ModelChain {
    links: Vec<(ModelRef, Arc<dyn LlmProvider>)>,
}

impl ModelChain {
    /// `primary` then each of `fallbacks` this Brain runs (others are skipped, with a
    /// warning: the agent was saved when they were configured).
    pub fn new(
        providers: &ProviderRegistry,
        primary: &ModelRef,
        fallbacks: &[ModelRef],
    ) -> Result<Self, ProviderError> {
        let mut links = vec![(primary.clone(), providers.resolve(primary)?)];
        for model in fallbacks {
            match providers.resolve(model) {
                Ok(provider) => links.push((model.clone(), provider)),
                Err(e) => tracing::warn!(%model, error = %e, "fallback model skipped"),
            }
        }
        Ok(Self { links })
    }

    /// The chain as a provider: the primary alone when there is nothing to fall back to.
    pub fn into_provider(mut self) -> Arc<dyn LlmProvider> {
        if self.links.len() == 1 {
            return self.links.remove(0).1;
        }
        Arc::new(self)
    }
}

#[async_trait::async_trait]
impl LlmProvider for ModelChain {
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let mut switches: Vec<ModelFallback> = Vec::new();
        let mut links = self.links.iter().peekable();
        while let Some((model, provider)) = links.next() {
            let call = ChatRequest {
                model: model.model().to_owned(),
                ..request.clone()
            };
            match provider.stream(call).await {
                Ok(stream) if switches.is_empty() => return Ok(stream),
                Ok(stream) => {
                    let notes = switches.into_iter().map(|f| Ok(ModelEvent::FellBack(f)));
                    return Ok(Box::pin(futures::stream::iter(notes).chain(stream)));
                }
                Err(error) if moves_on(&error) => {
                    let Some((next, _)) = links.peek() else {
                        return Err(error);
                    };
                    tracing::warn!(from = %model, to = %next, %error, "model call falls back");
                    let code = match error.code() {
                        Code::ModelRateLimited => Code::ModelRateLimited,
                        _ => Code::ModelError,
                    };
                    switches.push(ModelFallback {
                        from: model.to_string(),
                        to: next.to_string(),
                        code: code.as_str().to_owned(),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Err(ProviderError::Malformed("an empty model chain".into()))
    }

    fn context_window(&self, model: &str) -> Option<usize> {
        self.links.first()?.1.context_window(model)
    }
}
