//! Layered configuration: built-in defaults, then an optional TOML file, then environment
//! variables. Validated once at start, with errors that name the offending setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::Figment;

mod providers;
use figment::providers::{Env, Format, Serialized, Toml};
pub use providers::ModelProvider;
use serde::{Deserialize, Serialize};

/// Environment variables read without the `BRAIN_` prefix, as every tool in the ecosystem
/// names them.
const STANDARD_ENV: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "TEMPORAL_ADDRESS",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration: {setting} is not set{hint}")]
    Missing {
        setting: &'static str,
        hint: &'static str,
    },
    #[error("configuration: {setting} is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    #[error("configuration: the file {0} given in BRAIN_CONFIG does not exist")]
    MissingFile(PathBuf),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A value that must never be printed: `Debug` shows only that it is set.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything `brain` can be configured with. Field names are the TOML keys; the env var is
/// the upper-cased key with a `BRAIN_` prefix, except for the standard names in
/// [`STANDARD_ENV`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// Postgres as the RLS-bound application role (`DATABASE_URL`).
    pub database_url: Option<Secret>,
    /// Postgres as the schema owner, for `brain migrate` (`BRAIN_MIGRATE_DATABASE_URL`;
    /// falls back to `DATABASE_URL`).
    pub migrate_database_url: Option<Secret>,
    pub database_max_connections: u32,
    pub redis_url: Option<Secret>,
    pub vault_addr: Option<String>,
    pub vault_token: Option<Secret>,
    /// The KV version 2 mount for secrets in Vault.
    pub vault_kv_mount: String,
    /// Temporal frontend, `host:port` (gRPC).
    pub temporal_address: Option<String>,
    pub temporal_namespace: String,
    /// The task queue Brain's workflows and activities run on; workers of one deployment
    /// share it.
    pub temporal_task_queue: String,
    /// Platform base URLs to use instead of the public ones, `connector=url` pairs separated
    /// by commas (e.g. `hubspot=https://sandbox.example`): sandboxes, proxies, local fakes.
    pub connector_endpoints: Option<String>,
    /// Address ranges (CIDR, comma-separated) that requests to tenant- or client-chosen
    /// addresses (connector sites, task callbacks, identity providers) may reach although
    /// they are not public — loopback, private, link-local. Empty by default: only public
    /// addresses. For tests and local fakes, e.g. `127.0.0.0/8,::1/128`.
    pub egress_allow: Option<String>,
    /// Allows plain `http://` for those addresses (default: HTTPS only).
    pub egress_allow_http: bool,
    /// Where a gateway running without the auth service fetches the JWKS from.
    pub auth_url: String,
    /// `iss` and `aud` of access tokens.
    pub jwt_issuer: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Proxies (CIDR ranges, comma-separated) whose `X-Forwarded-For` names the client for
    /// login throttling: the portal, a load balancer. Default: loopback, where the portal
    /// of a single-host deployment calls the auth service from.
    pub trusted_proxies: String,
    /// Failed logins allowed per account and client address / per client address in
    /// `login_window_secs`; an account failing from many addresses is slowed, not locked.
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    pub login_window_secs: u64,
    /// Webhook deliveries failing their signature check allowed per source address / per
    /// webhook in `hook_failure_window_secs`; more are answered 429 before any secret read.
    pub hook_failures_per_address: u32,
    pub hook_failures_per_webhook: u32,
    pub hook_failure_window_secs: u64,
    /// An OpenAI-compatible endpoint for `openai:*` models (OpenAI, Azure, vLLM, Ollama, …);
    /// tenants may bring their own key in Vault.
    pub openai_base_url: String,
    pub openai_api_key: Option<Secret>,
    /// More providers, `name=base_url` comma-separated: `anthropic`, `gemini`, `ollama` and
    /// `azure-openai` speak their own wire, any other name OpenAI's (Mistral, Groq, DeepSeek,
    /// OpenRouter, xAI, vLLM, …): `name:<model>` in model references.
    pub model_providers: Option<String>,
    /// Their deployment keys, `name=key` comma-separated; tenants may bring their own.
    pub model_provider_keys: Option<Secret>,
    /// Seconds a secret read from Vault is reused (model keys and connector credentials are
    /// read on every call); 0 reads Vault every time. Changes made through this instance are
    /// seen at once, changes made through another instance within this time.
    pub secret_cache_secs: u64,
    /// Requests per minute per tenant and per API key (0 = unlimited).
    pub rate_limit_tenant_per_minute: u32,
    pub rate_limit_api_key_per_minute: u32,
    /// Largest accepted request body, except uploads (`BRAIN_MAX_UPLOAD_BYTES`).
    pub max_body_bytes: usize,
    pub max_upload_bytes: usize,
    /// The local embedding model's folder (`model.safetensors`, `tokenizer.json`,
    /// `config.json`); `cargo xtask up` fetches it and sets `BRAIN_EMBED_MODEL_DIR`.
    pub embed_model_dir: Option<PathBuf>,
    /// The local chat model, a Qwen2-family GGUF (`BRAIN_LOCAL_MODEL`); `local:*` models
    /// need it. `cargo xtask up` fetches one and sets it.
    pub local_model: Option<PathBuf>,
    /// Threads the local chat model computes on (`BRAIN_LOCAL_THREADS`; default: every core).
    pub local_threads: usize,
    /// Tokens of prompt and reply the local chat model works with (`BRAIN_LOCAL_CONTEXT`,
    /// 512..=32768): longer conversations are fitted into it, oldest history first.
    pub local_context: usize,
    /// The portal's browser bundle (`pkg/brain_portal.js` and its wasm), built by `cargo
    /// xtask`; default `target/portal-site` of the source tree.
    pub portal_site_root: Option<PathBuf>,
    /// Seconds before a request is cut off with 408 (streams excepted).
    pub request_timeout_secs: u64,
    /// Seconds one exchange with an MCP server (listing its tools, or one tool call) may take.
    pub mcp_timeout_secs: u64,
    /// Open task event streams (SSE) per tenant and instance; one more answers 429.
    pub max_streams_per_tenant: usize,
    /// Documents this instance ingests at once, and of those at most how many of one tenant;
    /// a freed turn goes to the waiting tenant served least recently.
    pub ingest_concurrency: usize,
    pub ingest_per_tenant: usize,
    /// How long one event stream stays open before the client reconnects (resuming from
    /// `Last-Event-ID`).
    pub stream_max_secs: u64,
    /// The portal's origin, the only one CORS admits.
    pub portal_origin: String,
    /// The auth service's URL as browsers and identity providers reach it (SSO callbacks).
    pub public_auth_url: String,
    /// OpenID Connect providers; a provider is enabled when its client id is set.
    pub sso_google_issuer: String,
    pub sso_google_client_id: Option<String>,
    pub sso_google_client_secret: Option<Secret>,
    pub sso_microsoft_issuer: String,
    pub sso_microsoft_client_id: Option<String>,
    pub sso_microsoft_client_secret: Option<Secret>,
    pub gateway_addr: SocketAddr,
    pub auth_addr: SocketAddr,
    pub portal_addr: SocketAddr,
    /// The gateway's public URL, as browsers reach it (used by the portal).
    pub public_gateway_url: String,
    pub log_format: LogFormat,
    /// Where spans are exported over OTLP/HTTP (`<endpoint>/v1/traces`); none when unset.
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// A `tracing` filter, e.g. `info,brain_gateway=debug` (`BRAIN_LOG`).
    pub log: String,
    /// Seconds each dependency probe in `/readyz` may take.
    pub readiness_timeout_secs: u64,
}

