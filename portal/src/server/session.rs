//! The browser session at the server's edge: the layer that reads, refreshes and writes the
//! token cookies, mints the CSRF cookie and turns away cross-origin writes; the extractors
//! handlers take the session and the CSRF token with; and sign-out.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::PortalConfig;
use super::cookies::{
    append_cookies, cleared_session_cookies, cookie, request_cookies, session_cookies,
};
use crate::api::{Portal, Session};
use crate::session::{ACCESS_COOKIE, CSRF_COOKIE, CsrfToken, REFRESH_COOKIE, cookie_value};

/// The answer to a form posted with a stale or missing CSRF token.
pub(super) const FORM_EXPIRED: &str = "This form has expired; reload the page and try again.";

/// The claims the portal reads from an access token (it does not verify them: the gateway
/// does, on every call).
fn token_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A new CSRF token: two random UUIDs, as hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The origin of a URL (`scheme://host[:port]`).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Whether a state-changing request comes from the portal's own pages: its `Origin` (sent by
/// every current browser on POST) is the configured origin or this very host.
fn same_origin(headers: &HeaderMap, config: &PortalConfig) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser form or fetch (no Origin): the CSRF token still has to match.
        return true;
    };
    if origin == origin_of(&config.public_origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    !host.is_empty() && origin.split_once("://").is_some_and(|(_, h)| h == host)
}

/// New tokens for `refresh` from the auth service. Concurrent requests with the same refresh
/// token share one call, and its answer is kept for a minute for requests still carrying the
/// old cookie.
async fn refresh_tokens(portal: &Portal, refresh: &str) -> Option<Value> {
    let cell = {
        let Ok(mut cells) = portal.refreshes.lock() else {
            return None;
        };
        cells.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(60));
        cells
            .entry(refresh.to_owned())
            .or_insert_with(|| (std::time::Instant::now(), Arc::default()))
            .1
            .clone()
    };
    cell.get_or_init(|| async {
        let url = format!(
            "{}/v1/auth/refresh",
            portal.config.auth_url.trim_end_matches('/')
        );
        let response = portal
            .http
            .post(url)
            .json(&json!({ "refresh_token": refresh }))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    })
    .await
    .clone()
}

/// Paths that need no session: the bundle, the stylesheet, the icon, health.
fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/")
        || matches!(
            path,
            "/style.css" | "/favicon.svg" | "/favicon.ico" | "/healthz"
        )
}

/// Keeps the session for every request (see the module comment of `server`). The portal,
/// the CSRF token and the session also go into the request's extensions, where the Leptos
/// server functions and pages find them.
pub(super) async fn session_layer(
    State(portal): State<Arc<Portal>>,
    mut request: Request,
    next: Next,
) -> Response {
    if is_static(request.uri().path()) {
        return next.run(request).await;
    }
    let secure = portal.config.secure_cookies();
    let cookies = request_cookies(request.headers());
    let mut set_cookies = Vec::new();
    let csrf = browser_csrf(&cookies, secure, &mut set_cookies);
    let session = signed_in(&portal, &cookies, secure, &mut set_cookies).await;
    let mut response = match refusal(&request, &portal.config, session.is_some()) {
        Some(refused) => refused,
        None => {
            let extensions = request.extensions_mut();
            extensions.insert(portal.clone());
            extensions.insert(CsrfToken(csrf));
            if let Some(session) = session {
                extensions.insert(session);
            }
            next.run(request).await
        }
    };
    append_cookies(&mut response, set_cookies);
    protect(response.headers_mut());
    response
}

/// The browser's CSRF token, or a new one (and its cookie) when it has none yet.
fn browser_csrf(cookies: &str, secure: bool, set_cookies: &mut Vec<String>) -> String {
    if let Some(token) = cookie_value(cookies, CSRF_COOKIE).filter(|t| t.len() >= 32) {
        return token;
    }
    let token = random_token();
    set_cookies.push(cookie(CSRF_COOKIE, &token, 365 * 24 * 3600, false, secure));
    token
}

