//! The layers around every service's routes: `/metrics` with request metrics, request ids, a
//! tracing span per request, and the edge limits of the public services.

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::metrics::HttpMetrics;

/// Adds `/metrics` (from `metrics`' registry), request metrics, request ids and a span per
/// request carrying the route template and the request id.
pub(super) fn with_metrics_and_tracing(
    service: &'static str,
    metrics: HttpMetrics,
    router: Router,
) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(move |request: &Request| {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            service,
            method = %request.method(),
            route = route.unwrap_or("unmatched"),
            request_id,
            trace_id = trace_id(request),
            tenant = tracing::field::Empty,
        )
    });
    metrics
        .instrument(router)
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The edge protections of the public services: a body-size limit (uploads set their own),
/// a request timeout (408), security headers, and CORS for the portal's origin only.
pub(super) fn with_edge_limits(router: Router, config: &Config) -> anyhow::Result<Router> {
    use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    use tower_http::timeout::TimeoutLayer;

    let origin = HeaderValue::from_str(config.portal_origin.trim_end_matches('/'))
        .context("BRAIN_PORTAL_ORIGIN is not a valid origin")?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::exact(origin))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    let router = router
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ));
    Ok(with_security_headers(router, "no-referrer").layer(cors))
}

/// The edge protections of the portal: every request body bounded (uploads by
/// `BRAIN_MAX_UPLOAD_BYTES`, the rest by `BRAIN_MAX_BODY_BYTES`, also for Leptos server
/// functions, which read bodies themselves), the request timeout (408) and security headers.
/// Pages set their own Content-Security-Policy, with the nonce of their inline scripts.
pub(super) fn with_portal_limits(router: Router, config: &Config) -> Router {
    use axum::http::StatusCode;
    use tower_http::timeout::TimeoutLayer;

    let limits = (config.max_body_bytes, config.max_upload_bytes);
    let router = router
        .layer(axum::middleware::from_fn(move |request, next| {
            limit_body(limits, request, next)
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ));
    with_security_headers(router, "same-origin")
}

/// Refuses a body declared larger than its route's limit, and cuts off one that grows past it.
async fn limit_body(
    (body_limit, upload_limit): (usize, usize),
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let limit = if request.uri().path().ends_with("/upload") {
        upload_limit
    } else {
        body_limit
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

/// `nosniff`, no framing, the referrer policy, and a deny-all Content-Security-Policy for
/// responses that bring none of their own.
fn with_security_headers(mut router: Router, referrer: &'static str) -> Router {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;

    let headers: [(HeaderName, &'static str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, referrer),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

/// The W3C `traceparent` trace id when the caller sent one, else the request id, so log
/// lines of one request always share a trace id.
fn trace_id(request: &Request) -> String {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    header("traceparent")
        .and_then(|tp| tp.split('-').nth(1))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .or_else(|| header("x-request-id"))
        .unwrap_or_default()
        .to_owned()
}
