//! Who is calling: the [`Principal`] every gateway and auth route runs as, resolved from a
//! bearer JWT (verified locally) or an API key (`bk_…`), and the extractors that demand a
//! permission in the handler's type: `Authorized<require::AgentsWrite>`.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sqlx::PgPool;
use uuid::Uuid;

use crate::http::ApiError;
use crate::revocation::Revocations;
use crate::token::{Claims, TokenVerifier};
use crate::{AuthError, Permission, Role, Scope, TenantId, api_keys};

/// Who acts: `{"kind": "user" | "api_key", "id": <uuid>}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    User(Uuid),
    ApiKey(Uuid),
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Actor::User(id) | Actor::ApiKey(id) => *id,
        }
    }
}

/// An authenticated caller inside exactly one tenant.
#[derive(Clone, Debug)]
pub struct Principal {
    pub tenant: TenantId,
    pub actor: Actor,
    /// A user's role; `None` for API keys, which carry scopes instead.
    pub role: Option<Role>,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn allows(&self, permission: Permission) -> bool {
        match self.role {
            Some(role) => role.allows(permission),
            None => self.scopes.iter().any(|s| s.grants(permission)),
        }
    }

    /// A transaction inside this principal's tenant: RLS filters everything in it.
    pub async fn begin(
        &self,
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        brain_migrations::begin_tenant(pool, self.tenant).await
    }
}

/// Turns an `Authorization` header into a [`Principal`].
pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    db: PgPool,
    limiter: Option<crate::ratelimit::RateLimiter>,
    revocations: Option<Revocations>,
}

impl Authenticator {
    pub fn new(
        verifier: Arc<TokenVerifier>,
        db: PgPool,
        limiter: Option<crate::ratelimit::RateLimiter>,
    ) -> Self {
        Self {
            verifier,
            db,
            limiter,
            revocations: None,
        }
    }

    /// Consults `revocations` for every access token: disabled or demoted users' tokens
    /// stop working at once.
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Ends `user`'s access tokens (after disabling, demoting or deleting them). A no-op
    /// without a revocation store.
    pub async fn revoke_sessions(&self, user: Uuid) -> Result<(), AuthError> {
        match &self.revocations {
            Some(revocations) => revocations.revoke(user).await,
            None => Ok(()),
        }
    }

    async fn is_revoked(&self, claims: &Claims) -> bool {
        match &self.revocations {
            Some(revocations) => revocations.is_revoked(claims).await,
            None => false,
        }
    }

    /// `Err(429)` when the principal's tenant or API key is over its request rate.
    pub async fn rate_limit(&self, principal: &Principal) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check(principal).await {
            None => Ok(()),
            Some(wait) => Err(ApiError::too_many_requests(
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                "request rate limit exceeded; slow down",
            )),
        }
    }

    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        if token.starts_with(api_keys::PREFIX) {
            return match api_keys::verify(&self.db, token).await {
                Ok(Some(key)) => Ok(Principal {
                    tenant: key.tenant,
                    actor: Actor::ApiKey(key.id),
                    role: None,
                    scopes: key.scopes,
                }),
                Ok(None) => Err(ApiError::unauthorized()),
                Err(e) => Err(ApiError::from(e)),
            };
        }
        match self.verifier.verify(token).await {
            Ok(claims) if self.is_revoked(&claims).await => Err(ApiError::unauthorized()),
            Ok(claims) => Ok(Principal {
                tenant: claims.tid,
                actor: Actor::User(claims.sub),
                role: Some(claims.role),
                scopes: Vec::new(),
            }),
            Err(AuthError::Jwks(reason)) => Err(ApiError::unavailable(AuthError::Jwks(reason))),
            Err(_) => Err(ApiError::unauthorized()),
        }
    }
}

/// A slot the audit middleware puts into a request so it learns, after the handler ran, who
/// the caller was (extractors fill it when they resolve the principal).
#[derive(Clone, Default)]
pub struct PrincipalSlot(pub Arc<std::sync::OnceLock<Principal>>);

/// Any authenticated caller.
pub struct Authenticated(pub Principal);

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Self(principal.clone()));
        }
        let authenticator = Arc::<Authenticator>::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = authenticator.authenticate(header).await?;
        // The request's span (and so every log line in it) carries the tenant from here on.
        tracing::Span::current().record("tenant", tracing::field::display(principal.tenant));
        authenticator.rate_limit(&principal).await?;
        // Later extractors and middleware (audit, rate limits) see the same principal.
        if let Some(slot) = parts.extensions.get::<PrincipalSlot>() {
            let _ = slot.0.set(principal.clone());
        }
        parts.extensions.insert(principal.clone());
        Ok(Self(principal))
    }
}

/// A permission a route demands, as a type.
pub trait Requirement: Send + Sync + 'static {
    const PERMISSION: Permission;
}

/// An authenticated caller allowed `R::PERMISSION`; 401 without credentials, 403 without
/// the permission.
pub struct Authorized<R: Requirement>(pub Principal, PhantomData<R>);

impl<R: Requirement> Authorized<R> {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
    R: Requirement,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if !principal.allows(R::PERMISSION) {
            return Err(ApiError::forbidden(format!(
                "this action needs the `{}` permission",
                R::PERMISSION.as_str()
            )));
        }
        Ok(Self(principal, PhantomData))
    }
}

/// The requirement types: `Authorized<require::AgentsWrite>`.
pub mod require {
    use super::Requirement;
    use crate::Permission;

    macro_rules! requirements {
        ($($name:ident),* $(,)?) => {$(
            pub struct $name;
            impl Requirement for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    requirements!(
        AgentsRead,
        AgentsWrite,
        Chat,
        TasksInvoke,
        TasksApprove,
        KnowledgeRead,
        KnowledgeWrite,
        ConnectorsRead,
        ConnectorsManage,
        IntegrationsManage,
        UsersRead,
        UsersManage,
        ApiKeysManage,
        AuditRead,
    );
}
