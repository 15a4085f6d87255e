//! The connector transport: one HTTP client for every platform, with retries on 429 and 5xx
//! (capped, jittered exponential back-off honouring `Retry-After`), error classification and
//! redaction of credential values from anything a platform echoes back.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use brain_auth::egress::{self, EgressPolicy};
use brain_auth::secrets::SecretString;

use crate::ToolError;

/// How hard the transport tries before giving up.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// No single wait is longer; a `Retry-After` beyond it is returned as `rate_limited`
    /// instead of being slept through.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): exponential, capped, with "equal
    /// jitter" (half fixed, half random) so many callers do not retry in lockstep.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let random = if jitter_ms == 0 {
            0
        } else {
            uuid::Uuid::new_v4().as_u64_pair().0 % (jitter_ms + 1)
        };
        half + Duration::from_millis(random)
    }
}

/// Replaces every known credential value in text that came back from a platform.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut values: Vec<String> = secrets
            .into_iter()
            .map(|s| s.expose().to_owned())
            // Very short values would redact ordinary words; no real credential is that short.
            .filter(|v| v.len() >= 6)
            .collect();
        // Longest first, so a secret containing another is removed whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Self { values }
    }

    pub(crate) fn add(&mut self, secret: &SecretString) {
        if secret.expose().len() >= 6 {
            self.values.push(secret.expose().to_owned());
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "[redacted]");
            }
        }
        out
    }
}

pub(crate) enum Body {
    Empty,
    Json(Value),
    Form(Vec<(String, String)>),
}

/// One request to a platform, rebuilt for every attempt.
pub(crate) struct Req {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Body,
    /// Whether a 5xx may be retried: true for reads and for writes the platform deduplicates.
    retry_5xx: bool,
    /// The address is the tenant's choice (a site URL): an answer that is not the API's
    /// JSON is never echoed into an error.
    tenant_site: bool,
}

impl Req {
    pub(crate) fn new(method: Method, url: impl Into<String>) -> Self {
        let retry_5xx = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        Self {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Body::Empty,
            retry_5xx,
            tenant_site: false,
        }
    }

    pub(crate) fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    pub(crate) fn post(url: impl Into<String>) -> Self {
        Self::new(Method::POST, url)
    }

