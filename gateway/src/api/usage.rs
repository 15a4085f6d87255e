//! `GET /v1/usage?from&to`: tokens, tool calls and tasks per agent and per day.

use axum::Json;
use axum::extract::State;
use brain_auth::{Authorized, require};
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// First day, `YYYY-MM-DD` (default 29 days before `to`).
    #[param(format = Date)]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default today, UTC); at most 366 days after `from`.
    #[param(format = Date)]
    to: Option<String>,
}

/// Use per agent and day over `from..=to`, with the totals.
#[derive(Serialize, ToSchema)]
struct UsageReport {
    from: NaiveDate,
    to: NaiveDate,
    /// One row per day and agent that used anything, by day then agent.
    usage: Vec<UsageRow>,
    totals: UsageTotals,
}

#[derive(Serialize, ToSchema)]
struct UsageRow {
    day: NaiveDate,
    /// `null` for use outside any agent.
    #[schema(required = true)]
    agent_id: Option<Uuid>,
    /// The agent's slug; `null` with `agent_id`.
    #[schema(required = true)]
    agent: Option<String>,
    prompt_tokens: i64,
    completion_tokens: i64,
    tool_calls: i64,
    tasks: i64,
}

#[derive(Serialize, ToSchema)]
struct UsageTotals {
    prompt_tokens: i64,
    completion_tokens: i64,
    tool_calls: i64,
    tasks: i64,
}

/// The longest range one request may ask for.
const MAX_DAYS: i64 = 366;

fn parse_day(field: &str, value: Option<&str>, default: NaiveDate) -> Result<NaiveDate, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiError::invalid(field, "expected YYYY-MM-DD")),
    }
}

/// Tokens, tool calls and tasks per agent and per day. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, description = "The use over the range", body = UsageReport)))]
async fn usage(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let today = Utc::now().date_naive();
    let to = parse_day("to", query.to.as_deref(), today)?;
    let from = parse_day("from", query.from.as_deref(), to - Duration::days(29))?;
    if from > to {
        return Err(ApiError::invalid("from", "must not be after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid(
            "from/to",
            format!("at most {MAX_DAYS} days per request"),
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
    let usage: Vec<UsageRow> = rows
        .into_iter()
        .map(|(day, agent_id, slug, prompt, completion, tools, tasks)| {
            for (total, n) in totals.iter_mut().zip([prompt, completion, tools, tasks]) {
                *total += n;
            }
            UsageRow {
                day,
                agent_id,
                agent: slug,
                prompt_tokens: prompt,
                completion_tokens: completion,
                tool_calls: tools,
                tasks,
            }
        })
        .collect();
    let [prompt_tokens, completion_tokens, tool_calls, tasks] = totals;
    Ok(Json(UsageReport {
        from,
        to,
        usage,
        totals: UsageTotals {
            prompt_tokens,
            completion_tokens,
            tool_calls,
            tasks,
        },
    }))
}
