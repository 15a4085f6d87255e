//! Inbound webhooks: per-tenant endpoints (secrets in Vault), verified deliveries stored and
//! deduplicated in `webhook_deliveries`, normalised to connector events.
//!
//! A webhook is created for one connector; its signing secret goes to the secret store under
//! `tenants/{tenant}/webhooks/{id}` and Postgres keeps only that path. Deliveries arrive at
//! `/hooks/{id}` without a tenant, so [`WebhookService::receive`] finds the webhook through the
//! `webhook_lookup` SECURITY DEFINER function and does everything after that inside the tenant
//! the row names.
//!
//! Signature schemes, by connector (header names lower-case):
//! * `shopify`: `x-shopify-hmac-sha256`, base64 HMAC of the body; a delivery without
//!   `x-shopify-triggered-at`, or older than the replay window, is refused.
//! * `woocommerce`: `x-wc-webhook-signature`, base64 HMAC of the body. WooCommerce's unsigned
//!   creation ping (`webhook_id=<n>`) is acknowledged without storing anything.
//! * `stripe`: `stripe-signature` (`t=…,v1=…`), 300 s tolerance.
//! * `hubspot`: v3, `x-hubspot-signature-v3` over method + URI + body + timestamp, with
//!   `x-hubspot-request-timestamp` (ms) within 300 s. See [`RequestMeta`] for the URI.
//! * every other connector: Brain's generic scheme, `x-brain-timestamp: <unix seconds>` and
//!   `x-brain-signature: sha256=<hex HMAC of "{timestamp}.{body}">`, 300 s window.
//!
//! A delivery is stored once per delivery id, and a delivery of one event also once per
//! signed content (SHA-256 of the body; of timestamp and body for the generic scheme):
//! Shopify and WooCommerce sign only the body, so the same body under a new delivery id or
//! relabelled topic is a replay. Each webhook's `events` filter limits which
//! topics it takes at all.
//!
//! Events are named `{connector}.{platform event}` and carry, as payload:
//! * shopify: `shopify.{x-shopify-topic}` (`shopify.orders/create`), the body; delivery id
//!   `x-shopify-webhook-id`, else `x-shopify-event-id`.
//! * woocommerce: `woocommerce.{x-wc-webhook-topic}` (`woocommerce.order.created`), the body;
//!   delivery id `x-wc-webhook-delivery-id`.
//! * stripe: `stripe.{type}` (`stripe.payment_intent.succeeded`), the whole event envelope, so
//!   rules address fields as `data.object.amount`; delivery id the event's `id` (`evt_…`).
//! * hubspot: the body is an array; one event per element, `hubspot.{subscriptionType}`
//!   (`hubspot.contact.propertyChange`), the element itself; delivery id its `eventId`.
//! * generic: `{connector}.{x-brain-event}`, the body; delivery id `x-brain-delivery`.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

use brain_auth::TenantId;
use brain_auth::secrets::{SecretMap, SecretPath, SecretStore, SecretString};
use chrono::{DateTime, Utc};
use prometheus::{IntCounterVec, Opts, Registry};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ToolError;
use crate::registry;
use crate::webhook::{self, REPLAY_WINDOW_SECS};

mod inbound;

use inbound::{Delivery, Normalised, Scheme, is_woocommerce_ping, normalise, signed_digest};

const MAX_EVENTS: usize = 50;
const MAX_EVENT_LEN: usize = 200;
const SECRET_LEN: RangeInclusive<usize> = 8..=512;
const MAX_DELIVERY_ID_LEN: usize = 255;
/// `webhook_deliveries.error` is for people reading a table, not for stack dumps.
const MAX_ERROR_LEN: usize = 2000;
/// The field of the secret-store entry holding the signing secret.
const SECRET_FIELD: &str = "secret";
/// Generated secrets are recognisable in a platform's settings page and in secret scanners.
const GENERATED_PREFIX: &str = "whsec_brain_";

