//! Single sign-on: on to the auth service (which sends the browser to the identity
//! provider), and back from the provider with tokens kept as cookies.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::cookies::{append_cookies, request_cookies, session_cookies};
use crate::api::Portal;
use crate::session::cookie_value;

/// `GET /login/sso/{provider}`: on to the auth service, which redirects to the provider.
pub(super) async fn sso_start(
    Path(provider): Path<String>,
    State(portal): State<Arc<Portal>>,
) -> Response {
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
    // The auth service's cookie binds the login to this browser: pass it on as it came.
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
pub(super) async fn sso_callback(
    Path(provider): Path<String>,
    State(portal): State<Arc<Portal>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let url = format!(
        "{}/v1/auth/sso/{}/callback?{}",
        portal.config.auth_url.trim_end_matches('/'),
        crate::api::encode(&provider),
        query.unwrap_or_default()
    );
    let mut call = portal.http.get(url);
    if let Some(key) = cookie_value(&request_cookies(&headers), SSO_BROWSER_COOKIE) {
        call = call.header(header::COOKIE, format!("{SSO_BROWSER_COOKIE}={key}"));
    }
    let tokens = match call.send().await {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
        _ => None,
    };
    let Some(tokens) = tokens else {
        return Redirect::to("/login?error=sso").into_response();
    };
    let secure = portal.config.secure_cookies();
    let mut spent = format!("{SSO_BROWSER_COOKIE}=; Path=/v1/auth/sso; Max-Age=0; HttpOnly");
    if secure {
        spent.push_str("; Secure");
    }
    let mut response = Redirect::to("/dashboard").into_response();
    append_cookies(
        &mut response,
        session_cookies(&tokens, secure).into_iter().chain([spent]),
    );
    response
}
