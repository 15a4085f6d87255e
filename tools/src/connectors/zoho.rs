//! Zoho CRM (REST API v8): OAuth 2.0 refresh-token grant at the account's data centre, then
//! `Authorization: Zoho-oauthtoken …` on `https://www.zohoapis.{dc}/crm/v8/…`.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, segment};
use crate::ToolError;
use crate::oauth::{TokenCache, refresh_token_grant};
use crate::transport::Req;

/// The domain suffix of each data centre.
fn domain(ctx: &Ctx<'_>) -> Result<&'static str, ToolError> {
    match ctx.creds.get("data_centre")? {
        "com" => Ok("com"),
        "eu" => Ok("eu"),
        "in" => Ok("in"),
        "au" => Ok("com.au"),
        "cn" => Ok("com.cn"),
        _ => Err(ctx.bad_creds("`data_centre` must be one of com, eu, in, au, cn")),
    }
}

fn accounts_url(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    let dc = domain(ctx)?;
    Ok(ctx
        .endpoints
        .base("zoho-accounts", "https://accounts.zoho.{dc}")
        .replace("{dc}", dc))
}

fn api_url(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    let dc = domain(ctx)?;
    Ok(format!(
        "{}/crm/v8",
        ctx.endpoints
            .base("zoho-api", "https://www.zohoapis.{dc}")
            .replace("{dc}", dc)
    ))
}

async fn access_token(ctx: &Ctx<'_>) -> Result<brain_auth::secrets::SecretString, ToolError> {
    let client_id = ctx.creds.get("client_id")?;
    let refresh = ctx.creds.secret("refresh_token")?;
    let key = TokenCache::key(ctx.tenant, ctx.id(), &[client_id, refresh.expose()]);
    if let Some(token) = ctx.tokens.get(&key).await? {
        return Ok(token);
    }
    let url = format!("{}/oauth/v2/token", accounts_url(ctx)?);
    let (token, expires_in) = refresh_token_grant(
        ctx.transport,
        ctx.id(),
        &url,
        client_id,
        ctx.creds.secret("client_secret")?,
        refresh,
        &ctx.redact,
    )
    .await?;
    ctx.tokens.put(&key, &token, expires_in).await?;
    Ok(token)
}

async fn call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let token = access_token(ctx).await?;
    let mut redact = ctx.redact.clone();
    redact.add(&token);
    let req = req.secret_header(
        "authorization",
        &format!("Zoho-oauthtoken {}", token.expose()),
    )?;
    let body = ctx.transport.send(ctx.id(), req, &redact).await?.body;
    // Writes answer per record; a record-level error comes back inside a 2xx.
    let record_failed = body.pointer("/data/0/status").and_then(Value::as_str) == Some("error");
    if record_failed {
        return Err(ToolError::Platform {
            connector: ctx.id().to_owned(),
            status: 400,
            message: redact.clean(&crate::transport::platform_message(&body)),
        });
    }
    Ok(body)
}

pub(super) async fn test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    let req = Req::get(format!("{}/users", api_url(ctx)?)).query("type", "CurrentUser");
    call(ctx, req).await
}

pub(super) async fn resource(
    ctx: &Ctx<'_>,
    module: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    // Since v3 the records API requires the fields to return.
    let default_fields = match module {
        "Leads" => "Last_Name,First_Name,Email,Company,Lead_Status,Lead_Source",
        "Contacts" => "Last_Name,First_Name,Email,Phone,Account_Name",
        _ => "Deal_Name,Stage,Amount,Closing_Date,Account_Name",
    };
    let req = Req::get(format!("{}/{module}", api_url(ctx)?))
        .query(
            "fields",
            query
                .get("fields")
                .map(String::as_str)
                .unwrap_or(default_fields),
        )
        .query("per_page", int_param(ctx, query, "per_page", 20, 200)?)
        .query("page", int_param(ctx, query, "page", 1, 10_000)?);
    let body = call(ctx, req).await?;
    // An empty module answers 204 without a body.
    Ok(if body.is_null() {
        json!({"data": []})
    } else {
        body
    })
}

fn record(args: &Map<String, Value>, mapping: &[(&str, &str)]) -> Value {
    let mut rec = Map::new();
    for (arg, field) in mapping {
        if let Some(v) = args.get(*arg) {
            rec.insert((*field).to_owned(), v.clone());
        }
    }
    if let Some(Value::Object(extra)) = args.get("fields") {
        for (k, v) in extra {
            rec.insert(k.clone(), v.clone());
        }
    }
    json!({"data": [rec]})
}

pub(super) async fn action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let base = api_url(ctx)?;
    let req = match action {
        "create_lead" => Req::post(format!("{base}/Leads")).json(record(
            args,
            &[
                ("last_name", "Last_Name"),
                ("first_name", "First_Name"),
                ("company", "Company"),
                ("email", "Email"),
                ("phone", "Phone"),
                ("lead_source", "Lead_Source"),
            ],
        )),
        "update_lead" => {
            let id = segment(ctx, action, "id", args.get("id"))?;
            Req::new(Method::PUT, format!("{base}/Leads/{id}")).json(record(args, &[]))
        }
        "create_deal" => Req::post(format!("{base}/Deals")).json(record(
            args,
            &[
                ("deal_name", "Deal_Name"),
                ("stage", "Stage"),
                ("amount", "Amount"),
                ("closing_date", "Closing_Date"),
            ],
        )),
        _ => return Err(ctx.unknown_action(action)),
    };
    call(ctx, req).await
}