/// The default `BRAIN_LOG`. vaultrs logs every error response at ERROR, including the 404 of
/// a secret that does not exist (a tenant without its own model key); Brain reports the
/// errors that matter itself.
const DEFAULT_LOG: &str = "info,sqlx::postgres::notice=warn,vaultrs=off,rustify=off";

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            migrate_database_url: None,
            database_max_connections: 10,
            redis_url: None,
            vault_addr: None,
            vault_token: None,
            vault_kv_mount: "secret".to_owned(),
            temporal_address: None,
            temporal_namespace: "default".to_owned(),
            temporal_task_queue: "brain-tasks".to_owned(),
            connector_endpoints: None,
            egress_allow: None,
            egress_allow_http: false,
            auth_url: "http://127.0.0.1:8009".to_owned(),
            jwt_issuer: "brain".to_owned(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            trusted_proxies: "127.0.0.0/8,::1/128".to_owned(),
            login_failures_per_account: 5,
            login_failures_per_ip: 50,
            login_window_secs: 15 * 60,
            hook_failures_per_address: 20,
            hook_failures_per_webhook: 100,
            hook_failure_window_secs: 60,
            openai_base_url: "https://api.openai.com/v1".to_owned(),
            openai_api_key: None,
            model_providers: None,
            model_provider_keys: None,
            secret_cache_secs: 30,
            rate_limit_tenant_per_minute: 1200,
            rate_limit_api_key_per_minute: 300,
            max_body_bytes: 1024 * 1024,
            max_upload_bytes: 50 * 1024 * 1024,
            embed_model_dir: None,
            local_model: None,
            local_threads: std::thread::available_parallelism().map_or(1, usize::from),
            local_context: brain_agents::providers::local::DEFAULT_CONTEXT_TOKENS,
            portal_site_root: None,
            request_timeout_secs: 60,
            mcp_timeout_secs: 30,
            max_streams_per_tenant: 50,
            ingest_concurrency: 1,
            ingest_per_tenant: 1,
            stream_max_secs: 30 * 60,
            portal_origin: "http://127.0.0.1:3003".to_owned(),
            public_auth_url: "http://127.0.0.1:8009".to_owned(),
            sso_google_issuer: "https://accounts.google.com".to_owned(),
            sso_google_client_id: None,
            sso_google_client_secret: None,
            sso_microsoft_issuer: "https://login.microsoftonline.com/organizations/v2.0".to_owned(),
            sso_microsoft_client_id: None,
            sso_microsoft_client_secret: None,
            gateway_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            auth_addr: SocketAddr::from(([127, 0, 0, 1], 8009)),
            portal_addr: SocketAddr::from(([127, 0, 0, 1], 3003)),
            public_gateway_url: "http://127.0.0.1:8000".to_owned(),
            log_format: LogFormat::Text,
            otel_exporter_otlp_endpoint: None,
            log: DEFAULT_LOG.to_owned(),
            readiness_timeout_secs: 2,
        }
    }
}

