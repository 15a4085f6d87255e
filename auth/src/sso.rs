//! Single sign-on with OpenID Connect: authorization-code flow with PKCE, `state` and
//! `nonce`, for any issuer (Google and Microsoft are configured by name). The protocol work —
//! discovery, the token exchange, ID-token signature and claim checks — is the
//! `openidconnect` crate's; this module keeps the pending logins in Redis and maps the
//! provider's identity to a Brain user.
//!
//! Two attacks shape it. *Login CSRF*: a pending login is bound to the browser that started
//! it (a random key in an HttpOnly cookie, its SHA-256 kept with the pending login), so a
//! callback link made by someone else fails in the victim's browser. *Account
//! pre-hijacking*: a user is found by the provider's `(issuer, sub)`, never by e-mail across
//! tenants; an identity is linked on its first login only within the tenant that claims the
//! e-mail's domain (operator-set), and only when the provider says `email_verified: true`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use axum::http::{HeaderValue, Response as HttpResponse};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, AuditEvent};
use crate::egress::EgressPolicy;
use crate::secrets::SecretString;
use crate::{Actor, AuthError, Role, TenantId};

/// One configured identity provider.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// A login started by `start`, waiting for the provider to call back.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: String,
    pkce_verifier: String,
    nonce: String,
    /// SHA-256 (base64url) of the browser key `start` handed out.
    browser: String,
}

/// A started login: where to send the browser, and the key the browser must bring back
/// (set it as the [`BROWSER_COOKIE`] cookie).
pub struct Started {
    pub url: String,
    pub browser_key: String,
}

/// The cookie carrying a started login's browser key, scoped to the SSO paths.
pub const BROWSER_COOKIE: &str = "brain_sso";

