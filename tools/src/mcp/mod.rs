//! MCP servers as tool sources. A tenant registers a server (`/v1/integrations/mcp-servers`);
//! Brain lists its tools when it is saved and on demand, keeps the auth secret in the secret
//! store and the rest in `mcp_servers`; agents reach the tools only through grants
//! ([`McpTool`], minted per turn like a connector's capability handles).

pub(crate) mod client;
mod grants;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use brain_auth::TenantId;
use brain_auth::egress::EgressPolicy;
use brain_auth::secrets::{SecretMap, SecretPath, SecretStore, SecretString};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

pub use grants::McpTool;

/// The one tool of a remote A2A agent.
pub const A2A_TOOL: &str = "ask";

use crate::ToolError;
use client::{ClientError, Endpoint, EndpointAuth, Limits};

/// How Brain authenticates to a server. The secret is write-only: views show the kind (and
/// the header's name), never the token or value.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum McpAuth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// Another header, e.g. `{"name": "X-API-Key", "value": "…"}`.
    Header { name: String, value: String },
}

/// What a tool source speaks: an MCP server's tools, or a remote A2A agent (one tool, `ask`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Mcp,
    A2a,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Mcp => "mcp",
            Protocol::A2a => "a2a",
        }
    }

    /// The connector name grants of `slug` are stored under (`mcp:<slug>`, `a2a:<slug>`).
    pub fn grant_key(self, slug: &str) -> String {
        format!("{}:{slug}", self.as_str())
    }

    fn from_column(column: &str) -> Self {
        if column == "a2a" {
            Protocol::A2a
        } else {
            Protocol::Mcp
        }
    }
}

/// A server to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMcpServer {
    pub name: String,
    /// `[a-z0-9][a-z0-9_]{0,39}`: grants name the server by it, and its tools reach the model
    /// as `mcp_<slug>__<tool>`.
    pub slug: String,
    /// The server's streamable HTTP endpoint, e.g. `https://mcp.example.com/mcp`; it must pass
    /// the deployment's egress policy (public HTTPS by default).
    pub url: String,
    #[serde(default)]
    pub auth: McpAuth,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Set by the route it came through, not by the body.
    #[serde(skip)]
    pub protocol: Protocol,
}

fn enabled_by_default() -> bool {
    true
}

/// Changes to a server; a new `url` or `auth` lists its tools again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub auth: Option<McpAuth>,
    pub enabled: Option<bool>,
}

/// The auth of a server as views show it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct McpAuthView {
    /// `none`, `bearer` or `header`.
    pub kind: String,
    /// The header's name, for `header`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

/// One tool of a server, as it listed it when last refreshed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct McpToolInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// The server's annotations (`readOnlyHint`, `destructiveHint`, …), hints only.
    #[serde(default)]
    pub annotations: Value,
}

impl McpToolInfo {
    /// Annotated read-only (`readOnlyHint: true`): the only tools `approval: auto` lets run
    /// without a human.
    pub fn read_only(&self) -> bool {
        self.annotations["readOnlyHint"] == Value::Bool(true)
    }

    fn from_listed(tool: &Value) -> Option<Self> {
        Some(Self {
            name: tool["name"].as_str()?.to_owned(),
            title: tool["title"].as_str().map(str::to_owned),
            description: tool["description"].as_str().unwrap_or_default().to_owned(),
            input_schema: match &tool["inputSchema"] {
                Value::Object(_) => tool["inputSchema"].clone(),
                _ => serde_json::json!({"type": "object"}),
            },
            annotations: tool["annotations"].clone(),
        })
    }
}