/// A webhook to create, as the API receives it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// One of the registry's connector ids.
    pub connector: String,
    /// Events to accept, with or without the `{connector}.` prefix; empty means all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The signing secret, for platforms that issue it themselves (Shopify app secret, Stripe
    /// `whsec_…` endpoint secret, HubSpot app client secret, WooCommerce webhook secret). When
    /// absent Brain generates one.
    #[serde(default)]
    pub secret: Option<String>,
}

impl fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewWebhook")
            .field("connector", &self.connector)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A webhook as its tenant sees it (never with its secret).
#[derive(Serialize, Clone, Debug, sqlx::FromRow, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub connector: String,
    /// Accepted events, each the full `{connector}.{event}` name; empty means all.
    pub events: Vec<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub deliveries_ok: i64,
    pub deliveries_failed: i64,
    pub created_at: DateTime<Utc>,
}

/// A new webhook and its signing secret: the only time the secret leaves the secret store.
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

impl fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &"***")
            .finish()
    }
}

/// The request line of a delivery, which HubSpot v3 signs.
///
/// `uri` must be the full URL the platform called, scheme, host and query included
/// (`https://brain.example.com/hooks/{id}`). Behind a proxy the gateway cannot see it, so
/// [`WebhookService::receive`] assumes `POST {public base URL}/hooks/{id}` (see
/// [`WebhookService::with_public_base_url`]): that is the URL Brain tells the user to register,
/// hence the one HubSpot signs. [`WebhookService::receive_request`] takes it explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMeta {
    pub method: String,
    pub uri: String,
}

/// One event of a delivery, newly stored in `webhook_deliveries`.
#[derive(Clone, Debug, Serialize)]
pub struct InboundEvent {
    /// The `webhook_deliveries` row, for [`WebhookService::mark_processed`].
    pub delivery_row: Uuid,
    /// The platform's id of the delivery (or, for HubSpot, of the event).
    pub delivery_id: String,
    /// `{connector}.{event}`, e.g. `shopify.orders/create`.
    pub name: String,
    pub payload: Value,
}

/// What an accepted delivery produced.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub tenant: TenantId,
    pub webhook_id: Uuid,
    pub connector: String,
    /// Events stored by this request, to be fed to automation rules.
    pub events: Vec<InboundEvent>,
    /// Events already stored by an earlier delivery with the same id.
    pub duplicates: usize,
    /// Events outside the webhook's `events` filter (and WooCommerce pings): acknowledged,
    /// neither stored nor returned.
    pub ignored: usize,
}

/// `brain_webhook_deliveries_total{connector, outcome}`: `ok`, `duplicate` and `ignored` count
/// events; `invalid_signature` and `malformed` count refused requests.
#[derive(Clone)]
pub struct WebhookMetrics {
    pub deliveries: IntCounterVec,
}

impl WebhookMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "brain_webhook_deliveries_total",
                    "Inbound webhook events and refused deliveries by connector and outcome",
                ),
                &["connector", "outcome"],
            )?,
        };
        registry.register(Box::new(m.deliveries.clone()))?;
        Ok(m)
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Ok,
    Duplicate,
    InvalidSignature,
    Malformed,
    Ignored,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Duplicate => "duplicate",
            Outcome::InvalidSignature => "invalid_signature",
            Outcome::Malformed => "malformed",
            Outcome::Ignored => "ignored",
        }
    }
}

/// What `webhook_lookup` returns: enough to verify a delivery, never the secret itself.
#[derive(sqlx::FromRow)]
struct Endpoint {
    tenant_id: Uuid,
    connector: String,
    secret_ref: String,
    status: String,
    events: Vec<String>,
}

pub struct WebhookService {
    db: PgPool,
    secrets: Arc<dyn SecretStore>,
    metrics: Option<WebhookMetrics>,
    public_base_url: Option<String>,
    shopify_max_age_secs: i64,
}

