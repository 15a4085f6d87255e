//! The agent spec and the value types that make an invalid agent unrepresentable.

use std::fmt;
use std::str::FromStr;

use brain_auth::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::FieldError;

mod grant;
pub use grant::{Approval, DelegateGrant, GrantWire, MCP_GRANT_PREFIX, ToolGrant};

/// The id of an agent.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
pub struct AgentId(pub Uuid);

impl AgentId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for AgentId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Sampling temperature, always within 0.0–2.0.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Temperature(f32);

impl Temperature {
    pub const MIN: f32 = 0.0;
    pub const MAX: f32 = 2.0;

    pub fn new(value: f32) -> Result<Self, FieldError> {
        if value.is_finite() && (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "temperature",
                format!("must be between 0.0 and 2.0, got {value}"),
            ))
        }
    }

    pub fn get(self) -> f32 {
        self.0
    }
}

impl Default for Temperature {
    fn default() -> Self {
        Self(0.7)
    }
}

impl<'de> Deserialize<'de> for Temperature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(f32::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A model named `provider:model`, e.g. `local:default` or `openai:gpt-4o-mini`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelRef {
    provider: String,
    model: String,
}

impl ModelRef {
    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn model(&self) -> &str {
        &self.model
    }
}

impl FromStr for ModelRef {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            FieldError::new(
                "model",
                format!("`{s}` is not `provider:model` (e.g. `local:default`)"),
            )
        };
        let (provider, model) = s.split_once(':').ok_or_else(bad)?;
        let provider_ok = !provider.is_empty()
            && provider
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !provider_ok || model.trim().is_empty() || model.len() > 200 {
            return Err(bad());
        }
        Ok(Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.model)
    }
}

