//! `/dashboard/integrations`: how the outside world reaches Brain — inbound webhooks, API
//! keys and automation rules, as three tables whose rows link to their connectors.

use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, FieldError, LoadError, OutcomeNote, PageHeader, short_time};
use crate::model::{ApiKey, Me, Outcome, Rule, Webhook};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntegrationsData {
    pub me: Me,
    pub webhooks: Vec<Webhook>,
    /// `None` when the role may not see API keys.
    pub api_keys: Option<Vec<ApiKey>>,
    pub rules: Vec<Rule>,
    pub connectors: Vec<(String, String)>,
}

pub const SCOPES: &[&str] = &[
    "agents:read",
    "agents:write",
    "chat",
    "tasks:invoke",
    "knowledge:write",
    "connectors:manage",
    "audit:read",
];

#[server]
pub async fn load_integrations() -> Result<IntegrationsData, ServerFnError> {
    use crate::api::{get, get_list};
    let me = crate::api::me();
    let connectors: Vec<crate::model::Connector> = get("/v1/connectors").await?;
    let api_keys = if me.can_manage() {
        Some(get_list("/v1/integrations/api-keys", "api_keys").await?)
    } else {
        None
    };
    Ok(IntegrationsData {
        me,
        webhooks: get_list("/v1/integrations/webhooks", "webhooks").await?,
        api_keys,
        rules: get_list("/v1/integrations/rules", "rules").await?,
        connectors: connectors.into_iter().map(|c| (c.id, c.name)).collect(),
    })
}

#[server(endpoint = "keys/create")]
pub async fn create_key(
    csrf: String,
    name: String,
    #[server(default)] scopes: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf};
    check_csrf(&csrf)?;
    let mut chosen: Vec<String> = scopes.keys().map(|k| k.replace('_', ":")).collect();
    chosen.sort();
    let body = serde_json::json!({ "name": name.trim(), "scopes": chosen });
    Ok(
        match call(
            Service::Gateway,
            reqwest::Method::POST,
            "/v1/integrations/api-keys",
            Some(body),
        )
        .await
        {
            Ok(created) => Outcome {
                ok: true,
                message: "Copy the key now: it is shown only this once.".to_owned(),
                field: None,
                secret: created["key"].as_str().map(str::to_owned),
            },
            Err(e) => e.outcome(),
        },
    )
}

#[server(endpoint = "keys/revoke")]
pub async fn revoke_key(csrf: String, id: String) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let path = format!("/v1/integrations/api-keys/{}", encode(&id));
    Ok(
        match call(Service::Gateway, reqwest::Method::DELETE, &path, None).await {
            Ok(_) => Outcome::ok("Key revoked; it stops working at once."),
            Err(e) => e.outcome(),
        },
    )
}

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

/// Enables or disables a rule.
#[server(endpoint = "rules/toggle")]
pub async fn toggle_rule(
    csrf: String,
    id: String,
    enabled: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let enabled = enabled == "true";
    let path = format!("/v1/integrations/rules/{}", encode(&id));
    let body = serde_json::json!({ "enabled": enabled });
    Ok(
        match call(Service::Gateway, reqwest::Method::PATCH, &path, Some(body)).await {
            Ok(_) => Outcome::ok(if enabled {
                "Rule enabled."
            } else {
                "Rule disabled."
            }),
            Err(e) => e.outcome(),
        },
    )
}

