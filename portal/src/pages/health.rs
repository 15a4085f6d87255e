//! `/dashboard/health`: readiness of Brain's dependencies, and request rate, error rate, p99
//! latency and tokens from the gateway's metrics and usage.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, LoadError, PageHeader};
use crate::charts::{BarChart, format_value};
use crate::model::{Health, Point};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthData {
    pub health: Health,
    pub tokens_per_day: Vec<Point>,
}

/// Totals from Prometheus text: all requests, 5xx responses, and the latency histogram
/// summed over routes (`le` → cumulative count).
#[cfg(any(feature = "ssr", test))]
#[derive(Debug, Default, PartialEq)]
pub struct HttpTotals {
    pub requests: f64,
    pub errors: f64,
    pub buckets: Vec<(f64, f64)>,
}

#[cfg(any(feature = "ssr", test))]
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(any(feature = "ssr", test))]
/// Reads the request counter and latency histogram out of a `/metrics` answer.
pub fn http_totals(text: &str) -> HttpTotals {
    let mut totals = HttpTotals::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        match name {
            "brain_http_requests_total" => {
                totals.requests += value;
                if label(labels, "status").is_some_and(|s| s.starts_with('5')) {
                    totals.errors += value;
                }
            }
            "brain_http_request_duration_seconds_bucket" => {
                let le = match label(labels, "le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                match totals.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, count)) => *count += value,
                    None => totals.buckets.push((le, value)),
                }
            }
            _ => {}
        }
    }
    totals.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    totals
}

#[cfg(any(feature = "ssr", test))]
/// The upper bound of the bucket holding the 99th percentile (`None` without samples).
pub fn p99(buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, count)| *count >= 0.99 * total)
        .map(|(le, _)| *le)
}

