//! Edge protections: rate limits per tenant and per API key, body limits, security headers
//! and CORS.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use crate::harness::{TestApp, get, post};

async fn owner_token(app: &TestApp, name: &str) -> String {
    let email = format!("owner-{}@limits.test", uuid::Uuid::new_v4().simple());
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": "correct horse battery staple"}),
    )
    .await;
    reply.body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_api_key_gets_exactly_its_rate_then_429_with_retry_after() {
    let app = TestApp::with_config(|c| c.rate_limit_api_key_per_minute = 5).await;
    let owner = owner_token(&app, "Limits").await;
    let key = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&owner),
        json!({"name": "hot", "scopes": ["audit:read"]}),
    )
    .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let reply = get(&app.gateway, "/v1/audit", Some(&key)).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(reply.body["error"]["code"], "rate_limited");
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let retry_after: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The owner's own requests count against the tenant, not the key: still fine.
    assert_eq!(
        get(&app.gateway, "/v1/audit", Some(&owner)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_tenant_is_limited_across_all_its_callers() {
    let app = TestApp::with_config(|c| c.rate_limit_tenant_per_minute = 3).await;
    let owner = owner_token(&app, "Tenant limit").await;
    let other = owner_token(&app, "Other tenant").await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                get(&app.gateway, "/v1/audit", Some(&owner))
                    .await
                    .status
                    .as_u16(),
            );
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(
        get(&app.gateway, "/v1/audit", Some(&other)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_and_nothing_is_written() {
    let app = TestApp::with_config(|c| c.max_body_bytes = 1024).await;
    assert_eq!(app.config.max_body_bytes, 1024);
    let owner = owner_token(&app, "Bodies").await;
    let big = json!({"name": "x".repeat(4096), "scopes": ["chat"]});
    let reply = post(&app.gateway, "/v1/integrations/api-keys", Some(&owner), big).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    let keys = get(&app.gateway, "/v1/integrations/api-keys", Some(&owner)).await;
    assert_eq!(keys.body["api_keys"], json!([]));
}

/// A chat message is bounded twice: a 1 MB one by the body limit, one under the body limit
/// but over the message limit by its own 413 — before any model or conversation is touched.
#[tokio::test]
async fn oversized_chat_messages_are_413_and_start_no_conversation() {
    let app = TestApp::new().await;
    let owner = owner_token(&app, "Long Talkers").await;
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(&owner),
        json!({"name": "Listener", "role": "Assistant", "goal": "Listen",
               "model": "openai:gpt-4o-mini"}),
    )
    .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    let chat = format!("/v1/agents/{}/chat", agent.body["id"].as_str().unwrap());
    let limit = brain_gateway::api::MAX_MESSAGE_CHARS;
    for (message, code) in [
        ("x".repeat(1024 * 1024), None),
        ("é".repeat(limit + 1), Some("message_too_large")),
    ] {
        let reply = post(
            &app.gateway,
            &chat,
            Some(&owner),
            json!({"message": message}),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            reply.body
        );
        if let Some(code) = code {
            assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
        }
    }
    let conversations = get(
        &app.gateway,
        &format!("{}/conversations", chat.trim_end_matches("/chat")),
        Some(&owner),
    )
    .await;
    assert_eq!(conversations.body["conversations"], json!([]));
}

#[tokio::test]
async fn security_headers_and_cors_for_the_portal_only() {
    let app = TestApp::new().await;
    let reply = get(&app.gateway, "/healthz", None).await;
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert!(reply.headers.contains_key("content-security-policy"));

    let preflight = |origin: &'static str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/audit")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app
        .gateway
        .clone()
        .oneshot(preflight("http://127.0.0.1:3003"))
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3003"
    );
    let refused = app
        .gateway
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    // The allowed origin is fixed: a browser on another origin sees a mismatch and refuses.
    let granted = refused.headers().get("access-control-allow-origin");
    assert!(
        granted.is_none_or(|o| o == "http://127.0.0.1:3003"),
        "{granted:?}"
    );
}

/// A login through the real portal's login form from browser address `from` (behind a
/// proxy the deployment trusts, which names it in `X-Forwarded-For`): whether it signed in,
/// and the message shown.
async fn portal_login(
    portal: &str,
    from: std::net::IpAddr,
    email: &str,
    password: &str,
) -> (bool, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{portal}/login"))
        .header("x-forwarded-for", from.to_string())
        .send()
        .await
        .unwrap();
    let csrf = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("brain_csrf="))
        .and_then(|c| c.split(';').next())
        .expect("the login page sets a CSRF cookie")
        .to_owned();
    let reply = http
        .post(format!("{portal}/api/login"))
        .header("x-forwarded-for", from.to_string())
        .header(reqwest::header::ORIGIN, portal)
        .header(reqwest::header::COOKIE, format!("brain_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let signed_in = reply
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("brain_access=") && !c.starts_with("brain_access=;"));
    let body: serde_json::Value = reply.json().await.unwrap_or_default();
    (
        signed_in,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Every portal user reaches the auth service from the portal's address; the portal names
/// the browser's, so one address guessing passwords is stopped without stopping anyone else
/// — including the owner of the account it guesses at.
#[tokio::test]
async fn junk_portal_logins_from_one_address_do_not_lock_out_another() {
    let app = TestApp::new().await;
    let brain = crate::process::BrainProcess::start(
        &app.db,
        &["serve"],
        &[("BRAIN_LOGIN_FAILURES_PER_IP", "50".to_owned())],
    )
    .await;
    let email = format!(
        "owner-{}@portal-throttle.test",
        uuid::Uuid::new_v4().simple()
    );
    let signup = reqwest::Client::new()
        .post(format!("{}/v1/auth/signup", brain.auth))
        .json(&json!({"tenant_name": "Throttled", "email": email,
                      "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    // Documentation addresses, fresh per run (the counters outlive a run in Redis).
    let id = uuid::Uuid::new_v4().into_bytes();
    let attacker = std::net::IpAddr::from([203, 0, 113, id[0]]);
    let user = std::net::IpAddr::from([198, 51, 100, id[1]]);

    let mut last = String::new();
    for n in 0..60 {
        // Half at the owner's account, half at made-up ones.
        let at_owner = n % 2 == 0;
        let target = if at_owner {
            email.clone()
        } else {
            format!("nobody-{n}@portal-throttle.test")
        };
        let (signed_in, message) =
            portal_login(&brain.portal, attacker, &target, "wrong password 123").await;
        assert!(!signed_in, "a wrong password signed in");
        if at_owner {
            last = message;
        }
    }
    assert!(last.contains("too many failed logins"), "{last}");
    // The attacker's address is stopped even with the right password…
    let (signed_in, message) = portal_login(
        &brain.portal,
        attacker,
        &email,
        "correct horse battery staple",
    )
    .await;
    assert!(!signed_in && message.contains("too many"), "{message}");
    // …while the owner, from their own address, signs in at once.
    let (signed_in, message) =
        portal_login(&brain.portal, user, &email, "correct horse battery staple").await;
    assert!(signed_in, "the owner was locked out: {message}");
}

/// A task that stays queued (no worker runs here), for event streams to watch.
async fn queued_task(app: &TestApp, token: &str) -> String {
    let agent = post(
        &app.gateway,
        "/v1/agents",
        Some(token),
        json!({"name": "Watcher", "role": "Assistant", "goal": "Wait",
               "model": "openai:gpt-4o-mini"}),
    )
    .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    let agent = agent.body["id"].as_str().unwrap();
    let task = post(
        &app.gateway,
        &format!("/v1/agents/{agent}/tasks"),
        Some(token),
        json!({"input": "wait"}),
    )
    .await;
    assert_eq!(task.status, StatusCode::ACCEPTED, "{}", task.body);
    task.body["task_id"].as_str().unwrap().to_owned()
}

async fn open_stream(
    app: &TestApp,
    token: &str,
    task: &str,
    last_event_id: Option<&str>,
) -> axum::response::Response {
    let mut request = Request::builder()
        .uri(format!("/v1/tasks/{task}/events"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    app.gateway
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn five_hundred_event_streams_of_one_tenant_meet_its_cap_and_others_keep_streaming() {
    let app = TestApp::with_config(|c| {
        c.max_streams_per_tenant = 20;
        c.rate_limit_tenant_per_minute = 0;
    })
    .await;
    let a = owner_token(&app, "Streams A").await;
    let task_a = queued_task(&app, &a).await;

    let opened =
        futures::future::join_all((0..500).map(|_| open_stream(&app, &a, &task_a, None))).await;
    let (open, refused): (Vec<_>, Vec<_>) = opened
        .into_iter()
        .partition(|r| r.status() == StatusCode::OK);
    assert_eq!(open.len(), 20);
    assert_eq!(refused.len(), 480);
    // The open streams share the instance's one Redis reader connection.
    let redis = redis::Client::open(std::env::var("REDIS_URL").unwrap()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut redis)
        .await
        .unwrap();
    let reader = format!("name={}", app.app.state.events.reader_name());
    let readers = clients
        .lines()
        .filter(|line| line.split(' ').any(|field| field == reader))
        .count();
    assert_eq!(readers, 1, "{clients}");
    for reply in refused {
        assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(reply.headers().contains_key("retry-after"));
        let body = axum::body::to_bytes(reply.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    }

    // Another tenant streams and works as usual meanwhile.
    let b = owner_token(&app, "Streams B").await;
    let task_b = queued_task(&app, &b).await;
    let other = open_stream(&app, &b, &task_b, None).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(
        get(&app.gateway, "/v1/agents", Some(&b)).await.status,
        StatusCode::OK
    );
    // The first tenant's places come back as its streams close.
    drop(open);
    let again = open_stream(&app, &a, &task_a, None).await;
    assert_eq!(again.status(), StatusCode::OK);
}

/// The `id:` lines and event names of an SSE body, in order.
fn sse_ids_and_names(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            Some((field("id:"), field("event:")?))
        })
        .collect()
}

#[tokio::test]
async fn an_event_stream_ends_after_its_lifetime_and_resumes_after_the_last_event_id() {
    use brain_tasks::{RunEvent, TaskStatus};
    let app = TestApp::with_config(|c| c.stream_max_secs = 1).await;
    let token = owner_token(&app, "Resume").await;
    let task = queued_task(&app, &token).await;
    let task_id: uuid::Uuid = task.parse().unwrap();
    let events = &app.app.state.events;
    let running = RunEvent::Status {
        task_id,
        status: TaskStatus::Running,
    };
    events.publish(&[task_id], &running).await;
    events.publish(&[task_id], &running).await;

    // The stream ends by itself after its lifetime (the body completes).
    let started = std::time::Instant::now();
    let first = open_stream(&app, &token, &task, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let body = axum::body::to_bytes(first.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let seen = sse_ids_and_names(&String::from_utf8_lossy(&body));
    let names: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["snapshot", "status", "status"], "{seen:?}");
    let last_id = seen[2].0.clone().expect("run events carry their stream id");
    assert_ne!(seen[1].0, seen[2].0);

    // Reconnecting with the last id seen: the snapshot, then only what came after.
    let done = RunEvent::Done {
        task_id,
        status: TaskStatus::Cancelled,
    };
    events.publish(&[task_id], &done).await;
    let resumed = open_stream(&app, &token, &task, Some(&last_id)).await;
    let body = axum::body::to_bytes(resumed.into_body(), 1 << 20)
        .await
        .unwrap();
    let seen = sse_ids_and_names(&String::from_utf8_lossy(&body));
    let names: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["snapshot", "done"], "{seen:?}");
    // Nonsense in Last-Event-ID reads from the start.
    let garbage = open_stream(&app, &token, &task, Some("../../etc")).await;
    let body = axum::body::to_bytes(garbage.into_body(), 1 << 20)
        .await
        .unwrap();
    let seen = sse_ids_and_names(&String::from_utf8_lossy(&body));
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// Deliveries failing their signature are counted per source address and per webhook; past
/// the limit they are answered 429 before the endpoint lookup, the Vault read and the failure
/// counter's UPDATE — while other addresses' genuine deliveries still get through.
#[tokio::test]
async fn failed_webhook_signatures_are_rate_limited_before_any_secret_read() {
    use crate::tasks::{shopify_delivery, shopify_signature};
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;

    let app = TestApp::with_config(|c| {
        c.hook_failures_per_address = 5;
        c.hook_failures_per_webhook = 12;
    })
    .await;
    let owner = owner_token(&app, "Hooked Co").await;
    let secret = "shpss_rate_limit_secret";
    let created = post(
        &app.gateway,
        "/v1/integrations/webhooks",
        Some(&owner),
        json!({"connector": "shopify", "events": ["orders/create"], "secret": secret}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let hook = format!("/hooks/{}", created.body["id"].as_str().unwrap());
    let order = |n: u64| json!({"id": n, "email": "ada@example.com", "total_price": "10.00"});
    // Documentation addresses of this run only (the counters live in the shared Redis).
    let run = uuid::Uuid::new_v4().as_u128() as u16;
    let addr = |host: u16| format!("[2001:db8:{run:x}::{host:x}]:443");
    let from = |peer: String, request: Request<Body>| {
        let mut request = request;
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        crate::harness::send(&app.gateway, request)
    };
    let failed_count = || async {
        sqlx::query_scalar::<_, i64>("SELECT deliveries_failed FROM webhooks")
            .fetch_one(&app.db.owner)
            .await
            .unwrap()
    };

    // One address forging: five 401s (each counted on the webhook), then 429s that cost
    // nothing — the counter stays at five.
    let mut statuses = Vec::new();
    for n in 0..8 {
        let forged = shopify_delivery(&hook, "AAAA", &format!("f-{n}"), &order(n));
        let reply = from(addr(7), forged).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.body["error"]["code"], "too_many_failed_deliveries");
            assert!(reply.headers.contains_key("retry-after"));
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    assert_eq!(failed_count().await, 5);
    // Even a genuine delivery from that address waits out the window.
    let genuine = order(100);
    let signature = shopify_signature(secret, genuine.to_string().as_bytes());
    let blocked = from(
        addr(7),
        shopify_delivery(&hook, &signature, "g-0", &genuine),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);

    // The platform, from another address, still delivers.
    let delivered = from(
        addr(20),
        shopify_delivery(&hook, &signature, "g-1", &genuine),
    )
    .await;
    assert_eq!(delivered.status, StatusCode::OK, "{}", delivered.body);
    assert_eq!(delivered.body["received"], 1);

    // Probing unknown webhooks counts against the address too.
    for n in 0..5 {
        let probe = shopify_delivery(
            &format!("/hooks/{}", uuid::Uuid::new_v4()),
            "AAAA",
            &format!("p-{n}"),
            &order(300),
        );
        assert_eq!(from(addr(50), probe).await.status, StatusCode::NOT_FOUND);
    }
    let probe = shopify_delivery(&hook, &signature, "p-x", &genuine);
    assert_eq!(
        from(addr(50), probe).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Forgers spread over many addresses meet the webhook's own limit (12).
    for n in 0..10u8 {
        let forged = shopify_delivery(&hook, "AAAA", &format!("s-{n}"), &order(200));
        from(addr(1000 + u16::from(n)), forged).await;
    }
    assert_eq!(failed_count().await, 12);
    let spread = from(
        addr(1099),
        shopify_delivery(&hook, "AAAA", "s-x", &order(201)),
    )
    .await;
    assert_eq!(spread.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(failed_count().await, 12);

    // Nothing forged was stored; the service still answers.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&app.db.owner)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    assert_eq!(
        get(&app.gateway, "/v1/integrations/webhooks", Some(&owner))
            .await
            .status,
        StatusCode::OK
    );
}
