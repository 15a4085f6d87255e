//! The agents API over the real runtime, with an OpenAI-compatible model server faked in its
//! wire format (streamed chat completions).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, call, get, post};

const REPLY: [&str; 4] = ["Hello", " from", " the", " analyst."];

/// An OpenAI-compatible server that streams `REPLY` for every chat completion.
async fn model_server() -> MockServer {
    let server = MockServer::start().await;
    let mut body = String::new();
    for piece in REPLY {
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    let last = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 4, "total_tokens": 46}});
    body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_raw(body, "text/event-stream"),
        )
        .mount(&server)
        .await;
    server
}

async fn app_with_model() -> (TestApp, MockServer) {
    let server = model_server().await;
    let base = format!("{}/v1", server.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
    })
    .await;
    (app, server)
}

pub(crate) async fn owner(app: &TestApp, name: &str) -> String {
    let email = format!("owner-{}@agents.test", uuid::Uuid::new_v4().simple());
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": "correct horse battery staple"}),
    )
    .await;
    reply.body["access_token"].as_str().unwrap().to_owned()
}

pub(crate) fn analyst() -> Value {
    json!({"name": "Analyst", "slug": "analyst", "role": "Data Analyst",
           "goal": "Explain the numbers", "temperature": 0.2, "model": "openai:gpt-4o-mini",
           "max_tokens": 64})
}

/// Reads an SSE body into (event, data) pairs.
async fn sse(app: &TestApp, uri: &str, token: &str, body: Value) -> Vec<(String, String)> {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.gateway.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, data)
        })
        .collect()
}

