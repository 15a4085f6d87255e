//! The webhooks table: inbound webhooks per connector, their deliveries, and the forms that
//! create and delete them.

use leptos::prelude::*;

use super::{SecretOutcome, connector_link};
use crate::app::{Badge, CsrfField, OutcomeNote, short_time};
use crate::model::{Outcome, Webhook};

#[server(endpoint = "webhooks/create")]
pub async fn create_webhook(
    csrf: String,
    connector: String,
    #[server(default)] events: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf};
    check_csrf(&csrf)?;
    let events: Vec<&str> = events
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let body = serde_json::json!({ "connector": connector, "events": events });
    Ok(
        match call(
            Service::Gateway,
            reqwest::Method::POST,
            "/v1/integrations/webhooks",
            Some(body),
        )
        .await
        {
            Ok(created) => Outcome {
                ok: true,
                message: format!(
                    "Webhook created. Point the platform at {} and give it this signing secret (shown once):",
                    created["url"].as_str().unwrap_or_default()
                ),
                field: None,
                secret: created["secret"].as_str().map(str::to_owned),
            },
            Err(e) => e.outcome(),
        },
    )
}

#[server(endpoint = "webhooks/delete")]
pub async fn delete_webhook(csrf: String, id: String) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let path = format!("/v1/integrations/webhooks/{}", encode(&id));
    Ok(
        match call(Service::Gateway, reqwest::Method::DELETE, &path, None).await {
            Ok(_) => Outcome::ok("Webhook deleted."),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub fn WebhooksSection(
    webhooks: Vec<Webhook>,
    connectors: Vec<(String, String)>,
    manage: bool,
    create: ServerAction<CreateWebhook>,
    delete: ServerAction<DeleteWebhook>,
) -> impl IntoView {
    let delete_outcome = Signal::derive(move || delete.value().get());
    view! {
        <section class="card" aria-labelledby="webhooks-h">
            <h2 id="webhooks-h">"Webhooks"</h2>
            <div class="table-wrap">
                <table>
                    <caption class="visually-hidden">"Inbound webhooks"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Connector"</th>
                            <th scope="col">"Events"</th>
                            <th scope="col">"URL"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Deliveries"</th>
                            <th scope="col">"Last delivery"</th>
                            {manage.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {webhooks.is_empty().then(|| view! { <tr><td colspan="7" class="muted">"No webhooks yet."</td></tr> })}
                        {webhooks
                            .into_iter()
                            .map(|w| webhook_row(w, &connectors, manage, delete))
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <OutcomeNote outcome=delete_outcome/>
            {manage.then(|| view! { <NewWebhookForm connectors create/> })}
        </section>
    }
}

fn webhook_row(
    w: Webhook,
    connectors: &[(String, String)],
    manage: bool,
    delete: ServerAction<DeleteWebhook>,
) -> impl IntoView + use<> {
    let webhook_id = w.id.clone();
    view! {
        <tr>
            <td>{connector_link(connectors, w.connector.clone())}</td>
            <td>{if w.events.is_empty() { "all".to_owned() } else { w.events.join(", ") }}</td>
            <td><code class="small">{w.url.clone()}</code></td>
            <td><Badge status=w.status.clone()/></td>
            <td>{format!("{} ok / {} failed", w.deliveries_ok, w.deliveries_failed)}</td>
            <td>{w.last_delivery_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</td>
            {manage.then(|| view! {
                <td>
                    <ActionForm action=delete>
                        <CsrfField/>
                        <input type="hidden" name="id" value=webhook_id/>
                        <button type="submit" class="link danger">"Delete"</button>
                    </ActionForm>
                </td>
            })}
        </tr>
    }
}

#[component]
fn NewWebhookForm(
    connectors: Vec<(String, String)>,
    create: ServerAction<CreateWebhook>,
) -> impl IntoView {
    let webhook_outcome = Signal::derive(move || create.value().get());
    view! {
        <details class="inline-form">
            <summary>"Add a webhook"</summary>
            <ActionForm action=create>
                <CsrfField/>
                <div class="field-row">
                    <div class="field">
                        <label for="webhook-connector">"Connector"</label>
                        <select id="webhook-connector" name="connector">
                            {connectors.iter().map(|(id, name)| view! { <option value=id.clone()>{name.clone()}</option> }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="webhook-events">"Events (comma-separated, empty for all)"</label>
                        <input id="webhook-events" name="events" placeholder="e.g. orders/create"/>
                    </div>
                </div>
                <button type="submit">"Create webhook"</button>
                <SecretOutcome outcome=webhook_outcome/>
            </ActionForm>
        </details>
    }
}
