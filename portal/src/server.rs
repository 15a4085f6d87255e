//! The portal's HTTP server: the Leptos pages and server functions, the browser bundle and
//! stylesheet, and the few plain routes a Leptos page cannot be (sign-out, the chat and task
//! event stream proxies, uploads, SSO). A layer in front of all of them keeps the session: it reads the
//! token cookies, refreshes an expiring access token with the auth service, mints the CSRF
//! cookie, refuses cross-origin writes and sends signed-out visitors to the login page.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Portal, Session};
use crate::session::{ACCESS_COOKIE, CSRF_COOKIE, CsrfToken, REFRESH_COOKIE, cookie_value};

/// Where the portal finds Brain's services and its own browser bundle.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// The gateway's base URL as the portal's server reaches it.
    pub gateway_url: String,
    /// The auth service's base URL as the portal's server reaches it.
    pub auth_url: String,
    /// The portal's own origin as browsers see it (`BRAIN_PORTAL_ORIGIN`): cross-origin
    /// writes are refused, and cookies are `Secure` when it is `https`.
    pub public_origin: String,
    /// Holds `pkg/brain_portal.js` and `pkg/brain_portal_bg.wasm` (built by `cargo xtask`).
    /// Without them the pages still work, without the live parts.
    pub site_root: PathBuf,
    /// SSO providers configured on the auth service (`google`, `microsoft`).
    pub sso_providers: Vec<String>,
}

impl PortalConfig {
    /// The folder `cargo xtask` builds the bundle into (`BRAIN_PORTAL_SITE_ROOT` names
    /// another).
    pub fn default_site_root() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/portal-site"
        ))
    }

    fn secure_cookies(&self) -> bool {
        self.public_origin.starts_with("https://")
    }
}

const STYLESHEET: &str = include_str!("../style/portal.css");

/// The portal's routes, ready to serve.
pub fn router(config: PortalConfig) -> Router {
    let options = LeptosOptions::builder()
        .output_name(crate::BUNDLE_NAME)
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .build();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let portal = Arc::new(Portal {
        config,
        http,
        last_sample: Mutex::new(None),
        refreshes: Mutex::new(std::collections::HashMap::new()),
    });
    let routes = generate_route_list(crate::app::App);
    let shell_options = options.clone();
    let fallback_options = options.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/style.css", get(stylesheet))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/pkg/{file}", get(bundle_file))
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/logout", post(logout))
        .route("/login/sso/{provider}", get(sso_start))
        .route("/v1/auth/sso/{provider}/callback", get(sso_callback))
        .route("/dashboard/chat/{agent}/stream", post(chat_stream))
        .route("/dashboard/chat/{agent}/send", post(chat_send))
        .route("/dashboard/agents/{agent}/upload", post(upload))
        .route("/dashboard/tasks/{task}/events", get(task_events))
        .leptos_routes(&options, routes, move || {
            crate::app::shell(shell_options.clone())
        })
        .fallback(leptos_axum::render_app_to_stream(move || {
            crate::app::shell(fallback_options.clone())
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            session_layer(portal.clone(), request, next)
        }))
        .with_state(options)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>\
         <path d='M8 1 15 8 8 15 1 8z' fill='#4338ca'/></svg>",
    )
        .into_response()
}

