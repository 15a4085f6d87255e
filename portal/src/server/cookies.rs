//! The portal's cookies as they go out (`Set-Cookie` values and the one writer that adds
//! them to a response) and as they come in (all `Cookie` headers as one).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde_json::Value;

use crate::session::{ACCESS_COOKIE, REFRESH_COOKIE};

/// A `Set-Cookie` value: HttpOnly unless the page must read it, SameSite=Lax, Secure over TLS.
pub(super) fn cookie(
    name: &str,
    value: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> String {
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

pub(super) fn cleared_session_cookies(secure: bool) -> Vec<String> {
    vec![
        cookie(ACCESS_COOKIE, "", 0, true, secure),
        cookie(REFRESH_COOKIE, "", 0, true, secure),
    ]
}

/// Sets `cookies` on `response`, one `Set-Cookie` header each.
pub(super) fn append_cookies(response: &mut Response, cookies: impl IntoIterator<Item = String>) {
    for c in cookies {
        if let Ok(value) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// All the request's `Cookie` headers as one.
pub(super) fn request_cookies(headers: &HeaderMap) -> String {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::CSRF_COOKIE;

    #[test]
    fn cookies_are_http_only_lax_and_secure_over_tls() {
        let c = cookie(ACCESS_COOKIE, "t", 60, true, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        let c = cookie(CSRF_COOKIE, "t", 60, false, false);
        assert!(!c.contains("HttpOnly") && !c.contains("Secure"));
    }

    #[test]
    fn one_cookie_writer_sets_each_cookie_once() {
        let mut response = Response::new(axum::body::Body::empty());
        append_cookies(&mut response, cleared_session_cookies(true));
        let set: Vec<_> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .collect();
        assert_eq!(set.len(), 2);
        assert!(
            set[0]
                .to_str()
                .is_ok_and(|c| c.starts_with("brain_access=;"))
        );
    }
}