/// The signed-in user: from an access token that is still good for a while, else from a
/// refresh (new token cookies, or cleared ones when the auth service refuses).
async fn signed_in(
    portal: &Portal,
    cookies: &str,
    secure: bool,
    set_cookies: &mut Vec<String>,
) -> Option<Session> {
    let session = cookie_value(cookies, ACCESS_COOKIE)
        .filter(|t| !t.is_empty())
        .and_then(|token| {
            let claims = token_claims(&token)?;
            // Refresh a little before expiry, so a page's several calls all see a valid token.
            (claims["exp"].as_i64()? > now_secs() + 20).then(|| Session {
                role: claims["role"].as_str().unwrap_or_default().to_owned(),
                token,
            })
        });
    if session.is_some() {
        return session;
    }
    let refresh = cookie_value(cookies, REFRESH_COOKIE).filter(|t| !t.is_empty())?;
    let Some(tokens) = refresh_tokens(portal, &refresh).await else {
        set_cookies.extend(cleared_session_cookies(secure));
        return None;
    };
    let token = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let role = token_claims(&token)
        .and_then(|c| c["role"].as_str().map(str::to_owned))
        .unwrap_or_default();
    set_cookies.extend(session_cookies(&tokens, secure));
    Some(Session { token, role })
}

/// The answer for a request turned away before any route sees it: a write from another
/// origin, or a signed-out visitor to a dashboard page (sent to sign in first).
fn refusal(request: &Request, config: &PortalConfig, signed_in: bool) -> Option<Response> {
    let method = request.method().clone();
    let writes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && !same_origin(request.headers(), config) {
        let refused = (
            StatusCode::FORBIDDEN,
            "cross-origin request refused by the portal",
        );
        return Some(refused.into_response());
    }
    if !signed_in && method == Method::GET && request.uri().path().starts_with("/dashboard") {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/dashboard", |p| p.as_str());
        let login = format!("/login?next={}", crate::api::encode(target));
        return Some(Redirect::to(&login).into_response());
    }
    None
}

/// Browser protections every answer carries unless its route set its own.
fn protect(headers: &mut HeaderMap) {
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
}

/// A request without a signed-in user, where the route needs one.
pub struct SignedOut;

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        (StatusCode::UNAUTHORIZED, "sign in again").into_response()
    }
}

/// The signed-in user the session layer found; a handler taking `Session` answers 401
/// without one, a handler taking `Option<Session>` decides itself.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SignedOut;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, SignedOut> {
        parts.extensions.get::<Session>().cloned().ok_or(SignedOut)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}

/// The browser's CSRF token the session layer read or minted (empty outside the layer,
/// which no presented token matches).
impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let token = parts.extensions.get::<CsrfToken>().map(|t| t.0.clone());
        Ok(CsrfToken(token.unwrap_or_default()))
    }
}

impl CsrfToken {
    /// Whether a form or body carried this browser's token (double submit).
    pub(super) fn accepts(&self, presented: &str) -> bool {
        !self.0.is_empty() && presented == self.0
    }
}

pub(super) fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, message.to_owned()).into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: revokes the refresh token and clears the cookies.
pub(super) async fn logout(
    State(portal): State<Arc<Portal>>,
    csrf: CsrfToken,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf.accepts(&form.csrf) {
        return forbidden(FORM_EXPIRED);
    }
    let cookies = request_cookies(&headers);
    if let Some(refresh) = cookie_value(&cookies, REFRESH_COOKIE).filter(|t| !t.is_empty()) {
        let url = format!(
            "{}/v1/auth/logout",
            portal.config.auth_url.trim_end_matches('/')
        );
        let _ = portal
            .http
            .post(url)
            .json(&json!({ "refresh_token": refresh }))
            .send()
            .await;
    }
    let mut response = Redirect::to("/login").into_response();
    append_cookies(
        &mut response,
        cleared_session_cookies(portal.config.secure_cookies()),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn writes_from_other_origins_are_recognised() {
        let config = PortalConfig {
            gateway_url: String::new(),
            auth_url: String::new(),
            public_origin: "https://portal.example".into(),
            site_root: PathBuf::new(),
            sso_providers: vec![],
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3003"));
        assert!(same_origin(&headers, &config));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers, &config));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3003"),
        );
        assert!(same_origin(&headers, &config));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://portal.example"),
        );
        assert!(same_origin(&headers, &config));
    }

    #[test]
    fn an_empty_csrf_token_matches_nothing() {
        assert!(!CsrfToken(String::new()).accepts(""));
        assert!(CsrfToken("abc".into()).accepts("abc"));
        assert!(!CsrfToken("abc".into()).accepts("abd"));
    }
}
