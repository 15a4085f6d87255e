//! `GET /v1/usage?from&to`: tokens, tool calls and tasks per agent and per day.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use brain_auth::{Authorized, require};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{ApiError, ApiQuery, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/usage", get(usage))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The longest range one request may ask for.
const MAX_DAYS: i64 = 366;

fn parse_day(field: &str, value: Option<&str>, default: NaiveDate) -> Result<NaiveDate, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
            ApiError::new(
                Code::ValidationFailed,
                format!("{field}: expected YYYY-MM-DD"),
            )
        }),
    }
}

async fn usage(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    let today = Utc::now().date_naive();
    let to = parse_day("to", query.to.as_deref(), today)?;
    let from = parse_day("from", query.from.as_deref(), to - Duration::days(29))?;
    if from > to {
        return Err(ApiError::new(
            Code::ValidationFailed,
            "from: must not be after to",
        ));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::new(
            Code::ValidationFailed,
            format!("from/to: at most {MAX_DAYS} days per request"),
        ));
    }
    let mut tx = auth.principal().begin(&state.db).await?;
    type Row = (NaiveDate, Option<Uuid>, Option<String>, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT u.day, u.agent_id, a.slug, u.prompt_tokens, u.completion_tokens, u.tool_calls, \
                u.tasks \
         FROM usage u LEFT JOIN agents a ON a.id = u.agent_id \
         WHERE u.day BETWEEN $1 AND $2 ORDER BY u.day, a.slug NULLS FIRST",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut totals = [0i64; 4];
    let days: Vec<Value> = rows
        .into_iter()
        .map(|(day, agent_id, slug, prompt, completion, tools, tasks)| {
            for (total, n) in totals.iter_mut().zip([prompt, completion, tools, tasks]) {
                *total += n;
            }
            json!({
                "day": day, "agent_id": agent_id, "agent": slug,
                "prompt_tokens": prompt, "completion_tokens": completion,
                "tool_calls": tools, "tasks": tasks,
            })
        })
        .collect();
    Ok(Json(json!({
        "from": from, "to": to, "usage": days,
        "totals": {
            "prompt_tokens": totals[0], "completion_tokens": totals[1],
            "tool_calls": totals[2], "tasks": totals[3],
        },
    })))
}