#[server]
pub async fn load_health() -> Result<HealthData, ServerFnError> {
    use crate::api::{self, Service, call, portal};
    let portal = portal()?;
    let dependencies = api::readiness().await;
    let metrics_url = format!(
        "{}/metrics",
        portal.config.gateway_url.trim_end_matches('/')
    );
    let text = match portal.http.get(metrics_url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let totals = http_totals(&text);
    let now = std::time::Instant::now();
    let request_rate = {
        let mut last = portal
            .last_sample
            .lock()
            .map_err(|_| ServerFnError::new("metrics state poisoned"))?;
        let rate = last.and_then(|(at, count)| {
            let secs = now.duration_since(at).as_secs_f64();
            ((1.0..3600.0).contains(&secs) && totals.requests >= count)
                .then(|| (totals.requests - count) / secs)
        });
        *last = Some((now, totals.requests));
        rate
    };
    let usage = call(Service::Gateway, reqwest::Method::GET, "/v1/usage", None).await?;
    let today = usage["to"].as_str().unwrap_or_default().to_owned();
    let mut tokens_today = 0;
    let mut by_agent: Vec<Point> = Vec::new();
    let mut per_day: Vec<Point> = Vec::new();
    for row in usage["usage"].as_array().into_iter().flatten() {
        let tokens = row["prompt_tokens"].as_i64().unwrap_or(0)
            + row["completion_tokens"].as_i64().unwrap_or(0);
        let day = row["day"].as_str().unwrap_or_default().to_owned();
        match per_day.iter_mut().find(|p| p.label == day) {
            Some(p) => p.value += tokens as f64,
            None => per_day.push(Point {
                label: day.clone(),
                value: tokens as f64,
            }),
        }
        if day == today {
            tokens_today += tokens;
            let agent = row["agent"].as_str().unwrap_or("(deleted)").to_owned();
            match by_agent.iter_mut().find(|p| p.label == agent) {
                Some(p) => p.value += tokens as f64,
                None => by_agent.push(Point {
                    label: agent,
                    value: tokens as f64,
                }),
            }
        }
    }
    Ok(HealthData {
        health: Health {
            ready: !dependencies.is_empty() && dependencies.iter().all(|(_, s)| s == "ok"),
            dependencies,
            requests_total: totals.requests,
            request_rate,
            error_rate: if totals.requests > 0.0 {
                totals.errors / totals.requests
            } else {
                0.0
            },
            p99_seconds: p99(&totals.buckets),
            tokens_today,
            tokens_by_agent: by_agent,
        },
        tokens_per_day: per_day,
    })
}

#[component]
pub fn HealthPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_health());
    view! {
        <PageHeader title="Health".to_owned() subtitle="Readiness, traffic and model usage"/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let HealthData { health: h, tokens_per_day } = match data.await {
                    Err(e) => return view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => d,
                };
                let rate = h.request_rate.map_or_else(
                    || format!("{} requests", format_value(h.requests_total)),
                    |r| format!("{r:.2}/s"),
                );
                let p99 = h.p99_seconds.map_or_else(
                    || "—".to_owned(),
                    |s| if s.is_infinite() { "> 10 s".to_owned() } else { format!("≤ {:.0} ms", s * 1000.0) },
                );
                view! {
                    <div class="grid stats">
                        <div class="card stat">
                            <p class="stat-label">"Readiness"</p>
                            <p class="stat-value">
                                <Badge status=if h.ready { "ok".to_owned() } else { "degraded".to_owned() }/>
                            </p>
                        </div>
                        <div class="card stat">
                            <p class="stat-label">"Request rate"</p>
                            <p class="stat-value">{rate}</p>
                        </div>
                        <div class="card stat">
                            <p class="stat-label">"Error rate (5xx)"</p>
                            <p class="stat-value">{format!("{:.2} %", h.error_rate * 100.0)}</p>
                        </div>
                        <div class="card stat">
                            <p class="stat-label">"p99 latency"</p>
                            <p class="stat-value">{p99}</p>
                        </div>
                        <div class="card stat">
                            <p class="stat-label">"Tokens today"</p>
                            <p class="stat-value">{format_value(h.tokens_today as f64)}</p>
                        </div>
                    </div>
                    <div class="grid two">
                        <section class="card" aria-labelledby="deps-h">
                            <h2 id="deps-h">"Dependencies"</h2>
                            <table>
                                <thead><tr><th scope="col">"Dependency"</th><th scope="col">"State"</th></tr></thead>
                                <tbody>
                                    {h.dependencies
                                        .into_iter()
                                        .map(|(name, state)| view! { <tr><td>{name}</td><td><Badge status=state/></td></tr> })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </section>
                        <section class="card" aria-labelledby="tokens-h">
                            <h2 id="tokens-h">"Tokens per day"</h2>
                            {if tokens_per_day.is_empty() {
                                view! { <p class="muted">"No model usage in the last 30 days."</p> }.into_any()
                            } else {
                                view! { <BarChart title="Tokens per day".to_owned() unit="tokens".to_owned() points=tokens_per_day/> }.into_any()
                            }}
                            {(!h.tokens_by_agent.is_empty()).then(|| view! {
                                <h3>"Today by agent"</h3>
                                <ul class="plain list">
                                    {h.tokens_by_agent
                                        .into_iter()
                                        .map(|p| view! { <li>{p.label}": "{format_value(p.value)}</li> })
                                        .collect_view()}
                                </ul>
                            })}
                        </section>
                    </div>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_sum_to_rates_and_a_p99() {
        let text = "# HELP x\n\
            brain_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 90\n\
            brain_http_requests_total{method=\"GET\",route=\"/a\",status=\"503\"} 10\n\
            brain_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.01\"} 80\n\
            brain_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.1\"} 99\n\
            brain_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"+Inf\"} 100\n";
        let t = http_totals(text);
        assert_eq!((t.requests, t.errors), (100.0, 10.0));
        assert_eq!(p99(&t.buckets), Some(0.1));
        assert_eq!(p99(&[]), None);
    }
}