/// A registered server.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct McpServerView {
    pub id: Uuid,
    pub protocol: Protocol,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub auth: McpAuthView,
    pub enabled: bool,
    pub tools: Vec<McpToolInfo>,
    /// When the tool list was last fetched.
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ServerRow {
    id: Uuid,
    protocol: String,
    name: String,
    slug: String,
    url: String,
    auth_kind: String,
    auth_header: Option<String>,
    vault_path: Option<String>,
    enabled: bool,
    tools: Value,
    refreshed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ServerRow {
    fn tools(&self) -> Vec<McpToolInfo> {
        serde_json::from_value(self.tools.clone()).unwrap_or_default()
    }

    fn protocol(&self) -> Protocol {
        Protocol::from_column(&self.protocol)
    }

    fn view(&self) -> McpServerView {
        McpServerView {
            id: self.id,
            protocol: self.protocol(),
            name: self.name.clone(),
            slug: self.slug.clone(),
            url: self.url.clone(),
            auth: McpAuthView {
                kind: self.auth_kind.clone(),
                header: self.auth_header.clone(),
            },
            enabled: self.enabled,
            tools: self.tools(),
            refreshed_at: self.refreshed_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, protocol, name, slug, url, auth_kind, auth_header, vault_path, enabled, tools, \
                       refreshed_at, created_at, updated_at";

/// Settings of [`McpServers`].
#[derive(Clone, Debug)]
pub struct McpConfig {
    /// Connections obey it, checked on the connected address.
    pub egress: EgressPolicy,
    /// For one exchange with a server (listing, or one tool call).
    pub timeout: Duration,
    /// The largest answer a server may send; a larger one fails the call.
    pub max_response_bytes: usize,
    /// How much of a tool's result the model sees.
    pub max_result_chars: usize,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            egress: EgressPolicy::default(),
            timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            max_result_chars: 16 * 1024,
        }
    }
}

/// The tenant's MCP servers and the calls to their tools.
pub struct McpServers {
    db: PgPool,
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    config: McpConfig,
}

impl McpServers {
    pub fn new(
        db: PgPool,
        secrets: Arc<dyn SecretStore>,
        config: McpConfig,
    ) -> Result<Self, ToolError> {
        let http = config
            .egress
            .client_builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ToolError::Internal(e.to_string()))?;
        Ok(Self {
            db,
            secrets,
            http,
            config,
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: self.config.timeout,
            max_response_bytes: self.config.max_response_bytes,
        }
    }

    /// Registers a server after listing its tools; a server Brain cannot reach or list is not
    /// kept.
    pub async fn create(
        &self,
        tenant: TenantId,
        input: NewMcpServer,
    ) -> Result<McpServerView, ToolError> {
        let name = checked_name(&input.name)?;
        let slug = checked_slug(&input.slug)?;
        self.check_url(&input.url)?;
        let endpoint = endpoint(&input.url, &input.auth)?;
        let tools = self.fetch_tools(input.protocol, &slug, &endpoint).await?;
        let id = Uuid::now_v7();
        let vault_path = self.store_secret(tenant, id, &input.auth).await?;
        let (kind, header) = auth_columns(&input.auth);
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let inserted = sqlx::query_as::<_, ServerRow>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO mcp_servers (id, tenant_id, name, slug, url, auth_kind, auth_header, \
             vault_path, enabled, tools, protocol, refreshed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now()) RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(tenant.0)
        .bind(&name)
        .bind(&slug)
        .bind(&input.url)
        .bind(kind)
        .bind(header)
        .bind(vault_path.as_ref().map(SecretPath::as_str))
        .bind(input.enabled)
        .bind(serde_json::to_value(&tools).unwrap_or_default())
        .bind(input.protocol.as_str())
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                if let Some(path) = &vault_path {
                    let _ = self.secrets.destroy(path).await;
                }
                return Err(match &e {
                    sqlx::Error::Database(d) if d.is_unique_violation() => {
                        ToolError::McpSlugTaken(slug)
                    }
                    _ => e.into(),
                });
            }
        };
        tx.commit().await?;
        Ok(row.view())
    }

    pub async fn list(
        &self,
        tenant: TenantId,
        protocol: Protocol,
    ) -> Result<Vec<McpServerView>, ToolError> {
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows: Vec<ServerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mcp_servers WHERE protocol = $1 ORDER BY slug"
        )))
        .bind(protocol.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.iter().map(ServerRow::view).collect())
    }

    pub async fn get(
        &self,
        tenant: TenantId,
        protocol: Protocol,
        id: Uuid,
    ) -> Result<McpServerView, ToolError> {
        Ok(self.row(tenant, protocol, id).await?.view())
    }

    async fn row(
        &self,
        tenant: TenantId,
        protocol: Protocol,
        id: Uuid,
    ) -> Result<ServerRow, ToolError> {
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let row: Option<ServerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mcp_servers WHERE id = $1 AND protocol = $2"
        )))
        .bind(id)
        .bind(protocol.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.ok_or(ToolError::McpServerNotFound)
    }

    /// Renames, moves, re-authenticates, enables or disables a server; a new URL or auth
    /// lists its tools again first (and is refused if that fails).
    pub async fn update(
        &self,
        tenant: TenantId,
        protocol: Protocol,
        id: Uuid,
        patch: McpServerPatch,
    ) -> Result<McpServerView, ToolError> {
        let row = self.row(tenant, protocol, id).await?;
        let name = patch.name.as_deref().map(checked_name).transpose()?;
        let reconnect = patch.url.is_some() || patch.auth.is_some();
        let mut tools = None;
        let mut vault_path = row.vault_path.clone();
        let mut columns = (row.auth_kind.clone(), row.auth_header.clone());
        if reconnect {
            let url = patch.url.clone().unwrap_or_else(|| row.url.clone());
            self.check_url(&url)?;
            let auth = match &patch.auth {
                Some(auth) => auth.clone(),
                None => self.stored_auth(&row).await?,
            };
            tools = Some(
                self.fetch_tools(protocol, &row.slug, &endpoint(&url, &auth)?)
                    .await?,
            );
            if patch.auth.is_some() {
                if let Some(old) = &row.vault_path {
                    self.secrets.destroy(&SecretPath::parse(old)?).await?;
                }
                vault_path = self
                    .store_secret(tenant, id, &auth)
                    .await?
                    .map(|p| p.as_str().to_owned());
                let (kind, header) = auth_columns(&auth);
                columns = (kind.to_owned(), header);
            }
        }
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let updated: ServerRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE mcp_servers SET name = COALESCE($2, name), url = COALESCE($3, url), \
             auth_kind = $4, auth_header = $5, vault_path = $6, \
             enabled = COALESCE($7, enabled), tools = COALESCE($8, tools), \
             refreshed_at = CASE WHEN $8 IS NULL THEN refreshed_at ELSE now() END, \
             updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(name)
        .bind(patch.url)
        .bind(columns.0)
        .bind(columns.1)
        .bind(vault_path)
        .bind(patch.enabled)
        .bind(tools.map(|t| serde_json::to_value(t).unwrap_or_default()))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated.view())
    }

    /// Lists the server's tools again and keeps the new list.
    pub async fn refresh(
        &self,
        tenant: TenantId,
        protocol: Protocol,
        id: Uuid,
    ) -> Result<McpServerView, ToolError> {
        let row = self.row(tenant, protocol, id).await?;
        let auth = self.stored_auth(&row).await?;
        let tools = self
            .fetch_tools(protocol, &row.slug, &endpoint(&row.url, &auth)?)
            .await?;
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let updated: ServerRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE mcp_servers SET tools = $2, refreshed_at = now(), updated_at = now() \
             WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(serde_json::to_value(&tools).unwrap_or_default())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated.view())
    }

    /// Forgets a server, its secret and every grant of it.
    pub async fn delete(
        &self,
        tenant: TenantId,
        protocol: Protocol,
        id: Uuid,
    ) -> Result<McpServerView, ToolError> {
        let row = self.row(tenant, protocol, id).await?;
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        sqlx::query("DELETE FROM tool_grants WHERE connector = $1")
            .bind(protocol.grant_key(&row.slug))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mcp_servers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if let Some(path) = &row.vault_path {
            self.secrets.destroy(&SecretPath::parse(path)?).await?;
        }
        Ok(row.view())
    }

    fn check_url(&self, url: &str) -> Result<(), ToolError> {
        self.config
            .egress
            .check_str(url)
            .map(drop)
            .map_err(|e| ToolError::InvalidMcpServer(format!("url: {e}")))
    }

    async fn fetch_tools(
        &self,
        protocol: Protocol,
        slug: &str,
        endpoint: &Endpoint,
    ) -> Result<Vec<McpToolInfo>, ToolError> {
        let failed = |e| client_error(&protocol.grant_key(slug), e);
        if protocol == Protocol::A2a {
            let card = crate::a2a::client::fetch_card(&self.http, endpoint, self.limits())
                .await
                .map_err(failed)?;
            return Ok(vec![self.ask_tool(&card)?]);
        }
        let listed = client::list_tools(&self.http, endpoint, self.limits())
            .await
            .map_err(failed)?;
        Ok(listed.iter().filter_map(McpToolInfo::from_listed).collect())
    }

    /// A remote agent's one tool, `ask`, from its card (which must offer A2A 1.x over
    /// JSON-RPC at a URL the egress policy allows). The endpoint is kept in its annotations.
    fn ask_tool(&self, card: &crate::a2a::wire::AgentCard) -> Result<McpToolInfo, ToolError> {
        let invalid = |what: String| ToolError::InvalidMcpServer(format!("agent card: {what}"));
        let url = card
            .jsonrpc_url()
            .ok_or_else(|| invalid("no JSON-RPC interface of A2A 1.x".to_owned()))?;
        self.config
            .egress
            .check_str(url)
            .map_err(|e| invalid(format!("interface url: {e}")))?;
        let skills: Vec<String> = card
            .skills
            .iter()
            .map(|s| format!("{}: {}", s.name, s.description))
            .collect();
        let mut description = format!("Ask the remote agent {} ({})", card.name, card.description);
        if !skills.is_empty() {
            description.push_str(&format!("; skills: {}", skills.join("; ")));
        }
        Ok(McpToolInfo {
            name: A2A_TOOL.to_owned(),
            title: Some(card.name.clone()),
            description,
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"message": {"type": "string",
                    "description": "What to ask the agent, with everything it needs to know"}},
                "required": ["message"],
                "additionalProperties": false,
            }),
            annotations: serde_json::json!({"readOnlyHint": false, "a2a": {"endpoint": url}}),
        })
    }

    async fn store_secret(
        &self,
        tenant: TenantId,
        id: Uuid,
        auth: &McpAuth,
    ) -> Result<Option<SecretPath>, ToolError> {
        let secret = match auth {
            McpAuth::None => return Ok(None),
            McpAuth::Bearer { token } => token,
            McpAuth::Header { value, .. } => value,
        };
        let path = SecretPath::tenant(tenant, "mcp", &id.to_string())?;
        let values = SecretMap::from([("secret".to_owned(), SecretString::new(secret.clone()))]);
        self.secrets.put(&path, &values).await?;
        Ok(Some(path))
    }

    async fn stored_auth(&self, row: &ServerRow) -> Result<McpAuth, ToolError> {
        let secret = match &row.vault_path {
            Some(path) => self
                .secrets
                .get(&SecretPath::parse(path)?)
                .await?
                .and_then(|mut values| values.remove("secret"))
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
            None => String::new(),
        };
        Ok(match (row.auth_kind.as_str(), &row.auth_header) {
            ("bearer", _) => McpAuth::Bearer { token: secret },
            ("header", Some(name)) => McpAuth::Header {
                name: name.clone(),
                value: secret,
            },
            _ => McpAuth::None,
        })
    }
}

