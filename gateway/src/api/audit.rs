//! `GET /v1/audit`: the tenant's audit events, newest first, with a cursor and filters.

use axum::Json;
use axum::extract::State;
use brain_auth::audit::{self, Listing, StoredEvent};
use brain_auth::{Authorized, require};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Events per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only events of this actor id or kind (`user`, `api_key`, `system`).
    actor: Option<String>,
    /// Only this action, or every action under it (`agent` matches `agent.update`).
    action: Option<String>,
}

/// One page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
struct AuditPage {
    events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<String>,
}

/// One audit event; `hash` chains it to the previous event of the tenant (`prev_hash`).
#[derive(Serialize, ToSchema)]
struct AuditEventView {
    id: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    actor: AuditActor,
    action: String,
    resource: String,
    /// Ids, names and field names; never secrets.
    details: Value,
    prev_hash: String,
    hash: String,
}

#[derive(Serialize, ToSchema)]
struct AuditActor {
    kind: String,
    id: String,
}

impl From<StoredEvent> for AuditEventView {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            seq: e.seq,
            at: e.at,
            actor: AuditActor {
                kind: e.actor_kind,
                id: e.actor_id,
            },
            action: e.action,
            resource: e.resource,
            details: e.details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// The tenant's audit events, newest first. Needs `audit:read`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of events", body = AuditPage)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AuditRead>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 200"));
    }
    let before_seq = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("cursor", "not a cursor from this API"))?,
        ),
    };
    let listing = Listing {
        limit,
        before_seq,
        actor: query.actor.as_deref(),
        action: query.action.as_deref(),
    };
    let mut tx = auth.principal().begin(&state.db).await?;
    let events = audit::list(&mut tx, &listing).await?;
    tx.commit().await?;
    let next_cursor = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        events: events.into_iter().map(AuditEventView::from).collect(),
        next_cursor,
    }))
}
