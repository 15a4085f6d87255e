//! `/dashboard`: agents, recent tasks, readiness, and charts of the tenant's own business
//! data, read live through its connectors (never from a local copy).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, LoadError, PageHeader, short_time};
use crate::charts::BarChart;
use crate::model::{Agent, Task, Widget};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub agents: Vec<Agent>,
    pub tasks: Vec<Task>,
    pub readiness: Vec<(String, String)>,
    pub widgets: Vec<Widget>,
}

/// What each chart reads: connector, resource (with its query), title, unit, and how the
/// answer becomes points.
#[cfg(feature = "ssr")]
struct ChartSpec {
    connector: &'static str,
    resource: &'static str,
    title: &'static str,
    unit: &'static str,
    reduce: fn(&serde_json::Value, &[String]) -> Vec<crate::model::Point>,
}

#[cfg(feature = "ssr")]
mod reduce {
    //! Platform answers → chart points, per the platforms' documented response shapes.

    use serde_json::Value;

    use crate::charts::per_day;
    use crate::model::Point;

    /// The records of an answer: the array itself, or the array under one of `keys`.
    fn records<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
        if let Some(a) = v.as_array() {
            return a;
        }
        keys.iter()
            .find_map(|k| v.pointer(k).and_then(Value::as_array))
            .map_or(&[], Vec::as_slice)
    }

    fn days_of(v: &Value, keys: &[&str], fields: &[&str], days: &[String]) -> Vec<Point> {
        let stamps = records(v, keys).iter().filter_map(|r| {
            fields
                .iter()
                .find_map(|f| r.pointer(f).and_then(Value::as_str))
        });
        per_day(stamps, days)
    }

    /// WordPress `GET /wp/v2/posts`: `[{date, status, …}]`.
    pub fn wordpress_posts(v: &Value, days: &[String]) -> Vec<Point> {
        days_of(v, &[], &["/date"], days)
    }

    /// HubSpot CRM v3 list: `{results: [{createdAt, properties: {createdate}}]}`.
    pub fn hubspot_contacts(v: &Value, days: &[String]) -> Vec<Point> {
        days_of(
            v,
            &["/results"],
            &["/createdAt", "/properties/createdate"],
            days,
        )
    }

    /// Zoho CRM records: `{data: [{Created_Time}]}`.
    pub fn zoho_leads(v: &Value, days: &[String]) -> Vec<Point> {
        days_of(v, &["/data"], &["/Created_Time"], days)
    }

    /// FluentCRM subscribers: `{subscribers: {data: [{created_at}]}}`.
    pub fn fluentcrm_subscribers(v: &Value, days: &[String]) -> Vec<Point> {
        days_of(v, &["/subscribers/data", "/data"], &["/created_at"], days)
    }

    /// Shopify `orders.json`: `{orders: [{created_at}]}`.
    pub fn shopify_orders(v: &Value, days: &[String]) -> Vec<Point> {
        days_of(v, &["/orders"], &["/created_at"], days)
    }

    /// WooCommerce `GET /wc/v3/orders`: `[{date_created}]`.
    pub fn woocommerce_orders(v: &Value, days: &[String]) -> Vec<Point> {
        days_of(v, &[], &["/date_created"], days)
    }

    fn number(v: Option<&Value>) -> f64 {
        match v {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::String(s)) => s.parse().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Google Ads GAQL search: `{results: [{campaign: {name}, metrics: {clicks}}]}`.
    pub fn google_ads_clicks(v: &Value, _: &[String]) -> Vec<Point> {
        records(v, &["/results"])
            .iter()
            .map(|r| Point {
                label: r
                    .pointer("/campaign/name")
                    .and_then(Value::as_str)
                    .unwrap_or("campaign")
                    .to_owned(),
                value: number(r.pointer("/metrics/clicks")),
            })
            .collect()
    }

    /// Meta Marketing API insights: `{data: [{campaign_name, spend}]}`.
    pub fn meta_spend(v: &Value, _: &[String]) -> Vec<Point> {
        records(v, &["/data"])
            .iter()
            .map(|r| Point {
                label: r
                    .get("campaign_name")
                    .and_then(Value::as_str)
                    .unwrap_or("campaign")
                    .to_owned(),
                value: number(r.get("spend")),
            })
            .collect()
    }
}

