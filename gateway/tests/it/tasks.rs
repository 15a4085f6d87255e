//! Durable work through the API, with a Temporal worker as `brain serve` runs it: agent tasks
//! (idempotency, steps, approvals, signed callbacks), automation rules, inbound webhooks.
//! The model is an OpenAI-compatible fake and the platforms (Shopify, HubSpot) are local fakes
//! speaking their documented wire formats.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::harness::{Reply, TestApp, call, get, member, post, signup};

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn sse(chunks: &[Value]) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

fn text_reply(text: &str) -> String {
    sse(&[
        chunk(json!({"role": "assistant", "content": text}), None),
        chunk(json!({}), Some("stop")),
    ])
}

fn tool_call(name: &str, args: Value) -> String {
    sse(&[
        chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1",
                   "type": "function", "function": {"name": name, "arguments": args.to_string()}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ])
}

/// An OpenAI-compatible model that plays its answers in order (the last one repeats).
struct Script(Vec<String>, AtomicUsize);

impl Respond for Script {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self.1.fetch_add(1, Ordering::SeqCst);
        let body = &self.0[n.min(self.0.len() - 1)];
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/event-stream")
            .set_body_raw(body.clone(), "text/event-stream")
    }
}

struct Setup {
    app: TestApp,
    model: MockServer,
    platform: MockServer,
}

async fn setup(answers: Vec<String>) -> Setup {
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Script(answers, AtomicUsize::new(0)))
        .mount(&model)
        .await;
    let platform = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&platform)
        .await;
    let (model_url, platform_url) = (format!("{}/v1", model.uri()), platform.uri());
    let app = TestApp::with_config(|c| {
        c.openai_base_url = model_url;
        c.openai_api_key = Some(brain_gateway::config::Secret::new("sk-test"));
        c.connector_endpoints = Some(format!("hubspot={platform_url}"));
    })
    .await;
    Setup {
        app,
        model,
        platform,
    }
}

