//! `GET|PATCH /v1/tenant`: the caller's organisation — its name, the model new agents get,
//! and its daily token budget (all agents together; each agent may have its own too).

use axum::Json;
use axum::extract::State;
use brain_agents::spec::ModelRef;
use brain_auth::{Authorized, require};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: Uuid,
    slug: String,
    name: String,
    default_model: String,
    max_tokens_per_day: Option<i64>,
}

/// The caller's organisation.
#[derive(Serialize, ToSchema)]
struct TenantView {
    id: Uuid,
    slug: String,
    name: String,
    /// `provider:model` new agents get when they name none.
    default_model: String,
    budget: BudgetView,
}

/// The tenant's daily token budget, over all its agents (UTC days).
#[derive(Serialize, ToSchema)]
struct BudgetView {
    /// Prompt plus completion tokens allowed per day; `null` when unlimited.
    #[schema(required = true)]
    max_tokens_per_day: Option<i64>,
    tokens_used_today: i64,
}

async fn load(tx: &mut sqlx::PgConnection) -> Result<TenantView, ApiError> {
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
    Ok(TenantView {
        id: row.id,
        slug: row.slug,
        name: row.name,
        default_model: row.default_model,
        budget: BudgetView {
            max_tokens_per_day: row.max_tokens_per_day,
            tokens_used_today: used,
        },
    })
}

/// The caller's organisation with today's token use. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant",
    responses((status = 200, description = "The tenant", body = TenantView)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<TenantView>, ApiError> {
    let mut tx = auth.principal().begin(&state.db).await?;
    let tenant = load(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(tenant))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BudgetPatch {
    /// Positive; `null` (or absent) removes the budget.
    max_tokens_per_day: Option<i64>,
}

/// The fields to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantPatch {
    /// 1 to 200 characters.
    name: Option<String>,
    /// `provider:model` of a provider this Brain runs.
    default_model: Option<String>,
    budget: Option<BudgetPatch>,
}

/// Renames the tenant, changes its default model or its daily token budget. Needs the
/// `users.manage` permission (owner or admin; no API-key scope carries it).
#[utoipa::path(patch, path = "/v1/tenant", tag = "tenant", request_body = TenantPatch,
    responses((status = 200, description = "The tenant as changed", body = TenantView)))]
async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::UsersManage>,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> Result<Json<TenantView>, ApiError> {
    if let Some(name) = &patch.name
        && (name.trim().is_empty() || name.chars().count() > 200)
    {
        return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
    }
    if let Some(model) = &patch.default_model {
        let parsed: ModelRef = model
            .parse()
            .map_err(|_| ApiError::invalid("default_model", "must be `provider:model`"))?;
        if !state
            .runtime
            .deps()
            .providers
            .names()
            .iter()
            .any(|p| p == parsed.provider())
        {
            return Err(ApiError::invalid(
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
        return Err(ApiError::invalid(
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
