//! The audit middleware: every successful sensitive write through the gateway becomes an
//! audit event, unless its handler already recorded one inside its own transaction (marked
//! with `brain_auth::audit::Recorded`).

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use brain_auth::audit::{self, AuditEvent, Recorded};
use brain_auth::principal::PrincipalSlot;
use serde::Serialize;
use serde_json::{Value, json};

use crate::state::AppState;

/// Extra, secret-free details a handler may attach to its response for the audit event.
#[derive(Clone, Debug)]
pub struct AuditDetails(pub Value);

/// A JSON response carrying `details` for its audit event.
pub fn with_details(status: StatusCode, body: impl Serialize, details: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(AuditDetails(details));
    response
}

/// Routes whose writes are not "sensitive" (conversations, searches, inbound webhooks):
/// they are accounted for elsewhere (messages, usage, tool-call events).
const NOT_AUDITED: &[&str] = &[
    "/v1/agents/{id}/chat",
    "/v1/chat/completions",
    "/v1/knowledge/collections/{id}/search",
    "/hooks/{id}",
];

/// Action names for routes whose generic name would be unclear; the rest are
/// `<resource>.<create|update|replace|delete>`.
const ACTIONS: &[(&str, &str, &str)] = &[
    ("PUT", "/v1/agents/{id}/tools", "tool.grant"),
    ("PUT", "/v1/agents/{id}/delegates", "delegate.grant"),
    ("PUT", "/v1/agents/{id}/a2a", "agent.publish"),
    ("DELETE", "/v1/agents/{id}/a2a", "agent.unpublish"),
    ("PUT", "/v1/connectors/{id}/connection", "connector.connect"),
    (
        "DELETE",
        "/v1/connectors/{id}/connection",
        "connector.disconnect",
    ),
    ("POST", "/v1/connectors/{id}/test", "connector.test"),
    ("PUT", "/v1/tenant/providers/{provider}", "provider_key.set"),
    (
        "DELETE",
        "/v1/tenant/providers/{provider}",
        "provider_key.delete",
    ),
    ("POST", "/v1/connectors/{id}/actions/{action}", "tool.call"),
    ("POST", "/v1/tasks/{id}/approvals/{call_id}", "task.approve"),
    ("POST", "/v1/tasks/{id}/cancel", "task.cancel"),
    ("POST", "/v1/agents/{id}/tasks", "task.create"),
    ("POST", "/v1/integrations/rules/{id}/run", "rule.run"),
    ("POST", "/v1/crews/{id}/runs", "crew.run"),
    (
        "POST",
        "/v1/knowledge/collections/{id}/documents",
        "knowledge.upload",
    ),
];

/// The audit action for a write on `route`, e.g. `PATCH /v1/agents/{id}` → `agent.update`.
pub fn action_for(method: &Method, route: &str) -> String {
    if let Some((_, _, action)) = ACTIONS
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
    {
        return (*action).to_owned();
    }
    let segments: Vec<&str> = route
        .trim_start_matches("/v1/")
        .split('/')
        .filter(|s| !s.starts_with('{') && !s.is_empty())
        .collect();
    let noun = segments.last().copied().unwrap_or("resource");
    let noun = noun.strip_suffix('s').unwrap_or(noun).replace('-', "_");
    let verb = match *method {
        Method::POST => "create",
        Method::PUT => "replace",
        Method::PATCH => "update",
        Method::DELETE => "delete",
        _ => "write",
    };
    format!("{noun}.{verb}")
}

pub async fn audit_writes(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(route) = route.filter(|r| !NOT_AUDITED.contains(&r.as_str())) else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    let slot = PrincipalSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_success() || response.extensions().get::<Recorded>().is_some() {
        return response;
    }
    let Some(principal) = slot.0.get() else {
        return response;
    };
    let mut details = json!({"method": method.as_str(), "route": route, "status": status.as_u16()});
    if let Some(AuditDetails(extra)) = response.extensions().get::<AuditDetails>() {
        details["details"] = extra.clone();
    }
    let action = action_for(&method, &route);
    let event = AuditEvent::by(
        principal.actor,
        &action,
        path.trim_start_matches("/v1/").to_owned(),
        details,
    );
    let appended = async {
        let mut tx = principal.begin(&state.db).await?;
        audit::append(&mut tx, principal.tenant, event).await?;
        tx.commit().await?;
        Ok::<(), brain_auth::AuthError>(())
    };
    if let Err(e) = appended.await {
        // The write itself happened; losing its event is an incident worth an error log.
        tracing::error!(error = %e, %action, "audit event could not be written");
    }
    response
}

/// `brain audit verify [--tenant SLUG|ID]`: recomputes each tenant's chain and prints the
/// first broken link. Returns whether every chain holds.
///
/// With a tenant, only the application role is needed; without one, the tenant list is read
/// with the migration (owner) connection.
pub async fn verify_chains(
    config: &crate::config::Config,
    tenant: Option<&str>,
) -> anyhow::Result<bool> {
    use anyhow::Context;
    use sqlx::Connection;

    let app_url = config.require_database_url()?;
    let mut conn = sqlx::PgConnection::connect(app_url)
        .await
        .context("connecting to Postgres")?;
    let tenants: Vec<(uuid::Uuid, String)> = match tenant {
        Some(wanted) => {
            let id = match wanted.parse::<uuid::Uuid>() {
                Ok(id) => Some(id),
                Err(_) => brain_auth::accounts::tenant_by_slug(&mut conn, wanted)
                    .await?
                    .map(|t| t.0),
            };
            let id = id.with_context(|| format!("no tenant `{wanted}`"))?;
            vec![(id, wanted.to_owned())]
        }
        None => {
            let owner_url = config.require_migrate_database_url()?;
            let mut owner = sqlx::PgConnection::connect(owner_url).await?;
            sqlx::query_as("SELECT id, slug FROM tenants ORDER BY slug")
                .fetch_all(&mut owner)
                .await?
        }
    };
    let mut all_ok = true;
    for (id, name) in tenants {
        let mut tx = conn.begin().await?;
        brain_migrations::set_tenant(&mut tx, id).await?;
        let (checked, broken) = audit::verify_chain(&mut tx, brain_auth::TenantId(id)).await?;
        tx.commit().await?;
        match broken {
            None => println!("{name}: ok ({checked} events)"),
            Some(link) => {
                all_ok = false;
                println!(
                    "{name}: BROKEN at seq {} (event {}): {}; {checked} events before it verify",
                    link.seq, link.id, link.reason
                );
            }
        }
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_after_the_resource() {
        assert_eq!(
            action_for(&Method::PATCH, "/v1/agents/{id}"),
            "agent.update"
        );
        assert_eq!(action_for(&Method::POST, "/v1/agents"), "agent.create");
        assert_eq!(
            action_for(&Method::DELETE, "/v1/integrations/rules/{id}"),
            "rule.delete"
        );
        assert_eq!(
            action_for(&Method::PUT, "/v1/agents/{id}/tools"),
            "tool.grant"
        );
        assert_eq!(
            action_for(&Method::PUT, "/v1/agents/{id}/delegates"),
            "delegate.grant"
        );
        assert_eq!(
            action_for(&Method::POST, "/v1/tasks/{id}/approvals/{call_id}"),
            "task.approve"
        );
        assert_eq!(
            action_for(&Method::POST, "/v1/integrations/api-keys"),
            "api_key.create"
        );
    }
}