/// `Set-Cookie` for a started login's browser key (an empty key clears it). `SameSite=Lax`:
/// the provider's redirect back is a top-level navigation from another site.
pub fn browser_cookie(key: &str, secure: bool) -> String {
    let max_age = if key.is_empty() {
        0
    } else {
        PENDING_TTL.as_secs()
    };
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{BROWSER_COOKIE}={key}; Path=/v1/auth/sso; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// The browser key among a request's cookies.
pub fn browser_key(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BROWSER_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// How long a user may take at the provider before the login expires.
const PENDING_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("unknown or unconfigured SSO provider `{0}`")]
    UnknownProvider(String),
    #[error("the login state is unknown, expired or already used")]
    InvalidState,
    #[error("this login was not started in this browser (its SSO cookie is missing or different)")]
    OtherBrowser,
    #[error("the identity provider could not be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("the ID token was rejected: {0}")]
    InvalidIdToken(String),
    #[error("the identity provider did not vouch for an e-mail address")]
    NoVerifiedEmail,
    #[error("this account is disabled")]
    Disabled,
    #[error("the account with this e-mail is linked to another identity at this provider")]
    IdentityConflict,
    #[error("no tenant accepts sign-ins from this e-mail domain")]
    NoTenant,
    #[error("this account exists in several tenants; sign in with a password and a tenant")]
    TenantRequired,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl crate::ErrorCode for SsoError {
    fn code(&self) -> crate::Code {
        use crate::Code;
        match self {
            SsoError::UnknownProvider(_) => Code::NotFound,
            SsoError::InvalidState | SsoError::OtherBrowser => Code::InvalidState,
            SsoError::Provider(_) => Code::IdentityProviderError,
            SsoError::InvalidIdToken(_) | SsoError::NoVerifiedEmail => Code::InvalidIdToken,
            SsoError::NoTenant => Code::NoTenant,
            SsoError::Disabled => Code::AccountDisabled,
            SsoError::IdentityConflict => Code::IdentityConflict,
            SsoError::TenantRequired => Code::TenantRequired,
            SsoError::Auth(inner) => crate::ErrorCode::code(inner),
        }
    }
}

impl From<brain_types::UnknownRole> for SsoError {
    fn from(e: brain_types::UnknownRole) -> Self {
        SsoError::Auth(AuthError::UnknownRole(e))
    }
}

impl From<sqlx::Error> for SsoError {
    fn from(e: sqlx::Error) -> Self {
        SsoError::Auth(AuthError::Sql(e))
    }
}

impl From<redis::RedisError> for SsoError {
    fn from(e: redis::RedisError) -> Self {
        SsoError::Auth(AuthError::Redis(e))
    }
}

/// The user an SSO login resolved to.
#[derive(Debug)]
pub struct SsoLogin {
    pub tenant: TenantId,
    pub user: Uuid,
    pub role: Role,
    pub created: bool,
}

pub struct Sso {
    providers: HashMap<String, ProviderConfig>,
    /// Base of the callback URLs: `{public_auth_url}/v1/auth/sso/{provider}/callback`.
    public_auth_url: String,
    http: OidcHttp,
    redis: ConnectionManager,
    db: PgPool,
    discovered: RwLock<HashMap<String, CoreProviderMetadata>>,
}

impl Sso {
    pub fn new(
        providers: HashMap<String, ProviderConfig>,
        public_auth_url: &str,
        egress: &EgressPolicy,
        redis: ConnectionManager,
        db: PgPool,
    ) -> Result<Self, SsoError> {
        // No redirects (the egress policy's client follows none): token and discovery
        // requests go exactly where configured, and only to addresses the policy allows.
        let http = egress
            .client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SsoError::Provider(e.to_string()))?;
        Ok(Self {
            providers,
            public_auth_url: public_auth_url.trim_end_matches('/').to_owned(),
            http: OidcHttp {
                client: http,
                egress: egress.clone(),
            },
            redis,
            db,
            discovered: RwLock::new(HashMap::new()),
        })
    }

    /// Whether cookies must be `Secure` (the callback is served over HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.public_auth_url.starts_with("https://")
    }

    pub fn configured(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    async fn client(
        &self,
        provider: &str,
    ) -> Result<(ProviderConfig, CoreProviderMetadata), SsoError> {
        let config = self
            .providers
            .get(provider)
            .cloned()
            .ok_or_else(|| SsoError::UnknownProvider(provider.to_owned()))?;
        let cached = self
            .discovered
            .read()
            .ok()
            .and_then(|m| m.get(provider).cloned());
        let metadata = match cached {
            Some(metadata) => metadata,
            None => {
                let issuer = IssuerUrl::new(config.issuer.clone())
                    .map_err(|e| SsoError::Provider(e.to_string()))?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| SsoError::Provider(e.to_string()))?;
                if let Ok(mut cache) = self.discovered.write() {
                    cache.insert(provider.to_owned(), metadata.clone());
                }
                metadata
            }
        };
        Ok((config, metadata))
    }

    fn redirect_url(&self, provider: &str) -> Result<RedirectUrl, SsoError> {
        RedirectUrl::new(format!(
            "{}/v1/auth/sso/{provider}/callback",
            self.public_auth_url
        ))
        .map_err(|e| SsoError::Provider(e.to_string()))
    }

    /// Begins a login: the provider URL to send the browser to, and the browser's key.
    pub async fn start(&self, provider: &str) -> Result<Started, SsoError> {
        let (config, metadata) = self.client(provider).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id),
            Some(ClientSecret::new(config.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect_url(provider)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("openid".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let browser_key = CsrfToken::new_random().into_secret();
        let pending = Pending {
            provider: provider.to_owned(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            browser: sha256_b64(&browser_key),
        };
        let value =
            serde_json::to_string(&pending).map_err(|e| SsoError::Provider(e.to_string()))?;
        let mut redis = self.redis.clone();
        let _: () = redis::cmd("SET")
            .arg(pending_key(state.secret()))
            .arg(value)
            .arg("EX")
            .arg(PENDING_TTL.as_secs())
            .query_async(&mut redis)
            .await?;
        Ok(Started {
            url: url.to_string(),
            browser_key,
        })
    }

    /// Completes a login: checks `state` and that `browser_key` is the one `start` gave this
    /// login, exchanges `code` (with the PKCE verifier), verifies the ID token (signature,
    /// issuer, audience, expiry, nonce) and resolves the user.
    pub async fn callback(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        browser_key: Option<&str>,
    ) -> Result<SsoLogin, SsoError> {
        // GETDEL: a state works once, also when the wrong browser presents it.
        let mut redis = self.redis.clone();
        let value: Option<String> = redis::cmd("GETDEL")
            .arg(pending_key(state))
            .query_async(&mut redis)
            .await?;
        let pending: Pending = value
            .and_then(|v| serde_json::from_str(&v).ok())
            .ok_or(SsoError::InvalidState)?;
        if pending.provider != provider {
            return Err(SsoError::InvalidState);
        }
        if browser_key.map(sha256_b64) != Some(pending.browser) {
            return Err(SsoError::OtherBrowser);
        }
        let (config, metadata) = self.client(provider).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id),
            Some(ClientSecret::new(config.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect_url(provider)?);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| SsoError::Provider(e.to_string()))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::InvalidIdToken("the provider sent no ID token".to_owned()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|e| SsoError::InvalidIdToken(e.to_string()))?;
        // A missing `email_verified` is not a yes.
        let email = claims
            .email()
            .map(|e| e.as_str().trim().to_lowercase())
            .filter(|_| claims.email_verified() == Some(true))
            .ok_or(SsoError::NoVerifiedEmail)?;
        let identity = Identity {
            issuer: claims.issuer().as_str(),
            subject: claims.subject().as_str(),
            email: &email,
        };
        self.resolve(provider, &identity).await
    }

    /// The user linked to the identity, or — on its first login — the user with its e-mail in
    /// the tenant claiming the e-mail's domain (created if need be), linked from then on.
    async fn resolve(&self, provider: &str, identity: &Identity<'_>) -> Result<SsoLogin, SsoError> {
        let linked: Vec<(Uuid, Uuid, String, bool)> =
            sqlx::query_as("SELECT * FROM auth_identity_users($1, $2)")
                .bind(identity.issuer)
                .bind(identity.subject)
                .fetch_all(&self.db)
                .await?;
        let live: Vec<_> = linked.iter().filter(|r| !r.3).collect();
        let login = match live.as_slice() {
            [(tenant, user, role, _)] => SsoLogin {
                tenant: TenantId(*tenant),
                user: *user,
                role: role.parse()?,
                created: false,
            },
            [] if !linked.is_empty() => return Err(SsoError::Disabled),
            [] => self.link_in_domain_tenant(identity).await?,
            _ => return Err(SsoError::TenantRequired),
        };
        let mut tx = brain_migrations::begin_tenant(&self.db, login.tenant).await?;
        let action = if login.created {
            "auth.sso_signup"
        } else {
            "auth.login"
        };
        let event = AuditEvent::by(
            Actor::User(login.user),
            action,
            format!("users/{}", login.user),
            serde_json::json!({"outcome": "success", "method": "sso", "provider": provider}),
        );
        audit::append(&mut tx, login.tenant, event).await?;
        tx.commit().await?;
        Ok(login)
    }

    /// Links a first-time identity within the tenant that claims its e-mail's domain: to the
    /// user with that e-mail there, or to a new user with the tenant's SSO role. Accounts in
    /// other tenants are never considered, whatever their e-mail.
    async fn link_in_domain_tenant(&self, identity: &Identity<'_>) -> Result<SsoLogin, SsoError> {
        let domain = identity
            .email
            .rsplit_once('@')
            .map(|(_, d)| d)
            .ok_or(SsoError::NoVerifiedEmail)?;
        let mapped: Option<(Uuid, String)> =
            sqlx::query_as("SELECT * FROM auth_tenant_by_sso_domain($1)")
                .bind(domain)
                .fetch_optional(&self.db)
                .await?;
        let (tenant, default_role) = mapped.ok_or(SsoError::NoTenant)?;
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let existing: Option<(Uuid, String, bool)> = sqlx::query_as(
            "SELECT u.id, m.role, u.disabled_at IS NOT NULL FROM users u \
             JOIN memberships m ON m.user_id = u.id WHERE u.email = $1 FOR UPDATE OF u",
        )
        .bind(identity.email)
        .fetch_optional(&mut *tx)
        .await?;
        let (user, role, created) = match existing {
            Some((_, _, true)) => return Err(SsoError::Disabled),
            Some((user, role, false)) => {
                let other: Option<String> = sqlx::query_scalar(
                    "SELECT subject FROM user_identities WHERE user_id = $1 AND issuer = $2",
                )
                .bind(user)
                .bind(identity.issuer)
                .fetch_optional(&mut *tx)
                .await?;
                if other.is_some() {
                    // The provider gave this address to another account of its own.
                    return Err(SsoError::IdentityConflict);
                }
                (user, role.parse::<Role>()?, false)
            }
            None => {
                let role: Role = default_role.parse()?;
                let user = Uuid::now_v7();
                sqlx::query("INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, $3)")
                    .bind(user)
                    .bind(tenant)
                    .bind(identity.email)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)",
                )
                .bind(tenant)
                .bind(user)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
                (user, role, true)
            }
        };
        sqlx::query(
            "INSERT INTO user_identities (tenant_id, user_id, issuer, subject, email) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(user)
        .bind(identity.issuer)
        .bind(identity.subject)
        .bind(identity.email)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SsoLogin {
            tenant: TenantId(tenant),
            user,
            role,
            created,
        })
    }
}

