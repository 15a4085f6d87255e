//! The platform clients: one module per platform family, each speaking that platform's
//! documented REST API. [`dispatch_test`], [`dispatch_resource`] and [`dispatch_action`]
//! route a connector id to its client.

mod google;
mod hubspot;
mod mailchimp;
mod meta;
mod shopify;
mod slack;
mod stripe;
mod wordpress;
mod zoho;

use std::collections::{BTreeMap, HashMap};

use brain_auth::TenantId;
use brain_auth::secrets::SecretString;
use serde_json::{Map, Value};

pub use google::GOOGLE_ADS_VERSION;
pub use meta::META_GRAPH_VERSION;

use crate::ToolError;
use crate::oauth::TokenCache;
use crate::registry::ConnectorDef;
use crate::transport::{Redactor, Transport};

/// Query parameters of a resource read, as the API received them.
pub type ResourceQuery = BTreeMap<String, String>;

/// Base URLs of the platforms, overridable (tests point them at a local server; a proxy or a
/// regional endpoint can be configured the same way). Keys: `zoho-accounts`, `zoho-api`
/// (each with `{dc}` standing for the data-centre domain suffix), `hubspot`, `google-oauth`,
/// `google-ads`, `google-analytics`, `meta-graph`, `shopify` (with `{shop}`), `stripe`,
/// `mailchimp` (with `{dc}`), `slack`. WordPress, FluentCRM and WooCommerce use the site
/// URL from the connection.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    overrides: HashMap<String, String>,
}

impl Endpoints {
    pub fn with(mut self, key: &str, base: impl Into<String>) -> Self {
        self.overrides
            .insert(key.to_owned(), base.into().trim_end_matches('/').to_owned());
        self
    }

    pub(crate) fn base(&self, key: &str, default: &str) -> String {
        self.overrides
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }
}

/// A connection's credential fields, secret and not, merged for the client.
pub(crate) struct Credentials {
    connector: &'static str,
    values: BTreeMap<String, SecretString>,
    secret_fields: Vec<String>,
}

impl Credentials {
    pub(crate) fn new(
        connector: &'static str,
        values: BTreeMap<String, SecretString>,
        secret_fields: Vec<String>,
    ) -> Self {
        Self {
            connector,
            values,
            secret_fields,
        }
    }

    /// The values of the secret fields, for redaction.
    pub(crate) fn secret_values(&self) -> impl Iterator<Item = &SecretString> {
        self.secret_fields.iter().filter_map(|f| self.values.get(f))
    }

    pub(crate) fn secret(&self, field: &str) -> Result<&SecretString, ToolError> {
        self.values
            .get(field)
            .filter(|v| !v.expose().is_empty())
            .ok_or_else(|| ToolError::InvalidCredentials {
                connector: self.connector.to_owned(),
                message: format!("`{field}` is missing"),
            })
    }

    pub(crate) fn get(&self, field: &str) -> Result<&str, ToolError> {
        self.secret(field).map(SecretString::expose)
    }

    pub(crate) fn opt(&self, field: &str) -> Option<&str> {
        self.values
            .get(field)
            .map(SecretString::expose)
            .filter(|v| !v.is_empty())
    }
}

/// Everything a platform client needs for one call.
pub(crate) struct Ctx<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) def: &'static ConnectorDef,
    pub(crate) creds: &'a Credentials,
    pub(crate) transport: &'a Transport,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) tokens: &'a TokenCache,
    pub(crate) redact: Redactor,
}

impl Ctx<'_> {
    pub(crate) fn id(&self) -> &'static str {
        self.def.id
    }

    pub(crate) fn bad_args(&self, action: &str, message: impl Into<String>) -> ToolError {
        ToolError::InvalidArguments {
            tool: format!("{}.{action}", self.def.id),
            message: message.into(),
        }
    }

    pub(crate) fn bad_creds(&self, message: impl Into<String>) -> ToolError {
        ToolError::InvalidCredentials {
            connector: self.def.id.to_owned(),
            message: message.into(),
        }
    }

    fn unknown_resource(&self, resource: &str) -> ToolError {
        ToolError::UnknownResource {
            connector: self.def.id.to_owned(),
            resource: resource.to_owned(),
        }
    }

    fn unknown_action(&self, action: &str) -> ToolError {
        ToolError::UnknownAction {
            connector: self.def.id.to_owned(),
            action: action.to_owned(),
        }
    }

    fn ambiguous(&self, action: &str) -> ToolError {
        ToolError::AmbiguousWrite {
            connector: self.def.id.to_owned(),
            action: action.to_owned(),
        }
    }
}

/// A live call proving the credentials work; returns what the platform said about the account.
pub(crate) async fn dispatch_test(ctx: &Ctx<'_>) -> Result<Value, ToolError> {
    match ctx.id() {
        "wordpress" | "fluentcrm" | "woocommerce" => wordpress::test(ctx).await,
        "zoho-crm" => zoho::test(ctx).await,
        "hubspot" => hubspot::test(ctx).await,
        "google-ads" => google::ads_test(ctx).await,
        "google-analytics" => google::analytics_test(ctx).await,
        "meta-ads" | "whatsapp" => meta::test(ctx).await,
        "shopify" => shopify::test(ctx).await,
        "stripe" => stripe::test(ctx).await,
        "mailchimp" => mailchimp::test(ctx).await,
        "slack" => slack::test(ctx).await,
        other => Err(ToolError::UnknownConnector(other.to_owned())),
    }
}

