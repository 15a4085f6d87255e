//! `/readyz`: is every dependency the gateway needs answering right now?
//!
//! Each probe does a real round trip (a query, a PING, Vault's health endpoint, Temporal's
//! gRPC health service) under a timeout; all four run concurrently.

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::{Config, ConfigError};

#[derive(Clone)]
pub struct Readiness {
    postgres: PgPool,
    redis: redis::Client,
    vault_health: reqwest::Url,
    temporal_health: reqwest::Url,
    http: reqwest::Client,
    grpc: reqwest::Client,
    timeout: Duration,
}

/// What went wrong with one dependency, in words safe to show (no URLs, no credentials).
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeError {
    Timeout,
    Unreachable,
    Unhealthy(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Timeout => f.write_str("timeout"),
            ProbeError::Unreachable => f.write_str("unreachable"),
            ProbeError::Unhealthy(why) => write!(f, "unhealthy: {why}"),
        }
    }
}

impl Readiness {
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let database = config.require_database_url()?;
        let options = PgConnectOptions::from_str(database).map_err(|e| ConfigError::Invalid {
            setting: "DATABASE_URL",
            reason: e.to_string(),
        })?;
        let timeout = Duration::from_secs(config.readiness_timeout_secs);
        // Lazy: the gateway starts (and reports 503) while Postgres is still down.
        let postgres = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Self::new(
            postgres,
            config.require_redis_url()?,
            config.require_vault_addr()?,
            config.require_temporal_address()?,
            timeout,
        )
    }

    pub fn new(
        postgres: PgPool,
        redis_url: &str,
        vault_addr: &str,
        temporal_address: &str,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let redis = redis::Client::open(redis_url).map_err(|e| ConfigError::Invalid {
            setting: "REDIS_URL",
            reason: e.to_string(),
        })?;
        let vault_health = reqwest::Url::parse(vault_addr)
            .and_then(|base| base.join("/v1/sys/health"))
            .map_err(|e| ConfigError::Invalid {
                setting: "VAULT_ADDR",
                reason: e.to_string(),
            })?;
        let temporal_health = reqwest::Url::parse(&format!(
            "http://{temporal_address}/grpc.health.v1.Health/Check"
        ))
        .map_err(|e| ConfigError::Invalid {
            setting: "TEMPORAL_ADDRESS",
            reason: e.to_string(),
        })?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder().timeout(timeout).build();
        let grpc = reqwest::Client::builder()
            .timeout(timeout)
            .http2_prior_knowledge()
            .build();
        let (http, grpc) = match (http, grpc) {
            (Ok(http), Ok(grpc)) => (http, grpc),
            (Err(e), _) | (_, Err(e)) => {
                return Err(ConfigError::Invalid {
                    setting: "HTTP client",
                    reason: e.to_string(),
                });
            }
        };
        Ok(Self {
            postgres,
            redis,
            vault_health,
            temporal_health,
            http,
            grpc,
            timeout,
        })
    }

    /// Probes all four dependencies concurrently.
    pub async fn check(&self) -> BTreeMap<&'static str, Result<(), ProbeError>> {
        let (postgres, redis, vault, temporal) = tokio::join!(
            self.bounded(self.postgres()),
            self.bounded(self.redis()),
            self.bounded(self.vault()),
            self.bounded(self.temporal()),
        );
        BTreeMap::from([
            ("postgres", postgres),
            ("redis", redis),
            ("vault", vault),
            ("temporal", temporal),
        ])
    }

    async fn bounded(
        &self,
        probe: impl Future<Output = Result<(), ProbeError>>,
    ) -> Result<(), ProbeError> {
        tokio::time::timeout(self.timeout, probe)
            .await
            .unwrap_or(Err(ProbeError::Timeout))
    }

    async fn postgres(&self) -> Result<(), ProbeError> {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&self.postgres)
            .await
            .map_err(|e| log("postgres", e, ProbeError::Unreachable))?;
        if one == 1 {
            Ok(())
        } else {
            Err(ProbeError::Unhealthy("SELECT 1".to_owned()))
        }
    }

    async fn redis(&self) -> Result<(), ProbeError> {
        let mut conn = self
            .redis
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| log("redis", e, ProbeError::Unreachable))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| log("redis", e, ProbeError::Unhealthy("PING failed".to_owned())))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(ProbeError::Unhealthy(format!("PING → {pong}")))
        }
    }

    /// Vault's health endpoint: 200 active, 429 unsealed standby; anything else (sealed,
    /// uninitialised, recovery) is not ready.
    async fn vault(&self) -> Result<(), ProbeError> {
        let response = self
            .http
            .get(self.vault_health.clone())
            .send()
            .await
            .map_err(|e| log("vault", e, ProbeError::Unreachable))?;
        match response.status().as_u16() {
            200 | 429 => Ok(()),
            501 => Err(ProbeError::Unhealthy("not initialised".to_owned())),
            503 => Err(ProbeError::Unhealthy("sealed".to_owned())),
            other => Err(ProbeError::Unhealthy(format!("status {other}"))),
        }
    }

    /// The standard gRPC health service, which Temporal's frontend serves. The request is an
    /// empty `HealthCheckRequest` (overall server health); a `SERVING` reply is the
    /// protobuf field 1 = 1, i.e. the bytes `08 01` after the 5-byte gRPC frame header.
    async fn temporal(&self) -> Result<(), ProbeError> {
        let response = self
            .grpc
            .post(self.temporal_health.clone())
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(vec![0u8; 5])
            .send()
            .await
            .map_err(|e| log("temporal", e, ProbeError::Unreachable))?;
        if let Some(status) = response.headers().get("grpc-status")
            && status.as_bytes() != b"0"
        {
            let status = String::from_utf8_lossy(status.as_bytes()).into_owned();
            return Err(ProbeError::Unhealthy(format!("grpc-status {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| log("temporal", e, ProbeError::Unreachable))?;
        grpc_serving(&body)
    }
}

fn grpc_serving(frame: &[u8]) -> Result<(), ProbeError> {
    match frame {
        [0, _, _, _, _, 0x08, 0x01, ..] => Ok(()),
        [0, _, _, _, _, 0x08, status, ..] => Err(ProbeError::Unhealthy(format!(
            "health status {status} (not SERVING)"
        ))),
        _ => Err(ProbeError::Unhealthy("not a gRPC health reply".to_owned())),
    }
}

fn log(dependency: &str, error: impl std::fmt::Display, result: ProbeError) -> ProbeError {
    tracing::warn!(dependency, error = %error, "readiness probe failed");
    result
}

/// `GET /readyz`: 200 with every dependency `"ok"`, else 503 with the failing ones named.
pub async fn readyz(State(readiness): State<Readiness>) -> Response {
    let report = readiness.check().await;
    let all_ok = report.values().all(Result::is_ok);
    let body: BTreeMap<&str, String> = report
        .into_iter()
        .map(|(name, result)| {
            (
                name,
                result.map_or_else(|e| e.to_string(), |()| "ok".to_owned()),
            )
        })
        .collect();
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_health_replies_are_decoded() {
        assert_eq!(grpc_serving(&[0, 0, 0, 0, 2, 0x08, 0x01]), Ok(()));
        assert!(matches!(
            grpc_serving(&[0, 0, 0, 0, 2, 0x08, 0x02]),
            Err(ProbeError::Unhealthy(_))
        ));
        assert!(matches!(grpc_serving(&[]), Err(ProbeError::Unhealthy(_))));
        assert!(matches!(
            grpc_serving(b"<html>"),
            Err(ProbeError::Unhealthy(_))
        ));
    }
}
