//! The browser session: the user's tokens in HttpOnly cookies, and the CSRF token that every
//! state-changing form carries back (double submit: a cookie the page can read, and the same
//! value in the form; a cross-site page can set neither).

/// The access token (a JWT for the gateway), HttpOnly.
pub const ACCESS_COOKIE: &str = "brain_access";
/// The refresh token (opaque, for the auth service), HttpOnly.
pub const REFRESH_COOKIE: &str = "brain_refresh";
/// The CSRF token; readable by the page's script so the hydrated app sends it too.
pub const CSRF_COOKIE: &str = "brain_csrf";

/// The CSRF token this page's forms carry.
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CsrfToken>().map(|t| t.0.clone()))
            .unwrap_or_default()
    }
    #[cfg(all(not(feature = "ssr"), feature = "hydrate"))]
    {
        use wasm_bindgen::JsCast;
        let cookies = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
            .and_then(|d| d.cookie().ok())
            .unwrap_or_default();
        cookie_value(&cookies, CSRF_COOKIE).unwrap_or_default()
    }
    #[cfg(all(not(feature = "ssr"), not(feature = "hydrate")))]
    {
        String::new()
    }
}

/// The request's CSRF token (from its cookie, or freshly minted), as a request extension.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let header = "a=1; brain_csrf_old=x; brain_csrf=tok; b=2";
        assert_eq!(cookie_value(header, CSRF_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie_value(header, "missing"), None);
    }
}
