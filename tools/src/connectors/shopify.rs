//! Shopify Admin REST API (`/admin/api/{version}/…json`) with the `X-Shopify-Access-Token`
//! header of a custom app.

use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, pick};
use crate::ToolError;
use crate::transport::Req;

const API_VERSION: &str = "2025-07";

fn base(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    let shop = ctx.creds.get("shop_domain")?.trim().trim_end_matches('/');
    let shop = shop.strip_prefix("https://").unwrap_or(shop);
    // Only a *.myshopify.com host: the token must never be sent anywhere else.
    let valid = shop.strip_suffix(".myshopify.com").is_some_and(|name| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid {
        return Err(ctx.bad_creds("`shop_domain` must look like your-store.myshopify.com"));
    }
    let root = ctx
        .endpoints
        .base("shopify", "https://{shop}")
        .replace("{shop}", shop);
    Ok(format!("{root}/admin/api/{API_VERSION}"))
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let req = req.secret_header("x-shopify-access-token", ctx.creds.get("access_token")?)?;
    Ok(ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    call(ctx, Req::get(format!("{}/shop.json", base(ctx)?))).await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let mut req = Req::get(format!("{}/{resource}.json", base(ctx)?))
        .query("limit", int_param(ctx, query, "limit", 50, 250)?)
        .query_opt("page_info", query.get("page_info"));
    if resource == "orders" {
        // Shopify lists only open orders unless asked.
        req = req.query(
            "status",
            query.get("status").map(String::as_str).unwrap_or("any"),
        );
    }
    call(ctx, req).await
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    if action != "create_product" {
        return Err(ctx.unknown_action(action));
    }
    let mut product = pick(
        args,
        &[
            "title",
            "body_html",
            "vendor",
            "product_type",
            "tags",
            "status",
        ],
    );
    product.entry("status").or_insert_with(|| json!("draft"));
    call(
        ctx,
        Req::post(format!("{}/products.json", base(ctx)?)).json(json!({"product": product})),
    )
    .await
}