#[cfg(feature = "ssr")]
const CHARTS: &[ChartSpec] = &[
    ChartSpec {
        connector: "hubspot",
        resource: "contacts?limit=100&properties=createdate",
        title: "New CRM contacts per day",
        unit: "contacts",
        reduce: reduce::hubspot_contacts,
    },
    ChartSpec {
        connector: "zoho-crm",
        resource: "Leads",
        title: "New leads per day",
        unit: "leads",
        reduce: reduce::zoho_leads,
    },
    ChartSpec {
        connector: "fluentcrm",
        resource: "subscribers?per_page=100",
        title: "New subscribers per day",
        unit: "subscribers",
        reduce: reduce::fluentcrm_subscribers,
    },
    ChartSpec {
        connector: "wordpress",
        resource: "posts?per_page=100&status=publish",
        title: "Published posts per day",
        unit: "posts",
        reduce: reduce::wordpress_posts,
    },
    ChartSpec {
        connector: "google-ads",
        resource: "metrics",
        title: "Clicks per campaign",
        unit: "clicks",
        reduce: reduce::google_ads_clicks,
    },
    ChartSpec {
        connector: "meta-ads",
        resource: "insights",
        title: "Spend per campaign",
        unit: "in spend",
        reduce: reduce::meta_spend,
    },
    ChartSpec {
        connector: "shopify",
        resource: "orders",
        title: "Shopify orders per day",
        unit: "orders",
        reduce: reduce::shopify_orders,
    },
    ChartSpec {
        connector: "woocommerce",
        resource: "orders?per_page=100",
        title: "WooCommerce orders per day",
        unit: "orders",
        reduce: reduce::woocommerce_orders,
    },
];

