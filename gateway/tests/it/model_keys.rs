//! `/v1/tenant/providers`: a tenant's own model key, set through the API, is checked with a
//! live call, serves that tenant's agents only, and is never shown again.

use axum::http::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::agents::analyst;
use crate::fakes::{answer_chunk, anthropic_stream, chat_stream};
use crate::harness::{Owner, TestApp, call, get, member, post, signup};

pub(crate) const TENANT_KEY: &str = "sk-proj-leaky-4f1c2a9b8e7d6c5b4a39";
pub(crate) const ANTHROPIC_KEY: &str = "sk-ant-api03-leaky-7c3e1d5f9a2b4c6d";
const ANTHROPIC_DEPLOYMENT_KEY: &str = "sk-ant-api03-deployment-0000aaaa1111";

/// Anthropic's Messages API for `key`, answering `text` (mounted before the catch-all 401).
async fn mount_anthropic(server: &MockServer, key: &str, text: &str) {
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("x-api-key", key))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": [], "has_more": false, "first_id": null, "last_id": null}),
        ))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", key))
        .respond_with(anthropic_stream(text))
        .mount(server)
        .await;
}

/// A server speaking the OpenAI wire under `/v1` for [`TENANT_KEY`] and Anthropic's
/// Messages API for [`ANTHROPIC_KEY`]; it refuses every other call the way both do.
pub(crate) async fn keyed_model_server() -> MockServer {
    let server = MockServer::start().await;
    mount_anthropic(&server, ANTHROPIC_KEY, "Claude, paid by the tenant.").await;
    let bearer = format!("Bearer {TENANT_KEY}");
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})),
        )
        .mount(&server)
        .await;
    let chunk = answer_chunk("gpt-4o-mini", "Paid by the tenant.");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(chat_stream(&[chunk]))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": "You didn't provide an API key.", "type": "invalid_request_error",
            "code": "invalid_api_key"}})))
        .mount(&server)
        .await;
    server
}

/// An app whose `openai:*` and `anthropic:*` models go to `server`, with no deployment key.
pub(crate) async fn app_on(server: &MockServer) -> TestApp {
    let base = format!("{}/v1", server.uri());
    let anthropic = format!("anthropic={}", server.uri());
    TestApp::with_config(|c| {
        c.openai_base_url = base;
        c.model_providers = Some(anthropic);
    })
    .await
}

pub(crate) async fn set_key(app: &TestApp, owner: &Owner, key: &str) -> crate::harness::Reply {
    call(
        &app.gateway,
        axum::http::Method::PUT,
        "/v1/tenant/providers/openai",
        Some(&owner.token),
        Some(json!({"api_key": key, "organization": "org-leaky"})),
    )
    .await
}

fn openai(listing: &Value) -> Value {
    provider(listing, "openai")
}

