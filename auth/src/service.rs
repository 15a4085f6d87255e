//! The auth service's HTTP API (port 8009): signup, login, refresh, logout, me, JWKS and
//! users — plus the API-key routes the gateway serves under `/v1/integrations/api-keys`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::accounts::{self, LoginOutcome, NewUser, UserChange};
use crate::audit::{self, AuditEvent, Recorded};
use crate::client_ip::TrustedProxies;
use crate::http::{ApiError, ApiJson, Code};
use crate::keys::{Jwks, KeyRing};
use crate::refresh::{RefreshStore, Refreshed};
use crate::sso::Sso;
use crate::throttle::LoginThrottle;
use crate::token::TokenIssuer;
use crate::{
    Actor, Authenticated, Authenticator, Authorized, Role, Scope, TenantId, api_keys, require,
};

/// Everything the auth routes need.
#[derive(Clone)]
pub struct AuthState {
    pub db: PgPool,
    pub keys: Arc<KeyRing>,
    pub issuer: Arc<TokenIssuer>,
    pub refresh: Arc<RefreshStore>,
    pub throttle: Arc<LoginThrottle>,
    pub authenticator: Arc<Authenticator>,
    pub sso: Arc<Sso>,
    /// Whose `X-Forwarded-For` names the client (login throttling).
    pub trusted_proxies: TrustedProxies,
}

impl FromRef<AuthState> for Arc<Authenticator> {
    fn from_ref(state: &AuthState) -> Self {
        state.authenticator.clone()
    }
}

impl FromRef<AuthState> for PgPool {
    fn from_ref(state: &AuthState) -> Self {
        state.db.clone()
    }
}

/// Routes served by the auth service.
pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/auth/signup", post(signup))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/me", get(me))
        .route("/v1/auth/sso/{provider}/start", get(sso_start))
        .route("/v1/auth/sso/{provider}/callback", get(sso_callback))
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/{id}", patch(update_user).delete(delete_user))
        .with_state(state)
}

/// The API-key routes, for any state that can authenticate and reach Postgres (the gateway).
pub fn api_keys_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Authenticator>: FromRef<S>,
    PgPool: FromRef<S>,
{
    Router::new()
        .route(
            "/v1/integrations/api-keys",
            get(list_api_keys).post(create_api_key),
        )
        .route("/v1/integrations/api-keys/{id}", delete(revoke_api_key))
}

#[derive(Serialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    token_type: &'static str,
}

async fn tokens(
    state: &AuthState,
    tenant: TenantId,
    user: Uuid,
    role: Role,
) -> Result<TokenPair, ApiError> {
    let access_token = state.issuer.issue(tenant, user, role)?;
    let refresh_token = state
        .refresh
        .start(tenant, user)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: state.issuer.access_ttl().as_secs(),
        token_type: "Bearer",
    })
}

