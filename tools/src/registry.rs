//! The registry of the 13 connectors Brain ships: what each one needs to connect
//! (`auth_schema`), what it can do (`actions`, each with a JSON Schema) and what it can read
//! (`resources`). Serialisable as-is for `GET /v1/connectors`.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::ToolError;

/// One connector: a secure link to an external platform.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorDef {
    /// E.g. `hubspot`; the `{id}` of `/v1/connectors/{id}`.
    pub id: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    pub description: &'static str,
    /// The fields `PUT /v1/connectors/{id}/connection` takes as `credentials`.
    pub auth_schema: Vec<AuthField>,
    pub actions: Vec<ActionDef>,
    /// What `GET /v1/connectors/{id}/resources/{resource}` can read.
    pub resources: Vec<&'static str>,
}

impl ConnectorDef {
    pub fn action(&self, name: &str) -> Option<&ActionDef> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn has_resource(&self, name: &str) -> bool {
        self.resources.contains(&name)
    }

    /// The fields whose values go to the secret store, never to Postgres.
    pub fn secret_fields(&self) -> impl Iterator<Item = &AuthField> {
        self.auth_schema
            .iter()
            .filter(|f| f.kind == FieldKind::Secret)
    }
}

/// One credential field of a connection form.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuthField {
    /// The key in `credentials`.
    pub field: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<&'static str>,
    /// The allowed values of a `select` field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<&'static str>>,
}

/// How a credential field is entered and stored (`secret` ones go to the secret store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    String,
    Secret,
    Select,
    Url,
}

/// One thing a connector can do; each is also an agent tool named `connector.action`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActionDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Whether the action writes to the platform (and so takes an idempotency key).
    pub side_effect: bool,
    /// JSON Schema (draft 2020-12) of the action's arguments.
    pub parameters: Value,
}

/// Every connector, in display order.
pub fn connectors() -> &'static [ConnectorDef] {
    &REGISTRY
}

/// The connector with this id.
pub fn connector(id: &str) -> Result<&'static ConnectorDef, ToolError> {
    REGISTRY
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ToolError::UnknownConnector(id.to_owned()))
}

/// Checks `args` against the action's JSON Schema; the error names the offending field.
pub fn validate_args(connector: &str, action: &str, args: &Value) -> Result<(), ToolError> {
    let validator =
        VALIDATORS
            .get(&(connector, action))
            .ok_or_else(|| ToolError::UnknownAction {
                connector: connector.to_owned(),
                action: action.to_owned(),
            })?;
    let problems: Vec<String> = validator
        .iter_errors(args)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("`{}`: {e}", at.trim_start_matches('/').replace('/', "."))
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ToolError::InvalidArguments {
            tool: format!("{connector}.{action}"),
            message: problems.join("; "),
        })
    }
}

static VALIDATORS: LazyLock<HashMap<(&'static str, &'static str), jsonschema::Validator>> =
    LazyLock::new(|| {
        let mut map = HashMap::new();
        for c in REGISTRY.iter() {
            for a in &c.actions {
                // The schemas are constants checked by a test; one that failed to compile
                // would only make its action unknown, never panic the process.
                match jsonschema::validator_for(&a.parameters) {
                    Ok(v) => {
                        map.insert((c.id, a.name), v);
                    }
                    Err(e) => {
                        tracing::error!(connector = c.id, action = a.name, error = %e, "action schema does not compile");
                    }
                }
            }
        }
        map
    });

fn text(field: &'static str, label: &'static str, required: bool) -> AuthField {
    AuthField {
        field,
        label,
        kind: FieldKind::String,
        required,
        help: None,
        options: None,
    }
}

fn secret(field: &'static str, label: &'static str) -> AuthField {
    AuthField {
        kind: FieldKind::Secret,
        ..text(field, label, true)
    }
}

fn url(field: &'static str, label: &'static str) -> AuthField {
    AuthField {
        kind: FieldKind::Url,
        ..text(field, label, true)
    }
}

fn help(mut f: AuthField, help: &'static str) -> AuthField {
    f.help = Some(help);
    f
}

fn write(name: &'static str, description: &'static str, parameters: Value) -> ActionDef {
    ActionDef {
        name,
        description,
        side_effect: true,
        parameters,
    }
}

