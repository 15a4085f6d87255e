//! Integrations, the "how": automation rules (with their Temporal schedules), inbound
//! webhooks, and `POST /hooks/{id}` where platforms deliver events. (API keys live in
//! `brain_auth::service`.)

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use brain_auth::{Authorized, require};
use brain_automation::rules::{RuleInput, RulePatch};
use brain_tasks::EventDelivery;
use brain_tools::ToolError;
use brain_tools::webhooks::{NewWebhook, Webhook};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/rules", get(list_rules).post(create_rule))
        .route(
            "/v1/integrations/rules/{id}",
            get(show_rule).patch(update_rule).delete(delete_rule),
        )
        .route("/v1/integrations/rules/{id}/run", post(run_rule))
        .route(
            "/v1/integrations/webhooks",
            get(list_webhooks).post(create_webhook),
        )
        .route(
            "/v1/integrations/webhooks/{id}",
            get(show_webhook).delete(delete_webhook),
        )
        .route("/hooks/{id}", post(receive))
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::not_found(what))
}

fn with_details(status: StatusCode, body: Value, details: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(AuditDetails(details));
    response
}

// ---- rules ----

async fn list_rules(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<Value>, ApiError> {
    let rules = state.tasks.list_rules(auth.principal().tenant).await?;
    Ok(Json(json!({ "rules": rules })))
}

async fn show_rule(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rule = state
        .tasks
        .get_rule(auth.principal().tenant, uuid(&id, "rule")?)
        .await?;
    Ok(Json(
        serde_json::to_value(rule).map_err(ApiError::internal)?,
    ))
}

async fn create_rule(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    ApiJson(body): ApiJson<RuleInput>,
) -> Result<Response, ApiError> {
    let rule = state
        .tasks
        .create_rule(auth.principal().tenant, body)
        .await?;
    let details = json!({"rule_id": rule.id, "name": rule.name, "trigger": rule.trigger.event,
                         "enabled": rule.enabled});
    Ok(with_details(
        StatusCode::CREATED,
        serde_json::to_value(rule).map_err(ApiError::internal)?,
        details,
    ))
}

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
    Ok(with_details(
        StatusCode::OK,
        serde_json::to_value(rule).map_err(ApiError::internal)?,
        details,
    ))
}

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The event the run's templates see (`{{event.…}}`); empty by default.
    #[serde(default)]
    event: Option<Value>,
}

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

fn webhook_json(state: &AppState, webhook: &Webhook) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(webhook).map_err(ApiError::internal)?;
    value["url"] = json!(state.webhooks.url(webhook.id));
    Ok(value)
}

async fn list_webhooks(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<Value>, ApiError> {
    let webhooks = state.webhooks.list(auth.principal().tenant).await?;
    let webhooks = webhooks
        .iter()
        .map(|w| webhook_json(&state, w))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "webhooks": webhooks })))
}

async fn show_webhook(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let webhook = state
        .webhooks
        .get(auth.principal().tenant, uuid(&id, "webhook")?)
        .await?;
    Ok(Json(webhook_json(&state, &webhook)?))
}

async fn create_webhook(
    State(state): State<AppState>,
    auth: Authorized<require::IntegrationsManage>,
    ApiJson(body): ApiJson<NewWebhook>,
) -> Result<Response, ApiError> {
    let created = state.webhooks.create(auth.principal().tenant, body).await?;
    let mut value = webhook_json(&state, &created.webhook)?;
    // Shown once; only a Vault path is stored.
    value["secret"] = json!(created.secret);
    let details = json!({"webhook_id": created.webhook.id, "connector": created.webhook.connector,
                         "events": created.webhook.events});
    Ok(with_details(StatusCode::CREATED, value, details))
}

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

/// A platform's delivery: verified with the connector's signature scheme (401 and nothing
/// stored when it fails), deduplicated by delivery id, then matched against enabled rules.
async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "received": received.events.len(),
        "duplicates": received.duplicates,
        "ignored": received.ignored,
        "runs": runs,
    })))
}
