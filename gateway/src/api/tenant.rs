//! `GET|PATCH /v1/tenant`: the caller's organisation — its name, the model new agents get,
//! and its daily token budget (all agents together; each agent may have its own too).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use brain_agents::spec::ModelRef;
use brain_auth::{Authorized, require};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/tenant", get(show).patch(update))
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: uuid::Uuid,
    slug: String,
    name: String,
    default_model: String,
    max_tokens_per_day: Option<i64>,
}

async fn load(tx: &mut sqlx::PgConnection) -> Result<Value, ApiError> {
    let row: TenantRow = sqlx::query_as(
        "SELECT id, slug, name, default_model, max_tokens_per_day FROM tenants \
         WHERE id = brain_current_tenant()",
    )
    .fetch_one(&mut *tx)
    .await?;
    let used: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint FROM usage \
         WHERE tenant_id = $1 AND day = (now() AT TIME ZONE 'utc')::date",
    )
    .bind(row.id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(json!({
        "id": row.id,
        "slug": row.slug,
        "name": row.name,
        "default_model": row.default_model,
        "budget": {"max_tokens_per_day": row.max_tokens_per_day, "tokens_used_today": used},
    }))
}

async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = auth.principal().begin(&state.db).await?;
    let tenant = load(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(tenant))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetPatch {
    /// `null` removes the budget.
    max_tokens_per_day: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantPatch {
    name: Option<String>,
    default_model: Option<String>,
    budget: Option<BudgetPatch>,
}

async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::UsersManage>,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> Result<Json<Value>, ApiError> {
    let invalid = |field: &str, message: &str| {
        ApiError::new(Code::ValidationFailed, format!("{field}: {message}"))
    };
    if let Some(name) = &patch.name
        && (name.trim().is_empty() || name.chars().count() > 200)
    {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    if let Some(model) = &patch.default_model {
        let parsed: ModelRef = model
            .parse()
            .map_err(|_| invalid("default_model", "must be `provider:model`"))?;
        if !state
            .runtime
            .deps()
            .providers
            .names()
            .iter()
            .any(|p| p == parsed.provider())
        {
            return Err(invalid(
                "default_model",
                "names a provider this Brain does not run",
            ));
        }
    }
    if let Some(BudgetPatch {
        max_tokens_per_day: Some(max),
    }) = &patch.budget
        && *max <= 0
    {
        return Err(invalid(
            "budget.max_tokens_per_day",
            "must be positive (or null)",
        ));
    }
    let mut tx = auth.principal().begin(&state.db).await?;
    sqlx::query(
        "UPDATE tenants SET name = coalesce($1, name), default_model = coalesce($2, default_model), \
         max_tokens_per_day = CASE WHEN $3 THEN $4 ELSE max_tokens_per_day END \
         WHERE id = brain_current_tenant()",
    )
    .bind(&patch.name)
    .bind(&patch.default_model)
    .bind(patch.budget.is_some())
    .bind(patch.budget.and_then(|b| b.max_tokens_per_day))
    .execute(&mut *tx)
    .await?;
    let tenant = load(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(tenant))
}
