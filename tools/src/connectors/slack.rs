//! Slack Web API (`https://slack.com/api/{method}`) with a bot token. Slack answers most
//! failures with HTTP 200 and `{"ok": false, "error": "…"}`, which is mapped here.

use serde_json::{Map, Value};

use super::{Ctx, ResourceQuery, int_param, pick};
use crate::ToolError;
use crate::transport::Req;

fn url(ctx: &Ctx<'_>, method: &str) -> String {
    format!(
        "{}/{method}",
        ctx.endpoints.base("slack", "https://slack.com/api")
    )
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let req = req.bearer(ctx.creds.secret("bot_token")?)?;
    let body = ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body;
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(body);
    }
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    if matches!(
        error,
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired"
    ) {
        return Err(ToolError::Unauthorized {
            connector: ctx.id().to_owned(),
            status: 401,
        });
    }
    Err(ToolError::Platform {
        connector: ctx.id().to_owned(),
        status: 200,
        message: ctx.redact.clean(error),
    })
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    call(ctx, Req::post(url(ctx, "auth.test")).retry_safe()).await
}

pub(super) async fn resource(ctx: &Ctx<'_>, query: &ResourceQuery) -> Result<Value, ToolError> {
    let req = Req::get(url(ctx, "conversations.list"))
        .query("limit", int_param(ctx, query, "limit", 100, 1000)?)
        .query("exclude_archived", "true")
        .query("types", "public_channel,private_channel")
        .query_opt("cursor", query.get("cursor"));
    call(ctx, req).await
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    if action != "post_message" {
        return Err(ctx.unknown_action(action));
    }
    let body = pick(args, &["channel", "text", "thread_ts"]);
    call(
        ctx,
        Req::post(url(ctx, "chat.postMessage")).json(Value::Object(body)),
    )
    .await
}
