//! A provider that plays back a script (replies, tool calls, failures, panics): for tests
//! and benchmarks only, compiled under `cfg(test)` or the `test-support` feature and never
//! reachable from configuration.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ChatRequest, FinishReason, LlmProvider, ModelEvent, ModelStream, ToolCall, Usage};
use crate::error::ProviderError;

/// One model call's scripted outcome.
#[derive(Clone, Debug)]
pub enum ScriptStep {
    /// Stream this text, word by word.
    Reply(String),
    /// Ask for these tool calls.
    Call(Vec<ToolCall>),
    /// Fail the call with a provider error.
    Fail(String),
    /// Panic inside the call (exercises supervision).
    Panic(String),
    /// Wait, then do the inner step.
    Slow(Duration, Box<ScriptStep>),
}

impl ScriptStep {
    pub fn reply(text: impl Into<String>) -> Self {
        ScriptStep::Reply(text.into())
    }

    pub fn call(name: &str, arguments: serde_json::Value) -> Self {
        ScriptStep::Call(vec![ToolCall {
            id: format!("call_{name}"),
            name: name.to_owned(),
            arguments,
        }])
    }
}

#[derive(Default)]
struct Script {
    steps: VecDeque<ScriptStep>,
    /// Played when the queue is empty (benchmarks use this to loop forever).
    fallback: Option<ScriptStep>,
    requests: Vec<ChatRequest>,
    record: bool,
    /// The context window it claims (turns then fit their prompts into it).
    window: Option<usize>,
}

/// Plays back [`ScriptStep`]s, one per model call, and records the requests it saw.
#[derive(Clone, Default)]
pub struct ScriptedProvider {
    script: Arc<Mutex<Script>>,
}

impl ScriptedProvider {
    pub fn new(steps: impl IntoIterator<Item = ScriptStep>) -> Self {
        Self {
            script: Arc::new(Mutex::new(Script {
                steps: steps.into_iter().collect(),
                fallback: None,
                requests: Vec::new(),
                record: true,
                window: None,
            })),
        }
    }

    /// Answers every call with `step`, recording nothing (zero-overhead baseline).
    pub fn repeating(step: ScriptStep) -> Self {
        Self {
            script: Arc::new(Mutex::new(Script {
                fallback: Some(step),
                ..Script::default()
            })),
        }
    }

    /// Claims a context window of `tokens`.
    pub fn with_context_window(self, tokens: usize) -> Self {
        if let Ok(mut s) = self.script.lock() {
            s.window = Some(tokens);
        }
        self
    }

    /// Appends steps to the script.
    pub fn push(&self, steps: impl IntoIterator<Item = ScriptStep>) {
        if let Ok(mut s) = self.script.lock() {
            s.steps.extend(steps);
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.script
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    fn next_step(&self, request: &ChatRequest) -> Option<ScriptStep> {
        let mut script = self.script.lock().ok()?;
        if script.record {
            script.requests.push(request.clone());
        }
        script.steps.pop_front().or_else(|| script.fallback.clone())
    }
}

fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

#[async_trait::async_trait]
impl LlmProvider for ScriptedProvider {
    fn context_window(&self, _model: &str) -> Option<usize> {
        self.script.lock().ok().and_then(|s| s.window)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let prompt_tokens: u64 = request
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content))
            .sum();
        let mut step = self
            .next_step(&request)
            .ok_or_else(|| ProviderError::Script("script exhausted".into()))?;
        while let ScriptStep::Slow(delay, inner) = step {
            tokio::time::sleep(delay).await;
            step = *inner;
        }
        let events = match step {
            ScriptStep::Reply(text) => {
                let mut events: Vec<_> = text
                    .split_inclusive(' ')
                    .map(|w| Ok(ModelEvent::Token(w.to_owned())))
                    .collect();
                events.push(Ok(ModelEvent::Finished(FinishReason::Stop)));
                events.push(Ok(ModelEvent::Usage(Usage {
                    prompt_tokens,
                    completion_tokens: estimate_tokens(&text),
                })));
                events
            }
            ScriptStep::Call(calls) => {
                let completion_tokens = calls
                    .iter()
                    .map(|c| estimate_tokens(&c.arguments.to_string()))
                    .sum();
                let mut events: Vec<_> = calls
                    .into_iter()
                    .map(|c| Ok(ModelEvent::ToolCall(c)))
                    .collect();
                events.push(Ok(ModelEvent::Finished(FinishReason::ToolCalls)));
                events.push(Ok(ModelEvent::Usage(Usage {
                    prompt_tokens,
                    completion_tokens,
                })));
                events
            }
            ScriptStep::Fail(message) => return Err(ProviderError::Script(message)),
            #[allow(clippy::panic)] // the point of this step: a crash inside an agent's turn
            ScriptStep::Panic(message) => panic!("scripted panic: {message}"),
            ScriptStep::Slow(..) => Vec::new(),
        };
        Ok(Box::pin(futures::stream::iter(events)))
    }
}
