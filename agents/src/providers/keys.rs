//! Tenants' own model provider keys (BYOK): a key set through the API passes a cheap live
//! call first, then goes to the secret store under the tenant; Postgres keeps only where it
//! is, a masked hint and when it was verified. A provider reads the tenant's key on each
//! call and falls back to the deployment's key when the tenant has none.

use std::sync::Arc;

use brain_auth::TenantId;
use brain_auth::secrets::{SecretMap, SecretPath, SecretStore, SecretString};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::ProviderRegistry;
use crate::error::{AgentError, FieldError, ProviderError};

/// A tenant's key for one provider, with the endpoint settings that go with it.
#[derive(Clone)]
pub struct ProviderKey {
    pub api_key: SecretString,
    /// Another endpoint of the same API (an Azure OpenAI resource, a proxy); it must pass the
    /// deployment's egress policy.
    pub base_url: Option<String>,
    /// Sent as `OpenAI-Organization`.
    pub organization: Option<String>,
}

impl std::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderKey")
            .field("api_key", &self.hint())
            .field("base_url", &self.base_url)
            .field("organization", &self.organization)
            .finish()
    }
}

impl ProviderKey {
    /// Where a tenant's key for `provider` is kept in the secret store.
    pub fn path(tenant: TenantId, provider: &str) -> Result<SecretPath, ProviderError> {
        SecretPath::tenant(tenant, "llm", provider).map_err(ProviderError::secrets)
    }

    /// The tenant's key for `provider`, if it set one.
    pub async fn load(
        store: &dyn SecretStore,
        tenant: TenantId,
        provider: &str,
    ) -> Result<Option<Self>, ProviderError> {
        let path = Self::path(tenant, provider)?;
        let stored = store.get(&path).await.map_err(ProviderError::secrets)?;
        Ok(stored.and_then(Self::from_secret))
    }

    fn from_secret(mut map: SecretMap) -> Option<Self> {
        let mut plain = |field: &str| map.remove(field).map(|v| v.expose().to_owned());
        let base_url = plain("base_url");
        let organization = plain("organization");
        Some(Self {
            api_key: map.remove("api_key")?,
            base_url,
            organization,
        })
    }

    fn to_secret(&self) -> SecretMap {
        let mut map = SecretMap::new();
        map.insert("api_key".into(), self.api_key.clone());
        let settings = [
            ("base_url", &self.base_url),
            ("organization", &self.organization),
        ];
        for (field, value) in settings {
            if let Some(value) = value {
                map.insert(field.into(), SecretString::new(value.clone()));
            }
        }
        map
    }

    /// `sk-…wxyz`: enough to tell two keys apart, far too little to use one. Short keys
    /// show nothing of themselves.
    pub fn hint(&self) -> String {
        let key: Vec<char> = self.api_key.expose().chars().collect();
        if key.len() < 16 {
            return "…".to_owned();
        }
        let head: String = key[..3].iter().collect();
        let tail: String = key[key.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

/// How a provider takes API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyUse {
    /// Needs none (the local model).
    None,
    /// A tenant's own key, else the deployment's when it has one.
    TenantOrDeployment,
}

/// Which key a tenant's calls to a provider use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The provider needs no key.
    NotNeeded,
    /// The tenant's own key.
    Tenant,
    /// The deployment-wide key (e.g. `OPENAI_API_KEY`).
    Deployment,
    /// No key: calls fail with `model_not_configured` until one is set.
    Missing,
}

/// A provider as a tenant's settings show it; the key itself is never shown.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProviderKeyView {
    /// The provider's name in model references (`openai` of `openai:gpt-4o`).
    pub provider: String,
    pub key: KeySource,
    /// The tenant's key, masked (`sk-…wxyz`).
    pub key_hint: Option<String>,
    pub base_url: Option<String>,
    pub organization: Option<String>,
    /// When the tenant's key last passed a live call.
    pub verified_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    provider: String,
    key_hint: String,
    base_url: Option<String>,
    organization: Option<String>,
    verified_at: DateTime<Utc>,
}

/// Sets, lists and removes tenants' provider keys.
pub struct ProviderKeys {
    db: PgPool,
    secrets: Arc<dyn SecretStore>,
    providers: ProviderRegistry,
}

impl ProviderKeys {
    pub fn new(db: PgPool, secrets: Arc<dyn SecretStore>, providers: ProviderRegistry) -> Self {
        Self {
            db,
            secrets,
            providers,
        }
    }