async fn jwks(State(state): State<AuthState>) -> Json<Jwks> {
    Json(state.keys.jwks())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupRequest {
    tenant_name: String,
    email: String,
    password: String,
}

async fn signup(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<Response, ApiError> {
    let created =
        accounts::signup(&state.db, &body.tenant_name, &body.email, &body.password).await??;
    let pair = tokens(&state, created.id, created.owner, Role::Owner).await?;
    let body = json!({
        "tenant": {"id": created.id, "slug": created.slug},
        "user_id": created.owner,
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": pair.expires_in,
        "token_type": pair.token_type,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
    tenant: Option<String>,
}

/// The client's address (see [`TrustedProxies`]) when the server runs with connect info;
/// "unknown" otherwise (tests).
struct ClientIp(String);

impl axum::extract::FromRequestParts<AuthState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "unknown".to_owned(),
                |ConnectInfo(addr)| {
                    state
                        .trusted_proxies
                        .client(addr.ip(), &parts.headers)
                        .to_string()
                },
            );
        Ok(Self(ip))
    }
}

async fn login(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let tenant = body.tenant.as_deref();
    let throttle = &state.throttle;
    if let Some(wait) = throttle
        .blocked(tenant, &body.email, &ip)
        .await
        .map_err(ApiError::unavailable)?
    {
        return Err(ApiError::too_many_requests(
            wait,
            "too many failed logins; try again later",
        ));
    }
    match accounts::check_login(&state.db, &body.email, &body.password, tenant).await? {
        LoginOutcome::Ok(account) => {
            throttle
                .record_success(tenant, &body.email, &ip)
                .await
                .map_err(ApiError::unavailable)?;
            let mut tx = brain_migrations::begin_tenant(&state.db, account.tenant).await?;
            let event = AuditEvent::by(
                Actor::User(account.user),
                "auth.login",
                format!("users/{}", account.user),
                json!({"outcome": "success"}),
            );
            audit::append(&mut tx, account.tenant, event).await?;
            tx.commit().await?;
            Ok(Json(
                tokens(&state, account.tenant, account.user, account.role).await?,
            ))
        }
        LoginOutcome::Denied {
            tenant: known_tenant,
            user,
        } => {
            throttle
                .record_failure(tenant, &body.email, &ip)
                .await
                .map_err(ApiError::unavailable)?;
            if let (Some(known_tenant), Some(user)) = (known_tenant, user) {
                let mut tx = brain_migrations::begin_tenant(&state.db, known_tenant).await?;
                let event = AuditEvent::by(
                    Actor::User(user),
                    "auth.login_failed",
                    format!("users/{user}"),
                    json!({"outcome": "denied"}),
                );
                audit::append(&mut tx, known_tenant, event).await?;
                tx.commit().await?;
            }
            Err(ApiError::new(
                Code::InvalidCredentials,
                "wrong e-mail or password",
            ))
        }
        LoginOutcome::TenantRequired => Err(ApiError::new(
            Code::TenantRequired,
            "this account exists in several tenants; pass `tenant` (its slug)",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let (outcome, next) = state
        .refresh
        .rotate(&body.refresh_token)
        .await
        .map_err(ApiError::unavailable)?;
    let (Refreshed::Valid(session), Some(next)) = (outcome, next) else {
        return Err(ApiError::unauthorized());
    };
    // The role may have changed (or the user gone) since the last token: read it again.
    let mut tx = brain_migrations::begin_tenant(&state.db, session.tenant).await?;
    let role = accounts::current_role(&mut tx, session.user).await?;
    tx.commit().await?;
    let Some(role) = role else {
        state
            .refresh
            .revoke(&next)
            .await
            .map_err(ApiError::unavailable)?;
        return Err(ApiError::unauthorized());
    };
    Ok(Json(TokenPair {
        access_token: state.issuer.issue(session.tenant, session.user, role)?,
        refresh_token: next,
        expires_in: state.issuer.access_ttl().as_secs(),
        token_type: "Bearer",
    }))
}

async fn logout(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .refresh
        .revoke(&body.refresh_token)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(
    State(state): State<AuthState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut tx = principal.begin(&state.db).await?;
    let slug: Option<String> = sqlx::query_scalar("SELECT slug FROM tenants")
        .fetch_optional(&mut *tx)
        .await?;
    let body = match principal.actor {
        Actor::User(id) => {
            let user = accounts::get_user(&mut tx, id)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            json!({
                "actor": principal.actor,
                "tenant": {"id": principal.tenant, "slug": slug},
                "user": user,
                "role": principal.role,
            })
        }
        Actor::ApiKey(_) => json!({
            "actor": principal.actor,
            "tenant": {"id": principal.tenant, "slug": slug},
            "scopes": principal.scopes,
        }),
    };
    tx.commit().await?;
    Ok(Json(body))
}

async fn list_users(
    State(state): State<AuthState>,
    auth: Authorized<require::UsersRead>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut tx = auth.principal().begin(&state.db).await?;
    let users = accounts::list_users(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    email: String,
    role: Role,
    password: Option<String>,
    display_name: Option<String>,
}

/// The acting user's role; API keys carry no users permission, so this is always a user.
fn actor_role(principal: &crate::Principal) -> Result<Role, ApiError> {
    principal
        .role
        .ok_or_else(|| ApiError::forbidden("only users can manage users"))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    role: Option<Role>,
    display_name: Option<String>,
    disabled: Option<bool>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyRequest {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

async fn create_api_key(
    State(db): State<PgPool>,
    auth: Authorized<require::ApiKeysManage>,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("scopes", e))?;
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "give at least one"));
    }
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let principal = auth.principal();
    let created_by = match principal.actor {
        Actor::User(id) => Some(id),
        Actor::ApiKey(_) => None,
    };
    let mut tx = principal.begin(&db).await?;
    let (info, key) = api_keys::create(
        &mut tx,
        principal.tenant,
        created_by,
        name,
        &scopes,
        body.expires_at,
    )
    .await?;
    let event = AuditEvent::by(
        principal.actor,
        "api_key.create",
        format!("api-keys/{}", info.id),
        json!({"name": info.name, "scopes": info.scopes}),
    );
    audit::append(&mut tx, principal.tenant, event).await?;
    tx.commit().await?;
    let mut body = serde_json::to_value(&info).map_err(ApiError::internal)?;
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, Extension(Recorded), Json(body)).into_response())
}

async fn list_api_keys(
    State(db): State<PgPool>,
    auth: Authorized<require::ApiKeysManage>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut tx = auth.principal().begin(&db).await?;
    let keys = api_keys::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({ "api_keys": keys })))
}

