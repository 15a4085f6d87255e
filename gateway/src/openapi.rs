//! `GET /openapi.json` and `GET /docs`: the API describes itself.
//!
//! The document is generated from the handlers: every v1 route is registered through
//! `utoipa_axum`'s `OpenApiRouter` with its `#[utoipa::path]` (method, path, parameters, the
//! request and response types, which derive `ToSchema`), so a route cannot be served without
//! being described. This module adds what is the same for every operation: the title, the two
//! ways to authenticate, the error body with the whole error-code catalogue, and the error
//! answer every operation may give. The auth service's routes (served on their own port) are
//! included with that port as their server.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

use crate::error::Code;

/// The finished document, served as it is.
#[derive(Clone)]
pub struct ApiDocument(pub std::sync::Arc<Value>);

/// The gateway's document: its own operations and the auth service's (at `auth_url`), with
/// the shared parts filled in.
pub fn document(
    gateway: OpenApi,
    auth: OpenApi,
    auth_url: &str,
) -> Result<Value, serde_json::Error> {
    let mut doc = serde_json::to_value(&gateway)?;
    let auth = serde_json::to_value(&auth)?;
    doc["info"] = json!({
        "title": "Brain API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Agents, chat, durable tasks, crews, knowledge, connectors and \
            automation of one tenant. Every request carries `Authorization: Bearer` with an \
            access token from the auth service or an API key (`bk_…`); the tenant is the \
            token's. Errors are `{\"error\": {\"code\", \"message\"}}` with the status the \
            code names (see the `Error` schema for every code).",
    });
    if let Some(paths) = auth.get("paths").and_then(Value::as_object) {
        let servers = json!([{ "url": auth_url, "description": "the auth service" }]);
        for (path, item) in paths {
            let mut item = item.clone();
            item["servers"] = servers.clone();
            doc["paths"][path] = item;
        }
    }
    for (path, item) in infrastructure().into_iter().chain(protocols()) {
        doc["paths"][path] = item;
    }
    merge_schemas(&mut doc, &auth);
    add_shared_components(&mut doc);
    Ok(doc)
}

/// The protocol endpoints: MCP and A2A speak JSON-RPC, described by their specifications.
fn protocols() -> Vec<(&'static str, Value)> {
    let slugs = json!([
        { "name": "tenant", "in": "path", "required": true, "schema": { "type": "string" },
          "description": "The tenant's slug" },
        { "name": "agent", "in": "path", "required": true, "schema": { "type": "string" },
          "description": "The published agent's slug" },
    ]);
    let rpc = |id: &str, summary: &str| {
        json!({ "post": {
            "tags": ["protocols"], "summary": summary, "operationId": id,
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "type": "object", "description": "A JSON-RPC 2.0 request" } } } },
            "responses": { "200": {
                "description": "A JSON-RPC 2.0 answer (or, when streaming, an SSE stream of them)",
                "content": { "application/json": { "schema": { "type": "object" } } },
            } },
        } })
    };
    let mut a2a = rpc(
        "a2a_rpc",
        "A2A 1.0 JSON-RPC of a published agent: SendMessage, SendStreamingMessage, GetTask, \
         CancelTask (a bearer token or API key of its tenant).",
    );
    a2a["post"]["parameters"] = slugs.clone();
    vec![
        (
            "/mcp",
            rpc(
                "mcp",
                "MCP over streamable HTTP (stateless): the caller's agents as `ask_<slug>`, \
                 `knowledge_search` and `task_status`.",
            ),
        ),
        ("/a2a/{tenant}/{agent}", a2a),
        (
            "/a2a/{tenant}/{agent}/.well-known/agent-card.json",
            json!({ "get": {
                "tags": ["protocols"], "operationId": "a2a_card", "security": [],
                "summary": "The A2A agent card of a published agent (no token needed).",
                "parameters": slugs,
                "responses": { "200": { "description": "The agent card",
                    "content": { "application/json": { "schema": { "type": "object" } } } } },
            } }),
        ),
    ]
}

