//! WordPress (`/wp-json/wp/v2`), FluentCRM (`/wp-json/fluent-crm/v2`) and WooCommerce
//! (`/wp-json/wc/v3`): three REST APIs on a WordPress site, all with HTTP Basic auth —
//! a user's application password, or WooCommerce's consumer key and secret.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, pick, segment, site_url};
use crate::ToolError;
use crate::transport::Req;

fn api_base(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    let site = site_url(ctx, "site_url")?;
    let prefix = match ctx.id() {
        "fluentcrm" => "/wp-json/fluent-crm/v2",
        "woocommerce" => "/wp-json/wc/v3",
        _ => "/wp-json/wp/v2",
    };
    Ok(format!("{site}{prefix}"))
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let req = req.tenant_site();
    let req = if ctx.id() == "woocommerce" {
        req.basic(
            ctx.creds.get("consumer_key")?,
            ctx.creds.secret("consumer_secret")?,
        )?
    } else {
        req.basic(
            ctx.creds.get("username")?,
            ctx.creds.secret("application_password")?,
        )?
    };
    Ok(ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    let base = api_base(ctx)?;
    let req = match ctx.id() {
        "fluentcrm" => Req::get(format!("{base}/subscribers")).query("per_page", 1),
        "woocommerce" => Req::get(format!("{base}/products")).query("per_page", 1),
        // `context=edit` needs an authenticated user, so a wrong password cannot pass.
        _ => Req::get(format!("{base}/users/me")).query("context", "edit"),
    };
    call(ctx, req).await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let base = api_base(ctx)?;
    let per_page = int_param(ctx, query, "per_page", 10, 100)?;
    let page = int_param(ctx, query, "page", 1, 10_000)?;
    let mut req = Req::get(format!("{base}/{resource}"))
        .query("per_page", per_page)
        .query("page", page)
        .query_opt("search", query.get("search"));
    if matches!(resource, "posts" | "pages" | "orders") {
        req = req.query_opt("status", query.get("status"));
    }
    call(ctx, req).await
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let base = api_base(ctx)?;
    let req = match (ctx.id(), action) {
        ("wordpress", "create_post") => {
            let mut body = pick(
                args,
                &[
                    "title",
                    "content",
                    "excerpt",
                    "status",
                    "categories",
                    "tags",
                ],
            );
            // A post an agent writes is a draft until someone decides otherwise.
            body.entry("status").or_insert_with(|| json!("draft"));
            Req::post(format!("{base}/posts")).json(Value::Object(body))
        }
        ("wordpress", "update_post") => {
            let id = segment(ctx, action, "id", args.get("id"))?;
            let body = pick(args, &["title", "content", "excerpt", "status"]);
            Req::post(format!("{base}/posts/{id}")).json(Value::Object(body))
        }
        ("fluentcrm", "create_subscriber") => {
            let body = pick(
                args,
                &[
                    "email",
                    "first_name",
                    "last_name",
                    "status",
                    "lists",
                    "tags",
                ],
            );
            Req::post(format!("{base}/subscribers")).json(Value::Object(body))
        }
        ("fluentcrm", "add_tag") => {
            Req::post(format!("{base}/subscribers/sync-segments")).json(json!({
                "subscribers": [args.get("subscriber_id")],
                "type": "tags",
                "attach": args.get("tag_ids"),
                "detach": [],
            }))
        }
        ("woocommerce", "create_product") => {
            let mut body = pick(
                args,
                &[
                    "name",
                    "type",
                    "regular_price",
                    "description",
                    "short_description",
                    "status",
                    "sku",
                ],
            );
            body.entry("status").or_insert_with(|| json!("draft"));
            Req::post(format!("{base}/products")).json(Value::Object(body))
        }
        ("woocommerce", "update_order_status") => {
            let id = segment(ctx, action, "order_id", args.get("order_id"))?;
            Req::new(Method::PUT, format!("{base}/orders/{id}"))
                .json(json!({"status": args.get("status")}))
        }
        _ => return Err(ctx.unknown_action(action)),
    };
    call(ctx, req).await
}
