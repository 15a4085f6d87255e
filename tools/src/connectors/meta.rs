//! Meta's Graph API: Meta Ads (campaigns, insights, campaign status, Page posts) and the
//! WhatsApp Cloud API (message templates, template messages). The token travels in the
//! `Authorization: Bearer` header, never in the URL.

use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, scalar, segment};
use crate::ToolError;
use crate::transport::Req;

/// The Graph API version for Meta Ads, Pages and the WhatsApp Cloud API. v27.0 was released on
/// 2026-11-04 with its expiry "TBD". Marketing API versions live far shorter than Graph API
/// ones (v23.0 expired 2026-06-09, v24.0 2026-11-10, v25.0 expires 2027-02-23), so the
/// Marketing API table decides when to bump; the fakes in `tests/it/clients.rs` build their
/// paths from this constant.
/// Source: <https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions>.
pub const META_GRAPH_VERSION: &str = "v27.0";

const DATE_PRESETS: &[&str] = &[
    "today",
    "yesterday",
    "last_7d",
    "last_14d",
    "last_30d",
    "this_month",
    "last_month",
    "maximum",
];

fn base(ctx: &Ctx<'_>) -> String {
    format!(
        "{}/{META_GRAPH_VERSION}",
        ctx.endpoints
            .base("meta-graph", "https://graph.facebook.com")
    )
}

fn id_field(ctx: &Ctx<'_>, field: &str) -> Result<String, ToolError> {
    let v = ctx.creds.get(field)?;
    if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(v.to_owned())
    } else {
        Err(ctx.bad_creds(format!("`{field}` must be a Graph API id")))
    }
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let req = req.bearer(ctx.creds.secret("access_token")?)?;
    Ok(ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    let req = if ctx.id() == "whatsapp" {
        Req::get(format!(
            "{}/{}",
            base(ctx),
            id_field(ctx, "phone_number_id")?
        ))
        .query("fields", "display_phone_number,verified_name")
    } else {
        Req::get(format!("{}/me", base(ctx))).query("fields", "id,name")
    };
    call(ctx, req).await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let limit = int_param(ctx, query, "limit", 25, 500)?;
    let req = match resource {
        "templates" => Req::get(format!(
            "{}/{}/message_templates",
            base(ctx),
            id_field(ctx, "business_account_id")?
        ))
        .query("fields", "name,status,language,category")
        .query("limit", limit),
        "campaigns" => Req::get(format!(
            "{}/{}/campaigns",
            base(ctx),
            id_field(ctx, "ad_account_id")?
        ))
        .query("fields", "id,name,status,objective,daily_budget")
        .query("limit", limit)
        .query_opt("after", query.get("after")),
        _ => {
            let preset = query
                .get("date_preset")
                .map(String::as_str)
                .unwrap_or("last_7d");
            if !DATE_PRESETS.contains(&preset) {
                return Err(ToolError::InvalidArguments {
                    tool: format!("{}.resource", ctx.id()),
                    message: format!("`date_preset` must be one of {}", DATE_PRESETS.join(", ")),
                });
            }
            Req::get(format!(
                "{}/{}/insights",
                base(ctx),
                id_field(ctx, "ad_account_id")?
            ))
            .query("level", "campaign")
            .query(
                "fields",
                "campaign_id,campaign_name,impressions,clicks,spend,ctr",
            )
            .query("date_preset", preset)
            .query("limit", limit)
        }
    };
    call(ctx, req).await
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let req = match (ctx.id(), action) {
        ("meta-ads", "pause_campaign") => {
            let id = segment(ctx, action, "campaign_id", args.get("campaign_id"))?;
            Req::post(format!("{}/{id}", base(ctx))).form(vec![("status".into(), "PAUSED".into())])
        }
        ("meta-ads", "create_page_post") => {
            let page = ctx
                .creds
                .opt("page_id")
                .ok_or_else(|| ctx.bad_creds("`page_id` is needed to post on a Page"))?;
            let page = id_field(ctx, "page_id").map(|_| page.to_owned())?;
            let mut form = Vec::new();
            for key in ["message", "link", "published"] {
                if let Some(v) = args.get(key).and_then(scalar) {
                    form.push((key.to_owned(), v));
                }
            }
            Req::post(format!("{}/{page}/feed", base(ctx))).form(form)
        }
        ("whatsapp", "send_template") => {
            let mut template = json!({
                "name": args.get("template"),
                "language": {"code": args.get("language")},
            });
            if let Some(components) = args.get("components") {
                template["components"] = components.clone();
            }
            let to = args
                .get("to")
                .and_then(Value::as_str)
                .map(|s| s.trim_start_matches('+').to_owned());
            Req::post(format!(
                "{}/{}/messages",
                base(ctx),
                id_field(ctx, "phone_number_id")?
            ))
            .json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "template",
                "template": template,
            }))
        }
        _ => return Err(ctx.unknown_action(action)),
    };
    call(ctx, req).await
}
