//! The API keys table: keys for the tenant's own scripts, with their scopes, and the forms
//! that create and revoke them.

use std::collections::HashMap;

use leptos::prelude::*;

use super::SecretOutcome;
use crate::app::{Badge, CsrfField, FieldError, OutcomeNote, short_time};
use crate::model::{ApiKey, Outcome};

pub const SCOPES: &[&str] = &[
    "agents:read",
    "agents:write",
    "chat",
    "tasks:invoke",
    "knowledge:write",
    "connectors:manage",
    "audit:read",
];

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

/// `keys` is `None` when the role may not see API keys.
#[component]
pub fn ApiKeysSection(
    keys: Option<Vec<ApiKey>>,
    create: ServerAction<CreateKey>,
    revoke: ServerAction<RevokeKey>,
) -> impl IntoView {
    let revoke_outcome = Signal::derive(move || revoke.value().get());
    view! {
        <section class="card" aria-labelledby="keys-h">
            <h2 id="keys-h">"API keys"</h2>
            {match keys {
                None => view! { <p class="muted">"Only owners and admins manage API keys."</p> }.into_any(),
                Some(keys) => view! {
                    <ApiKeysTable keys revoke/>
                    <OutcomeNote outcome=revoke_outcome/>
                    <NewKeyForm create/>
                }
                .into_any(),
            }}
        </section>
    }
}

#[component]
fn ApiKeysTable(keys: Vec<ApiKey>, revoke: ServerAction<RevokeKey>) -> impl IntoView {
    view! {
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
                    {keys.into_iter().map(|k| api_key_row(k, revoke)).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

fn api_key_row(k: ApiKey, revoke: ServerAction<RevokeKey>) -> impl IntoView {
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
                    <ActionForm action=revoke>
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
}

#[component]
fn NewKeyForm(create: ServerAction<CreateKey>) -> impl IntoView {
    let key_outcome = Signal::derive(move || create.value().get());
    view! {
        <ActionForm action=create>
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
}