fn provider(listing: &Value, name: &str) -> Value {
    listing["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("`{name}` not listed: {listing}"))
}

/// The tenant's analyst agent.
async fn analyst_of(app: &TestApp, token: &str) -> String {
    let agent = post(&app.gateway, "/v1/agents", Some(token), analyst()).await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    agent.body["id"].as_str().unwrap().to_owned()
}

async fn chat(app: &TestApp, token: &str, agent: &str) -> crate::harness::Reply {
    let uri = format!("/v1/agents/{agent}/chat");
    post(&app.gateway, &uri, Some(token), json!({"message": "Hi"})).await
}

#[tokio::test]
async fn a_tenants_own_key_serves_its_agents_only_and_is_never_shown_again() {
    let server = keyed_model_server().await;
    let app = app_on(&server).await;
    let acme = signup(&app, "Acme").await;
    let other = signup(&app, "Other").await;
    let acme_agent = analyst_of(&app, &acme.token).await;
    let other_agent = analyst_of(&app, &other.token).await;

    let before = get(&app.gateway, "/v1/tenant/providers", Some(&acme.token)).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(openai(&before.body)["key"], "missing");

    // Refused by the provider: a clear 422 naming it, and nothing kept.
    let wrong = set_key(&app, &acme, "sk-not-the-right-key-at-all").await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert_eq!(wrong.body["error"]["code"], "model_unauthorized");
    assert!(
        wrong.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`openai`")
    );
    let listed = get(&app.gateway, "/v1/tenant/providers", Some(&acme.token)).await;
    assert_eq!(openai(&listed.body)["key"], "missing");

    // Only owners and admins set keys.
    let editor = member(&app, &acme, "editor").await;
    let refused = call(
        &app.gateway,
        axum::http::Method::PUT,
        "/v1/tenant/providers/openai",
        Some(&editor),
        Some(json!({"api_key": TENANT_KEY})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    let set = set_key(&app, &acme, TENANT_KEY).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["key"], "tenant");
    assert_eq!(set.body["key_hint"], "sk-…4a39");
    assert_eq!(set.body["organization"], "org-leaky");
    assert!(set.body["verified_at"].is_string());
    assert!(!set.body.to_string().contains(TENANT_KEY));

    let served = chat(&app, &acme.token, &acme_agent).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(served.body["reply"], "Paid by the tenant.");
    // Another tenant has no key of its own and the deployment none either.
    let stranger = chat(&app, &other.token, &other_agent).await;
    assert_eq!(
        stranger.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stranger.body
    );
    assert_eq!(stranger.body["error"]["code"], "model_unauthorized");
    let other_listing = get(&app.gateway, "/v1/tenant/providers", Some(&other.token)).await;
    assert_eq!(openai(&other_listing.body)["key"], "missing");

    let audit = get(
        &app.gateway,
        "/v1/audit?action=provider_key",
        Some(&acme.token),
    )
    .await;
    let events = audit.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", audit.body);
    assert_eq!(events[0]["action"], "provider_key.set");
    assert!(!audit.body.to_string().contains(TENANT_KEY));

    let removed = call(
        &app.gateway,
        axum::http::Method::DELETE,
        "/v1/tenant/providers/openai",
        Some(&acme.token),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["key"], "missing");
    let without = chat(&app, &acme.token, &acme_agent).await;
    assert_eq!(
        without.body["error"]["code"], "model_unauthorized",
        "{}",
        without.body
    );

    let unknown = set_key(&app, &acme, TENANT_KEY).await;
    assert_eq!(unknown.status, StatusCode::OK);
    let nope = call(
        &app.gateway,
        axum::http::Method::PUT,
        "/v1/tenant/providers/nope",
        Some(&acme.token),
        Some(json!({"api_key": TENANT_KEY})),
    )
    .await;
    assert_eq!(nope.body["error"]["code"], "unknown_model", "{}", nope.body);
}

#[tokio::test]
async fn a_deployment_runs_more_openai_compatible_providers_by_name() {
    let groq = MockServer::start().await;
    let chunk = answer_chunk("llama-3.1-8b-instant", "Fast answer.");
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .and(header("authorization", "Bearer gsk-deployment"))
        .respond_with(chat_stream(&[chunk]))
        .mount(&groq)
        .await;
    let base = format!("{}/openai/v1", groq.uri());
    let app = TestApp::with_config(|c| {
        c.model_providers = Some(format!("groq={base}"));
        c.model_provider_keys = Some(brain_gateway::config::Secret::new("groq=gsk-deployment"));
    })
    .await;
    let owner = signup(&app, "Groq").await;
    let listed = get(&app.gateway, "/v1/tenant/providers", Some(&owner.token)).await;
    let groq_view = listed.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "groq")
        .cloned();
    assert_eq!(groq_view.unwrap()["key"], "deployment", "{}", listed.body);

    let mut fast = analyst();
    fast["model"] = json!("groq:llama-3.1-8b-instant");
    let agent = post(&app.gateway, "/v1/agents", Some(&owner.token), fast).await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    let id = agent.body["id"].as_str().unwrap();
    let turn = chat(&app, &owner.token, id).await;
    assert_eq!(turn.status, StatusCode::OK, "{}", turn.body);
    assert_eq!(turn.body["reply"], "Fast answer.");
    let sent: Value =
        serde_json::from_slice(&groq.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["model"], "llama-3.1-8b-instant");

    // A model of a provider the deployment does not run is refused when the agent is saved.
    let mut unknown = analyst();
    unknown["slug"] = json!("other");
    unknown["model"] = json!("fireworks:small");
    let refused = post(&app.gateway, "/v1/agents", Some(&owner.token), unknown).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
}

/// An agent of `token`'s tenant on `model`.
pub(crate) async fn agent_on(app: &TestApp, token: &str, slug: &str, model: &str) -> String {
    let mut spec = analyst();
    spec["slug"] = json!(slug);
    spec["model"] = json!(model);
    let agent = post(&app.gateway, "/v1/agents", Some(token), spec).await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    agent.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenants_anthropic_key_serves_its_agents_only_and_others_fall_back() {
    let server = MockServer::start().await;
    mount_anthropic(&server, ANTHROPIC_KEY, "Claude, paid by the tenant.").await;
    mount_anthropic(
        &server,
        ANTHROPIC_DEPLOYMENT_KEY,
        "Claude, paid by the deployment.",
    )
    .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"}})),
        )
        .mount(&server)
        .await;
    let url = server.uri();
    let app = TestApp::with_config(|c| {
        c.model_providers = Some(format!("anthropic={url}"));
        c.model_provider_keys = Some(brain_gateway::config::Secret::new(format!(
            "anthropic={ANTHROPIC_DEPLOYMENT_KEY}"
        )));
    })
    .await;
    let acme = signup(&app, "Acme").await;
    let other = signup(&app, "Other").await;
    let acme_agent = agent_on(&app, &acme.token, "claude", "anthropic:claude-sonnet-4-5").await;
    let other_agent = agent_on(&app, &other.token, "claude", "anthropic:claude-sonnet-4-5").await;

    let listed = get(&app.gateway, "/v1/tenant/providers", Some(&acme.token)).await;
    assert_eq!(provider(&listed.body, "anthropic")["key"], "deployment");
    // Gemini is there for tenants to bring a key, though the deployment set none.
    assert_eq!(provider(&listed.body, "gemini")["key"], "missing");

    let uri = "/v1/tenant/providers/anthropic";
    let refused = call(
        &app.gateway,
        axum::http::Method::PUT,
        uri,
        Some(&acme.token),
        Some(json!({"api_key": "sk-ant-api03-wrong-wrong-wrong-wrong"})),
    )
    .await;
    assert_eq!(
        refused.body["error"]["code"], "model_unauthorized",
        "{}",
        refused.body
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`anthropic`")
    );
    let set = call(
        &app.gateway,
        axum::http::Method::PUT,
        uri,
        Some(&acme.token),
        Some(json!({"api_key": ANTHROPIC_KEY})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["key"], "tenant");
    assert_eq!(set.body["key_hint"], "sk-…4c6d");
    assert!(!set.body.to_string().contains(ANTHROPIC_KEY));

    let served = chat(&app, &acme.token, &acme_agent).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(served.body["reply"], "Claude, paid by the tenant.");
    let fallback = chat(&app, &other.token, &other_agent).await;
    assert_eq!(fallback.status, StatusCode::OK, "{}", fallback.body);
    assert_eq!(fallback.body["reply"], "Claude, paid by the deployment.");
    let other_listing = get(&app.gateway, "/v1/tenant/providers", Some(&other.token)).await;
    assert_eq!(
        provider(&other_listing.body, "anthropic")["key"],
        "deployment"
    );

    // No key anywhere: a clear error naming the provider, before anything is sent.
    let gemini_agent = agent_on(&app, &other.token, "gemini", "gemini:gemini-2.5-flash").await;
    let missing = chat(&app, &other.token, &gemini_agent).await;
    assert_eq!(
        missing.body["error"]["code"], "model_not_configured",
        "{}",
        missing.body
    );
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gemini")
    );
    // The same for an OpenAI-compatible cloud registered by default (Mistral's public API).
    let mistral_agent = agent_on(
        &app,
        &other.token,
        "mistral",
        "mistral:mistral-small-latest",
    )
    .await;
    let unkeyed = chat(&app, &other.token, &mistral_agent).await;
    assert_eq!(
        unkeyed.body["error"]["code"], "model_not_configured",
        "{}",
        unkeyed.body
    );
    assert!(
        unkeyed.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`mistral`")
    );
    for reply in [&served.body, &fallback.body, &missing.body, &listed.body] {
        assert!(!reply.to_string().contains(ANTHROPIC_KEY));
        assert!(!reply.to_string().contains(ANTHROPIC_DEPLOYMENT_KEY));
    }
}