const INFRA_HINT: &str = " (for local development run `cargo xtask infra up` and load .brain/env)";

impl Config {
    /// Loads defaults → the file named by `BRAIN_CONFIG` (or `./brain.toml` if present) →
    /// the environment, then validates.
    pub fn load() -> Result<Self, ConfigError> {
        let file = match std::env::var_os("BRAIN_CONFIG") {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(ConfigError::MissingFile(path));
                }
                Some(path)
            }
            None => Some(PathBuf::from("brain.toml")).filter(|p| p.is_file()),
        };
        Self::from_figment(Self::figment(file.as_deref()))
    }

    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::raw().only(STANDARD_ENV))
            .merge(Env::prefixed("BRAIN_").ignore(&["CONFIG"]))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the shape of every setting that is present; presence is checked by the
    /// `require_*` accessors of the components that need it.
    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_stores()?;
        self.validate_counts()?;
        self.connector_endpoints()?;
        self.model_providers()?;
        if !(512..=32_768).contains(&self.local_context) {
            return Err(ConfigError::Invalid {
                setting: "BRAIN_LOCAL_CONTEXT",
                reason: "must be between 512 and 32768 tokens".to_owned(),
            });
        }
        axum::http::HeaderValue::from_str(&self.portal_origin).map_err(|e| {
            ConfigError::Invalid {
                setting: "BRAIN_PORTAL_ORIGIN",
                reason: e.to_string(),
            }
        })?;
        reqwest::Url::parse(&self.auth_url).map_err(|e| ConfigError::Invalid {
            setting: "BRAIN_AUTH_URL",
            reason: e.to_string(),
        })?;
        self.egress()?;
        self.trusted_proxies()?;
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| ConfigError::Invalid {
            setting: "BRAIN_LOG",
            reason: e.to_string(),
        })?;
        let distinct = [self.gateway_addr, self.auth_addr, self.portal_addr];
        if distinct[0] == distinct[1] || distinct[0] == distinct[2] || distinct[1] == distinct[2] {
            return Err(ConfigError::Invalid {
                setting: "BRAIN_GATEWAY_ADDR/BRAIN_AUTH_ADDR/BRAIN_PORTAL_ADDR",
                reason: "the three services need three different addresses".to_owned(),
            });
        }
        Ok(())
    }

    /// Postgres, Redis, Vault and Temporal addresses, where given.
    fn validate_stores(&self) -> Result<(), ConfigError> {
        for (setting, url) in [
            ("DATABASE_URL", &self.database_url),
            ("BRAIN_MIGRATE_DATABASE_URL", &self.migrate_database_url),
        ] {
            if let Some(url) = url {
                if !url.expose().starts_with("postgres://")
                    && !url.expose().starts_with("postgresql://")
                {
                    return Err(ConfigError::Invalid {
                        setting,
                        reason: "must be a postgres:// URL".to_owned(),
                    });
                }
                sqlx::postgres::PgConnectOptions::from_str(url.expose()).map_err(|e| {
                    ConfigError::Invalid {
                        setting,
                        reason: redact_sqlx(&e),
                    }
                })?;
            }
        }
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.expose()).map_err(|e| ConfigError::Invalid {
                setting: "REDIS_URL",
                reason: e.to_string(),
            })?;
        }
        if let Some(addr) = &self.vault_addr {
            let url = reqwest::Url::parse(addr).map_err(|e| ConfigError::Invalid {
                setting: "VAULT_ADDR",
                reason: e.to_string(),
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid {
                    setting: "VAULT_ADDR",
                    reason: format!("scheme must be http or https, not `{}`", url.scheme()),
                });
            }
        }
        if let Some(addr) = &self.temporal_address {
            parse_host_port(addr).map_err(|reason| ConfigError::Invalid {
                setting: "TEMPORAL_ADDRESS",
                reason,
            })?;
        }
        for (setting, value) in [
            ("BRAIN_TEMPORAL_NAMESPACE", &self.temporal_namespace),
            ("BRAIN_TEMPORAL_TASK_QUEUE", &self.temporal_task_queue),
        ] {
            let ok =
                (1..=200).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(ConfigError::Invalid {
                    setting,
                    reason: "must be 1 to 200 visible ASCII characters".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Sizes, durations and counts that must be at least 1, each named on its own.
    fn validate_counts(&self) -> Result<(), ConfigError> {
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        for (setting, value) in [
            ("BRAIN_ACCESS_TOKEN_TTL_SECS", self.access_token_ttl_secs),
            ("BRAIN_REFRESH_TOKEN_TTL_SECS", self.refresh_token_ttl_secs),
            ("BRAIN_LOGIN_WINDOW_SECS", self.login_window_secs),
            (
                "BRAIN_HOOK_FAILURE_WINDOW_SECS",
                self.hook_failure_window_secs,
            ),
            ("BRAIN_MAX_BODY_BYTES", as_u64(self.max_body_bytes)),
            ("BRAIN_MAX_UPLOAD_BYTES", as_u64(self.max_upload_bytes)),
            ("BRAIN_REQUEST_TIMEOUT_SECS", self.request_timeout_secs),
            ("BRAIN_MCP_TIMEOUT_SECS", self.mcp_timeout_secs),
            (
                "BRAIN_MAX_STREAMS_PER_TENANT",
                as_u64(self.max_streams_per_tenant),
            ),
            ("BRAIN_STREAM_MAX_SECS", self.stream_max_secs),
            ("BRAIN_INGEST_CONCURRENCY", as_u64(self.ingest_concurrency)),
            ("BRAIN_INGEST_PER_TENANT", as_u64(self.ingest_per_tenant)),
            (
                "BRAIN_DATABASE_MAX_CONNECTIONS",
                u64::from(self.database_max_connections),
            ),
            ("BRAIN_LOCAL_THREADS", as_u64(self.local_threads)),
            ("BRAIN_READINESS_TIMEOUT_SECS", self.readiness_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        Ok(())
    }

    pub fn require_database_url(&self) -> Result<&str, ConfigError> {
        required(&self.database_url, "DATABASE_URL").map(Secret::expose)
    }

    pub fn require_migrate_database_url(&self) -> Result<&str, ConfigError> {
        match &self.migrate_database_url {
            Some(url) => Ok(url.expose()),
            None => self.require_database_url(),
        }
    }

    /// The configured SSO providers by name.
    pub fn sso_providers(&self) -> Vec<(&'static str, &str, &str, &str)> {
        let mut providers = Vec::new();
        if let Some(id) = &self.sso_google_client_id {
            let secret = self
                .sso_google_client_secret
                .as_ref()
                .map_or("", Secret::expose);
            providers.push((
                "google",
                self.sso_google_issuer.as_str(),
                id.as_str(),
                secret,
            ));
        }
        if let Some(id) = &self.sso_microsoft_client_id {
            let secret = self
                .sso_microsoft_client_secret
                .as_ref()
                .map_or("", Secret::expose);
            providers.push((
                "microsoft",
                self.sso_microsoft_issuer.as_str(),
                id.as_str(),
                secret,
            ));
        }
        providers
    }

    pub fn require_vault_token(&self) -> Result<&str, ConfigError> {
        required(&self.vault_token, "VAULT_TOKEN").map(Secret::expose)
    }

    pub fn require_redis_url(&self) -> Result<&str, ConfigError> {
        required(&self.redis_url, "REDIS_URL").map(Secret::expose)
    }

    pub fn require_vault_addr(&self) -> Result<&str, ConfigError> {
        required(&self.vault_addr, "VAULT_ADDR").map(String::as_str)
    }

    pub fn require_temporal_address(&self) -> Result<&str, ConfigError> {
        required(&self.temporal_address, "TEMPORAL_ADDRESS").map(String::as_str)
    }

    /// The egress policy from `BRAIN_EGRESS_ALLOW` and `BRAIN_EGRESS_ALLOW_HTTP`.
    pub fn egress(&self) -> Result<brain_auth::egress::EgressPolicy, ConfigError> {
        brain_auth::egress::EgressPolicy::new(
            self.egress_allow.as_deref().unwrap_or_default(),
            self.egress_allow_http,
        )
        .map_err(|reason| ConfigError::Invalid {
            setting: "BRAIN_EGRESS_ALLOW",
            reason,
        })
    }

    /// `BRAIN_TRUSTED_PROXIES`.
    pub fn trusted_proxies(&self) -> Result<brain_auth::client_ip::TrustedProxies, ConfigError> {
        brain_auth::client_ip::TrustedProxies::new(&self.trusted_proxies).map_err(|reason| {
            ConfigError::Invalid {
                setting: "BRAIN_TRUSTED_PROXIES",
                reason,
            }
        })
    }

    /// `BRAIN_CONNECTOR_ENDPOINTS` as (connector endpoint key, base URL) pairs.
    pub fn connector_endpoints(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            setting: "BRAIN_CONNECTOR_ENDPOINTS",
            reason,
        };
        let Some(raw) = &self.connector_endpoints else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, url) = pair
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("`{pair}` is not `connector=url`")))?;
                let parsed = reqwest::Url::parse(url.trim())
                    .map_err(|e| invalid(format!("`{url}`: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(format!("`{url}` is not an http(s) URL")));
                }
                Ok((key.trim().to_owned(), url.trim().to_owned()))
            })
            .collect()
    }

    pub fn require_embed_model_dir(&self) -> Result<&Path, ConfigError> {
        self.embed_model_dir.as_deref().ok_or(ConfigError::Missing {
            setting: "BRAIN_EMBED_MODEL_DIR",
            hint: " (for local development `cargo xtask up` or `cargo xtask test` fetch \
                       the model and write it to .brain/env)",
        })
    }
}

