//! The prefix cache: which tokens the key/value cache holds, so that the next prompt only
//! runs what differs from them. An agent's next turn repeats its system prompt, tools and
//! history word for word; only the new message and the reply are new.

use candle_core::{Result, Tensor};

use super::qwen2::{KvCache, Qwen2};

/// A key/value cache and the tokens it was computed from, kept in step.
pub struct PrefixCache {
    tokens: Vec<u32>,
    kv: KvCache,
}

impl PrefixCache {
    pub fn new(model: &Qwen2) -> Self {
        Self {
            tokens: Vec::new(),
            kv: model.new_cache(),
        }
    }

    /// Keeps the longest cached prefix of `prompt` and forgets the rest; returns how many
    /// prompt tokens are kept. The last prompt token is never kept: running it gives the
    /// logits the first new token is sampled from.
    pub fn reuse(&mut self, prompt: &[u32]) -> usize {
        let keep = reusable_len(&self.tokens, prompt);
        self.truncate(keep);
        keep
    }

    /// Runs `tokens` after the cached ones; returns the logits after the last of them.
    pub fn extend(&mut self, model: &Qwen2, tokens: &[u32]) -> Result<Tensor> {
        match model.forward(tokens, &mut self.kv) {
            Ok(logits) => {
                self.tokens.extend_from_slice(tokens);
                Ok(logits)
            }
            Err(e) => {
                // The model leaves the cache as it was; stay in step with it anyway.
                self.truncate(self.kv.len());
                Err(e)
            }
        }
    }

    /// Tokens cached.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
        self.kv.truncate(len);
    }
}

/// How much of `prompt` can come from a cache holding `cached`: their common prefix, less
/// the prompt's last token, which has to run.
fn reusable_len(cached: &[u32], prompt: &[u32]) -> usize {
    let common = cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count();
    common.min(prompt.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::reusable_len;

    #[test]
    fn reuses_the_common_prefix_but_never_the_last_prompt_token() {
        let cases: &[(&[u32], &[u32], usize)] = &[
            (&[], &[1, 2, 3], 0),
            (&[1, 2, 3], &[1, 2, 3, 4, 5], 3),
            (&[1, 2, 9, 9], &[1, 2, 3, 4], 2),
            // The same prompt again: the last token runs again for its logits.
            (&[1, 2, 3], &[1, 2, 3], 2),
            // The cache holds a longer conversation (a reply that was then edited).
            (&[1, 2, 3, 4, 5, 6], &[1, 2, 3, 7], 3),
            (&[5, 6], &[1, 2], 0),
            (&[1], &[], 0),
        ];
        for &(cached, prompt, expected) in cases {
            assert_eq!(
                reusable_len(cached, prompt),
                expected,
                "cached {cached:?}, prompt {prompt:?}"
            );
        }
    }
}
