//! `/dashboard/connectors`: the 13 connectors as cards with their connection status; each
//! card leads to the connector's page.

use leptos::prelude::*;

use crate::app::{Badge, LoadError, PageHeader};
use crate::model::Connector;

#[server]
pub async fn load_connectors() -> Result<Vec<Connector>, ServerFnError> {
    crate::api::get("/v1/connectors").await
}

#[component]
pub fn ConnectorsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_connectors());
    view! {
        <PageHeader
            title="Connectors".to_owned()
            subtitle="Secure links to your platforms; credentials stay in the vault"
        />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(connectors) => {
                        view! {
                            <ul class="grid cards plain connectors">
                                {connectors
                                    .into_iter()
                                    .map(|c| {
                                        view! {
                                            <li>
                                                <a class="card connector-card" href=format!("/dashboard/connectors/{}", c.id)>
                                                    <span class="widget-head">
                                                        <strong class="connector-name">{c.name.clone()}</strong>
                                                        <Badge status=c.status.clone()/>
                                                    </span>
                                                    <span class="muted small category">{c.category.replace('_', " ")}</span>
                                                    <span class="description">{c.description.clone()}</span>
                                                </a>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