async fn revoke_api_key(
    State(db): State<PgPool>,
    auth: Authorized<require::ApiKeysManage>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let mut tx = principal.begin(&db).await?;
    if !api_keys::revoke(&mut tx, id).await? {
        return Err(ApiError::not_found("api key"));
    }
    let event = AuditEvent::by(
        principal.actor,
        "api_key.revoke",
        format!("api-keys/{id}"),
        json!({}),
    );
    audit::append(&mut tx, principal.tenant, event).await?;
    tx.commit().await?;
    Ok((StatusCode::NO_CONTENT, Extension(Recorded)).into_response())
}

/// `GET /v1/auth/sso/{provider}/start`: redirects the browser to the provider, with the
/// cookie that binds the login to this browser.
async fn sso_start(
    State(state): State<AuthState>,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    let started = state.sso.start(&provider).await?;
    let cookie = crate::sso::browser_cookie(&started.browser_key, state.sso.secure_cookies());
    Ok((
        StatusCode::FOUND,
        [
            (axum::http::header::LOCATION, started.url),
            (axum::http::header::SET_COOKIE, cookie),
        ],
    )
        .into_response())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /v1/auth/sso/{provider}/callback?code&state`: finishes the login, answers with tokens.
async fn sso_callback(
    State(state): State<AuthState>,
    Path(provider): Path<String>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(query): axum::extract::Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if let Some(error) = query.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        return Err(ApiError::new(
            Code::SsoDenied,
            format!("the identity provider refused the login ({error})"),
        ));
    }
    let (Some(code), Some(login_state)) = (query.code, query.state) else {
        return Err(ApiError::new(
            Code::InvalidState,
            "code and state are required",
        ));
    };
    let browser = crate::sso::browser_key(&headers);
    let login = state
        .sso
        .callback(&provider, &code, &login_state, browser.as_deref())
        .await?;
    let tokens = tokens(&state, login.tenant, login.user, login.role).await?;
    let spent = crate::sso::browser_cookie("", state.sso.secure_cookies());
    Ok(([(axum::http::header::SET_COOKIE, spent)], Json(tokens)).into_response())
}
