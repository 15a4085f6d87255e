//! Tenants' own provider keys on the real Postgres and Vault, against a local server speaking
//! the OpenAI wire format: verified before they are kept, used for their tenant only, never
//! stored or shown in clear.

use std::sync::Arc;

use brain_agents::ProviderRegistry;
use brain_agents::providers::keys::{KeySource, ProviderKey, ProviderKeys};
use brain_agents::providers::openai::{OpenAiConfig, OpenAiProvider};
use brain_agents::providers::scripted::ScriptedProvider;
use brain_agents::providers::{ChatMessage, ChatRequest, LlmProvider};
use brain_auth::egress::EgressPolicy;
use brain_auth::secrets::{SecretStore, SecretString, VaultSecretStore};
use brain_auth::{Code, ErrorCode, TenantId};
use brain_migrations::testing::{TestDb, setting};
use serde_json::{Value, json};
use sqlx::Connection;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::tenant;

const GOOD: &str = "sk-acme-0123456789-abcdefghijkl";
const WRONG: &str = "sk-wrong-0123456789-zyxwvutsrq";

fn vault() -> Arc<dyn SecretStore> {
    Arc::new(
        VaultSecretStore::new(
            &setting("VAULT_ADDR").unwrap(),
            &setting("VAULT_TOKEN").unwrap(),
            "secret",
        )
        .unwrap(),
    )
}

/// A streamed answer `text`.
fn answer(text: &str) -> ResponseTemplate {
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]});
    ResponseTemplate::new(200).set_body_raw(
        format!("data: {chunk}\n\ndata: [DONE]\n\n"),
        "text/event-stream",
    )
}

/// A server answering with `Bearer <key>` → `text`, listing models for each key, and
/// refusing every other key the way OpenAI does (repeating it).
async fn server(keys: &[(&str, &str)]) -> MockServer {
    let server = MockServer::start().await;
    for (key, text) in keys {
        let bearer = format!("Bearer {key}");
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(answer(text))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": format!("Incorrect API key provided: {WRONG}."),
            "type": "invalid_request_error", "code": "invalid_api_key"}})))
        .mount(&server)
        .await;
    server
}

fn openai(
    base: &MockServer,
    egress: EgressPolicy,
    secrets: Arc<dyn SecretStore>,
) -> Arc<dyn LlmProvider> {
    let mut config = OpenAiConfig::new(format!("{}/v1", base.uri()));
    config.api_key = Some(SecretString::new("sk-deployment"));
    config.secrets = Some(secrets);
    config.egress = egress;
    Arc::new(OpenAiProvider::new(config).unwrap())
}

async fn ask(provider: &Arc<dyn LlmProvider>, tenant: TenantId) -> String {
    let request = ChatRequest {
        tenant,
        model: "gpt-4o-mini".into(),
        messages: vec![ChatMessage::user("Hi")],
        tools: vec![],
        temperature: 0.0,
        max_tokens: 8,
    };
    provider.complete(request).await.unwrap().content
}

fn key(api_key: &str) -> ProviderKey {
    ProviderKey {
        api_key: SecretString::new(api_key),
        base_url: None,
        organization: None,
    }
}

/// Every row of the keys table as text, read past row-level security.
async fn stored(db: &TestDb) -> String {
    let mut owner = db.owner_connection().await.unwrap();
    let rows: Vec<Value> = sqlx::query_scalar("SELECT to_jsonb(k) FROM tenant_model_keys k")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    owner.close().await.unwrap();
    Value::from(rows).to_string()
}

