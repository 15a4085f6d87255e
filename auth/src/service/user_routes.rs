//! `/v1/users`: the tenant's members, for owners and admins (viewers and editors may list).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthState;
use crate::accounts::{self, NewUser, UserChange, UserView, role_schema};
use crate::audit::{self, AuditEvent, Recorded};
use crate::http::{ApiError, ApiJson};
use crate::{Authorized, Role, require};

pub(super) fn routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
}

/// The tenant's members, oldest first.
#[derive(Serialize, ToSchema)]
struct UserList {
    users: Vec<UserView>,
}

/// The tenant's members. Needs `users.read` (any role; no API-key scope has it).
#[utoipa::path(get, path = "/v1/users", tag = "users",
    responses((status = 200, description = "Every member", body = UserList)))]
async fn list_users(
    State(state): State<AuthState>,
    auth: Authorized<require::UsersRead>,
) -> Result<Json<UserList>, ApiError> {
    let mut tx = auth.principal().begin(&state.db).await?;
    let users = accounts::list_users(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(UserList { users }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    email: String,
    /// Only an owner may make another owner.
    #[schema(schema_with = role_schema)]
    role: Role,
    /// Without one the user signs in through SSO only.
    password: Option<String>,
    display_name: Option<String>,
}

/// The acting user's role; API keys carry no users permission, so this is always a user.
fn actor_role(principal: &crate::Principal) -> Result<Role, ApiError> {
    principal
        .role
        .ok_or_else(|| ApiError::forbidden("only users can manage users"))
}

/// Adds a member to the tenant. Needs `users.manage` (owner or admin).
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, description = "The new member", body = UserView)))]
async fn create_user(
    State(state): State<AuthState>,
    auth: Authorized<require::UsersManage>,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let mut tx = principal.begin(&state.db).await?;
    let new = NewUser {
        email: &body.email,
        role: body.role,
        password: body.password.as_deref(),
        display_name: body.display_name.as_deref(),
    };
    let user =
        accounts::create_user(&mut tx, principal.tenant, actor_role(principal)?, &new).await??;
    let event = AuditEvent::by(
        principal.actor,
        "user.create",
        format!("users/{}", user.id),
        json!({"role": user.role}),
    );
    audit::append(&mut tx, principal.tenant, event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Extension(Recorded), Json(user)).into_response())
}

/// The fields to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    /// Only an owner may grant or remove the owner role; the last owner stays an owner.
    #[schema(schema_with = role_schema)]
    role: Option<Role>,
    display_name: Option<String>,
    /// `true` signs the user out everywhere and keeps them out.
    disabled: Option<bool>,
}

/// Changes a member's role, name or disabled flag; a role change or disabling signs them out.
/// Needs `users.manage`.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = UpdateUserRequest,
    responses((status = 200, description = "The member as changed", body = UserView)))]
async fn update_user(
    State(state): State<AuthState>,
    auth: Authorized<require::UsersManage>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let mut tx = principal.begin(&state.db).await?;
    let change = UserChange {
        role: body.role,
        display_name: body.display_name.as_deref(),
        disabled: body.disabled,
    };
    let (user, previous) =
        accounts::update_user(&mut tx, actor_role(principal)?, id, &change).await??;
    if let Some(previous) = previous {
        let event = AuditEvent::by(
            principal.actor,
            "user.role_change",
            format!("users/{id}"),
            json!({"from": previous, "to": user.role}),
        );
        audit::append(&mut tx, principal.tenant, event).await?;
    }
    // Before the commit: if revoking fails nothing changes; if the commit fails the user
    // only has to sign in again.
    if previous.is_some() || body.disabled == Some(true) {
        state.authenticator.revoke_sessions(id).await?;
    }
    tx.commit().await?;
    Ok((Extension(Recorded), Json(user)).into_response())
}

/// Removes a member from the tenant and signs them out. Needs `users.manage`.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    responses((status = 204, description = "Removed")))]
async fn delete_user(
    State(state): State<AuthState>,
    auth: Authorized<require::UsersManage>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let mut tx = principal.begin(&state.db).await?;
    accounts::delete_user(&mut tx, actor_role(principal)?, id).await??;
    let event = AuditEvent::by(
        principal.actor,
        "user.delete",
        format!("users/{id}"),
        json!({}),
    );
    audit::append(&mut tx, principal.tenant, event).await?;
    state.authenticator.revoke_sessions(id).await?;
    tx.commit().await?;
    Ok((StatusCode::NO_CONTENT, Extension(Recorded)).into_response())
}
