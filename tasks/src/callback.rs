//! Completion callbacks: when a task with a `callback_url` ends, its result is POSTed there,
//! signed with a secret made for that task (shown once, when the task is created) the way
//! Brain signs everything it sends: `X-Brain-Timestamp: <unix seconds>` and
//! `X-Brain-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.

use std::sync::Arc;
use std::time::Duration;

use brain_auth::TenantId;
use brain_auth::egress::{self, EgressPolicy};
use brain_auth::secrets::{SecretMap, SecretPath, SecretStore, SecretString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::error::TaskError;
use super::model::TaskView;

const FIELD: &str = "secret";

pub struct CallbackSigner {
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    /// A callback URL is the API client's choice: it obeys the egress policy.
    egress: EgressPolicy,
}

fn path(tenant: TenantId, task: Uuid) -> Result<SecretPath, TaskError> {
    Ok(SecretPath::tenant(
        tenant,
        "task-callbacks",
        &task.to_string(),
    )?)
}

/// `sha256=<hex>` of `"{timestamp}.{body}"` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl CallbackSigner {
    pub fn new(secrets: Arc<dyn SecretStore>, egress: EgressPolicy) -> Result<Self, TaskError> {
        let http = egress
            .client_builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| TaskError::Internal(format!("callback HTTP client: {e}")))?;
        Ok(Self {
            secrets,
            http,
            egress,
        })
    }

    /// Whether `url` may receive callbacks, with its host resolved: a clear error when the
    /// task is created. Where the name points is checked again when the callback connects.
    pub(crate) async fn check_url(&self, url: &str) -> Result<(), TaskError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| TaskError::validation("callback_url", "is not a URL"))?;
        self.egress
            .check_resolved(&parsed)
            .await
            .map_err(|e| TaskError::validation("callback_url", e.to_string()))
    }

    /// Makes the task's callback secret (once) and returns it.
    pub(crate) async fn create(&self, tenant: TenantId, task: Uuid) -> Result<String, TaskError> {
        let bytes: [u8; 32] = rand_bytes()?;
        let secret: String = format!(
            "whsec_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut values = SecretMap::new();
        values.insert(FIELD.to_owned(), SecretString::new(secret.clone()));
        self.secrets.put(&path(tenant, task)?, &values).await?;
        Ok(secret)
    }

    async fn secret(
        &self,
        tenant: TenantId,
        task: Uuid,
    ) -> Result<Option<SecretString>, TaskError> {
        Ok(self
            .secrets
            .get(&path(tenant, task)?)
            .await?
            .and_then(|mut m| m.remove(FIELD)))
    }

    /// POSTs the task; `Err((retryable, reason))` when it did not get through.
    pub(crate) async fn deliver(
        &self,
        tenant: TenantId,
        url: &str,
        task: &TaskView,
    ) -> Result<(), (bool, String)> {
        let secret = self
            .secret(tenant, task.task_id)
            .await
            .map_err(|e| (true, format!("callback secret: {e}")))?
            .ok_or_else(|| (false, "the task has no callback secret".to_owned()))?;
        let body = serde_json::to_vec(&serde_json::json!({"type": "task.finished", "task": task}))
            .map_err(|e| (false, e.to_string()))?;
        if let Err(e) = self.egress.check_str(url) {
            return Err((false, format!("callback not sent: {e}")));
        }
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-brain-event", "task.finished")
            .header("x-brain-delivery", task.task_id.to_string())
            .header("x-brain-timestamp", timestamp.to_string())
            .header(
                "x-brain-signature",
                signature(secret.expose(), timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| match egress::refusal(&e) {
                Some(refused) => (false, format!("callback not sent: {refused}")),
                None => (true, format!("callback not delivered: {}", e.without_url())),
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let retryable = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
            Err((
                retryable,
                format!("callback answered HTTP {}", status.as_u16()),
            ))
        }
    }
}

fn rand_bytes() -> Result<[u8; 32], TaskError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TaskError::Internal("no randomness".into()))?;
    Ok(bytes)
}
