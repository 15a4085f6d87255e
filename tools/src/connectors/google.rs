//! Google Ads (REST, GAQL `googleAds:searchStream` and `campaigns:mutate`, OAuth 2.0 refresh
//! token plus `developer-token` / `login-customer-id` headers) and Google Analytics 4 (Data
//! API `runReport`, a service-account JWT exchanged for an access token).

use brain_auth::secrets::SecretString;
use serde_json::{Map, Value, json};

use super::{Ctx, ResourceQuery, int_param, segment};
use crate::ToolError;
use crate::oauth::{ServiceAccount, TokenCache, jwt_bearer_grant, refresh_token_grant};
use crate::transport::Req;

/// The Google Ads API major version every Ads call goes to; a major version always serves its
/// latest minor (v26.1 since 2026-10-28). v26 was released on 2026-10-14 and its sunset is
/// projected for November 2027 (tentative in Google's 2026 release schedule). Versions stop
/// answering on their sunset date (v21: 2026-08-05, v22: 2026-10-07), so bump well before.
/// The fakes in `tests/it/clients.rs` build their paths from this constant.
/// Sources: <https://developers.google.com/google-ads/api/docs/release-notes>,
/// <https://developers.google.com/google-ads/api/docs/sunset-dates>,
/// <https://developers.google.com/ads/blog/posts/2025/09/more-frequent-releases-coming-for>.
pub const GOOGLE_ADS_VERSION: &str = "v26";
const ANALYTICS_SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";

fn token_url(ctx: &Ctx<'_>) -> String {
    format!(
        "{}/token",
        ctx.endpoints
            .base("google-oauth", "https://oauth2.googleapis.com")
    )
}

fn customer_id(ctx: &Ctx<'_>, field: &str) -> Result<Option<String>, ToolError> {
    let Some(raw) = ctx.creds.opt(field) else {
        return Ok(None);
    };
    // The UI shows ids as 123-456-7890; the API wants the digits.
    let digits: String = raw.chars().filter(|c| *c != '-').collect();
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(Some(digits))
    } else {
        Err(ctx.bad_creds(format!("`{field}` must be digits (dashes allowed)")))
    }
}

async fn ads_token(ctx: &Ctx<'_>) -> Result<SecretString, ToolError> {
    let client_id = ctx.creds.get("client_id")?;
    let refresh = ctx.creds.secret("refresh_token")?;
    let key = TokenCache::key(ctx.tenant, ctx.id(), &[client_id, refresh.expose()]);
    if let Some(token) = ctx.tokens.get(&key).await? {
        return Ok(token);
    }
    let (token, expires_in) = refresh_token_grant(
        ctx.transport,
        ctx.id(),
        &token_url(ctx),
        client_id,
        ctx.creds.secret("client_secret")?,
        refresh,
        &ctx.redact,
    )
    .await?;
    ctx.tokens.put(&key, &token, expires_in).await?;
    Ok(token)
}

async fn ads_call(ctx: &Ctx<'_>, path: &str, body: Value) -> Result<Value, ToolError> {
    let customer = customer_id(ctx, "customer_id")?
        .ok_or_else(|| ctx.bad_creds("`customer_id` is missing"))?;
    let token = ads_token(ctx).await?;
    let mut redact = ctx.redact.clone();
    redact.add(&token);
    let base = ctx
        .endpoints
        .base("google-ads", "https://googleads.googleapis.com");
    let mut req = Req::post(format!(
        "{base}/{GOOGLE_ADS_VERSION}/customers/{customer}/{path}"
    ))
    .bearer(&token)?
    .secret_header("developer-token", ctx.creds.get("developer_token")?)?
    .json(body);
    if let Some(login) = customer_id(ctx, "login_customer_id")? {
        req = req.header("login-customer-id", &login)?;
    }
    if path.ends_with(":searchStream") {
        req = req.retry_safe();
    }
    Ok(ctx.transport.send(ctx.id(), req, &redact).await?.body)
}

async fn search(ctx: &Ctx<'_>, gaql: String) -> Result<Value, ToolError> {
    let body = ads_call(ctx, "googleAds:searchStream", json!({"query": gaql})).await?;
    // searchStream answers an array of batches; callers want one list of rows. Since August
    // 2025 an empty result is a batch with only `fieldMask` and `queryResourceConsumption`,
    // which Google documents as a bare object, so a lone object counts as one batch.
    let batches = match body {
        Value::Array(batches) => batches,
        batch => vec![batch],
    };
    let rows: Vec<Value> = batches
        .iter()
        .filter_map(|b| b.get("results").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    Ok(json!({"results": rows}))
}

pub(super) async fn ads_test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    search(
        ctx,
        "SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1".to_owned(),
    )
    .await
}

const DATE_RANGES: &[&str] = &[
    "TODAY",
    "YESTERDAY",
    "LAST_7_DAYS",
    "LAST_14_DAYS",
    "LAST_30_DAYS",
    "THIS_MONTH",
    "LAST_MONTH",
];

pub(super) async fn ads_resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    let limit = int_param(ctx, query, "limit", 50, 1000)?;
    let gaql = if resource == "campaigns" {
        format!(
            "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type \
             FROM campaign ORDER BY campaign.id LIMIT {limit}"
        )
    } else {
        let during = query
            .get("during")
            .map(String::as_str)
            .unwrap_or("LAST_7_DAYS");
        // GAQL is a query language: only whitelisted ranges are spliced in.
        if !DATE_RANGES.contains(&during) {
            return Err(ToolError::InvalidArguments {
                tool: format!("{}.resource", ctx.id()),
                message: format!("`during` must be one of {}", DATE_RANGES.join(", ")),
            });
        }
        format!(
            "SELECT campaign.id, campaign.name, metrics.impressions, metrics.clicks, \
             metrics.cost_micros, metrics.conversions FROM campaign \
             WHERE segments.date DURING {during} ORDER BY metrics.impressions DESC LIMIT {limit}"
        )
    };
    search(ctx, gaql).await
}

