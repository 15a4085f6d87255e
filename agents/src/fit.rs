//! Fitting a prompt into the model's context window: the oldest history goes first, then the
//! lowest-ranked knowledge passages; the system prompt, the tools and the current turn are
//! never cut. Token counts are estimated from UTF-8 bytes (three per token, fewer than any
//! tokenizer Brain's models use for prose), so a fitted prompt fits; the provider still
//! refuses, with a clear error, a prompt that does not.

use serde::{Deserialize, Serialize};

use crate::knowledge::Passage;
use crate::providers::{ChatMessage, ChatRole, ToolDefinition};

/// Tokens one message costs besides its text (role markers, separators).
const MESSAGE_OVERHEAD: usize = 8;

/// How a turn's prompt was fitted; recorded on the turn when something had to go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromptFit {
    /// The model's context window, in tokens.
    pub window: usize,
    /// Tokens left for the prompt (the window less room for the reply).
    pub budget: usize,
    /// The estimated prompt tokens sent.
    pub prompt_tokens: usize,
    /// Earlier messages of the conversation left out, oldest first.
    pub history_dropped: usize,
    /// Knowledge passages left out, lowest-ranked first.
    pub passages_dropped: usize,
}

impl PromptFit {
    /// Whether anything was left out.
    pub fn trimmed(&self) -> bool {
        self.history_dropped > 0 || self.passages_dropped > 0
    }
}

/// The current turn alone does not fit the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong {
    pub needed: usize,
    pub budget: usize,
}

/// Estimated tokens of `text`.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(3)
}

/// Estimated tokens of one message, tool calls included.
pub fn message_tokens(message: &ChatMessage) -> usize {
    MESSAGE_OVERHEAD
        + estimate_tokens(&message.content)
        + message
            .tool_calls
            .iter()
            .map(|c| MESSAGE_OVERHEAD + estimate_tokens(&c.name) + json_tokens(&c.arguments))
            .sum::<usize>()
}

/// Estimated tokens of the tool definitions. Counted twice: the system prompt lists them and
/// providers render them again in their own format.
pub fn tools_tokens(tools: &[ToolDefinition]) -> usize {
    2 * tools
        .iter()
        .map(|t| {
            MESSAGE_OVERHEAD
                + estimate_tokens(&t.name)
                + estimate_tokens(&t.description)
                + json_tokens(&t.parameters)
        })
        .sum::<usize>()
}

fn json_tokens(value: &serde_json::Value) -> usize {
    estimate_tokens(&value.to_string())
}

/// What to send: the first `passages` passages and `history[history_from..]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub passages: usize,
    pub history_from: usize,
    pub fit: PromptFit,
}

/// The parts of a prompt and the window they must fit.
pub struct PromptParts<'a> {
    /// Context window of the model, in tokens.
    pub window: usize,
    /// Tokens the reply may take (`max_tokens`); at most half the window is kept for it.
    pub reply_tokens: usize,
    /// The system prompt with the first `n` passages.
    pub system: &'a dyn Fn(&[Passage]) -> String,
    /// Retrieved passages, best first.
    pub passages: &'a [Passage],
    /// Earlier messages, oldest first.
    pub history: &'a [ChatMessage],
    /// This turn's messages so far (the user's message, then calls and results).
    pub current: &'a [ChatMessage],
    pub tools: &'a [ToolDefinition],
}

/// Keeps as much as fits, dropping the oldest history first and then the lowest-ranked
/// passages. `at_most` (passages, history start) carries an earlier step's choice so a
/// later step of the same turn never brings back what was dropped.
pub fn fit(parts: &PromptParts<'_>, at_most: Option<(usize, usize)>) -> Result<Fitted, TooLong> {
    let budget = parts
        .window
        .saturating_sub(parts.reply_tokens.min(parts.window / 2));
    let (mut passages, mut history_from) = at_most.unwrap_or((parts.passages.len(), 0));
    passages = passages.min(parts.passages.len());
    history_from = history_from.min(parts.history.len());
    let fixed = MESSAGE_OVERHEAD
        + tools_tokens(parts.tools)
        + parts.current.iter().map(message_tokens).sum::<usize>();
    let system = |n: usize| estimate_tokens(&(parts.system)(&parts.passages[..n]));
    let history: Vec<usize> = parts.history.iter().map(message_tokens).collect();
    let mut history_total: usize = history[history_from..].iter().sum();
    let mut system_total = system(passages);
    loop {
        let total = fixed + system_total + history_total;
        if total <= budget {
            let history_from = skip_orphans(parts.history, history_from);
            let sent = fixed + system_total + history[history_from..].iter().sum::<usize>();
            return Ok(Fitted {
                passages,
                history_from,
                fit: PromptFit {
                    window: parts.window,
                    budget,
                    prompt_tokens: sent,
                    history_dropped: history_from,
                    passages_dropped: parts.passages.len() - passages,
                },
            });
        }
        if history_from < history.len() {
            history_total -= history[history_from];
            history_from += 1;
        } else if passages > 0 {
            passages -= 1;
            system_total = system(passages);
        } else {
            return Err(TooLong {
                needed: total,
                budget,
            });
        }
    }
}