impl WebhookService {
    pub fn new(db: PgPool, secrets: Arc<dyn SecretStore>) -> Self {
        Self {
            db,
            secrets,
            metrics: None,
            public_base_url: None,
            shopify_max_age_secs: REPLAY_WINDOW_SECS,
        }
    }

    pub fn with_metrics(mut self, metrics: WebhookMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The public base URL under which `/hooks/{id}` is reachable (`https://brain.example.com`).
    /// [`Self::url`] and HubSpot verification in [`Self::receive`] use it.
    pub fn with_public_base_url(mut self, base: impl Into<String>) -> Self {
        let base: String = base.into();
        self.public_base_url = Some(base.trim_end_matches('/').to_owned());
        self
    }

    /// How old a Shopify delivery's `X-Shopify-Triggered-At` may be (default: the 300 s replay
    /// window). Shopify retries a failed delivery for hours with the original trigger time, so
    /// a deployment that must survive longer outages without losing events raises this.
    pub fn with_shopify_max_age(mut self, max_age: std::time::Duration) -> Self {
        self.shopify_max_age_secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// `{public base URL}/hooks/{id}`, when the base is configured.
    pub fn url(&self, id: Uuid) -> Option<String> {
        self.public_base_url
            .as_ref()
            .map(|base| format!("{base}/hooks/{id}"))
    }

    /// Validates and creates a webhook; the secret (given or generated) goes to the secret
    /// store and is returned this once. If the secret store fails, no row remains.
    pub async fn create(
        &self,
        tenant: TenantId,
        new: NewWebhook,
    ) -> Result<CreatedWebhook, ToolError> {
        let def = registry::connector(&new.connector)?;
        let events = normalise_filter(def.id, &new.events)?;
        let secret = match new.secret {
            Some(secret) => {
                check_secret(&secret)?;
                secret
            }
            None => generate_secret()?,
        };
        let id = Uuid::now_v7();
        let path = SecretPath::tenant(tenant, "webhooks", &id.to_string())?;
        // The row is inserted first but committed only once the secret is stored: a failing
        // secret store rolls it back, and no secret exists without its row for long.
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let webhook: Webhook = sqlx::query_as(
            "INSERT INTO webhooks (id, tenant_id, connector, events, secret_ref) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, connector, events, status, last_delivery_at, deliveries_ok, \
               deliveries_failed, created_at",
        )
        .bind(id)
        .bind(tenant.0)
        .bind(def.id)
        .bind(&events)
        .bind(path.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let values = SecretMap::from([(SECRET_FIELD.to_owned(), SecretString::new(&*secret))]);
        self.secrets.put(&path, &values).await?;
        if let Err(e) = tx.commit().await {
            self.destroy_secret(&path).await;
            return Err(e.into());
        }
        tracing::info!(%tenant, webhook = %id, connector = def.id, "webhook created");
        Ok(CreatedWebhook { webhook, secret })
    }

    /// The tenant's webhooks, newest first.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Webhook>, ToolError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, connector, events, status, last_delivery_at, deliveries_ok, \
               deliveries_failed, created_at \
             FROM webhooks WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Webhook, ToolError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let row = sqlx::query_as(
            "SELECT id, connector, events, status, last_delivery_at, deliveries_ok, \
               deliveries_failed, created_at \
             FROM webhooks WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.ok_or(ToolError::WebhookNotFound)
    }

    /// Removes the webhook (its deliveries cascade), then destroys its secret.
    ///
    /// Once the row is gone the webhook accepts nothing, so a secret store failure after that
    /// is logged rather than returned: the delete did happen, and a retry would only 404.
    pub async fn delete(&self, tenant: TenantId, id: Uuid) -> Result<(), ToolError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let secret_ref: Option<String> = sqlx::query_scalar(
            "DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2 RETURNING secret_ref",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let secret_ref = secret_ref.ok_or(ToolError::WebhookNotFound)?;
        tx.commit().await?;
        match SecretPath::parse(&secret_ref) {
            Ok(path) => self.destroy_secret(&path).await,
            Err(e) => {
                tracing::error!(%tenant, webhook = %id, error = %e, "webhook secret path unreadable; secret not destroyed")
            }
        }
        tracing::info!(%tenant, webhook = %id, "webhook deleted");
        Ok(())
    }

    /// Verifies and stores one inbound delivery to `/hooks/{id}`. `headers` have lower-case
    /// names. `now` is the clock the replay windows are measured against.
    ///
    /// HubSpot deliveries are checked as `POST {public base URL}/hooks/{id}` (see
    /// [`RequestMeta`]); without a configured base they fail with [`ToolError::Internal`].
    pub async fn receive(
        &self,
        id: Uuid,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Received, ToolError> {
        self.receive_delivery(Delivery {
            id,
            request: None,
            headers,
            body,
            now,
        })
        .await
    }

    /// [`Self::receive`] with the request line given explicitly, for callers that know the
    /// exact URI the platform called.
    pub async fn receive_request(
        &self,
        id: Uuid,
        request: &RequestMeta,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Received, ToolError> {
        self.receive_delivery(Delivery {
            id,
            request: Some(request),
            headers,
            body,
            now,
        })
        .await
    }

    /// Records what became of a delivered event: `processed`, or `failed` with the reason.
    pub async fn mark_processed(
        &self,
        tenant: TenantId,
        delivery_row: Uuid,
        outcome: Result<(), String>,
    ) -> Result<(), ToolError> {
        let (status, error) = match outcome {
            Ok(()) => ("processed", None),
            Err(e) => ("failed", Some(truncate(&e, MAX_ERROR_LEN).to_owned())),
        };
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, error = $4 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(delivery_row)
        .bind(status)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ToolError::DeliveryNotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a stored delivery that could not be acted on (its rules could not be started),
    /// so the platform's retry of it counts as new rather than as a duplicate.
    pub async fn forget(&self, tenant: TenantId, delivery_row: Uuid) -> Result<(), ToolError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(delivery_row)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn receive_delivery(&self, delivery: Delivery<'_>) -> Result<Received, ToolError> {
        let endpoint = self.lookup(delivery.id).await?;
        let tenant = TenantId(endpoint.tenant_id);
        let connector = endpoint.connector.as_str();
        let scheme = Scheme::of(connector);
        let accepted = |events, duplicates, ignored| Received {
            tenant,
            webhook_id: delivery.id,
            connector: endpoint.connector.clone(),
            events,
            duplicates,
            ignored,
        };
        // WooCommerce pings a new webhook once, unsigned, and shows an error unless it gets a
        // 200. Acknowledging it changes nothing, so it needs no signature.
        if scheme == Scheme::WooCommerce && is_woocommerce_ping(&delivery) {
            self.observe(connector, Outcome::Ignored, 1);
            return Ok(accepted(Vec::new(), 0, 1));
        }

        let secret = self.read_secret(tenant, &endpoint).await?;
        let verified = self.verify(scheme, secret.expose().as_bytes(), &delivery);
        drop(secret);
        if let Err(e) = verified {
            if let ToolError::InvalidSignature(reason) = &e {
                tracing::warn!(%tenant, webhook = %delivery.id, connector, %reason, "webhook delivery refused");
                self.refuse(tenant, delivery.id, connector, Outcome::InvalidSignature)
                    .await;
            }
            return Err(e);
        }

        let events = match normalise(connector, delivery.headers, delivery.body) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(%tenant, webhook = %delivery.id, connector, error = %e, "webhook delivery refused");
                self.refuse(tenant, delivery.id, connector, Outcome::Malformed)
                    .await;
                return Err(e);
            }
        };
        let (wanted, unwanted): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| endpoint.events.is_empty() || endpoint.events.contains(&e.name));
        // A delivery of one event is also deduplicated on what its signature covers: where
        // that is only the body, the delivery id and topic headers could be changed.
        let signed_sha256 =
            (wanted.len() == 1 && unwanted.is_empty()).then(|| signed_digest(scheme, &delivery));
        let (stored, duplicates) = self
            .store(
                tenant,
                delivery.id,
                wanted,
                signed_sha256.as_ref().map(AsRef::as_ref),
                delivery.now,
            )
            .await?;
        self.observe(connector, Outcome::Ok, stored.len());
        self.observe(connector, Outcome::Duplicate, duplicates);
        self.observe(connector, Outcome::Ignored, unwanted.len());
        tracing::info!(
            %tenant,
            webhook = %delivery.id,
            connector,
            stored = stored.len(),
            duplicates,
            ignored = unwanted.len(),
            "webhook delivery accepted"
        );
        Ok(accepted(stored, duplicates, unwanted.len()))
    }

    /// The active webhook with this id, whichever tenant owns it.
    async fn lookup(&self, id: Uuid) -> Result<Endpoint, ToolError> {
        let endpoint: Option<Endpoint> = sqlx::query_as(
            "SELECT tenant_id, connector, secret_ref, status, events FROM webhook_lookup($1)",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        endpoint
            .filter(|e| e.status == "active")
            .ok_or(ToolError::WebhookNotFound)
    }

    async fn read_secret(
        &self,
        tenant: TenantId,
        endpoint: &Endpoint,
    ) -> Result<SecretString, ToolError> {
        let path = SecretPath::parse(&endpoint.secret_ref)?;
        // The path comes from a row of `tenant`; one pointing elsewhere means the row was
        // tampered with, and another tenant's secret must not verify this tenant's deliveries.
        if !path.as_str().starts_with(&format!("tenants/{tenant}/")) {
            return Err(ToolError::Internal(
                "webhook secret path outside its tenant".to_owned(),
            ));
        }
        let secret = self
            .secrets
            .get(&path)
            .await?
            .and_then(|mut values| values.remove(SECRET_FIELD));
        // A row without its secret is one being deleted right now.
        secret.ok_or(ToolError::WebhookNotFound)
    }

    /// Stores the events not seen before, in one transaction with the webhook's counters.
    async fn store(
        &self,
        tenant: TenantId,
        webhook_id: Uuid,
        events: Vec<Normalised>,
        signed_sha256: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<InboundEvent>, usize), ToolError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let mut stored = Vec::with_capacity(events.len());
        let mut duplicates = 0;
        for event in events {
            let row: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO webhook_deliveries \
                   (id, tenant_id, webhook_id, delivery_id, event, payload, received_at, \
                    signed_sha256) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(webhook_id)
            .bind(&event.delivery_id)
            .bind(&event.name)
            .bind(&event.payload)
            .bind(now)
            .bind(signed_sha256)
            .fetch_optional(&mut *tx)
            .await
            .map_err(insert_error)?;
            match row {
                Some(delivery_row) => stored.push(InboundEvent {
                    delivery_row,
                    delivery_id: event.delivery_id,
                    name: event.name,
                    payload: event.payload,
                }),
                None => duplicates += 1,
            }
        }
        let updated = sqlx::query(
            "UPDATE webhooks SET deliveries_ok = deliveries_ok + 1, last_delivery_at = $3 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(webhook_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(ToolError::WebhookNotFound);
        }
        tx.commit().await?;
        Ok((stored, duplicates))
    }

    /// Counts a refused delivery. The refusal is what the caller must see, so a failure to
    /// count it is only logged.
    async fn refuse(&self, tenant: TenantId, webhook_id: Uuid, connector: &str, why: Outcome) {
        self.observe(connector, why, 1);
        let counted = async {
            let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
            sqlx::query(
                "UPDATE webhooks SET deliveries_failed = deliveries_failed + 1 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(webhook_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        if let Err(e) = counted.await {
            tracing::error!(%tenant, webhook = %webhook_id, error = %e, "could not count a refused webhook delivery");
        }
    }

    async fn destroy_secret(&self, path: &SecretPath) {
        if let Err(e) = self.secrets.destroy(path).await {
            tracing::error!(path = %path, error = %e, "could not destroy a webhook secret");
        }
    }

    fn observe(&self, connector: &str, outcome: Outcome, n: usize) {
        if let Some(metrics) = &self.metrics
            && n > 0
        {
            metrics
                .deliveries
                .with_label_values(&[connector, outcome.label()])
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }
}

/// A constraint or encoding failure while storing is about the delivery or a concurrent
/// delete, not a fault of Brain's.
fn insert_error(e: sqlx::Error) -> ToolError {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned());
    match code.as_deref() {
        // foreign_key_violation: the webhook was deleted since the lookup.
        Some("23503") => ToolError::WebhookNotFound,
        // untranslatable_character: jsonb refuses `\u0000`, which JSON allows.
        Some("22P05") => ToolError::MalformedDelivery(
            "the payload contains characters Brain cannot store".to_owned(),
        ),
        _ => ToolError::Database(e),
    }
}

/// `events` as stored: each `{connector}.{event}`, validated, without repeats.
fn normalise_filter(connector: &str, events: &[String]) -> Result<Vec<String>, ToolError> {
    if events.len() > MAX_EVENTS {
        return Err(ToolError::InvalidWebhook(format!(
            "at most {MAX_EVENTS} events may be given"
        )));
    }
    let prefix = format!("{connector}.");
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let topic = event.strip_prefix(&prefix).unwrap_or(event);
        check_topic(topic)
            .map_err(|reason| ToolError::InvalidWebhook(format!("events[{i}] {reason}")))?;
        let name = format!("{prefix}{topic}");
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The platform's part of an event name: what rules match on, so kept to a safe alphabet.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("is empty".to_owned());
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
    {
        return Err("may contain only letters, digits, `_`, `.`, `/` and `-`".to_owned());
    }
    if topic.len() > MAX_EVENT_LEN {
        return Err(format!("is longer than {MAX_EVENT_LEN} characters"));
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<(), ToolError> {
    let printable = !secret.chars().any(char::is_control);
    if SECRET_LEN.contains(&secret.chars().count()) && printable {
        Ok(())
    } else {
        Err(ToolError::InvalidWebhook(format!(
            "the secret must be {} to {} printable characters",
            SECRET_LEN.start(),
            SECRET_LEN.end()
        )))
    }
}

fn generate_secret() -> Result<String, ToolError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ToolError::Internal("no randomness for a webhook secret".to_owned()))?;
    Ok(format!("{GENERATED_PREFIX}{}", webhook::hex_encode(&bytes)))
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_stored_with_the_connector_prefix() {
        let given = [
            "orders/create".to_owned(),
            "shopify.orders/create".to_owned(),
            "shopify.refunds/create".to_owned(),
        ];
        assert_eq!(
            normalise_filter("shopify", &given).unwrap(),
            ["shopify.orders/create", "shopify.refunds/create"]
        );
        for bad in [
            "",
            "shopify.",
            "orders create",
            "orders/créate",
            &"x".repeat(201),
        ] {
            let err = normalise_filter("shopify", &[bad.to_owned()]).unwrap_err();
            assert!(matches!(err, ToolError::InvalidWebhook(_)), "{bad:?}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("e{i}")).collect();
        assert!(normalise_filter("slack", &many).is_err());
    }

    #[test]
    fn secrets_are_checked_and_generated() {
        check_secret("12345678").unwrap();
        assert!(check_secret("1234567").is_err());
        assert!(check_secret(&"x".repeat(513)).is_err());
        assert!(check_secret("abc\ndefgh").is_err());
        let s = generate_secret().unwrap();
        assert!(s.starts_with(GENERATED_PREFIX));
        assert_eq!(s.len(), GENERATED_PREFIX.len() + 64);
        assert_ne!(s, generate_secret().unwrap());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let new = NewWebhook {
            connector: "stripe".to_owned(),
            events: Vec::new(),
            secret: Some("whsec_hunter2".to_owned()),
        };
        assert!(!format!("{new:?}").contains("hunter2"));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