fn required<'a, T>(value: &'a Option<T>, setting: &'static str) -> Result<&'a T, ConfigError> {
    value.as_ref().ok_or(ConfigError::Missing {
        setting,
        hint: INFRA_HINT,
    })
}

/// sqlx echoes the URL (with its password) in some parse errors; keep only the kind.
fn redact_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(inner) => {
            let text = inner.to_string();
            if text.contains('@') {
                "not a valid postgres:// URL".to_owned()
            } else {
                text
            }
        }
        _ => "not a valid postgres:// URL".to_owned(),
    }
}

fn parse_host_port(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("`{addr}` is not host:port"))?;
    if host.is_empty() || host.contains('/') {
        return Err(format!("`{addr}` is not host:port (no scheme, no path)"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("`{port}` is not a port number"))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn defaults_then_file_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "brain.toml",
                "log = \"debug\"\ngateway_addr = \"127.0.0.1:9000\"\n\
                 temporal_address = \"file:7233\"\n",
            )?;
            jail.set_env("TEMPORAL_ADDRESS", "env:7233");
            jail.set_env("BRAIN_LOG_FORMAT", "json");
            let config = Config::from_figment(Config::figment(Some(Path::new("brain.toml"))))
                .map_err(|e| e.to_string())?;
            assert_eq!(config.log, "debug");
            assert_eq!(config.gateway_addr.port(), 9000);
            assert_eq!(config.auth_addr.port(), 8009, "untouched defaults stay");
            assert_eq!(config.temporal_address.as_deref(), Some("env:7233"));
            assert_eq!(config.log_format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn a_bad_setting_is_named() {
        Jail::expect_with(|jail| {
            let cases = [
                (
                    "TEMPORAL_ADDRESS",
                    "http://localhost:7233/x",
                    "TEMPORAL_ADDRESS",
                ),
                ("VAULT_ADDR", "ftp://vault", "VAULT_ADDR"),
                ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
                ("BRAIN_LOG_FORMAT", "yaml", "log_format"),
                (
                    "BRAIN_MODEL_PROVIDERS",
                    "openai=https://example.com/v1",
                    "BRAIN_MODEL_PROVIDERS",
                ),
                ("BRAIN_MODEL_PROVIDERS", "groq", "BRAIN_MODEL_PROVIDERS"),
                (
                    "BRAIN_MODEL_PROVIDERS",
                    "groq=ftp://x",
                    "BRAIN_MODEL_PROVIDERS",
                ),
                (
                    "BRAIN_MODEL_PROVIDER_KEYS",
                    "fireworks=fw_1",
                    "BRAIN_MODEL_PROVIDER_KEYS",
                ),
                ("BRAIN_GATEWAY_ADDR", "not-an-address", "gateway_addr"),
                (
                    "BRAIN_DATABASE_MAX_CONNECTIONS",
                    "0",
                    "BRAIN_DATABASE_MAX_CONNECTIONS",
                ),
            ];
            for (key, value, named) in cases {
                jail.clear_env();
                jail.set_env(key, value);
                let err = Config::from_figment(Config::figment(None))
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.to_lowercase().contains(&named.to_lowercase()),
                    "{key}={value}: `{err}` does not name {named}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://app:hunter2@db/brain");
            jail.set_env("VAULT_TOKEN", "s.topsecret");
            let config = Config::from_figment(Config::figment(None)).map_err(|e| e.to_string())?;
            let shown = format!("{config:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("topsecret"),
                "{shown}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_missing_requirement_says_how_to_fix_it() {
        let err = Config::default()
            .require_redis_url()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REDIS_URL") && err.contains("xtask infra up"),
            "{err}"
        );
    }
}
