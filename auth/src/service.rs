//! The auth service's HTTP API (port 8009): signup, login, refresh, logout, me, JWKS and
//! users — plus the API-key routes the gateway serves under `/v1/integrations/api-keys`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts::{self, LoginOutcome, UserView, role_schema};
use crate::audit::{self, AuditEvent};
use crate::client_ip::TrustedProxies;
use crate::http::{ApiError, ApiJson, Code};
use crate::keys::{Jwks, KeyRing};
use crate::refresh::{RefreshStore, Refreshed};
use crate::sso::Sso;
use crate::throttle::LoginThrottle;
use crate::token::TokenIssuer;
use crate::{Actor, Authenticated, Authenticator, Role, Scope, TenantId};

mod api_key_routes;
mod user_routes;

pub use api_key_routes::api_keys_router;

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

/// Routes served by the auth service: the documented ones and `/healthz` (infrastructure).
pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(Router::from(routes().with_state(state)))
}

/// The auth service's routes as an OpenAPI document (for the gateway's `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// Every documented route of the auth service.
fn routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(sso_start))
        .routes(routes!(sso_callback))
        .merge(user_routes::routes())
}

/// A session's tokens: send the access token as `Authorization: Bearer` until it expires,
/// then trade the refresh token at `POST /v1/auth/refresh`.
#[derive(Serialize, ToSchema)]
struct TokenPair {
    /// A JWT signed with a key of `/.well-known/jwks.json`.
    access_token: String,
    /// Single use: refreshing spends it and answers with the next one.
    refresh_token: String,
    /// Seconds the access token stays valid.
    expires_in: u64,
    #[schema(value_type = String, example = "Bearer")]
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

/// The public keys that verify access tokens (JWKS). No credentials needed.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses((status = 200, description = "The key set", body = Jwks)))]
async fn jwks(State(state): State<AuthState>) -> Json<Jwks> {
    Json(state.keys.jwks())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignupRequest {
    /// 1 to 200 characters; the tenant's slug is made from it.
    tenant_name: String,
    /// The owner's e-mail.
    email: String,
    password: String,
}

/// A new tenant, its owner and the owner's first session.
#[derive(Serialize, ToSchema)]
struct SignedUp {
    tenant: SignedUpTenant,
    /// The owner's id.
    user_id: Uuid,
    #[serde(flatten)]
    tokens: TokenPair,
}

#[derive(Serialize, ToSchema)]
struct SignedUpTenant {
    id: Uuid,
    /// Unique; `tenant` at login when one e-mail belongs to several tenants.
    slug: String,
}

/// Creates a tenant with the caller as its owner, signed in. No credentials needed.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", security(()),
    request_body = SignupRequest,
    responses((status = 201, description = "The tenant and the owner's tokens", body = SignedUp)))]
async fn signup(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<Response, ApiError> {
    let created =
        accounts::signup(&state.db, &body.tenant_name, &body.email, &body.password).await??;
    let pair = tokens(&state, created.id, created.owner, Role::Owner).await?;
    let body = SignedUp {
        tenant: SignedUpTenant {
            id: created.id.0,
            slug: created.slug,
        },
        user_id: created.owner,
        tokens: pair,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
    /// The tenant's slug; needed only when the e-mail belongs to several tenants.
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

/// Signs in with e-mail and password (failures are throttled). No credentials needed.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses((status = 200, description = "A new session", body = TokenPair)))]
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

/// The refresh token travels in the JSON body (no cookie is read).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

/// Trades a refresh token (from the body) for new tokens, with the user's current role; the
/// old refresh token is spent. No bearer token needed.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", security(()),
    request_body = RefreshRequest,
    responses((status = 200, description = "The next tokens of the session", body = TokenPair)))]
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

/// Ends the session of the refresh token in the body (no bearer token is read); the access
/// token stays valid until it expires.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(()),
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
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

/// Who the caller is: a user with their role, or an API key with its scopes.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Me {
    /// A user, signed in with an access token.
    User {
        actor: Actor,
        tenant: CallerTenant,
        user: UserView,
        #[schema(schema_with = role_schema)]
        role: Option<Role>,
    },
    /// An API key, limited to its scopes.
    ApiKey {
        actor: Actor,
        tenant: CallerTenant,
        #[schema(schema_with = crate::api_keys::scopes_schema)]
        scopes: Vec<Scope>,
    },
}

#[derive(Serialize, ToSchema)]
struct CallerTenant {
    id: Uuid,
    slug: Option<String>,
}

/// Who the caller is, in which tenant. Any valid access token or API key.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth",
    responses((status = 200, description = "The caller", body = Me)))]
async fn me(
    State(state): State<AuthState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Me>, ApiError> {
    let mut tx = principal.begin(&state.db).await?;
    let slug: Option<String> = sqlx::query_scalar("SELECT slug FROM tenants")
        .fetch_optional(&mut *tx)
        .await?;
    let tenant = CallerTenant {
        id: principal.tenant.0,
        slug,
    };
    let body = match principal.actor {
        Actor::User(id) => Me::User {
            actor: principal.actor,
            tenant,
            user: accounts::get_user(&mut tx, id)
                .await?
                .ok_or_else(ApiError::unauthorized)?,
            role: principal.role,
        },
        Actor::ApiKey(_) => Me::ApiKey {
            actor: principal.actor,
            tenant,
            scopes: principal.scopes,
        },
    };
    tx.commit().await?;
    Ok(Json(body))
}

/// Starts an SSO login: redirects the browser to the provider, with the cookie that binds the
/// login to this browser. No credentials needed.
#[utoipa::path(get, path = "/v1/auth/sso/{provider}/start", tag = "auth", security(()),
    params(("provider" = String, Path, description = "A configured identity provider")),
    responses((status = 302, description = "To the provider's login page", headers(
        ("Location" = String, description = "The provider's authorization URL"),
        ("Set-Cookie" = String, description = "`brain_sso`: binds the login to this browser"),
    ))))]
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

/// What the provider appends to the callback URL (other parameters are ignored).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    /// The authorization code (required unless `error` is set).
    code: Option<String>,
    /// The login's state from the start (required unless `error` is set).
    state: Option<String>,
    /// Set when the provider refused the login.
    error: Option<String>,
}

/// Finishes an SSO login in the browser that started it (its `brain_sso` cookie) and answers
/// with tokens. No credentials needed.
#[utoipa::path(get, path = "/v1/auth/sso/{provider}/callback", tag = "auth", security(()),
    params(
        ("provider" = String, Path, description = "A configured identity provider"),
        CallbackQuery,
        ("brain_sso" = Option<String>, Cookie, description = "Set by the start of the login"),
    ),
    responses((status = 200, description = "A new session", body = TokenPair, headers(
        ("Set-Cookie" = String, description = "Clears `brain_sso`"),
    ))))]
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
