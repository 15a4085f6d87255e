//! `GET /v1/audit`: the tenant's audit events, newest first, with a cursor and filters.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use brain_auth::audit::{self, Listing};
use brain_auth::{Authorized, require};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiQuery, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    actor: Option<String>,
    action: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AuditRead>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            Code::ValidationFailed,
            "limit: must be 1 to 200",
        ));
    }
    let before_seq = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::new(Code::ValidationFailed, "cursor: not a cursor from this API")
        })?),
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
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id, "seq": e.seq, "at": e.at,
                "actor": {"kind": e.actor_kind, "id": e.actor_id},
                "action": e.action, "resource": e.resource, "details": e.details,
                "prev_hash": e.prev_hash, "hash": e.hash,
            })
        })
        .collect();
    Ok(Json(
        json!({ "events": events, "next_cursor": next_cursor }),
    ))
}
