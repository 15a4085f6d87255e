//! The portal's HTTP server: the Leptos pages and server functions, the browser bundle and
//! stylesheet, and the few plain routes a Leptos page cannot be (sign-out, the chat and task
//! event stream proxies, uploads, SSO). A layer in front of all of them keeps the session: it reads the
//! token cookies, refreshes an expiring access token with the auth service, mints the CSRF
//! cookie, refuses cross-origin writes and sends signed-out visitors to the login page.

mod assets;
mod cookies;
mod relay;
mod session;
mod sso;
mod upload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::response::Redirect;
use axum::routing::{get, post};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::api::Portal;

pub(crate) use cookies::session_cookies;

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

/// The router's state: what Leptos needs to render, and the portal itself for the plain
/// routes. (Leptos server functions cannot take axum state; they find the portal in the
/// request extensions the session layer fills.)
#[derive(Clone)]
struct PortalState {
    options: LeptosOptions,
    portal: Arc<Portal>,
}

impl FromRef<PortalState> for LeptosOptions {
    fn from_ref(state: &PortalState) -> Self {
        state.options.clone()
    }
}

impl FromRef<PortalState> for Arc<Portal> {
    fn from_ref(state: &PortalState) -> Self {
        state.portal.clone()
    }
}

/// The largest chat message a browser without JavaScript may post.
const CHAT_FORM_LIMIT: usize = 256 * 1024;
/// The sign-out form carries only its CSRF token.
const LOGOUT_FORM_LIMIT: usize = 64 * 1024;

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
    let state = PortalState {
        options: options.clone(),
        portal: portal.clone(),
    };
    let routes = generate_route_list(crate::app::App);
    let shell_options = options.clone();
    let fallback_options = options;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/style.css", get(assets::stylesheet))
        .route("/favicon.svg", get(assets::favicon))
        .route("/favicon.ico", get(assets::favicon))
        .route("/pkg/{file}", get(assets::bundle_file))
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route(
            "/logout",
            post(session::logout).layer(DefaultBodyLimit::max(LOGOUT_FORM_LIMIT)),
        )
        .route("/login/sso/{provider}", get(sso::sso_start))
        .route("/v1/auth/sso/{provider}/callback", get(sso::sso_callback))
        .route("/dashboard/chat/{agent}/stream", post(relay::chat_stream))
        .route(
            "/dashboard/chat/{agent}/send",
            post(relay::chat_send).layer(DefaultBodyLimit::max(CHAT_FORM_LIMIT)),
        )
        .route("/dashboard/agents/{agent}/upload", post(upload::upload))
        .route("/dashboard/tasks/{task}/events", get(relay::task_events))
        .leptos_routes(&state, routes, move || {
            crate::app::shell(shell_options.clone())
        })
        .fallback(leptos_axum::render_app_to_stream(move || {
            crate::app::shell(fallback_options.clone())
        }))
        .layer(axum::middleware::from_fn_with_state(
            portal,
            session::session_layer,
        ))
        .with_state(state)
}
