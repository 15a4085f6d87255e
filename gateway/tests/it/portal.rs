//! The portal in a real browser: a real `brain serve` (gateway, auth, portal and Temporal
//! worker) on free ports against the real infrastructure, an OpenAI-compatible fake model that
//! streams slowly, fake WordPress and HubSpot platforms, and headless Chromium driven by
//! `portal/e2e/portal.cjs` (playwright-core). The script walks the flows of the portal issue
//! (and the crews and delegation of the multi-agent issue) and saves screenshots of every
//! page at 1280 and 390 px into `target/portal-screenshots/`; this test then checks through
//! the API that what the browser did really happened.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use brain_migrations::testing::{TestDb, setting};
use futures::StreamExt;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use serde_json::{Value, json};

use crate::harness::{PASSWORD, embed_model_dir, required};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves `router` on a free port in this test's runtime; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn sse_chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

pub const REPLY: &str = "Our brand voice is warm and concise, and it never uses exclamation marks.";

/// What the fake model answers a crew member given `prompt`: the task it was handed, and
/// whether it saw an earlier member's result.
fn crew_answer(prompt: &str) -> Option<String> {
    let task = prompt.split("Your task: ").nth(1)?.lines().next()?.trim();
    let earlier = if prompt.contains("Results of the earlier tasks") {
        ", building on the earlier result"
    } else {
        ""
    };
    Some(format!("{task}: done{earlier}."))
}

