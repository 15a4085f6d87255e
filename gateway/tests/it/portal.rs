//! The portal in a real browser: a real `brain serve` (gateway, auth, portal and Temporal
//! worker) on free ports against the real infrastructure, an OpenAI-compatible fake model that
//! streams slowly, fake WordPress and HubSpot platforms, and headless Chromium driven by
//! `portal/e2e/portal.cjs` (playwright-core). The script walks the flows of the portal issue
//! (and the crews and delegation of the multi-agent issue) and saves screenshots of every
//! page at 1280 and 390 px into `target/portal-screenshots/`; this test then checks through
//! the API that what the browser did really happened.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::routing::post;
use brain_migrations::testing::{TestDb, setting};
use serde_json::{Value, json};

use crate::fakes::{REPLY, hubspot, model, pdf, serve, wordpress};
use crate::harness::PASSWORD;

/// The Anthropic key the walk brings for its tenant.
const ANTHROPIC_KEY: &str = "sk-ant-api03-portal-5e6f7a8b9c0d1e2f";

/// Anthropic's model listing, which Brain calls to check a key: it knows one key only.
fn anthropic() -> axum::Router {
    axum::Router::new().route(
        "/v1/models",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
            if key == Some(ANTHROPIC_KEY) {
                let page =
                    json!({"data": [], "has_more": false, "first_id": null, "last_id": null});
                (axum::http::StatusCode::OK, axum::Json(page))
            } else {
                let refused = json!({"type": "error", "error": {
                    "type": "authentication_error", "message": "invalid x-api-key"}});
                (axum::http::StatusCode::UNAUTHORIZED, axum::Json(refused))
            }
        }),
    )
}
use crate::process::{Api, BrainProcess, node_script, workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_works_in_a_real_browser() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let site_root = setting("BRAIN_PORTAL_SITE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/portal-site"));
    let modules = setting("BRAIN_PORTAL_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".brain/node/node_modules"));
    let chromium = setting("BRAIN_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".to_owned());
    assert!(
        site_root.join("pkg/brain_portal_bg.wasm").is_file(),
        "the portal's browser bundle is missing: run `cargo xtask portal` (or `cargo xtask test`)"
    );

    let model_url = serve(axum::Router::new().route("/v1/chat/completions", post(model))).await;
    let wordpress_url = serve(wordpress()).await;
    let hubspot_url = serve(hubspot()).await;
    let anthropic_url = serve(anthropic()).await;

    let db = TestDb::new().await.unwrap();
    let out = workspace().join("target/portal-e2e");
    std::fs::create_dir_all(&out).unwrap();
    let brain = BrainProcess::start(
        &db,
        &["serve"],
        &[
            ("BRAIN_PORTAL_SITE_ROOT", site_root.display().to_string()),
            (
                "BRAIN_CONNECTOR_ENDPOINTS",
                format!("hubspot={hubspot_url}"),
            ),
            ("OPENAI_BASE_URL", format!("{model_url}/v1")),
            ("OPENAI_API_KEY", "sk-test".to_owned()),
            (
                "BRAIN_MODEL_PROVIDERS",
                format!("anthropic={anthropic_url}"),
            ),
            ("BRAIN_LOG", "warn,brain_portal=info".to_owned()),
            // Short-lived access tokens: the portal refreshes sessions during the walk.
            ("BRAIN_ACCESS_TOKEN_TTL_SECS", "30".to_owned()),
        ],
    )
    .await;
    let portal = brain.portal.clone();
    let api = Api::new(&brain);
    portal_edge_limits(&portal).await;

    // A tenant with an owner, a viewer, two agents and a task waiting for approval.
    let owner_email = format!("owner-{}@brain.test", uuid::Uuid::new_v4().simple());
    let (status, signup) = api
        .auth(
            reqwest::Method::POST,
            "/v1/auth/signup",
            None,
            json!({"tenant_name": "Portal Co", "email": owner_email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{signup}");
    let owner = signup["access_token"].as_str().unwrap().to_owned();
    let viewer_email = format!("viewer-{}@brain.test", uuid::Uuid::new_v4().simple());
    let (status, body) = api
        .auth(
            reqwest::Method::POST,
            "/v1/users",
            Some(&owner),
            json!({"email": viewer_email, "role": "viewer", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, writer) = api
        .gateway(
            reqwest::Method::POST,
            "/v1/agents",
            &owner,
            Some(json!({
            "name": "Brand Writer", "role": "Content writer", "goal": "Write on-brand posts",
            "backstory": "Started as a newspaper editor.", "temperature": 0.7,
            "model": "openai:gpt-4o-mini", "max_tokens": 256})),
        )
        .await;
    assert_eq!(status, 201, "{writer}");
    let writer_id = writer["id"].as_str().unwrap().to_owned();
    let (status, body) = api
        .gateway(
            reqwest::Method::PUT,
            "/v1/connectors/hubspot/connection",
            &owner,
            Some(json!({"credentials": {"access_token": "pat-test"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, closer) = api
        .gateway(reqwest::Method::POST, "/v1/agents", &owner, Some(json!({
            "name": "Closer", "role": "Sales assistant", "goal": "Keep the CRM tidy",
            "model": "openai:gpt-4o-mini", "max_tokens": 64,
            "tools": [{"connector": "hubspot", "actions": ["create_contact"], "approval": "always"}]})))
        .await;
    assert_eq!(status, 201, "{closer}");
    let closer_id = closer["id"].as_str().unwrap().to_owned();
    let (status, task) = api
        .gateway(
            reqwest::Method::POST,
            &format!("/v1/agents/{closer_id}/tasks"),
            &owner,
            Some(json!({"input": "Add ada@example.com to the CRM"})),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let task_id = task["task_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, t) = api
            .gateway(
                reqwest::Method::GET,
                &format!("/v1/tasks/{task_id}"),
                &owner,
                None,
            )
            .await;
        if t["status"] == "awaiting_approval" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the task never waited for approval: {t}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (status, rule) = api
        .gateway(
            reqwest::Method::POST,
            "/v1/integrations/rules",
            &owner,
            Some(json!({"name": "Welcome new contacts",
                        "trigger": {"event": "hubspot.contact.updated"},
                        "steps": [{"agent_task": {"agent_id": writer_id, "input": "Draft a welcome"}}]})),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let rule_id = rule["id"].as_str().unwrap().to_owned();

    // A crew the browser deletes.
    let (status, old_crew) = api
        .gateway(
            reqwest::Method::POST,
            "/v1/crews",
            &owner,
            Some(
                json!({"name": "Old crew", "members": [writer_id], "process": "sequential",
                        "tasks": [{"description": "Recap", "expected_output": "A recap"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{old_crew}");
    let old_crew_id = old_crew["id"].as_str().unwrap().to_owned();

    // An MCP server whose tools the browser grants.
    let mcp_url = crate::mcp::keyed_server("portal-mcp-token").await;
    let (status, server) = api
        .gateway(
            reqwest::Method::POST,
            "/v1/integrations/mcp-servers",
            &owner,
            Some(json!({"name": "Notes", "slug": "notes", "url": mcp_url,
                        "auth": {"kind": "bearer", "token": "portal-mcp-token"}})),
        )
        .await;
    assert_eq!(status, 201, "{server}");

    let pdf_path = out.join("brand-book.pdf");
    std::fs::write(
        &pdf_path,
        pdf(&[
            "Brand book of Portal Co. Contents: voice, colours, logo.",
            "The brand voice is warm and concise and never uses exclamation marks.",
        ]),
    )
    .unwrap();
    let screenshots = workspace().join("target/portal-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();

    // The browser part.
    let params = json!({
        "portal": portal, "chromium": chromium, "modules": modules,
        "screenshots": screenshots, "owner": owner_email, "viewer": viewer_email,
        "password": PASSWORD, "writer": writer_id, "closer": closer_id, "task": task_id,
        "wordpress": wordpress_url, "pdf": pdf_path, "reply": REPLY, "old_crew": old_crew_id,
        "anthropic_key": ANTHROPIC_KEY,
    });
    let stdout = node_script("portal/e2e/portal.cjs", "PORTAL_E2E", &params, &brain).await;
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("RESULT ")
                .and_then(|j| serde_json::from_str(j).ok())
        })
        .expect("the script's RESULT line");

    // What the browser did is what the API holds (read with a fresh token: the walk outlasts
    // the short-lived one from the signup).
    let (status, login) = api
        .auth(
            reqwest::Method::POST,
            "/v1/auth/login",
            None,
            json!({"email": owner_email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let owner = login["access_token"].as_str().unwrap().to_owned();
    let (_, agent) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/agents/{writer_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(agent["backstory"], report["backstory"], "{agent}");
    assert!(
        (agent["temperature"].as_f64().unwrap() - 1.3).abs() < 1e-6,
        "{agent}"
    );
    let grant = agent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["connector"] == "wordpress")
        .unwrap_or_else(|| panic!("no wordpress grant: {agent}"));
    assert_eq!(grant["actions"], json!(["create_post"]), "{agent}");
    let mcp_grant = agent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["mcp_server"] == "notes")
        .unwrap_or_else(|| panic!("no MCP grant: {agent}"));
    assert_eq!(mcp_grant["tools"], json!(["notes"]), "{agent}");
    assert_eq!(mcp_grant["approval"], "auto", "{agent}");
    assert_eq!(
        agent["knowledge_collections"].as_array().unwrap().len(),
        1,
        "{agent}"
    );
    let (_, keys) = api
        .gateway(
            reqwest::Method::GET,
            "/v1/integrations/api-keys",
            &owner,
            None,
        )
        .await;
    let key = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Reporting script")
        .unwrap_or_else(|| panic!("no key: {keys}"));
    assert!(
        key["revoked_at"].is_string(),
        "the key was not revoked: {key}"
    );
    let (_, providers) = api
        .gateway(reqwest::Method::GET, "/v1/tenant/providers", &owner, None)
        .await;
    let claude = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "anthropic")
        .unwrap_or_else(|| panic!("no anthropic: {providers}"));
    assert_eq!(claude["key"], "tenant", "{claude}");
    assert!(!providers.to_string().contains(ANTHROPIC_KEY));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, t) = api
            .gateway(
                reqwest::Method::GET,
                &format!("/v1/tasks/{task_id}"),
                &owner,
                None,
            )
            .await;
        if t["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approved task never finished: {t}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, wp) = api
        .gateway(
            reqwest::Method::GET,
            "/v1/connectors/wordpress",
            &owner,
            None,
        )
        .await;
    assert_eq!(
        wp["status"], "disconnected",
        "the browser disconnected it: {wp}"
    );
    let (_, rule) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/integrations/rules/{rule_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(rule["enabled"], false, "{rule}");
    // The viewer's forced save changed nothing.
    assert_eq!(agent["role"], "Content writer");
    // The delegate granted on the agent page.
    assert_eq!(
        agent["delegates"],
        json!([{"agent": closer_id, "approval": "never", "max_calls_per_run": 3}]),
        "{agent}"
    );

    // The crew made in the browser, its one run (found by the crew filter), and the crew it
    // deleted.
    let crew_id = report["crew"].as_str().unwrap();
    let (status, crew) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/crews/{crew_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 200, "{crew}");
    assert_eq!(crew["name"], "Launch crew");
    assert_eq!(crew["process"], "sequential");
    assert_eq!(crew["members"], json!([writer_id, closer_id]), "{crew}");
    assert_eq!(
        crew["tasks"],
        json!([{"description": "Outline the launch", "expected_output": "Three beats"},
               {"description": "Write the announcement", "expected_output": "One paragraph",
                "agent_id": closer_id}]),
        "{crew}"
    );
    let (_, runs) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/tasks?crew_id={crew_id}"),
            &owner,
            None,
        )
        .await;
    let runs = runs["tasks"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["task_id"], report["run"], "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let (_, none) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/tasks?crew_id={}", uuid::Uuid::new_v4()),
            &owner,
            None,
        )
        .await;
    assert_eq!(none["tasks"], json!([]), "{none}");
    let (_, run) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/tasks/{}", runs[0]["task_id"].as_str().unwrap()),
            &owner,
            None,
        )
        .await;
    let outputs: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["detail"]["output"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        outputs,
        [
            "Outline the launch: done.",
            "Write the announcement: done, building on the earlier result."
        ],
        "{run}"
    );
    let (status, _) = api
        .gateway(
            reqwest::Method::GET,
            &format!("/v1/crews/{old_crew_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 404, "the browser deleted the old crew");

    for page in [
        "login",
        "dashboard",
        "agents",
        "agent",
        "crews",
        "crew",
        "run",
        "chat",
        "connectors",
        "connector",
        "integrations",
        "tasks",
        "audit",
        "health",
    ] {
        for width in [1280, 390] {
            let shot = screenshots.join(format!("{page}-{width}.png"));
            assert!(shot.is_file(), "missing screenshot {}", shot.display());
        }
    }
    drop(brain);
}

/// The portal's own edge: pages carry a Content-Security-Policy whose nonce is the one on
/// their inline script, nothing may frame them, and a body over the limit is refused.
async fn portal_edge_limits(portal: &str) {
    let http = reqwest::Client::new();
    let page = http.get(format!("{portal}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (policy, framing) = (header("content-security-policy"), header("x-frame-options"));
    assert_eq!(framing, "DENY");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no script nonce in {policy:?}"))
        .to_owned();
    assert!(policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe-inline"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the policy's nonce"
    );
    let again = http.get(format!("{portal}/login")).send().await.unwrap();
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce),
        "a nonce is used once"
    );
    // 2 MB announced to a route that takes small forms: refused from the Content-Length,
    // before anything reads the body. (Raw TCP: a client still writing a large body when
    // the server answers early and closes may see a reset instead of the answer.)
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = portal.trim_start_matches("http://").trim_end_matches('/');
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /logout HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        2 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[b'a'; 1024]).await.unwrap();
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("the portal answers without waiting for the body")
        .unwrap();
    let status_line = String::from_utf8_lossy(&answer[..read]);
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
}