    /// Every provider this Brain runs, with the key the tenant's calls to it use.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<ProviderKeyView>, AgentError> {
        let rows = self.rows(tenant, None).await?;
        let views = self.providers.names().into_iter().map(|name| {
            let row = rows.iter().find(|r| r.provider == name);
            self.view(name, row)
        });
        Ok(views.collect())
    }

    /// Checks `key` with a live call to `provider`, then keeps it for the tenant (replacing
    /// its earlier one). Nothing is stored when the provider refuses the key.
    pub async fn set(
        &self,
        tenant: TenantId,
        provider: &str,
        key: ProviderKey,
    ) -> Result<ProviderKeyView, AgentError> {
        let llm = self.keyed(provider)?;
        if key.api_key.expose().trim().is_empty() || key.api_key.expose().len() > 4096 {
            return Err(FieldError::new("api_key", "must be 1 to 4096 characters").into());
        }
        if key.organization.as_ref().is_some_and(|o| o.len() > 200) {
            return Err(FieldError::new("organization", "must be at most 200 characters").into());
        }
        llm.verify_key(&key).await?;
        let path = ProviderKey::path(tenant, provider)?;
        self.secrets
            .put(&path, &key.to_secret())
            .await
            .map_err(ProviderError::secrets)?;
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        sqlx::query(
            "INSERT INTO tenant_model_keys \
               (tenant_id, provider, vault_path, key_hint, base_url, organization, verified_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now()) \
             ON CONFLICT (tenant_id, provider) DO UPDATE SET vault_path = EXCLUDED.vault_path, \
               key_hint = EXCLUDED.key_hint, base_url = EXCLUDED.base_url, \
               organization = EXCLUDED.organization, verified_at = now(), updated_at = now()",
        )
        .bind(tenant.0)
        .bind(provider)
        .bind(path.as_str())
        .bind(key.hint())
        .bind(&key.base_url)
        .bind(&key.organization)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(%tenant, provider, "tenant model key set");
        self.one(tenant, provider).await
    }

    /// Forgets the tenant's key for `provider`; its calls use the deployment's key again.
    pub async fn remove(
        &self,
        tenant: TenantId,
        provider: &str,
    ) -> Result<ProviderKeyView, AgentError> {
        self.keyed(provider)?;
        let path = ProviderKey::path(tenant, provider)?;
        self.secrets
            .destroy(&path)
            .await
            .map_err(ProviderError::secrets)?;
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        sqlx::query("DELETE FROM tenant_model_keys WHERE tenant_id = $1 AND provider = $2")
            .bind(tenant.0)
            .bind(provider)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(%tenant, provider, "tenant model key removed");
        self.one(tenant, provider).await
    }

    /// The provider `name`, if it is one that takes keys.
    fn keyed(&self, name: &str) -> Result<Arc<dyn super::LlmProvider>, AgentError> {
        let unknown = || ProviderError::UnknownProvider(name.to_owned());
        let llm = self.providers.get(name).ok_or_else(unknown)?;
        if llm.key_use() == KeyUse::None {
            return Err(FieldError::new("provider", format!("`{name}` needs no API key")).into());
        }
        Ok(llm)
    }

    async fn one(&self, tenant: TenantId, provider: &str) -> Result<ProviderKeyView, AgentError> {
        let rows = self.rows(tenant, Some(provider)).await?;
        Ok(self.view(provider.to_owned(), rows.first()))
    }

    async fn rows(
        &self,
        tenant: TenantId,
        provider: Option<&str>,
    ) -> Result<Vec<KeyRow>, AgentError> {
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows = sqlx::query_as(
            "SELECT provider, key_hint, base_url, organization, verified_at \
             FROM tenant_model_keys WHERE tenant_id = $1 AND ($2::text IS NULL OR provider = $2) \
             ORDER BY provider",
        )
        .bind(tenant.0)
        .bind(provider)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    fn view(&self, provider: String, row: Option<&KeyRow>) -> ProviderKeyView {
        let llm = self.providers.get(&provider);
        let key = match llm.map(|l| (l.key_use(), l.has_deployment_key())) {
            Some((KeyUse::None, _)) => KeySource::NotNeeded,
            _ if row.is_some() => KeySource::Tenant,
            Some((_, true)) => KeySource::Deployment,
            _ => KeySource::Missing,
        };
        ProviderKeyView {
            provider,
            key,
            key_hint: row.map(|r| r.key_hint.clone()),
            base_url: row.and_then(|r| r.base_url.clone()),
            organization: row.and_then(|r| r.organization.clone()),
            verified_at: row.map(|r| r.verified_at),
        }
    }
}
