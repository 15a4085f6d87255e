//! Calls to the gateway and the auth service, made by the portal's server with the signed-in
//! user's own token (taken from the request the page or server function is answering).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::request::Parts;
use leptos::prelude::*;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{Outcome, ToolSource, ToolSourceKind};
use crate::server::PortalConfig;

/// The portal's shared server state: the plain routes' axum state, and put into every
/// request's extensions for the Leptos server functions (which cannot take axum state).
pub struct Portal {
    pub config: PortalConfig,
    pub http: reqwest::Client,
    /// The last look at the gateway's request counter, for the request rate.
    pub last_sample: Mutex<Option<(Instant, f64)>>,
    /// Refreshes in flight or just done, by refresh token: a browser firing several
    /// requests with the same expiring session refreshes once (presenting a spent refresh
    /// token again would revoke the whole session).
    pub refreshes: Mutex<HashMap<String, (Instant, RefreshCell)>>,
}

/// The outcome of one refresh, shared by every request that carried the same token.
pub type RefreshCell = Arc<tokio::sync::OnceCell<Option<Value>>>;

/// The signed-in user of a request, from the access-token cookie.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub role: String,
}

/// Which service a call goes to.
#[derive(Clone, Copy, Debug)]
pub enum Service {
    Gateway,
    Auth,
}