/// The routes every service has besides its API (each of Brain's HTTP services answers
/// `/healthz` and `/metrics`); none needs a token.
fn infrastructure() -> Vec<(&'static str, Value)> {
    let plain = |tag: &str, id: &str, summary: &str, content_type: &str| {
        json!({ "get": {
            "tags": [tag], "summary": summary, "operationId": id,
            "security": [],
            "responses": { "200": {
                "description": summary,
                "content": { content_type: { "schema": { "type": "string" } } },
            } },
        } })
    };
    vec![
        (
            "/healthz",
            plain("health", "healthz", "The process is up.", "text/plain"),
        ),
        (
            "/readyz",
            plain(
                "health",
                "readyz",
                "Postgres, Redis, Vault and Temporal answer (503 with the failing checks if not).",
                "application/json",
            ),
        ),
        (
            "/metrics",
            plain(
                "health",
                "metrics",
                "Prometheus metrics of this service.",
                "text/plain",
            ),
        ),
        (
            "/openapi.json",
            plain(
                "docs",
                "openapi",
                "This document (OpenAPI 3.1).",
                "application/json",
            ),
        ),
        (
            "/docs",
            plain(
                "docs",
                "docs",
                "The API reference (Swagger UI over this document).",
                "text/html",
            ),
        ),
        (
            "/docs/assets/{file}",
            json!({ "get": {
                "tags": ["docs"], "summary": "A file of the reference's viewer (Swagger UI).",
                "operationId": "docs_asset",
                "security": [],
                "parameters": [{ "name": "file", "in": "path", "required": true,
                    "schema": { "type": "string" },
                    "description": "`docs.js`, `swagger-ui.css` or `swagger-ui-bundle.js`" }],
                "responses": { "200": { "description": "A file of the reference's viewer." } },
            } }),
        ),
    ]
}

/// Schemas the auth service's operations refer to.
fn merge_schemas(doc: &mut Value, auth: &Value) {
    if let Some(schemas) = auth
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            doc["components"]["schemas"][name] = schema.clone();
        }
    }
}

/// The security schemes, the error body and the error answer of every operation.
fn add_shared_components(doc: &mut Value) {
    let components = &mut doc["components"];
    components["securitySchemes"] = json!({
        "access_token": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An access token from `POST /v1/auth/login` (auth service).",
        },
        "api_key": {
            "type": "http", "scheme": "bearer",
            "description": "An API key (`bk_…`) from `POST /v1/integrations/api-keys`, \
                limited to its scopes.",
        },
    });
    components["schemas"]["Error"] = error_schema();
    components["responses"]["Error"] = json!({
        "description": "The request failed; `error.code` says why (see the `Error` schema).",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    });
    doc["security"] = json!([{ "access_token": [] }, { "api_key": [] }]);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !is_method(method) {
                continue;
            }
            let responses = operation["responses"]
                .as_object_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            let mut responses: Map<String, Value> = responses;
            responses
                .entry("default")
                .or_insert_with(|| json!({ "$ref": "#/components/responses/Error" }));
            operation["responses"] = Value::Object(responses);
        }
    }
}

fn is_method(key: &str) -> bool {
    matches!(
        key,
        "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
    )
}

/// `{"error": {"code", "message"}}`, with every code of the catalogue and its status.
fn error_schema() -> Value {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let table: String = Code::ALL
        .iter()
        .map(|c| format!("* `{}` ({}): {}\n", c.as_str(), c.status(), c.description()))
        .collect();
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": codes,
                        "description": format!("The error code and the status it comes with:\n\n{table}"),
                    },
                    "message": { "type": "string", "description": "A sentence for people." },
                },
            },
        },
    })
}

/// `GET /openapi.json`.
pub async fn openapi_json(State(doc): State<ApiDocument>) -> Response {
    Json(doc.0.as_ref().clone()).into_response()
}

/// The Swagger UI files `cargo xtask` puts into `<portal site>/docs/` (from npm's
/// `swagger-ui-dist`); the page below loads them from `/docs/assets/…`, never from a CDN.
pub const DOCS_ASSETS: &[(&str, &str)] = &[
    ("swagger-ui.css", "text/css"),
    ("swagger-ui-bundle.js", "text/javascript"),
];

/// What the docs page may load: its own scripts and styles (Swagger UI sets inline styles and
/// inline SVG images) and `/openapi.json`; nothing from elsewhere.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// `GET /docs`: Swagger UI over `/openapi.json`.
pub async fn docs_page() -> Response {
    (
        [(header::CONTENT_SECURITY_POLICY, DOCS_POLICY)],
        Html(include_str!("openapi/docs.html")),
    )
        .into_response()
}

/// `GET /docs/assets/{file}`: the page's start script, or one of [`DOCS_ASSETS`] from `dir`.
pub async fn docs_asset(
    State(dir): State<std::sync::Arc<std::path::PathBuf>>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    if file == "docs.js" {
        return (
            [(header::CONTENT_TYPE, "text/javascript")],
            include_str!("openapi/docs.js"),
        )
            .into_response();
    }
    let Some((name, content_type)) = DOCS_ASSETS.iter().find(|(name, _)| *name == file) else {
        return crate::error::ApiError::new(Code::NotFound, "no such file").into_response();
    };
    match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => crate::error::ApiError::new(
            Code::NotFound,
            "the API docs' assets are not installed (`cargo xtask portal` installs them)",
        )
        .into_response(),
    }
}
