//! Brain as an A2A client: a remote agent's card, and one question to it (`SendMessage`, then
//! `GetTask` until its task settles), over the egress-guarded HTTP client, bounded in time
//! and size. Answers come back in the shape of an MCP tool result (`content`, `isError`), so a
//! remote agent is governed like any tool of a tenant's tool sources.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::wire::{self, AgentCard, Message, Part, Role, SendResult, Task, TaskState, text_of};
use crate::mcp::client::{ClientError, Endpoint, EndpointAuth, Limits};

/// How often a task that has not settled is looked at again.
const POLL: Duration = Duration::from_millis(300);

/// Where the card of the agent at `url` is: `url` itself when it names a JSON file, else
/// `<url>/.well-known/agent-card.json`.
pub(crate) fn card_url(url: &str) -> String {
    if url.ends_with(".json") {
        url.to_owned()
    } else {
        format!("{}/{}", url.trim_end_matches('/'), wire::CARD_PATH)
    }
}

fn with_auth(request: reqwest::RequestBuilder, auth: &EndpointAuth) -> reqwest::RequestBuilder {
    match auth {
        EndpointAuth::None => request,
        EndpointAuth::Bearer(token) => request.bearer_auth(token),
        EndpointAuth::Header(name, value) => request.header(name, value),
    }
}

fn connect_error(e: &reqwest::Error) -> ClientError {
    ClientError::Connect {
        refused: brain_auth::egress::refusal(e),
        message: e.to_string(),
    }
}

/// The JSON body of `request`'s answer, refused past `limits.max_response_bytes`.
async fn json_body(request: reqwest::RequestBuilder, limits: Limits) -> Result<Value, ClientError> {
    let mut response = request.send().await.map_err(|e| connect_error(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ClientError::Protocol(format!("HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| connect_error(&e))? {
        if body.len() + chunk.len() > limits.max_response_bytes {
            return Err(ClientError::Protocol(format!(
                "the answer is larger than {} bytes",
                limits.max_response_bytes
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(format!("not JSON: {e}")))
}

/// Runs `work` within `limits.timeout`.
async fn bounded<T>(
    limits: Limits,
    work: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| ClientError::TimedOut(limits.timeout.as_secs()))?
}

/// The card of the agent at `endpoint.url` (its base URL or its card's URL).
pub(crate) async fn fetch_card(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
) -> Result<AgentCard, ClientError> {
    let request = with_auth(http.get(card_url(&endpoint.url)), &endpoint.auth);
    let card = bounded(limits, json_body(request, limits)).await?;
    serde_json::from_value(card)
        .map_err(|e| ClientError::Protocol(format!("not an A2A agent card: {e}")))
}

/// One JSON-RPC call to the agent's interface at `endpoint.url`; its `result`.
async fn call(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
    method: &str,
    params: impl Serialize,
) -> Result<Value, ClientError> {
    let body = json!({"jsonrpc": "2.0", "id": Uuid::now_v7().to_string(), "method": method,
                      "params": params});
    let request = http
        .post(&endpoint.url)
        .header(wire::VERSION_HEADER, wire::PROTOCOL_VERSION)
        .json(&body);
    let mut answer = json_body(with_auth(request, &endpoint.auth), limits).await?;
    if let Some(error) = answer.get("error") {
        return Err(ClientError::Protocol(format!(
            "the agent answered error {}: {}",
            error["code"],
            error["message"].as_str().unwrap_or_default()
        )));
    }
    Ok(answer["result"].take())
}

fn parsed<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Protocol(format!("{what}: {e}")))
}

/// Asks the agent `text` and waits for its answer, as an MCP-shaped tool result.
pub(crate) async fn ask(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    limits: Limits,
    text: &str,
) -> Result<Value, ClientError> {
    let message = Message {
        message_id: Uuid::now_v7().to_string(),
        role: Role::User,
        parts: vec![Part::text(text)],
        context_id: None,
        task_id: None,
    };
    let exchange = async {
        let result = call(
            http,
            endpoint,
            limits,
            "SendMessage",
            json!({"message": message}),
        )
        .await?;
        let mut task = match parsed::<SendResult>(result, "not a SendMessage result")? {
            SendResult::Message(message) => return Ok(tool_result(text_of(&message.parts), false)),
            SendResult::Task(task) => task,
        };
        while !task.status.state.is_settled() {
            tokio::time::sleep(POLL).await;
            let result = call(http, endpoint, limits, "GetTask", json!({"id": task.id})).await?;
            task = parsed::<Task>(result, "not a task")?;
        }
        Ok(settled(&task))
    };
    bounded(limits, exchange).await
}

/// A settled task as a tool result: its answer, or why there is none.
fn settled(task: &Task) -> Value {
    let status = task
        .status
        .message
        .as_ref()
        .map(|m| text_of(&m.parts))
        .unwrap_or_default();
    match task.status.state {
        TaskState::Completed => tool_result(task.answer(), false),
        TaskState::InputRequired | TaskState::AuthRequired => tool_result(
            format!("the remote agent is waiting for input or authorisation: {status}"),
            true,
        ),
        state => tool_result(
            format!("the remote agent's task ended as {state:?}: {status}"),
            true,
        ),
    }
}

fn tool_result(text: String, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}