/// Everything the overview shows; the charts' platform reads run concurrently.
#[server]
pub async fn load_overview() -> Result<OverviewData, ServerFnError> {
    use crate::api::{self, Service};
    use crate::model::Connector;

    let agents = api::get_list::<Agent>("/v1/agents", "agents").await?;
    let tasks = api::get_list::<Task>("/v1/tasks?limit=5", "tasks")
        .await
        .unwrap_or_default();
    let readiness = api::readiness().await;
    let connectors: Vec<Connector> = api::get("/v1/connectors").await?;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0));
    let days = crate::charts::last_days(today, 14);
    let reads = CHARTS.iter().filter_map(|spec| {
        let connector = connectors.iter().find(|c| c.id == spec.connector)?;
        let days = days.clone();
        Some(async move {
            let mut widget = Widget {
                connector: spec.connector.to_owned(),
                connector_name: connector.name.clone(),
                title: spec.title.to_owned(),
                status: connector.status.clone(),
                message: connector.last_error.clone(),
                unit: spec.unit.to_owned(),
                points: Vec::new(),
            };
            if connector.status == "connected" {
                let path = format!(
                    "/v1/connectors/{}/resources/{}",
                    spec.connector, spec.resource
                );
                match api::call(Service::Gateway, reqwest::Method::GET, &path, None).await {
                    Ok(v) => widget.points = (spec.reduce)(&v, &days),
                    Err(e) => {
                        widget.status = "failed".to_owned();
                        widget.message = Some(e.message);
                    }
                }
            }
            widget
        })
    });
    let widgets = futures::future::join_all(reads).await;
    Ok(OverviewData {
        agents,
        tasks,
        readiness,
        widgets,
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_overview());
    view! {
        <PageHeader title="Overview".to_owned() subtitle="Your agents, their work, and your business at a glance"/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(o) => view! { <OverviewView overview=o/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OverviewView(overview: OverviewData) -> impl IntoView {
    let OverviewData {
        agents,
        tasks,
        readiness,
        widgets,
    } = overview;
    let (connected, idle): (Vec<Widget>, Vec<Widget>) = widgets
        .into_iter()
        .partition(|w| w.status != "disconnected");
    view! {
        <section aria-labelledby="business-h">
            <h2 id="business-h">"Business data"</h2>
            <div class="grid widgets">
                {connected
                    .into_iter()
                    .map(|w| view! { <WidgetCard widget=w/> })
                    .collect_view()}
            </div>
            {(!idle.is_empty()).then(|| idle_widgets(idle))}
        </section>
        <div class="grid two">
            {agents_card(agents)}
            {tasks_card(tasks)}
            {health_card(readiness)}
        </div>
    }
}

/// The charts a connection away, each with a link to connect its platform.
fn idle_widgets(idle: Vec<Widget>) -> impl IntoView {
    view! {
        <div class="card idle-widgets">
            <h3>"More charts when you connect"</h3>
            <ul class="plain">
                {idle
                    .into_iter()
                    .map(|w| {
                        let href = format!("/dashboard/connectors/{}", w.connector);
                        view! {
                            <li class="widget-disconnected" data-connector=w.connector.clone()>
                                <strong>{w.title.clone()}</strong>
                                " — "
                                {format!("{} is not connected. ", w.connector_name)}
                                <a href=href>{format!("Connect {}", w.connector_name)}</a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </div>
    }
}

fn agents_card(agents: Vec<Agent>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="agents-h">
            <h2 id="agents-h">"Agents"</h2>
            {if agents.is_empty() {
                view! { <p class="muted">"No agents yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain list">
                        {agents
                            .into_iter()
                            .map(|a| {
                                view! {
                                    <li>
                                        <a href=format!("/dashboard/agents/{}", a.id)>{a.name.clone()}</a>
                                        <span class="muted">{format!(" · {} · {}", a.role, a.model)}</span>
                                        " "
                                        <Badge status=a.status.clone()/>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
            <p>
                <a href="/dashboard/agents">"All agents →"</a>
            </p>
        </section>
    }
}

fn tasks_card(tasks: Vec<Task>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="tasks-h">
            <h2 id="tasks-h">"Recent tasks"</h2>
            {if tasks.is_empty() {
                view! { <p class="muted">"No tasks yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain list">
                        {tasks
                            .into_iter()
                            .map(|t| {
                                let input = t
                                    .input
                                    .as_str()
                                    .map(str::to_owned)
                                    .or_else(|| t.input.get("input").and_then(|v| v.as_str()).map(str::to_owned))
                                    .unwrap_or_else(|| t.kind.clone());
                                view! {
                                    <li>
                                        <Badge status=t.status.clone()/>
                                        " "
                                        <span>{input.chars().take(60).collect::<String>()}</span>
                                        <span class="muted">{format!(" · {}", short_time(&t.created_at))}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
            <p>
                <a href="/dashboard/tasks">"All tasks →"</a>
            </p>
        </section>
    }
}

/// The gateway's readiness: one verdict, then each dependency.
fn health_card(readiness: Vec<(String, String)>) -> impl IntoView {
    let all_ok = readiness.iter().all(|(_, s)| s == "ok");
    view! {
        <section class="card" aria-labelledby="health-h">
            <h2 id="health-h">"Health"</h2>
            <p>
                {if all_ok {
                    view! { <Badge status="ok".to_owned()/> " All systems ready" }.into_any()
                } else {
                    view! { <Badge status="degraded".to_owned()/> " Some dependencies are failing" }.into_any()
                }}
            </p>
            <ul class="plain inline">
                {readiness
                    .into_iter()
                    .map(|(name, status)| {
                        view! {
                            <li>
                                {name}
                                ": "
                                <Badge status=status/>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <p>
                <a href="/dashboard/health">"Details →"</a>
            </p>
        </section>
    }
}

#[component]
fn WidgetCard(widget: Widget) -> impl IntoView {
    let href = format!("/dashboard/connectors/{}", widget.connector);
    let body = match widget.status.as_str() {
        "connected" if widget.points.iter().any(|p| p.value > 0.0) => view! {
            <BarChart title=widget.title.clone() unit=widget.unit.clone() points=widget.points.clone()/>
        }
        .into_any(),
        "connected" => view! { <p class="muted">"No records in this period."</p> }.into_any(),
        _ => view! {
            <p class="note error">
                {format!(
                    "{} could not be read: {}",
                    widget.connector_name,
                    widget.message.clone().unwrap_or_else(|| widget.status.clone()),
                )}
                " "
                <a href=href.clone()>"Check the connection"</a>
            </p>
        }
        .into_any(),
    };
    view! {
        <article class="card widget" data-connector=widget.connector.clone()>
            <header class="widget-head">
                <h3>{widget.title.clone()}</h3>
                <a class="muted" href=href>{format!("via {}", widget.connector_name)}</a>
            </header>
            {body}
        </article>
    }
}