pub(crate) async fn dispatch_resource(
    ctx: &Ctx<'_>,
    resource: &str,
    query: &ResourceQuery,
) -> Result<Value, ToolError> {
    if !ctx.def.has_resource(resource) {
        return Err(ctx.unknown_resource(resource));
    }
    match ctx.id() {
        "wordpress" | "fluentcrm" | "woocommerce" => {
            wordpress::resource(ctx, resource, query).await
        }
        "zoho-crm" => zoho::resource(ctx, resource, query).await,
        "hubspot" => hubspot::resource(ctx, resource, query).await,
        "google-ads" => google::ads_resource(ctx, resource, query).await,
        "google-analytics" => google::analytics_resource(ctx, query).await,
        "meta-ads" | "whatsapp" => meta::resource(ctx, resource, query).await,
        "shopify" => shopify::resource(ctx, resource, query).await,
        "stripe" => stripe::resource(ctx, resource, query).await,
        "mailchimp" => mailchimp::resource(ctx, resource, query).await,
        "slack" => slack::resource(ctx, query).await,
        other => Err(ToolError::UnknownConnector(other.to_owned())),
    }
}

/// Runs an action whose arguments already passed the JSON Schema.
pub(crate) async fn dispatch_action(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
    idempotency_key: Option<&str>,
) -> Result<Value, ToolError> {
    match ctx.id() {
        "wordpress" | "fluentcrm" | "woocommerce" => wordpress::action(ctx, action, args).await,
        "zoho-crm" => zoho::action(ctx, action, args).await,
        "hubspot" => hubspot::action(ctx, action, args).await,
        "google-ads" => google::ads_action(ctx, action, args).await,
        "google-analytics" => google::analytics_action(ctx, action, args).await,
        "meta-ads" | "whatsapp" => meta::action(ctx, action, args).await,
        "shopify" => shopify::action(ctx, action, args).await,
        "stripe" => stripe::action(ctx, action, args, idempotency_key).await,
        "mailchimp" => mailchimp::action(ctx, action, args).await,
        "slack" => slack::action(ctx, action, args).await,
        other => Err(ToolError::UnknownConnector(other.to_owned())),
    }
}

/// Settles a write whose earlier attempt was abandoned mid-call: `Some(result)` when the
/// platform shows it happened, `None` when it certainly did not. Connectors that cannot tell
/// answer `ambiguous_write`, and the write is not repeated.
pub(crate) async fn reconcile(
    ctx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Option<Value>, ToolError> {
    match ctx.id() {
        "hubspot" => hubspot::reconcile(ctx, action, args).await,
        _ => Err(ctx.ambiguous(action)),
    }
}

/// Whether the connector deduplicates writes itself given an idempotency key, so Brain need
/// not record key → result.
pub(crate) fn platform_deduplicates(connector: &str) -> bool {
    connector == "stripe"
}

/// Whether the connector holds OAuth access tokens in the cache.
pub(crate) fn uses_oauth(connector: &str) -> bool {
    matches!(connector, "zoho-crm" | "google-ads" | "google-analytics")
}

/// A bounded integer query parameter (`per_page`, `limit`, …); the error names it.
pub(crate) fn int_param(
    ctx: &Ctx<'_>,
    query: &ResourceQuery,
    key: &str,
    default: u32,
    max: u32,
) -> Result<u32, ToolError> {
    match query.get(key) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ToolError::InvalidArguments {
                tool: format!("{}.resource", ctx.id()),
                message: format!("`{key}` must be a whole number from 1 to {max}"),
            }),
    }
}

/// The given keys of `args`, copied into a new object (keys the schema allows and the
/// platform names the same way).
pub(crate) fn pick(args: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| args.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// The string form of a JSON scalar argument (ids may arrive as numbers or strings).
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A path segment built from an argument: digits, letters, `_` and `-` only, so arguments can
/// never change which endpoint is called.
pub(crate) fn segment(
    ctx: &Ctx<'_>,
    action: &str,
    field: &str,
    v: Option<&Value>,
) -> Result<String, ToolError> {
    let s = v.and_then(scalar).unwrap_or_default();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(s)
    } else {
        Err(ctx.bad_args(action, format!("`{field}` must be a plain id")))
    }
}

/// Validates a site URL: https (http only where the deployment allows it), no credentials,
/// query or fragment; returns it without a trailing slash. Where it points is the egress
/// policy's check, made by the transport on every request.
pub(crate) fn site_url(ctx: &Ctx<'_>, field: &str) -> Result<String, ToolError> {
    let raw = ctx.creds.get(field)?;
    let parsed =
        reqwest::Url::parse(raw).map_err(|_| ctx.bad_creds(format!("`{field}` is not a URL")))?;
    if parsed.scheme() == "http" && !ctx.transport.allows_http() {
        return Err(ctx.bad_creds(format!(
            "`{field}` must be an https:// address (WordPress application passwords and \
             WooCommerce keys are only accepted over HTTPS)"
        )));
    }
    let ok = matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    if ok {
        Ok(raw.trim_end_matches('/').to_owned())
    } else {
        Err(ctx.bad_creds(format!(
            "`{field}` must be an http(s) address without credentials or query"
        )))
    }
}
