//! Chat turns and task events, relayed between the browser and the gateway so the user's
//! token never reaches the page's script.

use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::CHAT_FORM_LIMIT;
use super::session::{FORM_EXPIRED, forbidden};
use crate::api::{Portal, Session};
use crate::session::CsrfToken;

/// One chat turn, as the page's script (JSON) or a plain form (urlencoded) sends it.
#[derive(Deserialize, Default)]
pub(super) struct ChatForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    conversation_id: String,
    #[serde(default)]
    csrf: String,
}

fn chat_body(form: &ChatForm) -> Value {
    let mut body = json!({ "message": form.message });
    if !form.conversation_id.is_empty() {
        body["conversation_id"] = json!(form.conversation_id);
    }
    body
}

fn chat_url(portal: &Portal, agent: &str) -> String {
    format!(
        "{}/v1/agents/{}/chat",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(agent)
    )
}

/// `POST /dashboard/chat/{agent}/stream`: one chat turn, relayed from the gateway's SSE
/// stream as it comes, so the user's token never reaches the page's script.
pub(super) async fn chat_stream(
    Path(agent): Path<String>,
    State(portal): State<Arc<Portal>>,
    session: Session,
    csrf: CsrfToken,
    body: Body,
) -> Response {
    // A body that is not a chat turn carries no CSRF token, and is refused as such.
    let body = axum::body::to_bytes(body, CHAT_FORM_LIMIT)
        .await
        .unwrap_or_default();
    let form: ChatForm = serde_json::from_slice(&body).unwrap_or_default();
    if !csrf.accepts(&form.csrf) {
        return forbidden("This page has expired; reload it and try again.");
    }
    let upstream = portal
        .http
        .post(chat_url(&portal, &agent))
        .bearer_auth(&session.token)
        .header(header::ACCEPT, "text/event-stream")
        .json(&chat_body(&form))
        .send()
        .await;
    relay_events(upstream).await
}

/// Answers with the gateway's event stream as it arrives, or with its error (JSON, same
/// status), or 502 when the gateway could not be reached.
async fn relay_events(upstream: Result<reqwest::Response, reqwest::Error>) -> Response {
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_GATEWAY, format!("gateway unreachable: {e}")).into_response();
        }
    };
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::OK);
    if !status.is_success() {
        let text = upstream.text().await.unwrap_or_default();
        return (status, [(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        relay(upstream),
    )
        .into_response()
}

/// The body of an upstream response, passed on chunk by chunk as it arrives.
fn relay(upstream: reqwest::Response) -> Body {
    Body::from_stream(futures::stream::unfold(
        Some(upstream),
        |state| async move {
            let mut upstream = state?;
            match upstream.chunk().await {
                Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(upstream))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        },
    ))
}

/// How long one relayed event stream may stay open; the browser's `EventSource` then
/// reconnects (and is sent a fresh snapshot).
const EVENTS_RELAY_LIMIT: Duration = Duration::from_secs(30 * 60);

/// `GET /dashboard/tasks/{task}/events`: a task's run events (`snapshot`, `step`, `status`,
/// `child_done`, `done`), relayed from the gateway's SSE stream as they come, so the page's
/// script follows a run without ever holding the user's token.
pub(super) async fn task_events(
    Path(task): Path<String>,
    State(portal): State<Arc<Portal>>,
    session: Session,
) -> Response {
    let url = format!(
        "{}/v1/tasks/{}/events",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(&task)
    );
    let upstream = portal
        .http
        .get(url)
        .bearer_auth(&session.token)
        .header(header::ACCEPT, "text/event-stream")
        .timeout(EVENTS_RELAY_LIMIT)
        .send()
        .await;
    relay_events(upstream).await
}

/// `POST /dashboard/chat/{agent}/send`: the same turn for a browser without JavaScript —
/// waits for the whole reply, then shows the conversation.
pub(super) async fn chat_send(
    Path(agent): Path<String>,
    State(portal): State<Arc<Portal>>,
    session: Option<Session>,
    csrf: CsrfToken,
    Form(form): Form<ChatForm>,
) -> Response {
    let Some(session) = session else {
        return Redirect::to("/login").into_response();
    };
    if !csrf.accepts(&form.csrf) {
        return forbidden(FORM_EXPIRED);
    }
    let reply = portal
        .http
        .post(chat_url(&portal, &agent))
        .bearer_auth(&session.token)
        .json(&chat_body(&form))
        .send()
        .await;
    let conversation = match reply {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["conversation_id"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        _ => form.conversation_id.clone(),
    };
    Redirect::to(&format!(
        "/dashboard/chat/{}?c={}",
        crate::api::encode(&agent),
        crate::api::encode(&conversation)
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::extract::{FromRequest, Request};

    use super::*;

    async fn decoded(body: &'static str) -> Result<ChatForm, StatusCode> {
        let request = Request::post("/dashboard/chat/a/send")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Form::<ChatForm>::from_request(request, &())
            .await
            .map(|Form(form)| form)
            .map_err(|rejection| rejection.into_response().status())
    }

    #[tokio::test]
    async fn form_bodies_decode() {
        let form = decoded("message=Hello+there%21&csrf=abc&conversation_id=")
            .await
            .unwrap();
        assert_eq!(form.message, "Hello there!");
        assert_eq!(form.csrf, "abc");
        assert_eq!(form.conversation_id, "");
        let form = decoded("csrf=abc&unknown=1").await.unwrap();
        assert!(form.message.is_empty() && form.conversation_id.is_empty());
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_form_is_refused() {
        let request = Request::post("/dashboard/chat/a/send")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let refused = Form::<ChatForm>::from_request(request, &())
            .await
            .err()
            .map(|r| r.into_response().status());
        assert_eq!(refused, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
}