#[tokio::test]
async fn a_tenants_key_is_checked_kept_in_vault_and_used_for_that_tenant_only() {
    let db = TestDb::new().await.unwrap();
    let acme = tenant(&db, "acme").await;
    let other = tenant(&db, "other").await;
    let models = server(&[(GOOD, "acme's key"), ("sk-deployment", "deployment key")]).await;
    let secrets = vault();
    let llm = openai(&models, EgressPolicy::default(), secrets.clone());
    let registry = ProviderRegistry::new()
        .with("openai", llm.clone())
        .with("scripted", Arc::new(ScriptedProvider::new([])));
    let keys = ProviderKeys::new(db.app.clone(), secrets.clone(), registry);

    let listed = keys.list(acme).await.unwrap();
    let sources: Vec<_> = listed
        .iter()
        .map(|v| (v.provider.as_str(), v.key))
        .collect();
    assert_eq!(
        sources,
        [
            ("openai", KeySource::Deployment),
            ("scripted", KeySource::NotNeeded)
        ]
    );

    // A key the provider refuses is not kept, and the error never repeats it.
    let refused = keys.set(acme, "openai", key(WRONG)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ModelUnauthorized);
    let message = refused.to_string();
    assert!(
        message.contains("`openai`") && !message.contains(WRONG),
        "{message}"
    );
    assert!(
        ProviderKey::load(secrets.as_ref(), acme, "openai")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(keys.list(acme).await.unwrap()[0].key, KeySource::Deployment);

    let set = keys.set(acme, "openai", key(GOOD)).await.unwrap();
    assert_eq!(set.key, KeySource::Tenant);
    assert_eq!(set.key_hint.as_deref(), Some("sk-…ijkl"));
    assert!(set.verified_at.is_some());
    assert_eq!(ask(&llm, acme).await, "acme's key");
    assert_eq!(
        ask(&llm, other).await,
        "deployment key",
        "another tenant's key was used"
    );
    assert_eq!(
        keys.list(other).await.unwrap()[0].key,
        KeySource::Deployment
    );

    let rows = stored(&db).await;
    assert!(rows.contains("sk-…ijkl") && !rows.contains(GOOD), "{rows}");
    let in_view = serde_json::to_string(&keys.list(acme).await.unwrap()).unwrap();
    assert!(!in_view.contains(GOOD), "{in_view}");

    let removed = keys.remove(acme, "openai").await.unwrap();
    assert_eq!(removed.key, KeySource::Deployment);
    assert_eq!(removed.key_hint, None);
    assert_eq!(ask(&llm, acme).await, "deployment key");
    assert_eq!(stored(&db).await, "[]");

    let keyless = keys.set(acme, "scripted", key(GOOD)).await.unwrap_err();
    assert_eq!(keyless.code(), Code::ValidationFailed);
    let unknown = keys.set(acme, "nope", key(GOOD)).await.unwrap_err();
    assert_eq!(unknown.code(), Code::UnknownModel);
    let empty = keys.set(acme, "openai", key(" ")).await.unwrap_err();
    assert_eq!(empty.code(), Code::ValidationFailed);
}

#[tokio::test]
async fn a_tenants_own_endpoint_obeys_the_egress_policy_and_gets_its_organization() {
    let db = TestDb::new().await.unwrap();
    let acme = tenant(&db, "acme").await;
    let deployment = server(&[("sk-deployment", "deployment endpoint")]).await;
    let own = server(&[]).await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("openai-organization", "org-acme"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})),
        )
        .with_priority(1)
        .mount(&own)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {GOOD}").as_str()))
        .and(header("openai-organization", "org-acme"))
        .respond_with(answer("own endpoint"))
        .mount(&own)
        .await;
    let own_key = ProviderKey {
        base_url: Some(format!("{}/v1", own.uri())),
        organization: Some("org-acme".into()),
        ..key(GOOD)
    };
    let secrets = vault();

    // The production policy: a loopback endpoint is refused before anything is kept.
    let strict = openai(&deployment, EgressPolicy::default(), secrets.clone());
    let registry = ProviderRegistry::new().with("openai", strict);
    let keys = ProviderKeys::new(db.app.clone(), secrets.clone(), registry);
    let refused = keys.set(acme, "openai", own_key.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::EgressRefused, "{refused}");
    assert!(
        ProviderKey::load(secrets.as_ref(), acme, "openai")
            .await
            .unwrap()
            .is_none()
    );

    // A deployment that allows loopback: the tenant's calls go to its own endpoint.
    let open = openai(&deployment, EgressPolicy::loopback(), secrets.clone());
    let registry = ProviderRegistry::new().with("openai", open.clone());
    let keys = ProviderKeys::new(db.app.clone(), secrets, registry);
    let set = keys.set(acme, "openai", own_key).await.unwrap();
    assert_eq!(set.organization.as_deref(), Some("org-acme"));
    assert_eq!(ask(&open, acme).await, "own endpoint");
    keys.remove(acme, "openai").await.unwrap();
    assert_eq!(ask(&open, acme).await, "deployment endpoint");
}
