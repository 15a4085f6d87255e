//! Knowledge uploads, passed through to the gateway with the user's token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::session::{FORM_EXPIRED, forbidden};
use crate::api::{Portal, Session};
use crate::session::CsrfToken;

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    collection: String,
    csrf: String,
}

/// The largest file the portal passes on (the gateway has its own limit).
const UPLOAD_LIMIT: usize = 64 * 1024 * 1024;

/// `POST /dashboard/agents/{agent}/upload?collection=…&csrf=…`: a knowledge upload, passed
/// through to the gateway as it came (multipart, field `file`); then back to the agent page,
/// which follows the document's ingestion.
pub(super) async fn upload(
    Path(agent): Path<String>,
    Query(query): Query<UploadQuery>,
    State(portal): State<Arc<Portal>>,
    session: Option<Session>,
    csrf: CsrfToken,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(session) = session else {
        return Redirect::to("/login").into_response();
    };
    if !csrf.accepts(&query.csrf) {
        return forbidden(FORM_EXPIRED);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match axum::body::to_bytes(body, UPLOAD_LIMIT).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "file too large").into_response(),
    };
    let url = format!(
        "{}/v1/knowledge/collections/{}/documents",
        portal.config.gateway_url.trim_end_matches('/'),
        crate::api::encode(&query.collection)
    );
    let reply = portal
        .http
        .post(url)
        .bearer_auth(&session.token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await;
    let back = format!("/dashboard/agents/{}", crate::api::encode(&agent));
    Redirect::to(&after_upload(&back, reply).await).into_response()
}

/// Back to the agent page: with the new document to follow, or with why it was refused.
async fn after_upload(back: &str, reply: Result<reqwest::Response, reqwest::Error>) -> String {
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            return format!(
                "{back}?upload_error={}#knowledge",
                crate::api::encode(&format!("the gateway could not be reached ({e})"))
            );
        }
    };
    let ok = reply.status().is_success();
    let value: Value = reply.json().await.unwrap_or(Value::Null);
    if ok {
        format!(
            "{back}?document={}#knowledge",
            crate::api::encode(value["document_id"].as_str().unwrap_or_default())
        )
    } else {
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("the upload was refused");
        format!(
            "{back}?upload_error={}#knowledge",
            crate::api::encode(message)
        )
    }
}