/// Who the provider says signed in: `(issuer, sub)` and the e-mail it verified.
struct Identity<'a> {
    issuer: &'a str,
    subject: &'a str,
    email: &'a str,
}

fn sha256_b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

fn pending_key(state: &str) -> String {
    // The state is random and only ever used as a lookup key; hash-free is fine, but bound it.
    let state: String = state
        .chars()
        .filter(char::is_ascii_graphic)
        .take(128)
        .collect();
    format!("brain:auth:sso:{state}")
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// `openidconnect`'s HTTP seam over the workspace's reqwest client (one TLS stack), under
/// the egress policy.
struct OidcHttp {
    client: reqwest::Client,
    egress: EgressPolicy,
}

impl<'c> openidconnect::AsyncHttpClient<'c> for OidcHttp {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(call(self, request))
    }
}

async fn call(
    http: &OidcHttp,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
    http.egress
        .check_url(request.url())
        .map_err(|e| HttpError(e.to_string()))?;
    let response = http
        .client
        .execute(request)
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError(e.to_string()))?
        .to_vec();
    let mut out = HttpResponse::builder().status(status);
    for (name, value) in &headers {
        out = out.header(
            name,
            HeaderValue::from_bytes(value.as_bytes()).map_err(|e| HttpError(e.to_string()))?,
        );
    }
    out.body(body).map_err(|e| HttpError(e.to_string()))
}