/// `GET /pkg/{file}`: the browser bundle (JavaScript glue and WebAssembly).
async fn bundle_file(Path(file): Path<String>, request: Request) -> Response {
    let Some(portal) = request.extensions().get::<Arc<Portal>>().cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if file.contains('/') || file.contains("..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = portal.config.site_root.join("pkg").join(&file);
    let Ok(meta) = tokio::fs::metadata(&path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Revalidated on every load, re-sent only when the build changed it.
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    let etag = format!("\"{:x}-{modified:x}\"", meta.len());
    let cached = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let headers = [
        (header::CONTENT_TYPE, content_type.to_owned()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::ETAG, etag),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => (headers, bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

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

/// A `Set-Cookie` value: HttpOnly unless the page must read it, SameSite=Lax, Secure over TLS.
fn cookie(name: &str, value: &str, max_age: i64, http_only: bool, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Tokens from the auth service, as cookies.
pub(crate) fn session_cookies(tokens: &Value, secure: bool) -> Vec<String> {
    let access = tokens["access_token"].as_str().unwrap_or_default();
    let refresh = tokens["refresh_token"].as_str().unwrap_or_default();
    let ttl = tokens["expires_in"].as_i64().unwrap_or(900);
    vec![
        cookie(ACCESS_COOKIE, access, ttl, true, secure),
        cookie(REFRESH_COOKIE, refresh, 30 * 24 * 3600, true, secure),
    ]
}

fn cleared_session_cookies(secure: bool) -> Vec<String> {
    vec![
        cookie(ACCESS_COOKIE, "", 0, true, secure),
        cookie(REFRESH_COOKIE, "", 0, true, secure),
    ]
}

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

/// Keeps the session for every request (see the module comment).
async fn session_layer(portal: Arc<Portal>, mut request: Request, next: Next) -> Response {
    if is_static(request.uri().path()) {
        request.extensions_mut().insert(portal);
        return next.run(request).await;
    }
    let secure = portal.config.secure_cookies();
    let cookies = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    let mut set_cookies = Vec::new();

    let csrf = match cookie_value(&cookies, CSRF_COOKIE).filter(|t| t.len() >= 32) {
        Some(token) => token,
        None => {
            let token = random_token();
            set_cookies.push(cookie(CSRF_COOKIE, &token, 365 * 24 * 3600, false, secure));
            token
        }
    };

    let mut session = cookie_value(&cookies, ACCESS_COOKIE)
        .filter(|t| !t.is_empty())
        .and_then(|token| {
            let claims = token_claims(&token)?;
            // Refresh a little before expiry, so a page's several calls all see a valid token.
            (claims["exp"].as_i64()? > now_secs() + 20).then(|| Session {
                role: claims["role"].as_str().unwrap_or_default().to_owned(),
                token,
            })
        });
    if session.is_none()
        && let Some(refresh) = cookie_value(&cookies, REFRESH_COOKIE).filter(|t| !t.is_empty())
    {
        match refresh_tokens(&portal, &refresh).await {
            Some(tokens) => {
                let token = tokens["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let role = token_claims(&token)
                    .and_then(|c| c["role"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                set_cookies.extend(session_cookies(&tokens, secure));
                session = Some(Session { token, role });
            }
            None => set_cookies.extend(cleared_session_cookies(secure)),
        }
    }

    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let writes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let response = if writes && !same_origin(request.headers(), &portal.config) {
        (
            StatusCode::FORBIDDEN,
            "cross-origin request refused by the portal",
        )
            .into_response()
    } else if session.is_none() && method == Method::GET && path.starts_with("/dashboard") {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/dashboard", |p| p.as_str());
        Redirect::to(&format!("/login?next={}", crate::api::encode(target))).into_response()
    } else {
        request.extensions_mut().insert(portal.clone());
        request.extensions_mut().insert(CsrfToken(csrf));
        if let Some(session) = session {
            request.extensions_mut().insert(session);
        }
        next.run(request).await
    };
    let mut response = response;
    for c in set_cookies {
        if let Ok(value) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    response
}

fn csrf_of(request_parts: &axum::http::Extensions) -> String {
    request_parts
        .get::<CsrfToken>()
        .map(|t| t.0.clone())
        .unwrap_or_default()
}

fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, message.to_owned()).into_response()
}

#[derive(Deserialize, Default)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: revokes the refresh token and clears the cookies.
async fn logout(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(portal) = parts.extensions.get::<Arc<Portal>>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let form: CsrfForm = serde_urlencoded_form(&body);
    if form.csrf != csrf_of(&parts.extensions) {
        return forbidden("This form has expired; reload the page and try again.");
    }
    let cookies = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
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
    for c in cleared_session_cookies(portal.config.secure_cookies()) {
        if let Ok(value) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Decodes an `application/x-www-form-urlencoded` body into `T` (missing fields default).
fn serde_urlencoded_form<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> T {
    let pairs: serde_json::Map<String, Value> = form_pairs(body)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    serde_json::from_value(Value::Object(pairs)).unwrap_or_default()
}

/// The pairs of a urlencoded body, decoded.
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct ChatForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    conversation_id: String,
    #[serde(default)]
    csrf: String,
}

fn chat_body(form: &ChatForm) -> Value {
    let mut body = json!({ "message": form.message });
    if !form.conversation_id.is_empty() {
        body["conversation_id"] = json!(form.conversation_id);
    }
    body
}

/// `POST /dashboard/chat/{agent}/stream`: one chat turn, relayed from the gateway's SSE
/// stream as it comes, so the user's token never reaches the page's script.
async fn chat_stream(Path(agent): Path<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (Some(portal), Some(session)) = (
        parts.extensions.get::<Arc<Portal>>().cloned(),
        parts.extensions.get::<Session>().cloned(),
    ) else {
        return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
    };
    let body = axum::body::to_bytes(body, 256 * 1024)
        .await
        .unwrap_or_default();
    let form: ChatForm = serde_json::from_slice(&body).unwrap_or_default();
    if form.csrf.is_empty() || form.csrf != csrf_of(&parts.extensions) {
        return forbidden("This page has expired; reload it and try again.");
    }
    let url = format!(
        "{}/v1/agents/{}/chat",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(&agent)
    );
    let upstream = portal
        .http
        .post(url)
        .bearer_auth(&session.token)
        .header(header::ACCEPT, "text/event-stream")
        .json(&chat_body(&form))
        .send()
        .await;
    relay_events(upstream).await
}

/// Answers with the gateway's event stream as it arrives, or with its error (JSON, same
/// status), or 502 when the gateway could not be reached.
async fn relay_events(upstream: Result<reqwest::Response, reqwest::Error>) -> Response {
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_GATEWAY, format!("gateway unreachable: {e}")).into_response();
        }
    };
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::OK);
    if !status.is_success() {
        let text = upstream.text().await.unwrap_or_default();
        return (status, [(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        relay(upstream),
    )
        .into_response()
}

/// The body of an upstream response, passed on chunk by chunk as it arrives.
fn relay(upstream: reqwest::Response) -> Body {
    Body::from_stream(futures::stream::unfold(
        Some(upstream),
        |state| async move {
            let mut upstream = state?;
            match upstream.chunk().await {
                Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(upstream))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        },
    ))
}

/// How long one relayed event stream may stay open; the browser's `EventSource` then
/// reconnects (and is sent a fresh snapshot).
const EVENTS_RELAY_LIMIT: Duration = Duration::from_secs(30 * 60);

/// `GET /dashboard/tasks/{task}/events`: a task's run events (`snapshot`, `step`, `status`,
/// `child_done`, `done`), relayed from the gateway's SSE stream as they come, so the page's
/// script follows a run without ever holding the user's token.
async fn task_events(Path(task): Path<String>, request: Request) -> Response {
    let (Some(portal), Some(session)) = (
        request.extensions().get::<Arc<Portal>>().cloned(),
        request.extensions().get::<Session>().cloned(),
    ) else {
        return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
    };
    let url = format!(
        "{}/v1/tasks/{}/events",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(&task)
    );
    let upstream = portal
        .http
        .get(url)
        .bearer_auth(&session.token)
        .header(header::ACCEPT, "text/event-stream")
        .timeout(EVENTS_RELAY_LIMIT)
        .send()
        .await;
    relay_events(upstream).await
}

/// `POST /dashboard/chat/{agent}/send`: the same turn for a browser without JavaScript —
/// waits for the whole reply, then shows the conversation.
async fn chat_send(Path(agent): Path<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (Some(portal), Some(session)) = (
        parts.extensions.get::<Arc<Portal>>().cloned(),
        parts.extensions.get::<Session>().cloned(),
    ) else {
        return Redirect::to("/login").into_response();
    };
    let body = axum::body::to_bytes(body, 256 * 1024)
        .await
        .unwrap_or_default();
    let form: ChatForm = serde_urlencoded_form(&body);
    if form.csrf != csrf_of(&parts.extensions) {
        return forbidden("This form has expired; reload the page and try again.");
    }
    let url = format!(
        "{}/v1/agents/{}/chat",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(&agent)
    );
    let reply = portal
        .http
        .post(url)
        .bearer_auth(&session.token)
        .json(&chat_body(&form))
        .send()
        .await;
    let conversation = match reply {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["conversation_id"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        _ => form.conversation_id.clone(),
    };
    Redirect::to(&format!(
        "/dashboard/chat/{}?c={}",
        crate::api::encode(&agent),
        crate::api::encode(&conversation)
    ))
    .into_response()
}

#[derive(Deserialize)]
struct UploadQuery {
    collection: String,
    csrf: String,
}

/// `POST /dashboard/agents/{agent}/upload?collection=…&csrf=…`: a knowledge upload, passed
/// through to the gateway as it came (multipart, field `file`); then back to the agent page,
/// which follows the document's ingestion.
async fn upload(
    Path(agent): Path<String>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (Some(portal), Some(session)) = (
        parts.extensions.get::<Arc<Portal>>().cloned(),
        parts.extensions.get::<Session>().cloned(),
    ) else {
        return Redirect::to("/login").into_response();
    };
    if query.csrf != csrf_of(&parts.extensions) {
        return forbidden("This form has expired; reload the page and try again.");
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "file too large").into_response(),
    };
    let url = format!(
        "{}/v1/knowledge/collections/{}/documents",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(&query.collection)
    );
    let reply = portal
        .http
        .post(url)
        .bearer_auth(&session.token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await;
    let back = format!("/dashboard/agents/{}", crate::api::encode(&agent));
    let target = match reply {
        Ok(r) => {
            let ok = r.status().is_success();
            let value: Value = r.json().await.unwrap_or(Value::Null);
            if ok {
                format!(
                    "{back}?document={}#knowledge",
                    crate::api::encode(value["document_id"].as_str().unwrap_or_default())
                )
            } else {
                let message = value
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the upload was refused");
                format!(
                    "{back}?upload_error={}#knowledge",
                    crate::api::encode(message)
                )
            }
        }
        Err(e) => format!(
            "{back}?upload_error={}#knowledge",
            crate::api::encode(&format!("the gateway could not be reached ({e})"))
        ),
    };
    Redirect::to(&target).into_response()
}

/// `GET /login/sso/{provider}`: on to the auth service, which redirects to the provider.
async fn sso_start(Path(provider): Path<String>, request: Request) -> Response {
    let Some(portal) = request.extensions().get::<Arc<Portal>>().cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !portal.config.sso_providers.contains(&provider) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let url = format!(
        "{}/v1/auth/sso/{}/start",
        portal.config.auth_url.trim_end_matches('/'),
        crate::api::encode(&provider)
    );
    let Ok(reply) = portal.http.get(url).send().await else {
        return (StatusCode::BAD_GATEWAY, "SSO is not available").into_response();
    };
    let Some(location) = reply
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return (StatusCode::BAD_GATEWAY, "SSO is not available").into_response();
    };
    // The auth service's cookie binds the login to this browser: pass it on.
    let mut response = Redirect::to(location).into_response();
    for cookie in reply.headers().get_all(header::SET_COOKIE) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// The auth service's cookie binding a started SSO login to the browser (scoped to
/// `/v1/auth/sso`); relayed both ways.
const SSO_BROWSER_COOKIE: &str = "brain_sso";

/// `GET /v1/auth/sso/{provider}/callback`: when `BRAIN_PUBLIC_AUTH_URL` is the portal's
/// origin, the identity provider returns here; the portal finishes the login with the auth
/// service and keeps the tokens as cookies.
async fn sso_callback(Path(provider): Path<String>, request: Request) -> Response {
    let Some(portal) = request.extensions().get::<Arc<Portal>>().cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = request.uri().query().unwrap_or_default();
    let url = format!(
        "{}/v1/auth/sso/{}/callback?{query}",
        portal.config.auth_url.trim_end_matches('/'),
        crate::api::encode(&provider)
    );
    let mut call = portal.http.get(url);
    let cookies = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if let Some(key) = cookies
        .into_iter()
        .find_map(|c| cookie_value(c, SSO_BROWSER_COOKIE))
    {
        call = call.header(header::COOKIE, format!("{SSO_BROWSER_COOKIE}={key}"));
    }
    let reply = call.send().await;
    let tokens = match reply {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
        _ => None,
    };
    let Some(tokens) = tokens else {
        return Redirect::to("/login?error=sso").into_response();
    };
    let mut response = Redirect::to("/dashboard").into_response();
    let mut spent = format!("{SSO_BROWSER_COOKIE}=; Path=/v1/auth/sso; Max-Age=0; HttpOnly");
    if portal.config.secure_cookies() {
        spent.push_str("; Secure");
    }
    let cookies = session_cookies(&tokens, portal.config.secure_cookies());
    for c in cookies.into_iter().chain([spent]) {
        if let Ok(value) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode() {
        let pairs = form_pairs(b"message=Hello+there%21&csrf=abc&empty=");
        assert_eq!(
            pairs,
            [
                ("message".into(), "Hello there!".into()),
                ("csrf".into(), "abc".into()),
                ("empty".into(), String::new())
            ]
        );
    }

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
    fn cookies_are_http_only_lax_and_secure_over_tls() {
        let c = cookie(ACCESS_COOKIE, "t", 60, true, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        let c = cookie(CSRF_COOKIE, "t", 60, false, false);
        assert!(!c.contains("HttpOnly") && !c.contains("Secure"));
    }
}
