//! Integrations, the "how": automation rules (with their Temporal schedules), inbound
//! webhooks, and `POST /hooks/{id}` where platforms deliver events. (API keys live in
//! `brain_auth::service`.)

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brain_auth::{Authorized, require};
use brain_automation::rules::{Rule, RuleInput, RulePatch};
use brain_tasks::{EventDelivery, StartedTask};
use brain_tools::ToolError;
use brain_tools::webhooks::{NewWebhook, Webhook};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{AuditDetails, with_details};
use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(show_rule, update_rule, delete_rule))
        .routes(routes!(run_rule))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(show_webhook, delete_webhook))
        .routes(routes!(receive))
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::not_found(what))
}

// ---- rules ----

/// The tenant's automation rules.
#[derive(Serialize, ToSchema)]
struct RuleList {
    rules: Vec<Rule>,
}

/// The tenant's automation rules. Needs `connectors.read` (every role; API keys:
/// `connectors:manage`).
#[utoipa::path(get, path = "/v1/integrations/rules", tag = "integrations",
    responses((status = 200, description = "The rules", body = RuleList)))]
async fn list_rules(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<RuleList>, ApiError> {
    let rules = state.tasks.list_rules(auth.principal().tenant).await?;
    Ok(Json(RuleList { rules }))
}

/// One automation rule. Needs `connectors.read` (every role; API keys: `connectors:manage`).
#[utoipa::path(get, path = "/v1/integrations/rules/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The rule")),
    responses((status = 200, description = "The rule", body = Rule)))]
async fn show_rule(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let rule = state
        .tasks
        .get_rule(auth.principal().tenant, uuid(&id, "rule")?)
        .await?;
    Ok(Json(rule))
}

/// Creates a rule (and, for an enabled schedule, its Temporal schedule). Needs the
/// `integrations.manage` permission (owners and admins; no API-key scope grants it).
#[utoipa::path(post, path = "/v1/integrations/rules", tag = "integrations",
    request_body = RuleInput,
    responses((status = 201, description = "The new rule", body = Rule)))]
async fn create_rule(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    ApiJson(body): ApiJson<RuleInput>,
) -> Result<Response, ApiError> {
    let rule = state
        .tasks
        .create_rule(auth.principal().tenant, body)
        .await?;
    let details = json!({"rule_id": rule.id, "name": rule.name, "trigger": rule.trigger.event(),
                         "enabled": rule.enabled});
    Ok(with_details(StatusCode::CREATED, rule, details))
}

/// Replaces the fields the patch carries (and the rule's schedule with them). Needs the
/// `integrations.manage` permission (owners and admins; no API-key scope grants it).
#[utoipa::path(patch, path = "/v1/integrations/rules/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The rule")),
    request_body = RulePatch,
    responses((status = 200, description = "The updated rule", body = Rule)))]
async fn update_rule(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<RulePatch>,
) -> Result<Response, ApiError> {
    let rule = state
        .tasks
        .update_rule(auth.principal().tenant, uuid(&id, "rule")?, patch)
        .await?;
    let details = json!({"rule_id": rule.id, "enabled": rule.enabled});
    Ok(with_details(StatusCode::OK, rule, details))
}

/// Deletes a rule and its schedule. Needs the `integrations.manage` permission (owners and
/// admins; no API-key scope grants it).
#[utoipa::path(delete, path = "/v1/integrations/rules/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The rule")),
    responses((status = 204, description = "The rule was deleted")))]
async fn delete_rule(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rule = state
        .tasks
        .delete_rule(auth.principal().tenant, uuid(&id, "rule")?)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .extensions_mut()
        .insert(AuditDetails(json!({"rule_id": rule.id, "name": rule.name})));
    Ok(response)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The event the run's templates see (`{{event.…}}`); empty by default.
    #[serde(default)]
    event: Option<Value>,
}

/// Runs a rule now, whatever its trigger, as a durable task of kind `rule`. Needs the
/// `integrations.manage` permission (owners and admins; no API-key scope grants it).
#[utoipa::path(post, path = "/v1/integrations/rules/{id}/run", tag = "integrations",
    params(("id" = Uuid, Path, description = "The rule")),
    request_body(content = Option<RunBody>,
        description = "Optional: without a body the run sees an empty event"),
    responses((status = 202, description = "The run was started", body = StartedTask)))]
async fn run_rule(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: no body runs the rule with an empty event.
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(Code::InvalidBody, e.to_string()))?
    };
    let event = body.event.unwrap_or_else(|| json!({}));
    let started = state
        .tasks
        .run_rule(auth.principal().tenant, uuid(&id, "rule")?, event)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}

// ---- webhooks ----

/// A webhook with the address the platform is to deliver to.
#[derive(Serialize, ToSchema)]
struct WebhookView {
    #[serde(flatten)]
    webhook: Webhook,
    /// `{public base URL}/hooks/{id}`; `null` when the deployment has no public base URL.
    url: Option<String>,
}

impl WebhookView {
    fn new(state: &AppState, webhook: Webhook) -> Self {
        let url = state.webhooks.url(webhook.id);
        Self { webhook, url }
    }
}

/// The tenant's webhooks.
#[derive(Serialize, ToSchema)]
struct WebhookList {
    webhooks: Vec<WebhookView>,
}

/// A new webhook with its signing secret.
#[derive(Serialize, ToSchema)]
struct CreatedWebhookView {
    #[serde(flatten)]
    webhook: WebhookView,
    /// Shown this once; only a Vault path is stored.
    secret: String,
}