/// A refused or failed call, in the API's own words.
#[derive(Clone, Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiFailure {
    fn transport(e: impl std::fmt::Display) -> Self {
        Self {
            status: 502,
            code: "unreachable".into(),
            message: format!("Brain's API could not be reached ({e})"),
        }
    }

    pub fn outcome(&self) -> Outcome {
        Outcome::error(self.sentence())
    }

    fn sentence(&self) -> String {
        match self.status {
            401 => "Your session has ended; sign in again.".to_owned(),
            // A write sent with `If-Match` (or a `version`) after someone else's change.
            409 if self.code == "version_conflict" => {
                "Someone else changed this meanwhile; reload the page to see their changes."
                    .to_owned()
            }
            403 => format!("Not allowed: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

impl From<ApiFailure> for ServerFnError {
    fn from(e: ApiFailure) -> Self {
        ServerFnError::new(e.sentence())
    }
}

pub fn portal() -> Result<Arc<Portal>, ServerFnError> {
    use_context::<Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<Portal>>().cloned())
        .ok_or_else(|| ServerFnError::new("the portal is not configured"))
}

pub fn session() -> Option<Session> {
    use_context::<Parts>().and_then(|parts| parts.extensions.get::<Session>().cloned())
}

/// `X-Forwarded-For` for a call made on behalf of this request's browser: what arrived (if
/// anything) followed by the browser's address, so the auth service throttles logins per
/// browser rather than per portal. The auth service believes only the hops its trusted
/// proxies added.
pub fn forwarded_for() -> Option<(&'static str, String)> {
    let parts = use_context::<Parts>()?;
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?
        .0
        .ip();
    let mut hops: Vec<String> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    hops.push(peer.to_string());
    Some(("x-forwarded-for", hops.join(", ")))
}

/// Calls `service` at `path` with the user's token; JSON in, JSON (or null) out.
pub async fn call(
    service: Service,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ApiFailure> {
    call_with(service, method, path, body, &[]).await
}

pub async fn call_with(
    service: Service,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
) -> Result<Value, ApiFailure> {
    let portal = portal().map_err(ApiFailure::transport)?;
    let base = match service {
        Service::Gateway => &portal.config.gateway_url,
        Service::Auth => &portal.config.auth_url,
    };
    let mut request = portal
        .http
        .request(method, format!("{}{path}", base.trim_end_matches('/')));
    if let Some(session) = session() {
        request = request.bearer_auth(&session.token);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(ApiFailure::transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(ApiFailure::transport)?;
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if status.is_success() {
        return Ok(value);
    }
    let text = |key: &str| {
        value
            .pointer(&format!("/error/{key}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Err(ApiFailure {
        status: status.as_u16(),
        code: text("code").unwrap_or_else(|| "error".into()),
        message: text("message").unwrap_or_else(|| format!("the API answered {status}")),
    })
}

/// `GET` from the gateway, decoded.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ServerFnError> {
    let value = call(Service::Gateway, Method::GET, path, None).await?;
    decode(value)
}

/// The field `key` of a `GET` answer, decoded (lists come wrapped: `{"agents": [...]}`).
pub async fn get_list<T: DeserializeOwned>(path: &str, key: &str) -> Result<Vec<T>, ServerFnError> {
    let mut value = call(Service::Gateway, Method::GET, path, None).await?;
    decode(value.get_mut(key).map(Value::take).unwrap_or(Value::Null))
}

/// The tenant's MCP servers, then its remote A2A agents; `None` when the role may not read
/// them, so a page leaves them out rather than failing.
pub async fn tool_sources() -> Result<Option<Vec<ToolSource>>, ServerFnError> {
    let mut all = Vec::new();
    for kind in ToolSourceKind::ALL {
        match call(Service::Gateway, Method::GET, kind.path(), None).await {
            Ok(value) => all.extend(decode::<Vec<ToolSource>>(value)?),
            Err(e) if e.status == 403 => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(all))
}

pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, ServerFnError> {
    if value.is_null() {
        return serde_json::from_value(Value::Array(vec![]))
            .map_err(|e| ServerFnError::new(format!("unexpected answer from the API: {e}")));
    }
    serde_json::from_value(value)
        .map_err(|e| ServerFnError::new(format!("unexpected answer from the API: {e}")))
}

/// Percent-encodes a query value or path segment.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Refuses a state-changing call whose form did not carry this browser's CSRF token.
pub fn check_csrf(token: &str) -> Result<(), ServerFnError> {
    let expected = crate::session::csrf_token();
    if expected.is_empty() || token != expected {
        return Err(ServerFnError::new(
            "This form has expired (CSRF check failed); reload the page and try again.",
        ));
    }
    Ok(())
}

/// The gateway's `/readyz`: each dependency and its state (`ok`, `unreachable`, …).
pub async fn readiness() -> Vec<(String, String)> {
    let Ok(portal) = portal() else {
        return vec![];
    };
    let url = format!("{}/readyz", portal.config.gateway_url.trim_end_matches('/'));
    let answer = match portal.http.get(url).send().await {
        Ok(r) => r.json::<Value>().await.ok(),
        Err(_) => None,
    };
    match answer.as_ref().and_then(Value::as_object) {
        Some(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("?").to_owned()))
            .collect(),
        None => vec![("gateway".to_owned(), "unreachable".to_owned())],
    }
}

/// The signed-in user's role, for showing or hiding controls (the gateway decides).
pub fn me() -> crate::model::Me {
    crate::model::Me {
        role: session().map(|s| s.role).unwrap_or_default(),
        ..crate::model::Me::default()
    }
}

/// Whether the server function was called by a form posted without JavaScript (the browser
/// wants a page back, not data).
pub fn plain_form_post() -> bool {
    use_context::<Parts>().is_some_and(|p| {
        p.headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// For a form posted without JavaScript: back to the page it came from — with the error as
/// `?error=…` when it failed, which the page shows next to its field (the browser would
/// otherwise land on the page with no word of what went wrong), and without a stale one when
/// it succeeded.
pub fn back_to_page(outcome: &Outcome) {
    if !plain_form_post() {
        return;
    }
    let referer = use_context::<Parts>()
        .and_then(|p| {
            p.headers
                .get(axum::http::header::REFERER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let after_scheme = referer.find("://").map_or(0, |i| i + 3);
    let path = referer[after_scheme..]
        .find('/')
        .map_or("", |i| &referer[after_scheme + i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    // Only a page of the portal: never an open redirect.
    if !path.starts_with("/dashboard") || path.starts_with("//") {
        return;
    }
    if outcome.ok {
        leptos_axum::redirect(path);
    } else {
        leptos_axum::redirect(&format!("{path}?error={}", encode(&outcome.message)));
    }
}
