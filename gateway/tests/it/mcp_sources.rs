//! Tool sources beyond the happy path: a server that changes its tools mid-session
//! (`notifications/tools/list_changed`), and registrations Brain refuses with a clear error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fakes::serve;
use crate::harness::{get, post, send, signup};
use crate::mcp::{agent, app, chat, grant};

fn tool(name: &str) -> Value {
    json!({"name": name, "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}})
}

/// An MCP server whose tool `grow` adds a tool `fresh`: the call's answer (an SSE stream, as
/// streamable HTTP allows) carries `notifications/tools/list_changed` before the result.
async fn growing(State(grown): State<Arc<AtomicBool>>, Json(message): Json<Value>) -> Response {
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let session = ("mcp-session-id", "growing-session");
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => json!({"protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {"listChanged": true}},
            "serverInfo": {"name": "growing", "version": "1"}}),
        "tools/list" if grown.load(Ordering::SeqCst) => {
            json!({"tools": [tool("grow"), tool("fresh")]})
        }
        "tools/list" => json!({"tools": [tool("grow")]}),
        "tools/call" => {
            grown.store(true, Ordering::SeqCst);
            let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
            let answer = json!({"jsonrpc": "2.0", "id": id,
                "result": {"content": [{"type": "text", "text": "grown"}]}});
            let body =
                format!("event: message\ndata: {note}\n\nevent: message\ndata: {answer}\n\n");
            return ([("content-type", "text/event-stream"), session], body).into_response();
        }
        _ => json!({}),
    };
    (
        [session],
        Json(json!({"jsonrpc": "2.0", "id": id, "result": result})),
    )
        .into_response()
}

#[tokio::test]
async fn a_server_announcing_new_tools_is_listed_again_and_its_new_tool_offered() {
    let grown = Arc::new(AtomicBool::new(false));
    let router = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(growing).get(|| async { StatusCode::METHOD_NOT_ALLOWED }),
        )
        .with_state(Arc::clone(&grown));
    let url = format!("{}/mcp", serve(router).await);
    let (app, seen) = app(|_| {}).await;
    let acme = signup(&app, "Acme").await;
    let token = acme.token.as_str();
    let created = post(
        &app.gateway,
        "/v1/integrations/mcp-servers",
        Some(token),
        json!({"name": "Growing", "slug": "growing", "url": url}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["tools"].as_array().unwrap().len(), 1);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let helper = agent(&app, token, "helper").await;
    let granted = grant(
        &app,
        token,
        &helper,
        json!([{"mcp_server": "growing", "tools": ["*"]}]),
    )
    .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);

    let grew = chat(&app, token, &helper, "call mcp_growing__grow {}").await;
    assert_eq!(grew["tool_calls"][0]["status"], "ok", "{grew}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let names = loop {
        let shown = get(
            &app.gateway,
            &format!("/v1/integrations/mcp-servers/{id}"),
            Some(token),
        )
        .await;
        let names: Vec<String> = shown.body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        if names.len() == 2 || Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(names, ["grow", "fresh"]);
    // The next turn offers the new tool (the grant names every tool).
    chat(&app, token, &helper, "hello").await;
    let offered = seen.lock().unwrap().last().unwrap()["tools"].clone();
    assert!(
        offered.to_string().contains("mcp_growing__fresh"),
        "{offered}"
    );
}

#[tokio::test]
async fn registrations_with_bad_input_get_clear_errors_and_keep_nothing() {
    let (app, _) = app(|_| {}).await;
    let acme = signup(&app, "Acme").await;
    let token = acme.token.as_str();
    for kind in ["mcp-servers", "a2a-agents"] {
        let uri = format!("/v1/integrations/{kind}");
        let bad_slug = post(
            &app.gateway,
            &uri,
            Some(token),
            json!({"name": "X", "slug": "Bad Slug!", "url": "http://127.0.0.1:9/mcp"}),
        )
        .await;
        assert_eq!(
            bad_slug.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            bad_slug.body
        );
        assert!(
            bad_slug.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("slug"),
            "{}",
            bad_slug.body
        );
        let unknown = post(
            &app.gateway,
            &uri,
            Some(token),
            json!({"name": "X", "slug": "x", "url": "http://127.0.0.1:9/mcp", "protocol": "a2a"}),
        )
        .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
        assert!(
            unknown
                .body
                .to_string()
                .contains("unknown field `protocol`"),
            "{}",
            unknown.body
        );
        let request = axum::http::Request::post(&uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{\"name\": "))
            .unwrap();
        let malformed = send(&app.gateway, request).await;
        assert_eq!(
            malformed.status,
            StatusCode::BAD_REQUEST,
            "{}",
            malformed.body
        );
        let unreachable = post(
            &app.gateway,
            &uri,
            Some(token),
            json!({"name": "X", "slug": "x", "url": "http://127.0.0.1:9/mcp"}),
        )
        .await;
        assert!(unreachable.status.is_client_error() || unreachable.status.is_server_error());
        assert!(
            unreachable.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x"),
            "{}",
            unreachable.body
        );
        let listed = get(&app.gateway, &uri, Some(token)).await;
        assert_eq!(listed.body, json!([]), "{kind}");
    }
    // A JSON document that is not an agent card is not an A2A agent.
    let not_a_card = format!(
        "{}/card.json",
        serve(axum::Router::new().route(
            "/card.json",
            axum::routing::get(|| async { Json(json!({"hello": 1})) })
        ))
        .await
    );
    let refused = post(
        &app.gateway,
        "/v1/integrations/a2a-agents",
        Some(token),
        json!({"name": "X", "slug": "x", "url": not_a_card}),
    )
    .await;
    // The remote answered something Brain cannot read: 502, naming what was wrong.
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("card"),
        "{}",
        refused.body
    );
}
