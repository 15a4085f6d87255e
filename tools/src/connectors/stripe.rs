//! Stripe (`https://api.stripe.com/v1`): bearer secret key, a pinned `Stripe-Version`,
//! form-encoded writes, and the platform's own `Idempotency-Key` header for side effects.

use serde_json::{Map, Value};

use super::{Ctx, ResourceQuery, int_param, scalar};
use crate::ToolError;
use crate::transport::Req;

fn base(ctx: &Ctx<'_>) -> String {
    format!(
        "{}/v1",
        ctx.endpoints.base("stripe", "https://api.stripe.com")
    )
}

/// The API version every request pins (`Stripe-Version`), so responses keep the shape Brain
/// reads whatever the account's default version is; the current one per Stripe's docs
/// (late 2026).
const STRIPE_VERSION: &str = "2026-09-30.endive";

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let req = req
        .bearer(ctx.creds.secret("secret_key")?)?
        .header("stripe-version", STRIPE_VERSION)?;
    Ok(ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    call(
        ctx,
        Req::get(format!("{}/customers", base(ctx))).query("limit", 1),
    )
    .await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let req = Req::get(format!("{}/{resource}", base(ctx)))
        .query("limit", int_param(ctx, query, "limit", 10, 100)?)
        .query_opt("starting_after", query.get("starting_after"))
        .query_opt(
            "customer",
            query.get("customer").filter(|_| resource != "customers"),
        )
        .query_opt(
            "email",
            query.get("email").filter(|_| resource == "customers"),
        );
    call(ctx, req).await
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
    idempotency_key: Option<&str>,
) -> Result<Value, ToolError> {
    if action != "create_customer" {
        return Err(ctx.unknown_action(action));
    }
    let mut form = Vec::new();
    for key in ["email", "name", "description", "phone"] {
        if let Some(v) = args.get(key).and_then(scalar) {
            form.push((key.to_owned(), v));
        }
    }
    if let Some(Value::Object(meta)) = args.get("metadata") {
        for (k, v) in meta {
            if let Some(v) = scalar(v) {
                form.push((format!("metadata[{k}]"), v));
            }
        }
    }
    let mut req = Req::post(format!("{}/customers", base(ctx))).form(form);
    if let Some(key) = idempotency_key {
        // Stripe replays the first result for a repeated key, so a retry is safe.
        req = req.header("idempotency-key", key)?.retry_safe();
    }
    call(ctx, req).await
}
