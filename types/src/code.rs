//! The catalogue of error codes: every `error.code` the API answers with, its HTTP status and
//! what it means. Library errors name a [`Code`] per variant, so a code and its status are
//! decided once, here, rather than in each handler.

use serde::{Serialize, Serializer};

/// Declares [`Code`] with its wire string, HTTP status and description, and the list of all.
macro_rules! catalogue {
    ($($(#[$doc:meta])* $variant:ident = ($wire:literal, $status:literal, $about:literal),)+) => {
        /// A stable, snake_case error code with one HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $variant,)+
        }

        impl Code {
            /// Every code, in catalogue order (for documentation and tests).
            pub const ALL: &[Code] = &[$(Code::$variant,)+];

            /// The code as the API sends it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $wire,)+
                }
            }

            /// The HTTP status an API answer with this code has.
            pub const fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)+
                }
            }

            /// One sentence on what the code means; also the message of a 500 or 503, whose
            /// cause is logged rather than shown.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Code::$variant => $about,)+
                }
            }
        }
    };
}

catalogue! {
    // The request itself.
    InvalidBody = ("invalid_body", 400, "The JSON body does not have the expected fields or types."),
    MalformedJson = ("malformed_json", 400, "The body is not valid JSON."),
    InvalidQuery = ("invalid_query", 400, "A query parameter is unknown or has the wrong type."),
    BodyRejected = ("body_rejected", 400, "The request body could not be read."),
    InvalidMultipart = ("invalid_multipart", 400, "The multipart/form-data body could not be read."),
    UnsupportedMediaType = ("unsupported_media_type", 415, "The body's content type is not one this endpoint accepts."),
    PayloadTooLarge = ("payload_too_large", 413, "The body or upload is over the size limit."),
    MessageTooLarge = ("message_too_large", 413, "The chat message is longer than a turn accepts."),
    ValidationFailed = ("validation_failed", 422, "A value is out of range or inconsistent; the message names the field."),
    NotFound = ("not_found", 404, "No such resource in this tenant (another tenant's resources look the same)."),
    Conflict = ("conflict", 409, "The resource is not in a state that allows this."),
    VersionConflict = ("version_conflict", 409, "The resource changed since the version sent in If-Match or `version`."),
    IdempotencyConflict = ("idempotency_conflict", 409, "The idempotency key was already used with different arguments."),
    InvalidIdempotencyKey = ("invalid_idempotency_key", 400, "The Idempotency-Key header is not 1 to 255 visible ASCII characters."),
    InvalidIfMatch = ("invalid_if_match", 400, "The If-Match header is not a version number."),
    IdempotencyInProgress = ("idempotency_in_progress", 409, "A call with this idempotency key is still running."),

    // Identity and access.
    Unauthorized = ("unauthorized", 401, "Credentials are missing or invalid."),
    InvalidCredentials = ("invalid_credentials", 401, "Wrong e-mail or password."),
    Forbidden = ("forbidden", 403, "The role or API-key scope does not allow this."),
    RateLimited = ("rate_limited", 429, "Too many requests; wait for Retry-After."),
    EmailTaken = ("email_taken", 409, "An account with this e-mail exists."),
    LastOwner = ("last_owner", 409, "The tenant's last owner cannot be removed or demoted."),
    TenantRequired = ("tenant_required", 409, "The account exists in several tenants; name one."),
    InvalidState = ("invalid_state", 400, "The SSO login state is missing, expired or from another browser."),
    SsoDenied = ("sso_denied", 401, "The identity provider refused the login."),
    InvalidIdToken = ("invalid_id_token", 401, "The identity provider's ID token is invalid or has no verified e-mail."),
    IdentityProviderError = ("identity_provider_error", 502, "The identity provider could not be reached or failed."),
    NoTenant = ("no_tenant", 403, "No tenant accepts this SSO identity."),
    AccountDisabled = ("account_disabled", 403, "The account is disabled."),
    IdentityConflict = ("identity_conflict", 409, "The SSO identity is linked to another account."),

    // Agents and chat.
    SlugTaken = ("slug_taken", 409, "Another agent of the tenant has this slug."),
    NameTaken = ("name_taken", 409, "Another crew of the tenant has this name."),
    BudgetExhausted = ("budget_exhausted", 429, "The agent's daily token budget is spent."),
    TenantBudgetExhausted = ("tenant_budget_exhausted", 429, "The organisation's daily token budget is spent."),
    AgentDegraded = ("agent_degraded", 409, "The agent is paused after repeated failures."),
    AgentCrashed = ("agent_crashed", 500, "The agent crashed during the turn and is being restarted; nothing of the turn was kept."),
    TooManyStreams = ("too_many_streams", 429, "The tenant has too many open event streams."),
    UnknownModel = ("unknown_model", 422, "The model reference names no provider Brain knows."),
    ModelNotConfigured = ("model_not_configured", 502, "The model's provider has no API key configured."),
    ModelUnauthorized = ("model_unauthorized", 422, "The model provider rejected the API key; set a valid one under /v1/tenant/providers."),
    ModelRateLimited = ("model_rate_limited", 429, "The model provider is rate limiting requests."),
    ContextTooLong = ("context_too_long", 413, "The prompt does not fit the model's context window."),
    ModelError = ("model_error", 502, "The model provider failed or answered something unreadable."),
    InvalidModelOutput = ("invalid_model_output", 502, "The agent's answer did not match the requested JSON format, after the allowed retries."),

    // Tool calls, as a turn's policy refuses them (fed back to the model, recorded on the run).
    ToolNotGranted = ("tool_not_granted", 403, "The agent holds no grant for the tool."),
    ToolCallLimit = ("tool_call_limit", 429, "The tool reached its limit of calls per run."),
    ApprovalRequired = ("approval_required", 403, "The call needs a person's approval, which a chat turn cannot wait for."),
    Rejected = ("rejected", 403, "A person rejected the call."),
    ToolFailed = ("tool_failed", 502, "The tool failed."),
    DelegationCycle = ("delegation_cycle", 422, "Delegating would form a cycle of agents."),
    DelegationDepth = ("delegation_depth", 422, "The delegation chain already has the maximum number of hops."),
    DelegationLimit = ("delegation_limit", 429, "The turn already made its maximum of delegated calls."),
    DelegationFailed = ("delegation_failed", 502, "The delegated agent's turn failed."),
    DelegationInterrupted = ("delegation_interrupted", 502, "The delegated agent's turn was interrupted; it may have acted in part."),

    // Connectors.
    UnknownConnector = ("unknown_connector", 404, "No connector with this id."),
    UnknownAction = ("unknown_action", 404, "The connector has no such action."),
    UnknownResource = ("unknown_resource", 404, "The connector has no such resource."),
    GrantNotFound = ("grant_not_found", 403, "The agent has no grant for this connector."),
    GrantRevoked = ("grant_revoked", 403, "The grant was revoked or changed since the run began."),
    ActionNotGranted = ("action_not_granted", 403, "The grant does not include this action."),
    InvalidArguments = ("invalid_arguments", 422, "The arguments do not match the tool's JSON Schema."),
    InvalidConnectorCredentials = ("invalid_connector_credentials", 422, "The credentials given for a connector are incomplete or malformed."),
    NotConnected = ("not_connected", 409, "The connector is not connected for this tenant."),
    AmbiguousWrite = ("ambiguous_write", 409, "An earlier attempt of this write may have happened; it is not repeated."),
    EgressRefused = ("egress_refused", 422, "The address is one Brain's egress policy does not connect to."),
    ConnectorUnauthorized = ("connector_unauthorized", 502, "The platform rejected the stored credentials."),
    ConnectorRateLimited = ("connector_rate_limited", 429, "The platform is rate limiting requests."),
    ConnectorError = ("connector_error", 502, "The platform answered with an error."),
    ConnectorUnreachable = ("connector_unreachable", 502, "The platform could not be reached."),
    ConnectorBadResponse = ("connector_bad_response", 502, "The platform sent a response Brain could not read."),

    // Webhooks.
    InvalidSignature = ("invalid_signature", 401, "The webhook delivery's signature is wrong or too old."),
    WebhookNotFound = ("webhook_not_found", 404, "No such webhook, or it is disabled."),
    InvalidWebhook = ("invalid_webhook", 422, "The webhook's settings are invalid."),
    MalformedDelivery = ("malformed_delivery", 400, "A signed delivery Brain cannot use (not JSON, no id or event)."),
    DeliveryNotFound = ("delivery_not_found", 404, "No such webhook delivery."),
    TooManyFailedDeliveries = ("too_many_failed_deliveries", 429, "Too many deliveries failed their signature check."),

    // Knowledge, rules and tasks.
    CollectionExists = ("collection_exists", 409, "A collection with this name exists."),
    EmbedderMismatch = ("embedder_mismatch", 409, "The collection's embedder is not available or has another dimension."),
    TemplateError = ("template_error", 422, "A step argument's template failed to render."),

    // Brain itself.
    Internal = ("internal", 500, "internal error"),
    Unavailable = ("unavailable", 503, "a dependency is unavailable; try again shortly"),
}

impl Code {
    /// Whether the answer's message is the code's [`description`](Self::description) rather
    /// than the error's own text (a 500 or 503: the cause is for the logs only).
    pub const fn hides_cause(self) -> bool {
        matches!(self.status(), 500 | 503)
    }

    /// The code whose wire string is `wire` (a turn's streamed error carries the string).
    pub fn from_wire(wire: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == wire)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_unique_snake_case_with_an_error_status() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let wire = code.as_str();
            assert!(seen.insert(wire), "{wire} twice");
            assert!(
                wire.split('_')
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
                "{wire} is not snake_case"
            );
            assert!((400..600).contains(&code.status()), "{wire}");
            assert!(!code.description().is_empty(), "{wire}");
        }
    }

    #[test]
    fn codes_serialise_as_their_wire_string() {
        assert_eq!(
            serde_json::to_value(Code::ToolCallLimit).unwrap(),
            serde_json::json!("tool_call_limit")
        );
        assert_eq!(Code::NotFound.to_string(), "not_found");
        assert!(Code::Internal.hides_cause() && !Code::ConnectorError.hides_cause());
    }
}