/// History must not start with tool results whose call was dropped.
fn skip_orphans(history: &[ChatMessage], mut from: usize) -> usize {
    while from < history.len() && history[from].role == ChatRole::Tool {
        from += 1;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ToolCall;

    fn passage(text: &str) -> Passage {
        Passage {
            citation: crate::knowledge::Citation {
                document_id: brain_knowledge::DocumentId(uuid::Uuid::nil()),
                title: "Manual".into(),
                page: 1,
                snippet: String::new(),
            },
            text: text.into(),
            score: 1.0,
        }
    }

    fn system(passages: &[Passage]) -> String {
        let mut s = "You are a helpful assistant.".to_owned();
        for p in passages {
            s.push_str(&p.text);
        }
        s
    }

    fn parts<'a>(
        window: usize,
        passages: &'a [Passage],
        history: &'a [ChatMessage],
        current: &'a [ChatMessage],
    ) -> PromptParts<'a> {
        PromptParts {
            window,
            reply_tokens: 100,
            system: &system,
            passages,
            history,
            current,
            tools: &[],
        }
    }

    #[test]
    fn a_prompt_that_fits_is_sent_whole() {
        let history = [ChatMessage::user("hi"), ChatMessage::assistant("hello")];
        let current = [ChatMessage::user("how are you?")];
        let passages = [passage("fact one"), passage("fact two")];
        let fitted = fit(&parts(4096, &passages, &history, &current), None).unwrap();
        assert_eq!((fitted.passages, fitted.history_from), (2, 0));
        assert!(!fitted.fit.trimmed());
        assert_eq!(fitted.fit.budget, 3996);
    }

    #[test]
    fn the_oldest_history_goes_first_then_the_lowest_ranked_passages() {
        let long = "x".repeat(300); // 100 tokens + overhead each
        let history: Vec<ChatMessage> = (0..10).map(|_| ChatMessage::user(long.clone())).collect();
        let current = [ChatMessage::user("question")];
        let passages = [passage(&"a".repeat(300)), passage(&"b".repeat(300))];
        // Budget 900: the question (19), the system prompt with both passages (210) and the
        // newest six history messages (108 each).
        let fitted = fit(&parts(1000, &passages, &history, &current), None).unwrap();
        assert_eq!(fitted.passages, 2);
        assert_eq!(fitted.history_from, 4, "{fitted:?}");
        assert_eq!(fitted.fit.prompt_tokens, 19 + 210 + 6 * 108);
        assert_eq!(fitted.fit.history_dropped, 4);
        // Budget 200: all history goes, then the second passage.
        let fitted = fit(&parts(300, &passages, &history, &current), None).unwrap();
        assert_eq!((fitted.passages, fitted.history_from), (1, 10));
        assert_eq!(fitted.fit.passages_dropped, 1);
        // A later step of the same turn never brings back what went.
        let again = fit(&parts(4096, &passages, &history, &current), Some((1, 10))).unwrap();
        assert_eq!((again.passages, again.history_from), (1, 10));
    }

    #[test]
    fn history_never_starts_with_an_orphaned_tool_result() {
        let mut call = ChatMessage::assistant("");
        call.tool_calls.push(ToolCall {
            id: "c1".into(),
            name: "shop__list".into(),
            arguments: serde_json::json!({"query": "q".repeat(600)}),
        });
        let history = [
            call,
            ChatMessage::tool_result("c1", "r".repeat(300)),
            ChatMessage::assistant("done"),
        ];
        let current = [ChatMessage::user("next")];
        // Dropping the (large) call alone would fit; its result goes with it.
        let fitted = fit(&parts(300, &[], &history, &current), None).unwrap();
        assert_eq!(fitted.history_from, 2, "{fitted:?}");
        assert_eq!(fitted.fit.history_dropped, 2);
    }

    #[test]
    fn a_turn_that_cannot_fit_is_refused() {
        let current = [ChatMessage::user("y".repeat(30_000))];
        let err = fit(&parts(4096, &[], &[], &current), None).unwrap_err();
        assert_eq!(err.budget, 3996);
        assert!(err.needed > 10_000);
    }
}