fn checked_name(name: &str) -> Result<String, ToolError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ToolError::InvalidMcpServer(
            "name: 1 to 100 characters".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

fn checked_slug(slug: &str) -> Result<String, ToolError> {
    let valid = (1..=40).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        // `__` separates the server from the tool in `mcp_<slug>__<tool>`.
        && !slug.contains("__");
    if valid {
        Ok(slug.to_owned())
    } else {
        Err(ToolError::InvalidMcpServer(format!(
            "slug: `{slug}` is not [a-z0-9][a-z0-9_]{{0,39}} without `__`"
        )))
    }
}

fn auth_columns(auth: &McpAuth) -> (&'static str, Option<String>) {
    match auth {
        McpAuth::None => ("none", None),
        McpAuth::Bearer { .. } => ("bearer", None),
        McpAuth::Header { name, .. } => ("header", Some(name.clone())),
    }
}

fn endpoint(url: &str, auth: &McpAuth) -> Result<Endpoint, ToolError> {
    let invalid = |what: &str| ToolError::InvalidMcpServer(format!("auth: {what}"));
    let auth = match auth {
        McpAuth::None => EndpointAuth::None,
        McpAuth::Bearer { token } if token.trim().is_empty() => {
            return Err(invalid("the bearer token is empty"));
        }
        McpAuth::Bearer { token } => EndpointAuth::Bearer(token.clone()),
        McpAuth::Header { name, value } => {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| invalid("not a valid header name"))?;
            let mut value =
                HeaderValue::try_from(value.as_str()).map_err(|_| invalid("not a header value"))?;
            value.set_sensitive(true);
            EndpointAuth::Header(name, value)
        }
    };
    Ok(Endpoint {
        url: url.to_owned(),
        auth,
    })
}

/// A failed exchange as a tool error naming the source (`mcp:<slug>`, `a2a:<slug>`).
fn client_error(connector: &str, error: ClientError) -> ToolError {
    let connector = connector.to_owned();
    let reason = error.to_string();
    match error {
        ClientError::Connect {
            refused: Some(refused),
            ..
        } => ToolError::EgressRefused {
            connector,
            reason: refused.to_string(),
        },
        ClientError::TimedOut(_) | ClientError::Connect { .. } => {
            ToolError::Unreachable { connector, reason }
        }
        ClientError::Protocol(_) => ToolError::BadResponse { connector, reason },
    }
}