/// The fake model: a HubSpot call for the approval task, a WordPress call when asked to draft
/// a post, a short confirmation after a tool result, a crew member's answer (`crew_answer`)
/// and otherwise `REPLY`, streamed word by word with pauses so the browser shows it arriving.
async fn model(Json(request): Json<Value>) -> Response {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let crew = (last["role"] == "user")
        .then(|| last["content"].as_str().and_then(crew_answer))
        .flatten();
    let wants_contact = messages
        .iter()
        .any(|m| m["role"] == "user" && m["content"].to_string().contains("ada@example.com"));
    let wants_post = last["role"] == "user" && last["content"].to_string().contains("Draft a post");
    let mut events: Vec<(String, u64)> = Vec::new();
    if last["role"] == "tool" {
        events.push((
            sse_chunk(json!({"role": "assistant", "content": "Done."}), None),
            0,
        ));
        events.push((sse_chunk(json!({}), Some("stop")), 0));
    } else if wants_post {
        let call = json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_post",
            "type": "function", "function": {"name": "wordpress__create_post",
            "arguments": json!({"title": "Spring", "content": "Warm and concise."}).to_string()}}]});
        events.push((sse_chunk(call, None), 0));
        events.push((sse_chunk(json!({}), Some("tool_calls")), 0));
    } else if wants_contact {
        let call = json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_ada",
            "type": "function", "function": {"name": "hubspot__create_contact",
            "arguments": json!({"email": "ada@example.com"}).to_string()}}]});
        events.push((sse_chunk(call, None), 0));
        events.push((sse_chunk(json!({}), Some("tool_calls")), 0));
    } else {
        let (reply, pause) = match &crew {
            Some(answer) => (answer.as_str(), 250),
            None => (REPLY, 120),
        };
        events.push((
            sse_chunk(json!({"role": "assistant", "content": ""}), None),
            0,
        ));
        for word in reply.split_inclusive(' ') {
            events.push((sse_chunk(json!({"content": word}), None), pause));
        }
        events.push((sse_chunk(json!({}), Some("stop")), 0));
    }
    events.push(("data: [DONE]\n\n".to_owned(), 0));
    let stream = futures::stream::iter(events).then(|(chunk, pause)| async move {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        Ok::<_, Infallible>(chunk)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn day(back: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = i64::try_from((now - back * 86_400) / 86_400).unwrap();
    brain_portal::charts::civil_date(days)
}

/// WordPress's REST API as far as connecting and charting use it.
fn wordpress() -> axum::Router {
    let posts: Vec<Value> = [(0, 2), (1, 1), (3, 4), (6, 2), (9, 3)]
        .into_iter()
        .flat_map(|(back, n)| {
            (0..n).map(move |i| {
                json!({"id": back * 10 + i, "date": format!("{}T09:{:02}:00", day(back), i),
                       "status": "publish", "title": {"rendered": format!("Post {back}-{i}")}})
            })
        })
        .collect();
    axum::Router::new()
        .route(
            "/wp-json/wp/v2/users/me",
            get(|| async { Json(json!({"id": 1, "name": "admin", "slug": "admin"})) }),
        )
        .route(
            "/wp-json/wp/v2/posts",
            get(move || {
                let posts = posts.clone();
                async move { Json(Value::Array(posts)) }
            })
            .post(|| async {
                (
                    axum::http::StatusCode::CREATED,
                    Json(json!({"id": 99, "status": "draft", "title": {"rendered": "Spring"}})),
                )
            }),
        )
}

/// HubSpot's CRM v3 contacts, for the task that creates one.
fn hubspot() -> axum::Router {
    let contacts: Vec<Value> = [(0, 3), (2, 5), (5, 2)]
        .into_iter()
        .flat_map(|(back, n)| {
            (0..n).map(move |i| {
                json!({"id": format!("{back}{i}"), "createdAt": format!("{}T10:00:00Z", day(back)),
                       "properties": {"email": format!("c{back}{i}@example.com")}})
            })
        })
        .collect();
    axum::Router::new().route(
        "/crm/v3/objects/contacts",
        get(move || {
            let contacts = contacts.clone();
            async move { Json(json!({"results": contacts})) }
        })
        .post(|| async { (axum::http::StatusCode::CREATED, Json(json!({"id": "901"}))) }),
    )
}

/// A PDF whose page `i + 1` shows `pages[i]`.
fn pdf(pages: &[&str]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::<Object>::new();
    for text in pages {
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 11.into()]),
                Operation::new("Td", vec![72.into(), 760.into()]),
                Operation::new("Tj", vec![Object::string_literal(*text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        kids.push(
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            })
            .into(),
        );
    }
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// `brain serve`, stopped when dropped.
struct Brain(Child);

impl Drop for Brain {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Api {
    http: reqwest::Client,
    gateway: String,
    auth: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn gateway(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.send(method, format!("{}{path}", self.gateway), Some(token), body)
            .await
    }

    async fn auth(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        self.send(method, format!("{}{path}", self.auth), token, Some(body))
            .await
    }
}

async fn wait_http(http: &reqwest::Client, url: &str, brain: &mut Brain, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = brain.0.try_wait() {
            panic!(
                "brain serve exited ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

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

    let db = TestDb::new().await.unwrap();
    let database_url = {
        let url = required("DATABASE_URL");
        let (base, _) = url.rsplit_once('/').unwrap();
        format!("{base}/{}", db.name)
    };
    let (gateway_port, auth_port, portal_port) = (free_port(), free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    let auth = format!("http://127.0.0.1:{auth_port}");
    let portal = format!("http://127.0.0.1:{portal_port}");
    let out = workspace().join("target/portal-e2e");
    std::fs::create_dir_all(&out).unwrap();
    let log_path = out.join("brain.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut brain = Brain(
        Command::new(env!("CARGO_BIN_EXE_brain"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("DATABASE_URL", &database_url)
            .env("REDIS_URL", required("REDIS_URL"))
            .env("VAULT_ADDR", required("VAULT_ADDR"))
            .env("VAULT_TOKEN", required("VAULT_TOKEN"))
            .env("TEMPORAL_ADDRESS", required("TEMPORAL_ADDRESS"))
            .env(
                "BRAIN_TEMPORAL_TASK_QUEUE",
                format!("brain-portal-{}", uuid::Uuid::new_v4().simple()),
            )
            .env("BRAIN_EMBED_MODEL_DIR", embed_model_dir())
            .env("BRAIN_GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}"))
            .env("BRAIN_AUTH_ADDR", format!("127.0.0.1:{auth_port}"))
            .env("BRAIN_PORTAL_ADDR", format!("127.0.0.1:{portal_port}"))
            .env("BRAIN_PUBLIC_GATEWAY_URL", &gateway)
            .env("BRAIN_AUTH_URL", &auth)
            .env("BRAIN_PUBLIC_AUTH_URL", &auth)
            .env("BRAIN_PORTAL_ORIGIN", &portal)
            .env("BRAIN_PORTAL_SITE_ROOT", &site_root)
            .env(
                "BRAIN_CONNECTOR_ENDPOINTS",
                format!("hubspot={hubspot_url}"),
            )
            .env("OPENAI_BASE_URL", format!("{model_url}/v1"))
            .env("OPENAI_API_KEY", "sk-test")
            .env("BRAIN_LOGIN_FAILURES_PER_IP", "100000")
            .env("BRAIN_RATE_LIMIT_TENANT_PER_MINUTE", "0")
            .env("BRAIN_LOG", "warn,brain_portal=info")
            // Short-lived access tokens: the portal refreshes sessions during the walk.
            .env("BRAIN_ACCESS_TOKEN_TTL_SECS", "30")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    wait_http(&http, &format!("{portal}/healthz"), &mut brain, &log_path).await;
    wait_http(&http, &format!("{gateway}/healthz"), &mut brain, &log_path).await;
    wait_http(&http, &format!("{auth}/healthz"), &mut brain, &log_path).await;
    let api = Api {
        http,
        gateway,
        auth,
    };

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
    });
    let script = workspace().join("portal/e2e/portal.cjs");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("PORTAL_E2E", params.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    println!("{stdout}");
    assert!(
        run.status.success(),
        "the browser script failed:\n{stdout}\n{stderr}\n--- brain serve log (tail) ---\n{}",
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
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
