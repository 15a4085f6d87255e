//! HubSpot CRM v3 objects (`/crm/v3/objects/{contacts|deals}`) with a private app's bearer
//! token.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, segment};
use crate::ToolError;
use crate::transport::Req;

fn base(ctx: &Ctx<'_>) -> String {
    format!(
        "{}/crm/v3/objects",
        ctx.endpoints.base("hubspot", "https://api.hubapi.com")
    )
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let req = req.bearer(ctx.creds.secret("access_token")?)?;
    Ok(ctx.transport.send(ctx.id(), req, &ctx.redact).await?.body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    call(
        ctx,
        Req::get(format!("{}/contacts", base(ctx))).query("limit", 1),
    )
    .await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    object: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let default_props = if object == "deals" {
        "dealname,dealstage,amount,closedate,pipeline"
    } else {
        "email,firstname,lastname,phone,company"
    };
    let req = Req::get(format!("{}/{object}", base(ctx)))
        .query("limit", int_param(ctx, query, "limit", 10, 100)?)
        .query(
            "properties",
            query
                .get("properties")
                .map(String::as_str)
                .unwrap_or(default_props),
        )
        .query_opt("after", query.get("after"));
    call(ctx, req).await
}

/// The named arguments plus the free-form `properties` map, as one HubSpot `properties` object.
fn properties(args: &Map<String, Value>, named: &[&str]) -> Value {
    let mut props = Map::new();
    if let Some(Value::Object(extra)) = args.get("properties") {
        props.extend(extra.clone());
    }
    for k in named {
        if let Some(v) = args.get(*k) {
            props.insert((*k).to_owned(), v.clone());
        }
    }
    json!({"properties": props})
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let base = base(ctx);
    let req = match action {
        "create_contact" => Req::post(format!("{base}/contacts")).json(properties(
            args,
            &["email", "firstname", "lastname", "phone", "company"],
        )),
        "update_contact" => {
            let id = segment(ctx, action, "id", args.get("id"))?;
            Req::new(Method::PATCH, format!("{base}/contacts/{id}")).json(properties(args, &[]))
        }
        "create_deal" => Req::post(format!("{base}/deals")).json(properties(
            args,
            &["dealname", "dealstage", "pipeline", "amount", "closedate"],
        )),
        _ => return Err(ctx.unknown_action(action)),
    };
    call(ctx, req).await
}

/// Whether an earlier, abandoned `create_contact` already created the contact: HubSpot keys
/// contacts by e-mail, so a search answers it. `None` means it certainly did not.
pub(super) async fn reconcile(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Option<Value>, ToolError> {
    let email = match (action, args.get("email")) {
        ("create_contact", Some(Value::String(email))) => email,
        _ => return Err(ctx.ambiguous(action)),
    };
    let search = json!({
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
        "properties": ["email", "firstname", "lastname", "phone", "company"],
        "limit": 1,
    });
    let found = call(
        ctx,
        Req::post(format!("{}/contacts/search", base(ctx))).json(search),
    )
    .await?;
    Ok(found["results"].as_array().and_then(|r| r.first()).cloned())
}