/// Edits a rule: its name, and its trigger and steps as JSON.
#[server(endpoint = "rules/edit")]
pub async fn edit_rule(
    csrf: String,
    id: String,
    name: String,
    trigger: String,
    steps: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let Ok(trigger) = serde_json::from_str::<serde_json::Value>(&trigger) else {
        return Ok(Outcome::error("trigger: not valid JSON"));
    };
    let Ok(steps) = serde_json::from_str::<serde_json::Value>(&steps) else {
        return Ok(Outcome::error("steps: not valid JSON"));
    };
    let path = format!("/v1/integrations/rules/{}", encode(&id));
    let body = serde_json::json!({ "name": name.trim(), "trigger": trigger, "steps": steps });
    Ok(
        match call(Service::Gateway, reqwest::Method::PATCH, &path, Some(body)).await {
            Ok(_) => Outcome::ok("Rule saved."),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let create_key = ServerAction::<CreateKey>::new();
    let revoke_key = ServerAction::<RevokeKey>::new();
    let create_webhook = ServerAction::<CreateWebhook>::new();
    let delete_webhook = ServerAction::<DeleteWebhook>::new();
    let toggle_rule = ServerAction::<ToggleRule>::new();
    let edit_rule = ServerAction::<EditRule>::new();
    let data = Resource::new(
        move || {
            (
                create_key.version().get(),
                revoke_key.version().get(),
                create_webhook.version().get(),
                delete_webhook.version().get(),
                toggle_rule.version().get(),
                edit_rule.version().get(),
            )
        },
        |_| load_integrations(),
    );
    let key_outcome = Signal::derive(move || create_key.value().get());
    let revoke_outcome = Signal::derive(move || revoke_key.value().get());
    let webhook_outcome = Signal::derive(move || create_webhook.value().get());
    let delete_outcome = Signal::derive(move || delete_webhook.value().get());
    let rule_outcome = Signal::derive(move || {
        edit_rule
            .value()
            .get()
            .or_else(|| toggle_rule.value().get())
    });
    view! {
        <PageHeader
            title="Integrations".to_owned()
            subtitle="Webhooks in, API keys for your scripts, and automation rules"
        />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let d = match data.await {
                    Err(e) => return view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => d,
                };
                let manage = d.me.can_manage();
                let names = d.connectors.clone();
                let name_of = move |id: &str| {
                    names.iter().find(|(c, _)| c == id).map_or_else(|| id.to_owned(), |(_, n)| n.clone())
                };
                let connector_link = move |id: String| {
                    let label = name_of(&id);
                    view! { <a href=format!("/dashboard/connectors/{id}")>{label}</a> }
                };
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
                                    {d.webhooks.is_empty().then(|| view! { <tr><td colspan="7" class="muted">"No webhooks yet."</td></tr> })}
                                    {d.webhooks
                                        .clone()
                                        .into_iter()
                                        .map(|w| {
                                            let connector_link = connector_link.clone();
                                            let webhook_id = w.id.clone();
                                            view! {
                                                <tr>
                                                    <td>{connector_link(w.connector.clone())}</td>
                                                    <td>{if w.events.is_empty() { "all".to_owned() } else { w.events.join(", ") }}</td>
                                                    <td><code class="small">{w.url.clone()}</code></td>
                                                    <td><Badge status=w.status.clone()/></td>
                                                    <td>{format!("{} ok / {} failed", w.deliveries_ok, w.deliveries_failed)}</td>
                                                    <td>{w.last_delivery_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</td>
                                                    {manage.then(|| view! {
                                                        <td>
                                                            <ActionForm action=delete_webhook>
                                                                <CsrfField/>
                                                                <input type="hidden" name="id" value=webhook_id/>
                                                                <button type="submit" class="link danger">"Delete"</button>
                                                            </ActionForm>
                                                        </td>
                                                    })}
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <OutcomeNote outcome=delete_outcome/>
                        {manage.then(|| view! {
                            <details class="inline-form">
                                <summary>"Add a webhook"</summary>
                                <ActionForm action=create_webhook>
                                    <CsrfField/>
                                    <div class="field-row">
                                        <div class="field">
                                            <label for="webhook-connector">"Connector"</label>
                                            <select id="webhook-connector" name="connector">
                                                {d.connectors.iter().map(|(id, name)| view! { <option value=id.clone()>{name.clone()}</option> }).collect_view()}
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
                        })}
                    </section>

                    <section class="card" aria-labelledby="keys-h">
                        <h2 id="keys-h">"API keys"</h2>
                        {match d.api_keys.clone() {
                            None => view! { <p class="muted">"Only owners and admins manage API keys."</p> }.into_any(),
                            Some(keys) => view! {
                                <div class="table-wrap">
                                    <table>
                                        <caption class="visually-hidden">"API keys"</caption>
                                        <thead>
                                            <tr>
                                                <th scope="col">"Name"</th>
                                                <th scope="col">"Key"</th>
                                                <th scope="col">"Scopes"</th>
                                                <th scope="col">"Created"</th>
                                                <th scope="col">"Last used"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {keys.is_empty().then(|| view! { <tr><td colspan="7" class="muted">"No API keys yet."</td></tr> })}
                                            {keys
                                                .into_iter()
                                                .map(|k| {
                                                    let revoked = k.revoked_at.is_some();
                                                    let (key_id, key_label) = (k.id.clone(), format!(" {}", k.name));
                                                    view! {
                                                        <tr data-key-name=k.name.clone()>
                                                            <td>{k.name.clone()}</td>
                                                            <td><code>{if k.prefix.ends_with('…') { k.prefix.clone() } else { format!("{}…", k.prefix) }}</code></td>
                                                            <td class="small">{k.scopes.join(", ")}</td>
                                                            <td>{short_time(&k.created_at)}</td>
                                                            <td>{k.last_used_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                                                            <td><Badge status=if revoked { "revoked".to_owned() } else { "active".to_owned() }/></td>
                                                            <td>
                                                                {(!revoked).then(|| view! {
                                                                    <ActionForm action=revoke_key>
                                                                        <CsrfField/>
                                                                        <input type="hidden" name="id" value=key_id/>
                                                                        <button type="submit" class="link danger revoke">
                                                                            "Revoke"
                                                                            <span class="visually-hidden">{key_label}</span>
                                                                        </button>
                                                                    </ActionForm>
                                                                })}
                                                            </td>
                                                        </tr>
                                                    }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <OutcomeNote outcome=revoke_outcome/>
                                <ActionForm action=create_key>
                                    <CsrfField/>
                                    <h3>"New key"</h3>
                                    <div class="field">
                                        <label for="key-name">"Name"</label>
                                        <input id="key-name" name="name" required placeholder="e.g. Reporting script"/>
                                        <FieldError outcome=key_outcome field="name"/>
                                    </div>
                                    <fieldset class="field">
                                        <legend>"Scopes"</legend>
                                        <ul class="plain checks">
                                            {SCOPES
                                                .iter()
                                                .map(|s| {
                                                    let id = format!("scope-{}", s.replace(':', "-"));
                                                    view! {
                                                        <li>
                                                            <input type="checkbox" id=id.clone() name=format!("scopes[{}]", s.replace(':', "_"))/>
                                                            <label for=id>{*s}</label>
                                                        </li>
                                                    }
                                                })
                                                .collect_view()}
                                        </ul>
                                        <FieldError outcome=key_outcome field="scopes"/>
                                    </fieldset>
                                    <button id="create-key" type="submit" class="primary">"Create key"</button>
                                    <div class="key-outcome">
                                        <SecretOutcome outcome=key_outcome/>
                                    </div>
                                </ActionForm>
                            }
                            .into_any(),
                        }}
                    </section>

                    <section class="card" aria-labelledby="rules-h">
                        <h2 id="rules-h">"Automation rules"</h2>
                        <div class="table-wrap">
                            <table>
                                <caption class="visually-hidden">"Automation rules"</caption>
                                <thead>
                                    <tr>
                                        <th scope="col">"Name"</th>
                                        <th scope="col">"Trigger"</th>
                                        <th scope="col">"Connectors"</th>
                                        <th scope="col">"Steps"</th>
                                        <th scope="col">"Status"</th>
                                        {manage.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                                    </tr>
                                </thead>
                                <tbody>
                                    {d.rules.is_empty().then(|| view! { <tr><td colspan="6" class="muted">"No rules yet."</td></tr> })}
                                    {d.rules
                                        .clone()
                                        .into_iter()
                                        .map(|r| {
                                            let (rule_id, rule_name) = (r.id.clone(), r.name.clone());
                                            let toggle_id = r.id.clone();
                                            let trigger_json = serde_json::to_string_pretty(&r.trigger).unwrap_or_default();
                                            let steps_json = serde_json::to_string_pretty(&r.steps).unwrap_or_default();
                                            let enabled = r.enabled;
                                            let connector_link = connector_link.clone();
                                            let links = r.connectors().into_iter().map(|c| view! { {connector_link(c)} " " }).collect_view();
                                            view! {
                                                <tr data-rule=r.id.clone()>
                                                    <td>{r.name.clone()}</td>
                                                    <td><code class="small">{r.trigger_label()}</code></td>
                                                    <td>{links}</td>
                                                    <td>{r.steps.len()}</td>
                                                    <td><Badge status=if r.enabled { "enabled".to_owned() } else { "disabled".to_owned() }/></td>
                                                    {manage.then(|| view! {
                                                        <td>
                                                            <ActionForm action=toggle_rule>
                                                                <CsrfField/>
                                                                <input type="hidden" name="id" value=toggle_id/>
                                                                <input type="hidden" name="enabled" value=(!enabled).to_string()/>
                                                                <button type="submit" class="link">{if enabled { "Disable" } else { "Enable" }}</button>
                                                            </ActionForm>
                                                            <details class="inline-form">
                                                                <summary>"Edit"</summary>
                                                                <ActionForm action=edit_rule>
                                                                    <CsrfField/>
                                                                    <input type="hidden" name="id" value=rule_id.clone()/>
                                                                    <div class="field">
                                                                        <label for=format!("rule-name-{rule_id}")>"Name"</label>
                                                                        <input id=format!("rule-name-{rule_id}") name="name" value=rule_name.clone()/>
                                                                    </div>
                                                                    <div class="field">
                                                                        <label for=format!("rule-trigger-{rule_id}")>"Trigger (JSON)"</label>
                                                                        <textarea class="code" rows="4" id=format!("rule-trigger-{rule_id}") name="trigger">
                                                                            {trigger_json.clone()}
                                                                        </textarea>
                                                                    </div>
                                                                    <div class="field">
                                                                        <label for=format!("rule-steps-{rule_id}")>"Steps (JSON)"</label>
                                                                        <textarea class="code" rows="6" id=format!("rule-steps-{rule_id}") name="steps">
                                                                            {steps_json.clone()}
                                                                        </textarea>
                                                                    </div>
                                                                    <button type="submit" class="primary">"Save rule"</button>
                                                                </ActionForm>
                                                            </details>
                                                        </td>
                                                    })}
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <OutcomeNote outcome=rule_outcome/>
                    </section>
                }
                    .into_any()
            })}
        </Transition>
    }
}

/// A form's outcome that may carry a secret to show once.
#[component]
fn SecretOutcome(outcome: Signal<Option<Result<Outcome, ServerFnError>>>) -> impl IntoView {
    view! {
        <OutcomeNote outcome/>
        {move || {
            outcome
                .get()
                .and_then(|o| o.ok())
                .and_then(|o| o.secret)
                .map(|secret| {
                    view! {
                        <p class="secret-box">
                            <code class="secret">{secret}</code>
                        </p>
                    }
                })
        }}
    }
}