/// What a delivery did.
#[derive(Serialize, ToSchema)]
struct ReceivedView {
    /// Events newly stored.
    received: usize,
    /// Events an earlier delivery already brought.
    duplicates: usize,
    /// Events outside the webhook's `events` filter (and WooCommerce pings).
    ignored: usize,
    /// Rule runs the new events started.
    runs: usize,
}

/// The tenant's inbound webhooks. Needs `connectors.read` (every role; API keys:
/// `connectors:manage`).
#[utoipa::path(get, path = "/v1/integrations/webhooks", tag = "integrations",
    responses((status = 200, description = "The webhooks", body = WebhookList)))]
async fn list_webhooks(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks = state.webhooks.list(auth.principal().tenant).await?;
    let webhooks = webhooks
        .into_iter()
        .map(|w| WebhookView::new(&state, w))
        .collect();
    Ok(Json(WebhookList { webhooks }))
}

/// One inbound webhook. Needs `connectors.read` (every role; API keys: `connectors:manage`).
#[utoipa::path(get, path = "/v1/integrations/webhooks/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The webhook")),
    responses((status = 200, description = "The webhook", body = WebhookView)))]
async fn show_webhook(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let webhook = state
        .webhooks
        .get(auth.principal().tenant, uuid(&id, "webhook")?)
        .await?;
    Ok(Json(WebhookView::new(&state, webhook)))
}

/// Creates an inbound webhook for a connector; the answer carries its signing secret, once.
/// Needs the `integrations.manage` permission (owners and admins; no API-key scope grants it).
#[utoipa::path(post, path = "/v1/integrations/webhooks", tag = "integrations",
    request_body = NewWebhook,
    responses((status = 201, description = "The new webhook and its secret",
        body = CreatedWebhookView)))]
async fn create_webhook(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    ApiJson(body): ApiJson<NewWebhook>,
) -> Result<Response, ApiError> {
    let created = state.webhooks.create(auth.principal().tenant, body).await?;
    let details = json!({"webhook_id": created.webhook.id, "connector": created.webhook.connector,
                         "events": created.webhook.events});
    let view = CreatedWebhookView {
        webhook: WebhookView::new(&state, created.webhook),
        secret: created.secret,
    };
    Ok(with_details(StatusCode::CREATED, view, details))
}

/// Deletes an inbound webhook and its secret. Needs the `integrations.manage` permission
/// (owners and admins; no API-key scope grants it).
#[utoipa::path(delete, path = "/v1/integrations/webhooks/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The webhook")),
    responses((status = 204, description = "The webhook was deleted")))]
async fn delete_webhook(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .webhooks
        .delete(auth.principal().tenant, uuid(&id, "webhook")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Receives a platform's event delivery for a webhook; public, authenticated by signature.
///
/// The delivery is verified with the connector's signature scheme (401 and nothing stored
/// when it fails), deduplicated by delivery id, then matched against enabled rules.
/// No bearer token; the sender's signature over the body with the webhook's secret
/// authenticates it, in the connector's own headers (`X-Shopify-Hmac-Sha256`,
/// `Stripe-Signature`, …) or Brain's `X-Brain-Timestamp` and `X-Brain-Signature`. An address
/// or webhook with too many failed deliveries is refused (429) for a while.
#[utoipa::path(post, path = "/hooks/{id}", tag = "integrations", security(()),
    params(("id" = Uuid, Path, description = "The webhook")),
    request_body(content = Value, description = "The platform's event, as it sends it"),
    responses((status = 200, description = "The delivery was accepted", body = ReceivedView)))]
async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceivedView>, ApiError> {
    let address = state
        .hook_guard
        .address(peer.map(|Extension(ConnectInfo(p))| p.ip()), &headers);
    let Ok(id) = uuid(&id, "webhook") else {
        state.hook_guard.failed(None, address.as_deref()).await;
        return Err(ApiError::not_found("webhook"));
    };
    state.hook_guard.admit(id, address.as_deref()).await?;
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_ascii_lowercase(), v.to_owned()))
        })
        .collect();
    let received = state
        .webhooks
        .receive(id, &headers, &body, chrono::Utc::now())
        .await;
    let received = match received {
        Ok(received) => received,
        // Unknown and disabled endpoints look alike: nothing to probe for.
        Err(ToolError::WebhookNotFound) => {
            state.hook_guard.failed(None, address.as_deref()).await;
            return Err(ApiError::not_found("webhook"));
        }
        Err(e @ ToolError::InvalidSignature(_)) => {
            state.hook_guard.failed(Some(id), address.as_deref()).await;
            return Err(ApiError::from(e));
        }
        Err(other) => return Err(ApiError::from(other)),
    };
    let tenant = received.tenant;
    let mut runs = 0;
    for event in &received.events {
        let delivery = EventDelivery {
            delivery: event.delivery_row,
            name: event.name.clone(),
            payload: event.payload.clone(),
        };
        match state.tasks.dispatch_event(tenant, &delivery).await {
            Ok(started) => {
                runs += started.len();
                state
                    .webhooks
                    .mark_processed(tenant, event.delivery_row, Ok(()))
                    .await?;
            }
            Err(e) => {
                // The platform retries a failed delivery; make sure the retry is not taken
                // for a duplicate, so the rules still run once.
                for later in received
                    .events
                    .iter()
                    .skip_while(|x| x.delivery_row != event.delivery_row)
                {
                    let _ = state.webhooks.forget(tenant, later.delivery_row).await;
                }
                return Err(ApiError::from(e));
            }
        }
    }
    Ok(Json(ReceivedView {
        received: received.events.len(),
        duplicates: received.duplicates,
        ignored: received.ignored,
        runs,
    }))
}
