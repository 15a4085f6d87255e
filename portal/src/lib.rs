//! The portal: Brain's web UI on :3003. It is a client of the gateway and the auth service
//! over their public HTTP APIs, never of the database.
//!
//! For now it serves a placeholder page; the Leptos control plane replaces it.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The portal's routes. `gateway_url` is where the browser-facing pages send API calls.
pub fn router(gateway_url: &str) -> Router {
    let page = placeholder_page(gateway_url);
    Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/healthz", get(|| async { "ok" }))
}

fn placeholder_page(gateway_url: &str) -> String {
    let gateway = html_escape(gateway_url);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Brain</title></head><body><main>\
         <h1>Brain</h1><p>The portal is being built. The API is served at \
         <a href=\"{gateway}/docs\">{gateway}</a>.</p></main></body></html>"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_escapes_the_gateway_url() {
        let page = placeholder_page("http://x/\"><script>");
        assert!(!page.contains("<script>"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
    }
}