impl Serialize for ModelRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Text that is not empty after trimming (an agent's role and goal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
pub struct NonEmptyText(String);

impl NonEmptyText {
    pub fn new(field: &'static str, value: impl Into<String>) -> Result<Self, FieldError> {
        let value = value.into();
        if value.trim().is_empty() {
            Err(FieldError::new(field, "must not be empty"))
        } else {
            Ok(Self(value))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL-safe identifier unique within a tenant: `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn new(value: impl Into<String>) -> Result<Self, FieldError> {
        let value = value.into();
        let mut chars = value.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && value.len() <= 63 {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "slug",
                "must be 1–63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            ))
        }
    }

    /// A slug derived from a display name ("Content Creator" → "content-creator").
    pub fn from_name(name: &str) -> Result<Self, FieldError> {
        let mut slug = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        Self::new(
            slug.chars()
                .take(63)
                .collect::<String>()
                .trim_end_matches('-'),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A delegate grant with what the runtime needs of its target to offer and run the tool.
#[derive(Clone, Debug, PartialEq)]
pub struct DelegateTarget {
    pub grant: DelegateGrant,
    pub slug: Slug,
    pub name: String,
    pub role: NonEmptyText,
    pub goal: NonEmptyText,
}

/// The connectors and actions grants may name; implemented over the connector registry.
pub trait ConnectorCatalog: Send + Sync {
    /// The actions of `connector`, or `None` when no such connector exists.
    fn actions(&self, connector: &str) -> Option<Vec<String>>;
}

/// Per-agent limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Tokens (prompt and completion) the agent may use per UTC day; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_day: Option<u64>,
}

/// Health of an agent as its supervisor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentHealth {
    Active,
    /// The supervisor gave up restarting it after repeated failures.
    Degraded,
}

impl AgentHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentHealth::Active => "active",
            AgentHealth::Degraded => "degraded",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        if s == "degraded" {
            AgentHealth::Degraded
        } else {
            AgentHealth::Active
        }
    }
}

/// A stored agent, as the runtime runs it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AgentSpec {
    pub id: AgentId,
    #[schema(value_type = Uuid)]
    pub tenant_id: TenantId,
    pub name: String,
    pub slug: Slug,
    pub role: NonEmptyText,
    pub goal: NonEmptyText,
    pub backstory: String,
    pub temperature: Temperature,
    /// `provider:model`, e.g. `local:default` or `openai:gpt-4o-mini`.
    #[schema(value_type = String)]
    pub model: ModelRef,
    /// Tried in order when `model` is rate limited, failing or unreachable.
    #[schema(value_type = Vec<String>)]
    pub fallback_models: Vec<ModelRef>,
    /// The most tokens the agent asks for per model call.
    pub max_tokens: u32,
    /// Knowledge collections the agent's replies are grounded in (and cite).
    pub knowledge_collections: Vec<Uuid>,
    #[schema(value_type = Vec<GrantWire>)]
    pub tools: Vec<ToolGrant>,
    /// Other agents of the tenant this one may ask (`ask_<slug>` tools).
    pub delegates: Vec<DelegateGrant>,
    pub budget: Budget,
    pub status: AgentHealth,
    /// Incremented by every change; send it as `If-Match` to update only this version.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AgentSpec {
    /// A spec that was never stored (version 1, active): for previews, tests and benchmarks.
    pub fn unsaved(tenant: TenantId, fields: AgentFields) -> Self {
        let now = Utc::now();
        Self {
            id: AgentId::new(),
            tenant_id: tenant,
            name: fields.name,
            slug: fields.slug,
            role: fields.role,
            goal: fields.goal,
            backstory: fields.backstory,
            temperature: fields.temperature,
            model: fields.model,
            fallback_models: fields.fallback_models,
            max_tokens: fields.max_tokens,
            knowledge_collections: fields.knowledge_collections,
            tools: fields.tools,
            delegates: fields.delegates,
            budget: fields.budget,
            status: AgentHealth::Active,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A new agent as a client describes it; raw values, checked by [`NewAgent::validate`].
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// 1–200 characters.
    pub name: String,
    /// `[a-z0-9][a-z0-9-]{0,62}`, unique in the tenant; derived from `name` when absent.
    #[serde(default)]
    pub slug: Option<String>,
    /// What the agent is (must not be empty).
    pub role: String,
    /// What the agent works towards (must not be empty).
    pub goal: String,
    #[serde(default)]
    pub backstory: String,
    /// 0.0–2.0 (default 0.7).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// `provider:model`; the server's default model when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Up to 3 `provider:model`s tried in order when `model` is rate limited, failing (5xx)
    /// or unreachable.
    #[serde(default)]
    pub fallback_models: Vec<String>,
    /// Tokens per model call, 1–32768 (default 1024).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Knowledge collections of the tenant to ground replies in.
    #[serde(default)]
    pub knowledge_collections: Vec<Uuid>,
    #[serde(default)]
    #[schema(value_type = Vec<GrantWire>)]
    pub tools: Vec<ToolGrant>,
    #[serde(default)]
    pub delegates: Vec<DelegateGrant>,
    #[serde(default)]
    pub budget: Budget,
}

/// Changes to an agent; absent fields stay as they are (each is checked as in `NewAgent`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub role: Option<String>,
    pub goal: Option<String>,
    pub backstory: Option<String>,
    pub temperature: Option<f32>,
    pub model: Option<String>,
    pub fallback_models: Option<Vec<String>>,
    pub max_tokens: Option<u32>,
    pub knowledge_collections: Option<Vec<Uuid>>,
    #[schema(value_type = Option<Vec<GrantWire>>)]
    pub tools: Option<Vec<ToolGrant>>,
    pub delegates: Option<Vec<DelegateGrant>>,
    pub budget: Option<Budget>,
}

/// The validated, typed fields of an agent, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentFields {
    pub name: String,
    pub slug: Slug,
    pub role: NonEmptyText,
    pub goal: NonEmptyText,
    pub backstory: String,
    pub temperature: Temperature,
    pub model: ModelRef,
    pub fallback_models: Vec<ModelRef>,
    pub max_tokens: u32,
    pub knowledge_collections: Vec<Uuid>,
    pub tools: Vec<ToolGrant>,
    pub delegates: Vec<DelegateGrant>,
    pub budget: Budget,
}

/// The largest `max_tokens` an agent may ask for per model call.
pub const MAX_TOKENS_LIMIT: u32 = 32_768;

impl NewAgent {
    /// Checks every field; `default_model` applies when `model` is absent.
    pub fn validate(self, default_model: &str) -> Result<AgentFields, FieldError> {
        let name = validate_name(self.name)?;
        let slug = match self.slug {
            Some(slug) => Slug::new(slug)?,
            None => Slug::from_name(&name)?,
        };
        let fields = AgentFields {
            slug,
            role: NonEmptyText::new("role", self.role)?,
            goal: NonEmptyText::new("goal", self.goal)?,
            backstory: self.backstory,
            temperature: match self.temperature {
                Some(t) => Temperature::new(t)?,
                None => Temperature::default(),
            },
            model: self.model.as_deref().unwrap_or(default_model).parse()?,
            fallback_models: validate_fallbacks(self.fallback_models)?,
            max_tokens: validate_max_tokens(self.max_tokens.unwrap_or(1024))?,
            knowledge_collections: self.knowledge_collections,
            tools: validate_grants(self.tools)?,
            delegates: validate_delegates(self.delegates)?,
            budget: self.budget,
            name,
        };
        Ok(fields)
    }
}

impl AgentPatch {
    /// Applies the patch to `current`, validating every changed field.
    pub fn apply(self, current: &AgentSpec) -> Result<AgentFields, FieldError> {
        Ok(AgentFields {
            name: match self.name {
                Some(n) => validate_name(n)?,
                None => current.name.clone(),
            },
            slug: match self.slug {
                Some(s) => Slug::new(s)?,
                None => current.slug.clone(),
            },
            role: match self.role {
                Some(r) => NonEmptyText::new("role", r)?,
                None => current.role.clone(),
            },
            goal: match self.goal {
                Some(g) => NonEmptyText::new("goal", g)?,
                None => current.goal.clone(),
            },
            backstory: self.backstory.unwrap_or_else(|| current.backstory.clone()),
            temperature: match self.temperature {
                Some(t) => Temperature::new(t)?,
                None => current.temperature,
            },
            model: match self.model {
                Some(m) => m.parse()?,
                None => current.model.clone(),
            },
            fallback_models: match self.fallback_models {
                Some(f) => validate_fallbacks(f)?,
                None => current.fallback_models.clone(),
            },
            max_tokens: validate_max_tokens(self.max_tokens.unwrap_or(current.max_tokens))?,
            knowledge_collections: self
                .knowledge_collections
                .unwrap_or_else(|| current.knowledge_collections.clone()),
            tools: match self.tools {
                Some(t) => validate_grants(t)?,
                None => current.tools.clone(),
            },
            delegates: match self.delegates {
                Some(d) => validate_delegates(d)?,
                None => current.delegates.clone(),
            },
            budget: self.budget.unwrap_or_else(|| current.budget.clone()),
        })
    }
}

fn validate_name(name: String) -> Result<String, FieldError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 {
        Err(FieldError::new("name", "must be 1–200 characters"))
    } else {
        Ok(trimmed.to_owned())
    }
}

/// The most fallback models an agent may list.
pub const MAX_FALLBACK_MODELS: usize = 3;

fn validate_fallbacks(models: Vec<String>) -> Result<Vec<ModelRef>, FieldError> {
    if models.len() > MAX_FALLBACK_MODELS {
        return Err(FieldError::new(
            "fallback_models",
            format!("at most {MAX_FALLBACK_MODELS} models"),
        ));
    }
    let mut parsed: Vec<ModelRef> = Vec::with_capacity(models.len());
    for model in models {
        let model: ModelRef = model
            .parse()
            .map_err(|e: FieldError| FieldError::new("fallback_models", e.message))?;
        if parsed.contains(&model) {
            return Err(FieldError::new(
                "fallback_models",
                format!("`{model}` is listed twice"),
            ));
        }
        parsed.push(model);
    }
    Ok(parsed)
}

fn validate_max_tokens(max_tokens: u32) -> Result<u32, FieldError> {
    if (1..=MAX_TOKENS_LIMIT).contains(&max_tokens) {
        Ok(max_tokens)
    } else {
        Err(FieldError::new(
            "max_tokens",
            format!("must be between 1 and {MAX_TOKENS_LIMIT}"),
        ))
    }
}

/// Shape checks that need no catalogue; known connectors/actions are checked by the store.
pub(crate) fn validate_grants(grants: Vec<ToolGrant>) -> Result<Vec<ToolGrant>, FieldError> {
    let mut seen = std::collections::HashSet::new();
    for grant in &grants {
        if grant.connector.trim().is_empty() {
            return Err(FieldError::new("tools", "a grant names no connector"));
        }
        if !seen.insert(grant.connector.as_str()) {
            return Err(FieldError::new(
                "tools",
                format!("connector `{}` is granted twice", grant.connector),
            ));
        }
        if grant.actions.is_empty() || grant.actions.iter().any(|a| a.trim().is_empty()) {
            return Err(FieldError::new(
                "tools",
                format!(
                    "grant for `{}` needs at least one action (or \"*\")",
                    grant.connector
                ),
            ));
        }
        if grant.max_calls_per_run == Some(0) {
            return Err(FieldError::new(
                "tools",
                "max_calls_per_run must be at least 1",
            ));
        }
    }
    Ok(grants)
}

/// Shape checks of delegate grants; that targets exist in the tenant (and are not the agent
/// itself) is checked by the store.
pub(crate) fn validate_delegates(
    grants: Vec<DelegateGrant>,
) -> Result<Vec<DelegateGrant>, FieldError> {
    let mut seen = std::collections::HashSet::new();
    for grant in &grants {
        if grant.approval == Approval::Auto {
            return Err(FieldError::new(
                "delegates",
                "a delegation's approval is `never` or `always`",
            ));
        }
        if !seen.insert(grant.agent) {
            return Err(FieldError::new(
                "delegates",
                format!("agent `{}` is granted twice", grant.agent),
            ));
        }
        if grant.max_calls_per_run == Some(0) {
            return Err(FieldError::new(
                "delegates",
                "max_calls_per_run must be at least 1",
            ));
        }
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_bounds() {
        assert!(Temperature::new(0.0).is_ok());
        assert!(Temperature::new(2.0).is_ok());
        for bad in [-0.1, 2.01, 3.7, f32::NAN, f32::INFINITY] {
            let err = Temperature::new(bad).unwrap_err();
            assert_eq!(err.field, "temperature");
        }
        assert!(serde_json::from_str::<Temperature>("3.7").is_err());
    }

    #[test]
    fn model_refs() {
        let m: ModelRef = "openai:gpt-4o-mini".parse().unwrap();
        assert_eq!((m.provider(), m.model()), ("openai", "gpt-4o-mini"));
        assert_eq!(m.to_string(), "openai:gpt-4o-mini");
        let m: ModelRef = "ollama:qwen2.5:0.5b".parse().unwrap();
        assert_eq!(m.model(), "qwen2.5:0.5b");
        for bad in ["gpt-4o", ":x", "openai:", "Open AI:x", "openai: "] {
            assert_eq!(bad.parse::<ModelRef>().unwrap_err().field, "model", "{bad}");
        }
    }

    #[test]
    fn slugs_from_names() {
        assert_eq!(
            Slug::from_name("Content Creator!").unwrap().as_str(),
            "content-creator"
        );
        assert!(Slug::new("-x").is_err());
        assert!(Slug::new("Abc").is_err());
        assert!(Slug::from_name("!!!").is_err());
    }

    #[test]
    fn new_agent_validation_names_the_field() {
        let base = NewAgent {
            name: "Writer".into(),
            role: "writer".into(),
            goal: "write".into(),
            ..NewAgent::default()
        };
        let ok = base.clone().validate("local:default").unwrap();
        assert_eq!(ok.slug.as_str(), "writer");
        assert_eq!(ok.model.to_string(), "local:default");

        let cases: Vec<(NewAgent, &str)> = vec![
            (
                NewAgent {
                    role: "  ".into(),
                    ..base.clone()
                },
                "role",
            ),
            (
                NewAgent {
                    goal: String::new(),
                    ..base.clone()
                },
                "goal",
            ),
            (
                NewAgent {
                    temperature: Some(2.5),
                    ..base.clone()
                },
                "temperature",
            ),
            (
                NewAgent {
                    model: Some("gpt".into()),
                    ..base.clone()
                },
                "model",
            ),
            (
                NewAgent {
                    max_tokens: Some(0),
                    ..base.clone()
                },
                "max_tokens",
            ),
            (
                NewAgent {
                    tools: vec![ToolGrant {
                        connector: "wordpress".into(),
                        actions: vec![],
                        approval: Approval::Never,
                        max_calls_per_run: None,
                    }],
                    ..base.clone()
                },
                "tools",
            ),
        ];
        let twice = DelegateGrant {
            agent: AgentId::new(),
            approval: Approval::Never,
            max_calls_per_run: None,
        };
        let cases = cases.into_iter().chain([
            (
                NewAgent {
                    delegates: vec![twice.clone(), twice.clone()],
                    ..base.clone()
                },
                "delegates",
            ),
            (
                NewAgent {
                    delegates: vec![DelegateGrant {
                        max_calls_per_run: Some(0),
                        ..twice
                    }],
                    ..base.clone()
                },
                "delegates",
            ),
        ]);
        for (input, field) in cases {
            assert_eq!(input.validate("local:default").unwrap_err().field, field);
        }
    }
}
