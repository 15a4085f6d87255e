//! Spans of model and tool calls with the OpenTelemetry GenAI semantic-convention attributes
//! (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, …), for
//! chat turns and task steps alike. They never carry prompt, reply or tool arguments; the
//! gateway exports them over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use brain_auth::ErrorCode;
use tracing::Span;
use tracing::field::Empty;

use crate::providers::{ChatRequest, FinishReason, ModelReply, Usage};

/// The span of one model call to `provider`.
pub fn chat_span(provider: &str, request: &ChatRequest) -> Span {
    tracing::info_span!(
        "gen_ai.chat",
        otel.name = %format_args!("chat {}", request.model),
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = provider,
        gen_ai.request.model = %request.model,
        gen_ai.request.temperature = f64::from(request.temperature),
        gen_ai.request.max_tokens = request.max_tokens,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.response.finish_reasons = Empty,
        error.type = Empty,
    )
}

/// Records how a model call ended on its span.
pub fn record_chat(span: &Span, usage: Usage, finish: Option<FinishReason>) {
    span.record("gen_ai.usage.input_tokens", usage.prompt_tokens);
    span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
    if let Some(finish) = finish {
        let reason = match finish {
            FinishReason::Stop => "stop",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Length => "length",
            FinishReason::Other => "other",
        };
        span.record("gen_ai.response.finish_reasons", reason);
    }
}

/// [`record_chat`] for a whole reply.
pub fn record_reply(span: &Span, reply: &ModelReply) {
    record_chat(span, reply.usage, reply.finish);
}

/// Marks a span failed with the catalogue code of `error`.
pub fn record_error(span: &Span, error: &impl ErrorCode) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error.code().as_str());
}

/// The span of one tool call (`tool` as the model named it).
pub fn tool_span(tool: &str, call_id: &str) -> Span {
    tracing::info_span!(
        "gen_ai.execute_tool",
        otel.name = %format_args!("execute_tool {tool}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        gen_ai.tool.call.id = call_id,
        gen_ai.tool.type = "function",
        error.type = Empty,
    )
}

/// Marks a tool call's span failed: `rejected` (refused by the turn policy or a person) or
/// `error` (the tool failed).
pub fn record_tool_failure(span: &Span, kind: &'static str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
}
