//! The OpenAI-compatible surface: `/v1/chat/completions`, `/v1/responses` and `/v1/models`
//! in OpenAI's own wire types (async-openai's), so any OpenAI SDK talks to an agent as to a
//! model named `agent:<slug>`. Each request is one turn of that agent in a new conversation
//! (or, with `previous_response_id`, the one a response answered in — `chain.rs`): the agent
//! keeps its own instructions, tools, knowledge and grants, so only the last user
//! message is taken from the request. Errors have OpenAI's shape (`{"error": {message, type,
//! param, code}}`) with Brain's code from the catalogue as `code`.

mod chain;
mod chat;
mod responses;
mod structured;

use async_openai::error::{ApiError as WireError, WrappedError};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use brain_agents::{AgentError, AgentSpec, TurnInput};
use brain_auth::{Authorized, Principal, require};
use brain_runtime::RuntimeError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, Code};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat::completions))
        .routes(routes!(responses::create))
        .routes(routes!(models))
        // Errors answered before a handler runs (credentials, scopes, rate limits) too.
        .route_layer(axum::middleware::map_response(in_openai_shape))
}

/// Rewrites an error answered in Brain's shape (`{"error": {code, message}}`, from the
/// extractors that run before a handler) into OpenAI's, keeping status and headers.
async fn in_openai_shape(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let brain: Option<(String, String)> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|v| v["error"].get("type").is_none())
        .and_then(|v| {
            let code = v["error"]["code"].as_str()?.to_owned();
            let message = v["error"]["message"].as_str()?.to_owned();
            Some((code, message))
        });
    let Some((code, message)) = brain else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let wire = OpenAiError::wire(&code, status, message, None);
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&wire).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// An error in OpenAI's shape, with the status and `code` of Brain's catalogue; `param`
/// names the request field at fault when there is one.
pub(super) struct OpenAiError {
    error: ApiError,
    param: Option<&'static str>,
}

impl OpenAiError {
    /// 400 `invalid_body` about the request field `param`.
    fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            error: ApiError::new(Code::InvalidBody, message),
            param: Some(param),
        }
    }

    fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// The wire form, also sent as an SSE event when a streamed turn fails.
    fn wire(code: &str, status: StatusCode, message: String, param: Option<&str>) -> WrappedError {
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            500.. => "server_error",
            _ => "invalid_request_error",
        };
        WrappedError {
            error: WireError {
                message,
                r#type: Some(kind.to_owned()),
                param: param.map(str::to_owned),
                code: Some(code.to_owned()),
                misalignment: None,
            },
        }
    }
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        Self { error, param: None }
    }
}

impl From<RuntimeError> for OpenAiError {
    fn from(error: RuntimeError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let (status, code) = (self.error.status(), self.error.code());
        let body = Self::wire(
            code.as_str(),
            status,
            self.error.message().to_owned(),
            self.param,
        );
        // Brain's own answer keeps its headers (Retry-After) and the logged cause.
        let (mut parts, _) = self.error.into_response().into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        if code == Code::InvalidModelOutput {
            // The agent already had its retries; OpenAI SDKs would repeat a 5xx whole.
            parts
                .headers
                .insert("x-should-retry", header::HeaderValue::from_static("false"));
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Response::from_parts(parts, Body::from(body))
    }
}

/// A JSON body in OpenAI's types; a body that is not one is a 400 in OpenAI's shape.
/// Unknown fields are ignored, as OpenAI ignores them.
pub(super) struct OpenAiJson<T>(pub T);

impl<T, S> FromRequest<S> for OpenAiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = OpenAiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OpenAiError> {
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// The agent a request's `model` (`agent:<slug>`) names, in the caller's tenant.
async fn agent_for(
    state: &AppState,
    principal: &Principal,
    model: &str,
) -> Result<AgentSpec, OpenAiError> {
    let unknown = || {
        OpenAiError::from(ApiError::new(
            Code::NotFound,
            format!(
                "The model `{model}` does not exist: use `agent:<slug>` (GET /v1/models lists them)"
            ),
        ))
        .with_param("model")
    };
    let slug = model.strip_prefix("agent:").ok_or_else(unknown)?;
    match state
        .runtime
        .get_agent_by_slug(principal.tenant, slug)
        .await
    {
        Ok(spec) => Ok(spec),
        Err(RuntimeError::Agent(AgentError::NotFound)) => Err(unknown()),
        Err(e) => Err(e.into()),
    }
}

/// A turn of one message, `param` being where the message came from in the request.
fn turn(
    principal: &Principal,
    message: Option<String>,
    param: &'static str,
) -> Result<TurnInput, OpenAiError> {
    let message = message
        .ok_or_else(|| OpenAiError::invalid(param, format!("`{param}` holds no user message")))?;
    super::agents::turn_input(principal, message, None).map_err(|e| {
        let error = match e.code() {
            // The turn's own field is `message`; here it is `param`.
            Code::ValidationFailed => ApiError::new(
                Code::ValidationFailed,
                format!("{param}: the user message must not be empty"),
            ),
            _ => e,
        };
        OpenAiError::from(error).with_param(param)
    })
}

/// The status and the message a client may see of a turn's streamed error: a 500 or 503
/// shows its code's description, never the cause (as [`ApiError`] answers do).
fn stream_error(code: &str, message: String) -> (StatusCode, String) {
    let Some(code) = Code::from_wire(code) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal.description().to_owned(),
        );
    };
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code.hides_cause() {
        return (status, code.description().to_owned());
    }
    (status, message)
}

/// Unix seconds now, in the width the wire types use.
fn now() -> u32 {
    u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX)
}

/// Token counts in the wire types' width.
fn tokens(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The tenant's agents as OpenAI models `agent:<slug>` (OpenAI's `list` of `model`).
/// Needs `agents:read`.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, description = "OpenAI's model list: each agent as \
        `{id: \"agent:<slug>\", object: \"model\", created, owned_by: \"brain\"}`",
        body = Object)))]
async fn models(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<async_openai::types::models::ListModelResponse>, OpenAiError> {
    use async_openai::types::models::{ListModelResponse, Model};
    let agents = state.runtime.list_agents(auth.principal().tenant).await?;
    let data = agents
        .iter()
        .map(|a| Model {
            id: format!("agent:{}", a.slug.as_str()),
            object: "model".to_owned(),
            created: u32::try_from(a.created_at.timestamp()).unwrap_or_default(),
            owned_by: "brain".to_owned(),
            ..Model::default()
        })
        .collect();
    Ok(Json(ListModelResponse {
        object: "list".to_owned(),
        data,
    }))
}
