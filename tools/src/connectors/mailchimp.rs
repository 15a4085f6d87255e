//! Mailchimp Marketing API 3.0 (`https://{dc}.api.mailchimp.com/3.0`), HTTP Basic auth with
//! the API key as the password.

use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, pick, segment};
use crate::ToolError;
use crate::transport::Req;

fn base(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    let dc = ctx.creds.get("server_prefix")?;
    let valid = dc.len() <= 8
        && dc.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && dc
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid {
        return Err(ctx.bad_creds("`server_prefix` must look like us21"));
    }
    let root = ctx
        .endpoints
        .base("mailchimp", "https://{dc}.api.mailchimp.com")
        .replace("{dc}", dc);
    Ok(format!("{root}/3.0"))
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    // Mailchimp ignores the user name; any string works.
    let req = req.basic("brain", ctx.creds.secret("api_key")?)?;
    Ok(ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    call(ctx, Req::get(format!("{}/ping", base(ctx)?))).await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let base = base(ctx)?;
    let url = if resource == "members" {
        let list = query.get("list_id").map(|s| Value::String(s.clone()));
        let list = segment(ctx, "resource", "list_id", list.as_ref())?;
        format!("{base}/lists/{list}/members")
    } else {
        format!("{base}/{resource}")
    };
    let req = Req::get(url)
        .query("count", int_param(ctx, query, "count", 10, 1000)?)
        .query(
            "offset",
            query
                .get("offset")
                .and_then(|o| o.parse::<u32>().ok())
                .unwrap_or(0),
        )
        .query_opt("status", query.get("status"));
    call(ctx, req).await
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    if action != "add_member" {
        return Err(ctx.unknown_action(action));
    }
    let list = segment(ctx, action, "list_id", args.get("list_id"))?;
    let mut body = pick(args, &["email_address", "status", "merge_fields", "tags"]);
    body.entry("status").or_insert_with(|| json!("subscribed"));
    call(
        ctx,
        Req::post(format!("{}/lists/{list}/members", base(ctx)?)).json(Value::Object(body)),
    )
    .await
}