async fn agent(app: &TestApp, token: &str, tools: Value) -> String {
    let reply = post(
        &app.gateway,
        "/v1/agents",
        Some(token),
        json!({"name": "Closer", "role": "Sales assistant", "goal": "Keep the CRM tidy",
               "model": "openai:gpt-4o-mini", "max_tokens": 64, "tools": tools}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn connect_hubspot(app: &TestApp, token: &str) {
    let reply = call(
        &app.gateway,
        Method::PUT,
        "/v1/connectors/hubspot/connection",
        Some(token),
        Some(json!({"credentials": {"access_token": "pat-test"}})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

pub(crate) async fn wait_for(app: &TestApp, token: &str, task: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let reply = get(&app.gateway, &format!("/v1/tasks/{task}"), Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if reply.body["status"] == status {
            return reply.body;
        }
        last = reply.body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task never became {status}: {last:#}");
}

#[tokio::test]
async fn agent_tasks_start_idempotently_finish_and_call_back_signed() {
    let s = setup(vec![text_reply("Summary: all good.")]).await;
    let owner = signup(&s.app, "Tasks Co").await;
    let token = owner.token.as_str();
    let agent = agent(&s.app, token, json!([])).await;
    let callback = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/done"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&callback)
        .await;
    let worker = s.app.worker().await;

    let uri = format!("/v1/agents/{agent}/tasks");
    let body = json!({"input": "Summarise the week", "idempotency_key": "weekly-1",
                      "callback_url": format!("{}/done", callback.uri())});
    let first = post(&s.app.gateway, &uri, Some(token), body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let task = first.body["task_id"].as_str().unwrap().to_owned();
    let secret = first.body["callback_secret"].as_str().unwrap().to_owned();
    // The same key answers the same task (and does not show the secret again).
    let again = post(&s.app.gateway, &uri, Some(token), body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["task_id"], first.body["task_id"]);
    assert!(again.body.get("callback_secret").is_none());
    // … but not for another input.
    let other = post(
        &s.app.gateway,
        &uri,
        Some(token),
        json!({"input": "Something else", "idempotency_key": "weekly-1"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.body["error"]["code"], "idempotency_conflict");

    let done = wait_for(&s.app, token, &task, "succeeded").await;
    assert_eq!(done["output"]["reply"], "Summary: all good.");
    assert_eq!(done["steps"][0]["kind"], "llm");
    assert_eq!(done["steps"][0]["status"], "succeeded");

    // The callback arrives, signed with the secret shown at creation.
    let mut delivered = Vec::new();
    for _ in 0..300 {
        delivered = callback.received_requests().await.unwrap();
        if !delivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.shutdown().await;
    assert_eq!(delivered.len(), 1);
    let request = &delivered[0];
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let timestamp = header("x-brain-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header("x-brain-signature"), format!("sha256={expected}"));
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["task"]["task_id"], task.as_str());
    assert_eq!(payload["task"]["status"], "succeeded");
    let view = get(&s.app.gateway, &format!("/v1/tasks/{task}"), Some(token)).await;
    assert_eq!(view.body["callback_status"], "delivered");
    let listed = get(&s.app.gateway, "/v1/tasks?status=succeeded", Some(token)).await;
    assert_eq!(listed.body["tasks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn task_requests_are_validated_and_scoped() {
    let s = setup(vec![text_reply("ok")]).await;
    let owner = signup(&s.app, "Checks Co").await;
    let token = owner.token.as_str();
    let agent = agent(&s.app, token, json!([])).await;
    let uri = format!("/v1/agents/{agent}/tasks");
    for (body, status, needle) in [
        (
            json!({"input": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "input",
        ),
        (
            json!({"input": "x", "callback_url": "ftp://example.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback_url",
        ),
        (
            json!({"input": "x", "idempotency_key": "has space"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key",
        ),
        (
            json!({"input": "x", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
    ] {
        let reply = post(&s.app.gateway, &uri, Some(token), body).await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            reply.body
        );
    }
    let unknown = post(
        &s.app.gateway,
        &format!("/v1/agents/{}/tasks", uuid::Uuid::new_v4()),
        Some(token),
        json!({"input": "x"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&s.app.db.owner)
        .await
        .unwrap();
    assert_eq!(tasks, 0, "refused requests store nothing");
    // Viewers read, but do not start tasks; other tenants see nothing.
    let viewer = member(&s.app, &owner, "viewer").await;
    let refused = post(&s.app.gateway, &uri, Some(&viewer), json!({"input": "x"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let started = post(&s.app.gateway, &uri, Some(token), json!({"input": "x"})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let task = started.body["task_id"].as_str().unwrap();
    let seen = get(&s.app.gateway, &format!("/v1/tasks/{task}"), Some(&viewer)).await;
    assert_eq!(seen.status, StatusCode::OK);
    let stranger = signup(&s.app, "Other Co").await;
    let hidden = get(
        &s.app.gateway,
        &format!("/v1/tasks/{task}"),
        Some(&stranger.token),
    )
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let bad_query = get(&s.app.gateway, "/v1/tasks?colour=red", Some(token)).await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_query.body["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn a_parked_call_is_approved_through_the_api_by_an_admin_only() {
    let s = setup(vec![
        tool_call(
            "hubspot__create_contact",
            json!({"email": "ada@example.com"}),
        ),
        text_reply("Ada is in."),
    ])
    .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "1"})))
        .mount(&s.platform)
        .await;
    let owner = signup(&s.app, "Approvals Co").await;
    let token = owner.token.as_str();
    connect_hubspot(&s.app, token).await;
    let agent = agent(
        &s.app,
        token,
        json!([{"connector": "hubspot", "actions": ["create_contact"], "approval": "always"}]),
    )
    .await;
    let worker = s.app.worker().await;
    let started = post(
        &s.app.gateway,
        &format!("/v1/agents/{agent}/tasks"),
        Some(token),
        json!({"input": "Add ada@example.com"}),
    )
    .await;
    let task = started.body["task_id"].as_str().unwrap().to_owned();
    let parked = wait_for(&s.app, token, &task, "awaiting_approval").await;
    let step = parked["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "approval")
        .unwrap()
        .clone();
    let call_id = step["call_id"].as_str().unwrap();
    let approve = format!("/v1/tasks/{task}/approvals/{call_id}");

    let editor = member(&s.app, &owner, "editor").await;
    let refused = post(
        &s.app.gateway,
        &approve,
        Some(&editor),
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad = post(
        &s.app.gateway,
        &approve,
        Some(token),
        json!({"decision": "maybe"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = post(
        &s.app.gateway,
        &format!("/v1/tasks/{task}/approvals/nope"),
        Some(token),
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::CONFLICT, "{}", unknown.body);

    let admin = member(&s.app, &owner, "admin").await;
    let ok = post(
        &s.app.gateway,
        &approve,
        Some(&admin),
        json!({"decision": "approve", "note": "looks right"}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.body);
    let done = wait_for(&s.app, token, &task, "succeeded").await;
    worker.shutdown().await;
    let kinds: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["llm", "approval", "tool", "llm"]);
    let audit = get(&s.app.gateway, "/v1/audit?action=task.approve", Some(token)).await;
    assert_eq!(
        audit.body["events"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
    assert_eq!(audit.body["events"][0]["details"]["note"], "looks right");
    let _ = s.model;
}

pub(crate) fn shopify_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A Shopify `orders/create` delivery of `body` to `hook`.
pub(crate) fn shopify_delivery(
    hook: &str,
    signature: &str,
    delivery_id: &str,
    body: &Value,
) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(hook)
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", signature)
        .header("x-shopify-webhook-id", delivery_id)
        .header("x-shopify-triggered-at", chrono::Utc::now().to_rfc3339())
        .header("x-shopify-shop-domain", "demo.myshopify.com")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn deliver(
    app: &TestApp,
    hook: &str,
    signature: &str,
    delivery_id: &str,
    body: &Value,
) -> Reply {
    let request = shopify_delivery(hook, signature, delivery_id, body);
    let response = app.gateway.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers: Default::default(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Counts HubSpot contacts created, and which e-mails.
struct Contacts(Arc<std::sync::Mutex<Vec<String>>>);

impl Respond for Contacts {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let email = body["properties"]["email"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let mut seen = self.0.lock().unwrap();
        seen.push(email.clone());
        ResponseTemplate::new(201)
            .set_body_json(json!({"id": seen.len().to_string(), "properties": {"email": email}}))
    }
}

#[tokio::test]
async fn a_signed_shopify_order_over_100_creates_a_hubspot_contact_once() {
    let s = setup(vec![text_reply("unused")]).await;
    let contacts = Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(Contacts(contacts.clone()))
        .mount(&s.platform)
        .await;
    let owner = signup(&s.app, "Shop Co").await;
    let token = owner.token.as_str();
    connect_hubspot(&s.app, token).await;
    let worker = s.app.worker().await;

    let secret = "shpss_app_secret_for_tests";
    let created = post(
        &s.app.gateway,
        "/v1/integrations/webhooks",
        Some(token),
        json!({"connector": "shopify", "events": ["orders/create"], "secret": secret}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["secret"], secret);
    let hook_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        created.body["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/hooks/{hook_id}"))
    );
    let listed = get(&s.app.gateway, "/v1/integrations/webhooks", Some(token)).await;
    assert!(
        listed.body["webhooks"][0].get("secret").is_none(),
        "shown once only"
    );

    let rule = post(
        &s.app.gateway,
        "/v1/integrations/rules",
        Some(token),
        json!({
            "name": "Big orders become HubSpot contacts",
            "trigger": {"event": "shopify.orders/create",
                        "conditions": [{"field": "total_price", "op": "gt", "value": 100}]},
            "steps": [{"connector_action": {"connector": "hubspot", "action": "create_contact",
                        "args": {"email": "{{event.email}}",
                                 "firstname": "{{event.customer.first_name}}"}}}],
        }),
    )
    .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);

    let hook = format!("/hooks/{hook_id}");
    let order = |id: u64, total: &str, email: &str| {
        json!({"id": id, "email": email, "total_price": total, "currency": "EUR",
               "customer": {"first_name": "Ada", "email": email}})
    };
    // A forged signature: 401, nothing stored, nothing run.
    let forged = order(1, "150.00", "mallory@example.com");
    let reply = deliver(
        &s.app,
        &hook,
        &shopify_signature("wrong", forged.to_string().as_bytes()),
        "d-forged",
        &forged,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&s.app.db.owner)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // A small order does not match the rule.
    let small = order(2, "99.50", "small@example.com");
    let reply = deliver(
        &s.app,
        &hook,
        &shopify_signature(secret, small.to_string().as_bytes()),
        "d-small",
        &small,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["runs"], 0);

    // A big one does, once, however often it is delivered.
    let big = order(3, "150.00", "ada@example.com");
    let signature = shopify_signature(secret, big.to_string().as_bytes());
    let first = deliver(&s.app, &hook, &signature, "d-big", &big).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["runs"], 1);
    let again = deliver(&s.app, &hook, &signature, "d-big", &big).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["duplicates"], 1);
    assert_eq!(again.body["runs"], 0);

    let mut runs = Vec::new();
    for _ in 0..300 {
        let listed = get(&s.app.gateway, "/v1/tasks?status=succeeded", Some(token)).await;
        runs = listed.body["tasks"].as_array().unwrap().clone();
        if !runs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.shutdown().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["kind"], "rule");
    assert_eq!(
        *contacts.lock().unwrap(),
        vec!["ada@example.com".to_owned()]
    );
    let run = get(
        &s.app.gateway,
        &format!("/v1/tasks/{}", runs[0]["task_id"].as_str().unwrap()),
        Some(token),
    )
    .await;
    assert_eq!(run.body["steps"][0]["kind"], "action");
    assert_eq!(run.body["steps"][0]["detail"]["args"]["firstname"], "Ada");
    let hooks = get(
        &s.app.gateway,
        &format!("/v1/integrations/webhooks/{hook_id}"),
        Some(token),
    )
    .await;
    assert_eq!(hooks.body["deliveries_ok"], 3, "{}", hooks.body);
    assert_eq!(hooks.body["deliveries_failed"], 1, "{}", hooks.body);
    assert!(hooks.body["last_delivery_at"].is_string());
}

#[tokio::test]
async fn rules_are_validated_managed_by_admins_and_audited() {
    let s = setup(vec![text_reply("unused")]).await;
    let owner = signup(&s.app, "Rules Co").await;
    let token = owner.token.as_str();
    let invalid_cron = post(
        &s.app.gateway,
        "/v1/integrations/rules",
        Some(token),
        json!({"name": "Broken", "trigger": {"event": "schedule", "cron": "0 25 * * *"},
               "steps": [{"connector_action": {"connector": "hubspot", "action": "create_contact",
                          "args": {"email": "x@example.com"}}}]}),
    )
    .await;
    assert_eq!(
        invalid_cron.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid_cron.body
    );
    assert!(
        invalid_cron.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trigger.cron")
    );
    let unknown_action = post(
        &s.app.gateway,
        "/v1/integrations/rules",
        Some(token),
        json!({"name": "Broken", "trigger": {"event": "manual"},
               "steps": [{"connector_action": {"connector": "hubspot", "action": "teleport"}}]}),
    )
    .await;
    assert_eq!(unknown_action.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM rules")
        .fetch_one(&s.app.db.owner)
        .await
        .unwrap();
    assert_eq!(rules, 0);

    let viewer = member(&s.app, &owner, "viewer").await;
    let manual = json!({"name": "Say hi", "trigger": {"event": "manual"},
                        "steps": [{"approval": {"role": "admin"}}]});
    let refused = post(
        &s.app.gateway,
        "/v1/integrations/rules",
        Some(&viewer),
        manual.clone(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let created = post(
        &s.app.gateway,
        "/v1/integrations/rules",
        Some(token),
        manual,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let seen = get(&s.app.gateway, "/v1/integrations/rules", Some(&viewer)).await;
    assert_eq!(seen.body["rules"].as_array().unwrap().len(), 1);
    let patched = call(
        &s.app.gateway,
        Method::PATCH,
        &format!("/v1/integrations/rules/{id}"),
        Some(token),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["enabled"], false);
    let deleted = call(
        &s.app.gateway,
        Method::DELETE,
        &format!("/v1/integrations/rules/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let audit = get(&s.app.gateway, "/v1/audit", Some(token)).await;
    let actions: Vec<&str> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in ["rule.create", "rule.update", "rule.delete"] {
        assert!(actions.contains(&wanted), "{actions:?}");
    }
}