fn read(name: &'static str, description: &'static str, parameters: Value) -> ActionDef {
    ActionDef {
        name,
        description,
        side_effect: false,
        parameters,
    }
}

/// An object schema with `additionalProperties: false`.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn string_map(description: &str) -> Value {
    json!({"type": "object", "description": description, "additionalProperties": {"type": ["string", "number", "boolean", "null"]}})
}

fn wp_site() -> AuthField {
    help(
        url("site_url", "Site URL"),
        "The WordPress site's address, e.g. https://example.com",
    )
}

static REGISTRY: LazyLock<Vec<ConnectorDef>> = LazyLock::new(|| {
    vec![
        ConnectorDef {
            id: "wordpress",
            name: "WordPress",
            category: "cms",
            description: "Publish and update posts and pages through the WordPress REST API.",
            auth_schema: vec![
                wp_site(),
                text("username", "Username", true),
                help(
                    secret("application_password", "Application password"),
                    "Users → Profile → Application Passwords",
                ),
            ],
            actions: vec![
                write(
                    "create_post",
                    "Create a WordPress post (a draft unless status says otherwise).",
                    object(
                        json!({
                            "title": {"type": "string", "minLength": 1},
                            "content": {"type": "string"},
                            "excerpt": {"type": "string"},
                            "status": {"enum": ["draft", "publish", "pending", "private", "future"]},
                            "categories": {"type": "array", "items": {"type": "integer"}},
                            "tags": {"type": "array", "items": {"type": "integer"}},
                        }),
                        &["title", "content"],
                    ),
                ),
                write(
                    "update_post",
                    "Update fields of an existing WordPress post.",
                    object(
                        json!({
                            "id": {"type": "integer", "minimum": 1},
                            "title": {"type": "string"},
                            "content": {"type": "string"},
                            "excerpt": {"type": "string"},
                            "status": {"enum": ["draft", "publish", "pending", "private", "future"]},
                        }),
                        &["id"],
                    ),
                ),
            ],
            resources: vec!["posts", "pages", "media"],
        },
        ConnectorDef {
            id: "fluentcrm",
            name: "FluentCRM",
            category: "crm",
            description: "Manage FluentCRM contacts, lists and tags on a WordPress site.",
            auth_schema: vec![
                wp_site(),
                text("username", "Username", true),
                secret("application_password", "Application password"),
            ],
            actions: vec![
                write(
                    "create_subscriber",
                    "Create (or update) a FluentCRM contact.",
                    object(
                        json!({
                            "email": {"type": "string", "format": "email", "minLength": 3},
                            "first_name": {"type": "string"},
                            "last_name": {"type": "string"},
                            "status": {"enum": ["subscribed", "pending", "unsubscribed"]},
                            "lists": {"type": "array", "items": {"type": "integer"}},
                            "tags": {"type": "array", "items": {"type": "integer"}},
                        }),
                        &["email"],
                    ),
                ),
                write(
                    "add_tag",
                    "Attach tags to a FluentCRM contact.",
                    object(
                        json!({
                            "subscriber_id": {"type": "integer", "minimum": 1},
                            "tag_ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
                        }),
                        &["subscriber_id", "tag_ids"],
                    ),
                ),
            ],
            resources: vec!["subscribers", "lists", "tags"],
        },
        ConnectorDef {
            id: "woocommerce",
            name: "WooCommerce",
            category: "ecommerce",
            description: "Products, orders and customers of a WooCommerce store (REST API v3).",
            auth_schema: vec![
                help(
                    url("site_url", "Store URL"),
                    "The store's address, e.g. https://shop.example.com",
                ),
                secret("consumer_key", "Consumer key"),
                secret("consumer_secret", "Consumer secret"),
            ],
            actions: vec![
                write(
                    "create_product",
                    "Create a WooCommerce product.",
                    object(
                        json!({
                            "name": {"type": "string", "minLength": 1},
                            "type": {"enum": ["simple", "grouped", "external", "variable"]},
                            "regular_price": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$"},
                            "description": {"type": "string"},
                            "short_description": {"type": "string"},
                            "status": {"enum": ["draft", "pending", "private", "publish"]},
                            "sku": {"type": "string"},
                        }),
                        &["name"],
                    ),
                ),
                write(
                    "update_order_status",
                    "Change the status of a WooCommerce order.",
                    object(
                        json!({
                            "order_id": {"type": "integer", "minimum": 1},
                            "status": {"enum": ["pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"]},
                        }),
                        &["order_id", "status"],
                    ),
                ),
            ],
            resources: vec!["products", "orders", "customers"],
        },
        ConnectorDef {
            id: "zoho-crm",
            name: "Zoho CRM",
            category: "crm",
            description: "Leads, contacts and deals in Zoho CRM (OAuth 2.0, any data centre).",
            auth_schema: vec![
                AuthField {
                    kind: FieldKind::Select,
                    options: Some(vec!["com", "eu", "in", "au", "cn"]),
                    help: Some("The data centre of your Zoho account (the domain you sign in at)"),
                    ..text("data_centre", "Data centre", true)
                },
                text("client_id", "Client ID", true),
                secret("client_secret", "Client secret"),
                help(
                    secret("refresh_token", "Refresh token"),
                    "From the Zoho API console, scope ZohoCRM.modules.ALL,ZohoCRM.users.READ",
                ),
            ],
            actions: vec![
                write(
                    "create_lead",
                    "Create a lead in Zoho CRM.",
                    object(
                        json!({
                            "last_name": {"type": "string", "minLength": 1},
                            "first_name": {"type": "string"},
                            "company": {"type": "string"},
                            "email": {"type": "string"},
                            "phone": {"type": "string"},
                            "lead_source": {"type": "string"},
                            "fields": string_map("Further Zoho field API names and values"),
                        }),
                        &["last_name"],
                    ),
                ),
                write(
                    "update_lead",
                    "Update fields of a Zoho CRM lead.",
                    object(
                        json!({
                            "id": {"type": "string", "pattern": "^[0-9]+$"},
                            "fields": string_map("Zoho field API names and new values"),
                        }),
                        &["id", "fields"],
                    ),
                ),
                write(
                    "create_deal",
                    "Create a deal in Zoho CRM.",
                    object(
                        json!({
                            "deal_name": {"type": "string", "minLength": 1},
                            "stage": {"type": "string", "minLength": 1},
                            "amount": {"type": "number"},
                            "closing_date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                            "fields": string_map("Further Zoho field API names and values"),
                        }),
                        &["deal_name", "stage"],
                    ),
                ),
            ],
            resources: vec!["Leads", "Contacts", "Deals"],
        },
        ConnectorDef {
            id: "hubspot",
            name: "HubSpot",
            category: "crm",
            description: "Contacts and deals in HubSpot CRM (private app token, CRM v3 objects).",
            auth_schema: vec![help(
                secret("access_token", "Private app access token"),
                "Settings → Integrations → Private Apps",
            )],
            actions: vec![
                write(
                    "create_contact",
                    "Create a HubSpot contact.",
                    object(
                        json!({
                            "email": {"type": "string", "minLength": 3},
                            "firstname": {"type": "string"},
                            "lastname": {"type": "string"},
                            "phone": {"type": "string"},
                            "company": {"type": "string"},
                            "properties": string_map("Further HubSpot contact properties"),
                        }),
                        &["email"],
                    ),
                ),
                write(
                    "update_contact",
                    "Update properties of a HubSpot contact.",
                    object(
                        json!({
                            "id": {"type": "string", "pattern": "^[0-9]+$"},
                            "properties": string_map("HubSpot contact properties to set"),
                        }),
                        &["id", "properties"],
                    ),
                ),
                write(
                    "create_deal",
                    "Create a HubSpot deal.",
                    object(
                        json!({
                            "dealname": {"type": "string", "minLength": 1},
                            "dealstage": {"type": "string"},
                            "pipeline": {"type": "string"},
                            "amount": {"type": ["string", "number"]},
                            "closedate": {"type": "string"},
                            "properties": string_map("Further HubSpot deal properties"),
                        }),
                        &["dealname"],
                    ),
                ),
            ],
            resources: vec!["contacts", "deals"],
        },
        ConnectorDef {
            id: "google-ads",
            name: "Google Ads",
            category: "advertising",
            description: "Campaigns and their metrics in Google Ads (GAQL search, OAuth 2.0).",
            auth_schema: vec![
                text("client_id", "OAuth client ID", true),
                secret("client_secret", "OAuth client secret"),
                help(
                    secret("refresh_token", "Refresh token"),
                    "Scope https://www.googleapis.com/auth/adwords",
                ),
                secret("developer_token", "Developer token"),
                help(
                    text("customer_id", "Customer ID", true),
                    "The account to manage, digits only",
                ),
                help(
                    text("login_customer_id", "Login customer ID", false),
                    "The manager account, when access goes through one",
                ),
            ],
            actions: vec![
                read(
                    "get_campaign_metrics",
                    "Impressions, clicks, cost (micros) and conversions per campaign over a date range.",
                    object(
                        json!({
                            "during": {"enum": ["TODAY", "YESTERDAY", "LAST_7_DAYS", "LAST_14_DAYS", "LAST_30_DAYS", "THIS_MONTH", "LAST_MONTH"]},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                        }),
                        &[],
                    ),
                ),
                write(
                    "pause_campaign",
                    "Pause a Google Ads campaign.",
                    object(
                        json!({"campaign_id": {"type": "string", "pattern": "^[0-9]+$"}}),
                        &["campaign_id"],
                    ),
                ),
                write(
                    "enable_campaign",
                    "Enable (resume) a Google Ads campaign.",
                    object(
                        json!({"campaign_id": {"type": "string", "pattern": "^[0-9]+$"}}),
                        &["campaign_id"],
                    ),
                ),
            ],
            resources: vec!["campaigns", "metrics"],
        },
        ConnectorDef {
            id: "google-analytics",
            name: "Google Analytics 4",
            category: "analytics",
            description: "Reports from a GA4 property through the Analytics Data API (service account).",
            auth_schema: vec![
                help(
                    text("property_id", "Property ID", true),
                    "The numeric GA4 property id",
                ),
                help(
                    secret("service_account_json", "Service account key (JSON)"),
                    "The JSON key of a service account added to the property as a Viewer",
                ),
            ],
            actions: vec![read(
                "run_report",
                "Run a GA4 report: metrics by dimensions over a date range.",
                object(
                    json!({
                        "metrics": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                        "dimensions": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        "start_date": {"type": "string", "description": "YYYY-MM-DD, or NdaysAgo, yesterday, today"},
                        "end_date": {"type": "string"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100000},
                    }),
                    &["metrics"],
                ),
            )],
            resources: vec!["report"],
        },
        ConnectorDef {
            id: "meta-ads",
            name: "Meta Ads",
            category: "advertising",
            description: "Facebook/Instagram ad campaigns and insights, and Page posts (Graph API).",
            auth_schema: vec![
                secret("access_token", "Access token"),
                help(
                    text("ad_account_id", "Ad account ID", true),
                    "act_ followed by digits",
                ),
                text("page_id", "Page ID", false),
            ],
            actions: vec![
                write(
                    "pause_campaign",
                    "Pause a Meta ad campaign.",
                    object(
                        json!({"campaign_id": {"type": "string", "pattern": "^[0-9]+$"}}),
                        &["campaign_id"],
                    ),
                ),
                write(
                    "create_page_post",
                    "Publish a post on the connected Facebook Page.",
                    object(
                        json!({
                            "message": {"type": "string", "minLength": 1},
                            "link": {"type": "string"},
                            "published": {"type": "boolean"},
                        }),
                        &["message"],
                    ),
                ),
            ],
            resources: vec!["campaigns", "insights"],
        },
        ConnectorDef {
            id: "shopify",
            name: "Shopify",
            category: "ecommerce",
            description: "Products, orders and customers of a Shopify store (Admin REST API).",
            auth_schema: vec![
                help(
                    text("shop_domain", "Shop domain", true),
                    "your-store.myshopify.com",
                ),
                secret("access_token", "Admin API access token"),
            ],
            actions: vec![write(
                "create_product",
                "Create a Shopify product.",
                object(
                    json!({
                        "title": {"type": "string", "minLength": 1},
                        "body_html": {"type": "string"},
                        "vendor": {"type": "string"},
                        "product_type": {"type": "string"},
                        "tags": {"type": "string"},
                        "status": {"enum": ["active", "draft", "archived"]},
                    }),
                    &["title"],
                ),
            )],
            resources: vec!["products", "orders", "customers"],
        },
        ConnectorDef {
            id: "stripe",
            name: "Stripe",
            category: "payments",
            description: "Customers, charges, invoices and subscriptions in Stripe.",
            auth_schema: vec![help(
                secret("secret_key", "Secret key"),
                "sk_live_… or a restricted key rk_live_…",
            )],
            actions: vec![write(
                "create_customer",
                "Create a Stripe customer.",
                object(
                    json!({
                        "email": {"type": "string"},
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "phone": {"type": "string"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    }),
                    &[],
                ),
            )],
            resources: vec!["customers", "charges", "invoices", "subscriptions"],
        },
        ConnectorDef {
            id: "mailchimp",
            name: "Mailchimp",
            category: "email",
            description: "Audiences, members and campaigns in Mailchimp (Marketing API 3.0).",
            auth_schema: vec![
                secret("api_key", "API key"),
                help(
                    text("server_prefix", "Server prefix", true),
                    "The part after the dash in the API key, e.g. us21",
                ),
            ],
            actions: vec![write(
                "add_member",
                "Add a member to a Mailchimp audience.",
                object(
                    json!({
                        "list_id": {"type": "string", "minLength": 1},
                        "email_address": {"type": "string", "minLength": 3},
                        "status": {"enum": ["subscribed", "pending", "unsubscribed", "cleaned", "transactional"]},
                        "merge_fields": string_map("Merge fields, e.g. FNAME, LNAME"),
                        "tags": {"type": "array", "items": {"type": "string"}},
                    }),
                    &["list_id", "email_address"],
                ),
            )],
            resources: vec!["lists", "members", "campaigns"],
        },
        ConnectorDef {
            id: "slack",
            name: "Slack",
            category: "messaging",
            description: "Post messages to Slack channels as a bot.",
            auth_schema: vec![help(
                secret("bot_token", "Bot token"),
                "xoxb-…, with chat:write and channels:read",
            )],
            actions: vec![write(
                "post_message",
                "Post a message to a Slack channel.",
                object(
                    json!({
                        "channel": {"type": "string", "minLength": 1, "description": "Channel id, e.g. C0123456789"},
                        "text": {"type": "string", "minLength": 1},
                        "thread_ts": {"type": "string"},
                    }),
                    &["channel", "text"],
                ),
            )],
            resources: vec!["channels"],
        },
        ConnectorDef {
            id: "whatsapp",
            name: "WhatsApp Business",
            category: "messaging",
            description: "Send approved message templates through the WhatsApp Cloud API.",
            auth_schema: vec![
                secret("access_token", "Access token"),
                text("phone_number_id", "Phone number ID", true),
                help(
                    text("business_account_id", "WhatsApp Business Account ID", true),
                    "Needed to list templates",
                ),
            ],
            actions: vec![write(
                "send_template",
                "Send an approved template message to a phone number.",
                object(
                    json!({
                        "to": {"type": "string", "pattern": "^\\+?[0-9]{6,15}$"},
                        "template": {"type": "string", "minLength": 1},
                        "language": {"type": "string", "minLength": 2, "description": "e.g. en_US"},
                        "components": {"type": "array", "items": {"type": "object"}},
                    }),
                    &["to", "template", "language"],
                ),
            )],
            resources: vec!["templates"],
        },
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_connector_has_a_secret_and_an_action() {
        let mut ids: Vec<_> = connectors().iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 13);
        for c in connectors() {
            assert!(c.secret_fields().count() > 0, "{}", c.id);
            assert!(!c.actions.is_empty(), "{}", c.id);
            for a in &c.actions {
                assert!(
                    VALIDATORS.contains_key(&(c.id, a.name)),
                    "{}.{}",
                    c.id,
                    a.name
                );
            }
        }
    }

    #[test]
    fn a_bad_argument_is_named() {
        let err = validate_args(
            "wordpress",
            "create_post",
            &json!({"title": 5, "content": "x"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`title`"), "{err}");
        let err = validate_args("slack", "post_message", &json!({"channel": "C1"})).unwrap_err();
        assert!(err.to_string().contains("text"), "{err}");
    }
}