#[tokio::test]
async fn agents_are_created_validated_updated_and_listed() {
    let (app, _server) = app_with_model().await;
    let token = owner(&app, "Agents").await;
    let created = post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["version"], 1);
    let id = created.body["id"].as_str().unwrap().to_owned();

    for (change, field) in [
        (json!({"temperature": 3.7}), "temperature"),
        (json!({"role": ""}), "role"),
        (json!({"model": "nosuch:model"}), "model"),
        (
            json!({"tools": [{"connector": "myspace", "actions": ["*"]}]}),
            "tools",
        ),
    ] {
        let mut body = analyst();
        body["slug"] = json!(format!("a-{}", uuid::Uuid::new_v4().simple()));
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = post(&app.gateway, "/v1/agents", Some(&token), body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            reply.body
        );
    }
    let duplicate = post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);

    let patched = call(
        &app.gateway,
        Method::PATCH,
        &format!("/v1/agents/{id}"),
        Some(&token),
        Some(json!({"temperature": 0.9, "backstory": "Ten years in ad tech."})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["version"], 2);
    let shown = get(&app.gateway, &format!("/v1/agents/{id}"), Some(&token)).await;
    assert!((shown.body["temperature"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(shown.body["status"], "active");

    let grants = call(
        &app.gateway,
        Method::PUT,
        &format!("/v1/agents/{id}/tools"),
        Some(&token),
        Some(json!([{"connector": "wordpress", "actions": ["create_post"], "approval": "always"}])),
    )
    .await;
    assert_eq!(grants.status, StatusCode::OK, "{}", grants.body);
    assert_eq!(grants.body["tools"][0]["connector"], "wordpress");
    assert_eq!(grants.body["version"], 3);

    // Every agent write takes `If-Match: <version>`: a stale one is a conflict and changes
    // nothing, the current one goes through.
    let put_if = |what: &str, version: &str, body: Value| {
        Request::builder()
            .method(Method::PUT)
            .uri(format!("/v1/agents/{id}/{what}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("if-match", version)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let stale = crate::harness::send(&app.gateway, put_if("tools", "\"2\"", json!([]))).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(stale.body["error"]["code"], "version_conflict");
    let stale = crate::harness::send(&app.gateway, put_if("delegates", "1", json!([]))).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    let shown = get(&app.gateway, &format!("/v1/agents/{id}"), Some(&token)).await;
    assert_eq!(shown.body["version"], 3);
    assert_eq!(shown.body["tools"][0]["connector"], "wordpress");
    let tools =
        json!([{"connector": "wordpress", "actions": ["create_post"], "approval": "always"}]);
    let current = crate::harness::send(&app.gateway, put_if("tools", "3", tools)).await;
    assert_eq!(current.status, StatusCode::OK, "{}", current.body);
    assert_eq!(current.body["version"], 4);

    let listed = get(&app.gateway, "/v1/agents", Some(&token)).await;
    assert_eq!(listed.body["agents"].as_array().unwrap().len(), 1);
    let models = get(&app.gateway, "/v1/models", Some(&token)).await;
    assert_eq!(models.body["data"][0]["id"], "agent:analyst");

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events ORDER BY at")
        .fetch_all(&app.db.owner)
        .await
        .unwrap();
    for expected in ["agent.create", "agent.update", "tool.grant"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} not audited: {actions:?}"
        );
    }

    let deleted = call(
        &app.gateway,
        Method::DELETE,
        &format!("/v1/agents/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app.gateway, &format!("/v1/agents/{id}"), Some(&token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn chat_answers_in_json_and_as_server_sent_events_and_keeps_the_conversation() {
    let (app, server) = app_with_model().await;
    let token = owner(&app, "Chat").await;
    let created = post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    let reply = post(
        &app.gateway,
        &format!("/v1/agents/{id}/chat"),
        Some(&token),
        json!({"message": "How did we do?"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["reply"], REPLY.concat());
    assert_eq!(reply.body["usage"]["prompt_tokens"], 42);
    assert_eq!(reply.body["tool_calls"], json!([]));
    let conversation = reply.body["conversation_id"].as_str().unwrap().to_owned();

    // The model saw the agent's settings.
    let requests = server.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert!((sent["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    assert!(
        sent["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Data Analyst")
    );

    let events = sse(
        &app,
        &format!("/v1/agents/{id}/chat"),
        &token,
        json!({"message": "And now?", "conversation_id": conversation}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        ["token", "token", "token", "token", "done"],
        "{events:?}"
    );
    let tokens: String = events[..4]
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tokens, REPLY.concat());
    let done: Value = serde_json::from_str(&events[4].1).unwrap();
    assert_eq!(done["conversation_id"], conversation.as_str());

    let conversations = get(
        &app.gateway,
        &format!("/v1/agents/{id}/conversations"),
        Some(&token),
    )
    .await;
    assert_eq!(
        conversations.body["conversations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let messages = get(
        &app.gateway,
        &format!("/v1/conversations/{conversation}/messages"),
        Some(&token),
    )
    .await;
    let roles: Vec<&str> = messages.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);

    let empty = post(
        &app.gateway,
        &format!("/v1/agents/{id}/chat"),
        Some(&token),
        json!({"message": "  "}),
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_openai_compatible_endpoint_talks_to_an_agent() {
    let (app, _server) = app_with_model().await;
    let token = owner(&app, "Compat").await;
    post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    let request = json!({"model": "agent:analyst", "messages": [
        {"role": "system", "content": "ignored: the agent has its own instructions"},
        {"role": "user", "content": [{"type": "text", "text": "Summarise the week"}]}]});
    let reply = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        request.clone(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["object"], "chat.completion");
    assert_eq!(reply.body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        reply.body["choices"][0]["message"]["content"],
        REPLY.concat()
    );
    assert_eq!(reply.body["usage"]["total_tokens"], 46);

    let mut streaming = request;
    streaming["stream"] = json!(true);
    let events = sse(&app, "/v1/chat/completions", &token, streaming).await;
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let text: String = events[..events.len() - 1]
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, REPLY.concat());

    let unknown = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        json!({"model": "agent:nobody", "messages": []}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let not_agent = post(
        &app.gateway,
        "/v1/chat/completions",
        Some(&token),
        json!({"model": "gpt-4o", "messages": []}),
    )
    .await;
    assert_eq!(not_agent.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_tenants_and_viewers_are_kept_out() {
    let (app, _server) = app_with_model().await;
    let token = owner(&app, "Mine").await;
    let other = owner(&app, "Theirs").await;
    let created = post(&app.gateway, "/v1/agents", Some(&token), analyst()).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    for (method, uri, body) in [
        (Method::GET, format!("/v1/agents/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/agents/{id}"),
            Some(json!({"goal": "hijacked"})),
        ),
        (Method::DELETE, format!("/v1/agents/{id}"), None),
        (
            Method::POST,
            format!("/v1/agents/{id}/chat"),
            Some(json!({"message": "hi"})),
        ),
        (Method::GET, format!("/v1/agents/{id}/conversations"), None),
    ] {
        let reply = call(&app.gateway, method.clone(), &uri, Some(&other), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            reply.body
        );
    }
    let mine = get(&app.gateway, &format!("/v1/agents/{id}"), Some(&token)).await;
    assert_eq!(mine.body["goal"], "Explain the numbers");

    let viewer_email = format!("viewer-{}@agents.test", uuid::Uuid::new_v4().simple());
    let me = get(&app.auth, "/v1/auth/me", Some(&token)).await;
    let tenant_slug = me.body["tenant"]["slug"].as_str().unwrap().to_owned();
    post(&app.auth, "/v1/users", Some(&token), json!({"email": viewer_email, "role": "viewer", "password": "correct horse battery staple"})).await;
    let login = post(&app.auth, "/v1/auth/login", None, json!({"email": viewer_email, "password": "correct horse battery staple", "tenant": tenant_slug})).await;
    let viewer = login.body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&app.gateway, "/v1/agents", Some(viewer)).await.status,
        StatusCode::OK
    );
    let create = post(&app.gateway, "/v1/agents", Some(viewer), analyst()).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    let chat = post(
        &app.gateway,
        &format!("/v1/agents/{id}/chat"),
        Some(viewer),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(chat.status, StatusCode::FORBIDDEN);
}
