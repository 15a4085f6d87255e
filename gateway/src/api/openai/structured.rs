//! The JSON modes (`response_format` of chat completions, `text.format` of responses): the
//! agent is asked for JSON, its answer checked, a wrong one sent back with what was wrong in
//! the same conversation (at most [`MAX_ATTEMPTS`] answers), and the result is the checked
//! JSON — or a clear `invalid_model_output` error, never JSON that does not fit.

use async_openai::types::chat::ResponseFormatJsonSchema;
use brain_agents::providers::Usage;
use brain_agents::structured::{MAX_ATTEMPTS, OutputSchema};
use brain_agents::{AgentId, TurnResult};
use brain_auth::Principal;

use super::{OpenAiError, turn};
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// The output schema of a `json_schema` format; a schema that is not valid JSON Schema is a
/// 400 about `param`.
pub(super) fn schema(
    format: &ResponseFormatJsonSchema,
    param: &'static str,
) -> Result<OutputSchema, OpenAiError> {
    OutputSchema::json_schema(format.name.clone(), format.schema.clone()).map_err(|e| {
        OpenAiError::invalid(
            param,
            format!("`{}` is not a valid JSON Schema: {e}", format.name),
        )
    })
}

/// A checked JSON answer to `question` (in `conversation`, else a new one): its reply is the
/// JSON, its usage that of every attempt.
pub(super) async fn answer(
    state: &AppState,
    principal: &Principal,
    agent: AgentId,
    (question, conversation): (Option<String>, Option<uuid::Uuid>),
    param: &'static str,
    schema: &OutputSchema,
) -> Result<TurnResult, OpenAiError> {
    // The question itself must pass the turn's checks before the instruction is added.
    turn(principal, question.clone(), param)?;
    let mut input = turn(principal, question.map(|q| schema.ask(&q)), param)?;
    input.conversation_id = conversation;
    let mut usage = Usage::default();
    let mut attempt = 1;
    loop {
        let mut result = state.runtime.chat(principal.tenant, agent, input).await?;
        usage.prompt_tokens += result.usage.prompt_tokens;
        usage.completion_tokens += result.usage.completion_tokens;
        match schema.check(&result.reply) {
            Ok(value) => {
                result.reply = value.to_string();
                result.usage = usage;
                return Ok(result);
            }
            Err(problem) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, %problem, "structured answer refused; asking again");
                attempt += 1;
                input = super::super::agents::turn_input(
                    principal,
                    schema.retry(&problem),
                    Some(result.conversation_id),
                )?;
            }
            Err(problem) => {
                return Err(ApiError::new(
                    Code::InvalidModelOutput,
                    format!("after {MAX_ATTEMPTS} answers the agent's output is still unusable: {problem}"),
                )
                .into());
            }
        }
    }
}
