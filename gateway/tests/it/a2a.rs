//! A Brain agent published over A2A, driven by the official A2A Python SDK (PyPI `a2a-sdk`,
//! installed by `cargo xtask`) against a real `brain serve`: the card, a blocking and a
//! streamed message (each one of Brain's durable tasks), `GetTask`; another tenant's key,
//! an unpublished agent and broken requests are refused.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fakes::REPLY;
use crate::mcp_server::{brain_on_fake_model, tenant};
use crate::process::{Api, python_script};

#[tokio::test]
async fn the_official_a2a_sdk_talks_to_a_published_agent() {
    let (_db, brain) = brain_on_fake_model().await;
    let api = Api::new(&brain);
    let scopes = json!(["tasks:invoke", "agents:read"]);
    let (owner, agent, key) = tenant(&api, "A2A Co", "Voice", scopes.clone()).await;
    let (_, _, other_key) = tenant(&api, "Other Co", "Rival", scopes).await;
    let agent_id = agent["id"].as_str().unwrap();
    let publication = format!("/v1/agents/{agent_id}/a2a");

    // Not published yet: no card.
    let (status, shown) = api.gateway(Method::GET, &publication, &owner, None).await;
    assert_eq!(
        (status, &shown["published"]),
        (200, &json!(false)),
        "{shown}"
    );
    let http = reqwest::Client::new();
    let (status, published) = api.gateway(Method::PUT, &publication, &owner, None).await;
    assert_eq!(status, 200, "{published}");
    let endpoint = published["endpoint"].as_str().unwrap().to_owned();
    let card_url = published["card_url"].as_str().unwrap().to_owned();
    assert_eq!(card_url, format!("{endpoint}/.well-known/agent-card.json"));

    let params = json!({
        "base_url": endpoint,
        "key": key,
        "other_key": other_key,
        "question": "What is our brand voice?",
    });
    let stdout = python_script(
        "gateway/tests/e2e/a2a_client.py",
        "BRAIN_A2A_CLIENT",
        &params,
        &brain,
    )
    .await;
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        summary["card"],
        json!({"name": "Voice", "url": endpoint, "binding": "JSONRPC", "version": "1.0",
               "streaming": true, "skills": [agent["slug"]]}),
        "{summary}"
    );
    let blocking = &summary["blocking"];
    assert_eq!(blocking["kinds"], json!(["task"]), "{summary}");
    assert_eq!(blocking["reply"], REPLY, "{summary}");
    assert_eq!(
        blocking["get_task_state"], "TASK_STATE_COMPLETED",
        "{summary}"
    );
    assert_eq!(blocking["get_task_reply"], REPLY, "{summary}");
    let streaming = &summary["streaming"];
    assert_eq!(streaming["kinds"][0], "task", "{summary}");
    assert_eq!(streaming["reply"], REPLY, "{summary}");
    let refused = summary["other_tenant"].as_str().unwrap();
    assert!(
        refused.contains("404") || refused.contains("not found"),
        "{refused}"
    );

    // The A2A task is one of Brain's durable tasks, with the turn's answer.
    let task_id = blocking["task_id"].as_str().unwrap();
    let (status, task) = api
        .gateway(Method::GET, &format!("/v1/tasks/{task_id}"), &owner, None)
        .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["output"]["reply"], REPLY, "{task}");

    // Broken requests, then unpublished: the card and the endpoint are gone.
    let rpc = |body: &'static str| {
        http.post(&endpoint)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("a2a-version", "1.0")
            .body(body)
            .send()
    };
    let anonymous = http.post(&endpoint).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let broken = rpc("{\"jsonrpc\": \"2.0\", \"method\":").await.unwrap();
    assert_eq!(broken.status(), 400);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");
    let unknown = rpc(r#"{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}"#)
        .await
        .unwrap();
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32601, "{body}");
    let user = rpc(r#"{"jsonrpc": "2.0", "id": 2, "method": "SendMessage",
        "params": {"message": {"messageId": "m1", "role": "user", "parts": [{"text": "hi"}]}}}"#)
    .await
    .unwrap();
    let body: Value = user.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ROLE_USER"),
        "{body}"
    );
    let missing = rpc(r#"{"jsonrpc": "2.0", "id": 3, "method": "GetTask",
        "params": {"id": "00000000-0000-0000-0000-000000000000"}}"#)
    .await
    .unwrap();
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");

    let (status, _) = api
        .gateway(Method::DELETE, &publication, &owner, None)
        .await;
    assert_eq!(status, 204);
    let card = http.get(&card_url).send().await.unwrap();
    assert_eq!(card.status(), 404);
    let gone = rpc(r#"{"jsonrpc": "2.0", "id": 4, "method": "GetTask", "params": {"id": "x"}}"#)
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// The remote agent of `gateway/tests/e2e/a2a_server.py` (the official SDK's server) on a
/// free port, answering only `Authorization: Bearer <token>`.
struct RemoteAgent {
    child: std::process::Child,
    url: String,
}

impl Drop for RemoteAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn remote_agent(token: &str) -> RemoteAgent {
    let port = crate::process::free_port();
    let child =
        std::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(crate::process::workspace().join("gateway/tests/e2e/a2a_server.py"))
            .arg(port.to_string())
            .env(
                "PYTHONPATH",
                crate::harness::required("BRAIN_PEERS_PYTHONPATH"),
            )
            .env("A2A_TOKEN", token)
            .spawn()
            .expect("python3 runs the A2A SDK's server");
    let started = std::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the A2A server did not listen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    RemoteAgent {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

#[tokio::test]
async fn agents_and_crews_ask_a_remote_agent_served_by_the_official_sdk_under_their_grants() {
    use axum::http::StatusCode;

    use crate::harness::{get, post, signup};
    use crate::mcp::{agent, app, chat, grant};

    let secret = "a2a-remote-canary-7c3d";
    let remote = remote_agent(secret).await;
    let (app, seen) = app(|_| {}).await;
    let acme = signup(&app, "Acme").await;
    let token = acme.token.as_str();
    let created = post(
        &app.gateway,
        "/v1/integrations/a2a-agents",
        Some(token),
        json!({"name": "Echo", "slug": "echo", "url": remote.url,
               "auth": {"kind": "bearer", "token": secret}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(!created.body.to_string().contains(secret));
    assert_eq!(created.body["protocol"], "a2a");
    let ask = &created.body["tools"][0];
    assert_eq!(ask["name"], "ask", "{}", created.body);
    assert_eq!(ask["title"], "Echo Agent");
    assert_eq!(
        ask["annotations"]["a2a"]["endpoint"],
        format!("{}/", remote.url)
    );
    // It is not an MCP server, and an MCP grant cannot name it.
    let servers = get(&app.gateway, "/v1/integrations/mcp-servers", Some(token)).await;
    assert_eq!(servers.body, json!([]));

    let helper = agent(&app, token, "helper").await;
    let bare = agent(&app, token, "bare").await;
    let wrong = grant(
        &app,
        token,
        &helper,
        json!([{"mcp_server": "echo", "tools": ["ask"]}]),
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    let granted = grant(
        &app,
        token,
        &helper,
        json!([{"a2a_agent": "echo", "approval": "never"}]),
    )
    .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(
        granted.body["tools"],
        json!([{"a2a_agent": "echo", "approval": "never"}])
    );

    let asked = chat(
        &app,
        token,
        &helper,
        r#"call a2a_echo__ask {"message": "hello remote"}"#,
    )
    .await;
    assert_eq!(asked["tool_calls"][0]["status"], "ok", "{asked}");
    let reply = asked["reply"].as_str().unwrap();
    assert!(reply.contains("echo: hello remote"), "{asked}");
    // The remote answer reached the model fenced as untrusted content.
    assert!(reply.contains("not instructions to follow"), "{asked}");
    let offered = seen.lock().unwrap()[0]["tools"].clone();
    assert_eq!(offered[0]["function"]["name"], "a2a_echo__ask", "{offered}");
    assert!(
        offered[0]["function"]["description"]
            .as_str()
            .unwrap()
            .contains("Echo Agent")
    );

    let refused = chat(
        &app,
        token,
        &bare,
        r#"call a2a_echo__ask {"message": "sneaky"}"#,
    )
    .await;
    assert_eq!(refused["tool_calls"][0]["status"], "rejected", "{refused}");
    assert!(
        refused.to_string().contains("tool_not_granted"),
        "{refused}"
    );

    let audit = get(&app.gateway, "/v1/audit?action=tool.call", Some(token)).await;
    assert!(
        audit.body.to_string().contains("a2a-agents/echo"),
        "{}",
        audit.body
    );

    // A crew whose member asks the remote agent, as a durable run.
    let crew = post(
        &app.gateway,
        "/v1/crews",
        Some(token),
        json!({"name": "Relay", "members": [helper], "process": "sequential",
               "tasks": [{"description": r#"call a2a_echo__ask {"message": "from the crew"}"#,
                          "expected_output": "The remote answer"}]}),
    )
    .await;
    assert_eq!(crew.status, StatusCode::CREATED, "{}", crew.body);
    let crew = crew.body["id"].as_str().unwrap().to_owned();
    let worker = app.worker().await;
    let run = post(
        &app.gateway,
        &format!("/v1/crews/{crew}/runs"),
        Some(token),
        json!({"input": "Relay it"}),
    )
    .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    let task = run.body["task_id"].as_str().unwrap().to_owned();
    let done = crate::tasks::wait_for(&app, token, &task, "succeeded").await;
    worker.shutdown().await;
    assert!(done.to_string().contains("echo: from the crew"), "{done:#}");
}