    pub(crate) fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    pub(crate) fn query_opt(self, key: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// A header whose value is a credential: marked sensitive so no `Debug` prints it.
    pub(crate) fn secret_header(
        mut self,
        name: &'static str,
        value: &str,
    ) -> Result<Self, ToolError> {
        let mut v = HeaderValue::from_str(value).map_err(|_| ToolError::InvalidCredentials {
            // The connector is unknown here; the message says which field is at fault.
            connector: "this connection".to_owned(),
            message: format!("the value sent as {name} contains characters HTTP does not allow"),
        })?;
        v.set_sensitive(true);
        self.headers.insert(HeaderName::from_static(name), v);
        Ok(self)
    }

    pub(crate) fn bearer(self, token: &SecretString) -> Result<Self, ToolError> {
        self.secret_header("authorization", &format!("Bearer {}", token.expose()))
    }

    pub(crate) fn basic(self, user: &str, password: &SecretString) -> Result<Self, ToolError> {
        use base64::Engine as _;
        let raw = format!("{user}:{}", password.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        self.secret_header("authorization", &format!("Basic {encoded}"))
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Result<Self, ToolError> {
        let v = HeaderValue::from_str(value)
            .map_err(|_| ToolError::Internal(format!("bad header {name}")))?;
        self.headers.insert(HeaderName::from_static(name), v);
        Ok(self)
    }

    pub(crate) fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    pub(crate) fn form(mut self, pairs: Vec<(String, String)>) -> Self {
        self.body = Body::Form(pairs);
        self
    }

    /// Marks a request to an address the tenant chose (see [`Req::tenant_site`]'s field).
    pub(crate) fn tenant_site(mut self) -> Self {
        self.tenant_site = true;
        self
    }

    /// Marks a POST as safe to repeat after a 5xx (a read, or a write the platform
    /// deduplicates by idempotency key).
    pub(crate) fn retry_safe(mut self) -> Self {
        self.retry_5xx = true;
        self
    }
}

/// A platform's answer that passed the status checks.
pub(crate) struct Reply {
    pub(crate) body: Value,
}

/// Connection-wide HTTP client. Every request obeys the egress policy: site URLs are the
/// tenant's choice, so no connector can be pointed at Brain's own infrastructure.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    retry: RetryPolicy,
    egress: EgressPolicy,
}

impl Transport {
    pub(crate) fn new(
        retry: RetryPolicy,
        timeout: Duration,
        egress: EgressPolicy,
    ) -> Result<Self, ToolError> {
        // No redirects (the policy's client follows none): a platform redirect could carry
        // the Authorization header elsewhere.
        let client = egress
            .client_builder()
            .timeout(timeout)
            .user_agent(concat!("brain/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Internal(format!("http client: {e}")))?;
        Ok(Self {
            client,
            retry,
            egress,
        })
    }

    /// Whether plain `http://` site URLs are allowed (never in production).
    pub(crate) fn allows_http(&self) -> bool {
        self.egress.allows_http()
    }

    /// Sends `req`, retrying on 429 and (when safe) 5xx, and returns the parsed JSON body of
    /// a 2xx answer. Every error is stripped of URLs and credential values.
    pub(crate) async fn send(
        &self,
        connector: &str,
        req: Req,
        redact: &Redactor,
    ) -> Result<Reply, ToolError> {
        let path = path_of(&req.url);
        let refused = |e: egress::EgressError| ToolError::EgressRefused {
            connector: connector.to_owned(),
            reason: redact.clean(&e.to_string()),
        };
        self.egress.check_str(&req.url).map_err(refused)?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts;
            let response = match self.request(&req).send().await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(e) = egress::refusal(&e) {
                        return Err(refused(e));
                    }
                    // A refused connection never reached the platform: always safe to retry.
                    let retry = !last && (e.is_connect() || (req.retry_5xx && e.is_timeout()));
                    tracing::debug!(connector, method = %req.method, path, attempt, "platform unreachable");
                    if retry {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(ToolError::Unreachable {
                        connector: connector.to_owned(),
                        reason: redact.clean(&e.without_url().to_string()),
                    });
                }
            };
            let status = response.status();
            tracing::debug!(connector, method = %req.method, path, attempt, status = status.as_u16(), "platform answered");
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = retry_after(response.headers());
                let wait = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
                if last || wait > self.retry.max_delay {
                    return Err(ToolError::RateLimited {
                        connector: connector.to_owned(),
                        retry_after,
                    });
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() && req.retry_5xx && !last {
                tokio::time::sleep(self.retry.backoff(attempt)).await;
                continue;
            }
            let bytes = response.bytes().await.map_err(|e| ToolError::Unreachable {
                connector: connector.to_owned(),
                reason: redact.clean(&e.without_url().to_string()),
            })?;
            return answer(connector, &req, status, &bytes, redact);
        }
    }

    /// One attempt's request.
    fn request(&self, req: &Req) -> reqwest::RequestBuilder {
        let mut builder = self
            .client
            .request(req.method.clone(), &req.url)
            .headers(req.headers.clone());
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        match &req.body {
            Body::Empty => builder,
            Body::Json(v) => builder.json(v),
            Body::Form(pairs) => builder.form(pairs),
        }
    }
}

/// What a platform's final answer means: its JSON body, or the error its status says.
fn answer(
    connector: &str,
    req: &Req,
    status: StatusCode,
    bytes: &[u8],
    redact: &Redactor,
) -> Result<Reply, ToolError> {
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(_) if !status.is_success() && req.tenant_site => {
                Value::String("the site's answer is not JSON (not shown)".to_owned())
            }
            Err(_) if !status.is_success() => {
                Value::String(String::from_utf8_lossy(bytes).chars().take(300).collect())
            }
            Err(e) => {
                return Err(ToolError::BadResponse {
                    connector: connector.to_owned(),
                    reason: format!("not JSON ({e})"),
                });
            }
        }
    };
    if status.is_success() {
        return Ok(Reply { body });
    }
    // Meta's Graph API reports an invalid or expired token as 400 with error code 190.
    let graph_token_error = body.pointer("/error/code").and_then(Value::as_i64) == Some(190);
    if status == StatusCode::UNAUTHORIZED || graph_token_error {
        return Err(ToolError::Unauthorized {
            connector: connector.to_owned(),
            status: status.as_u16(),
        });
    }
    Err(ToolError::Platform {
        connector: connector.to_owned(),
        status: status.as_u16(),
        message: redact.clean(&platform_message(&body)),
    })
}

/// The path of a URL without its query, for logs.
fn path_of(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map(|i| rest[i..].to_owned())
            .unwrap_or_default(),
        None => without_query.to_owned(),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The human part of a platform's error body, whatever its shape.
pub(crate) fn platform_message(body: &Value) -> String {
    let candidates = [
        body.pointer("/error/message"),
        body.pointer("/message"),
        body.pointer("/error_description"),
        body.pointer("/detail"),
        body.pointer("/errors/0/message"),
        body.pointer("/errors/0/detail"),
        body.pointer("/data/0/message"),
        body.pointer("/0/error/message"),
        body.pointer("/error"),
        body.pointer("/errors"),
    ];
    let text = candidates
        .into_iter()
        .flatten()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .next()
        .unwrap_or_else(|| match body {
            Value::String(s) => s.clone(),
            Value::Null => "no details".to_owned(),
            other => other.to_string(),
        });
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for retry in 1..10 {
            let d = p.backoff(retry);
            let full =
                (Duration::from_millis(100) * 2u32.pow(retry - 1)).min(Duration::from_millis(1000));
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn redaction_removes_every_known_secret() {
        let r = Redactor::new([
            &SecretString::new("sk_test_abcdef"),
            &SecretString::new("abc"),
        ]);
        assert_eq!(
            r.clean("bad key sk_test_abcdef (abc)"),
            "bad key [redacted] (abc)"
        );
    }

    #[test]
    fn paths_drop_host_and_query() {
        assert_eq!(path_of("https://a.example/v1/x?token=s"), "/v1/x");
        assert_eq!(
            platform_message(&serde_json::json!({"error": {"message": "nope"}})),
            "nope"
        );
    }
}