pub(super) async fn ads_action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    if action == "get_campaign_metrics" {
        // The same report as the `metrics` resource, as a tool agents and rules can call.
        let mut query = ResourceQuery::new();
        for key in ["during", "limit"] {
            match args.get(key) {
                Some(Value::String(v)) => {
                    query.insert(key.to_owned(), v.clone());
                }
                Some(Value::Number(v)) => {
                    query.insert(key.to_owned(), v.to_string());
                }
                _ => {}
            }
        }
        return ads_resource(ctx, "metrics", &query).await;
    }
    let status = match action {
        "pause_campaign" => "PAUSED",
        "enable_campaign" => "ENABLED",
        _ => return Err(ctx.unknown_action(action)),
    };
    let campaign = segment(ctx, action, "campaign_id", args.get("campaign_id"))?;
    let customer = customer_id(ctx, "customer_id")?
        .ok_or_else(|| ctx.bad_creds("`customer_id` is missing"))?;
    ads_call(
        ctx,
        "campaigns:mutate",
        json!({"operations": [{
            "updateMask": "status",
            "update": {"resourceName": format!("customers/{customer}/campaigns/{campaign}"), "status": status},
        }]}),
    )
    .await
}

async fn analytics_token(ctx: &Ctx<'_>) -> Result<(SecretString, ServiceAccount), ToolError> {
    let key_json = ctx.creds.secret("service_account_json")?;
    let account = ServiceAccount::parse(ctx.id(), key_json)?;
    let key = TokenCache::key(ctx.tenant, ctx.id(), &[key_json.expose()]);
    if let Some(token) = ctx.tokens.get(&key).await? {
        return Ok((token, account));
    }
    let url = token_url(ctx);
    let assertion = account.assertion(ctx.id(), ANALYTICS_SCOPE, &url)?;
    let mut redact = ctx.redact.clone();
    redact.add(&assertion);
    redact.add(account.private_key());
    let (token, expires_in) =
        jwt_bearer_grant(ctx.transport, ctx.id(), &url, &assertion, &redact).await?;
    ctx.tokens.put(&key, &token, expires_in).await?;
    Ok((token, account))
}

fn property(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    let raw = ctx.creds.get("property_id")?;
    let id = raw.strip_prefix("properties/").unwrap_or(raw);
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(ctx.bad_creds("`property_id` must be the numeric GA4 property id"))
    }
}

async fn analytics_call(ctx: &Ctx<'_>, req: Req) -> Result<Value, ToolError> {
    let (token, _) = analytics_token(ctx).await?;
    let mut redact = ctx.redact.clone();
    redact.add(&token);
    Ok(ctx
        .transport
        .send(ctx.id(), req.bearer(&token)?, &redact)
        .await?
        .body)
}

fn analytics_base(ctx: &Ctx<'_>) -> Result<String, ToolError> {
    Ok(format!(
        "{}/v1beta/properties/{}",
        ctx.endpoints
            .base("google-analytics", "https://analyticsdata.googleapis.com"),
        property(ctx)?
    ))
}

pub(super) async fn analytics_test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    let req = Req::get(format!("{}/metadata", analytics_base(ctx)?));
    let meta = analytics_call(ctx, req).await?;
    // The metadata lists every dimension and metric; the name is all a test needs.
    Ok(json!({"name": meta.get("name")}))
}

async fn run_report(
    ctx: &Ctx<'_>,
    metrics: Vec<String>,
    dimensions: Vec<String>,
    start: &str,
    end: &str,
    limit: u32,
) -> Result<Value, ToolError> {
    let body = json!({
        "dateRanges": [{"startDate": start, "endDate": end}],
        "dimensions": dimensions.iter().map(|d| json!({"name": d})).collect::<Vec<_>>(),
        "metrics": metrics.iter().map(|m| json!({"name": m})).collect::<Vec<_>>(),
        "limit": limit,
    });
    let req = Req::post(format!("{}:runReport", analytics_base(ctx)?))
        .json(body)
        .retry_safe();
    analytics_call(ctx, req).await
}

fn list(raw: Option<&String>, default: &str) -> Vec<String> {
    raw.map(String::as_str)
        .unwrap_or(default)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn analytics_resource(
    ctx: &Ctx<'_>,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    run_report(
        ctx,
        list(query.get("metrics"), "activeUsers,sessions"),
        list(query.get("dimensions"), "date"),
        query
            .get("start_date")
            .map(String::as_str)
            .unwrap_or("7daysAgo"),
        query.get("end_date").map(String::as_str).unwrap_or("today"),
        int_param(ctx, query, "limit", 100, 100_000)?,
    )
    .await
}

pub(super) async fn analytics_action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    if action != "run_report" {
        return Err(ctx.unknown_action(action));
    }
    let strings = |key: &str| -> Vec<String> {
        args.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(100);
    run_report(
        ctx,
        strings("metrics"),
        strings("dimensions"),
        args.get("start_date")
            .and_then(Value::as_str)
            .unwrap_or("7daysAgo"),
        args.get("end_date")
            .and_then(Value::as_str)
            .unwrap_or("today"),
        limit,
    )
    .await
}
