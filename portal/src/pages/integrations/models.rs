//! The model providers table: which key each provider's calls use (the tenant's own, the
//! deployment's, or none), and the forms with which owners and admins bring or remove a key.

use leptos::prelude::*;

use crate::app::{Badge, CsrfField, FieldError, OutcomeNote, short_time};
use crate::model::Outcome;
use crate::providers::ModelProvider;

#[server(endpoint = "model-keys/set")]
pub async fn set_model_key(
    csrf: String,
    provider: String,
    api_key: String,
    #[server(default)] base_url: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let mut body = serde_json::json!({ "api_key": api_key.trim() });
    if !base_url.trim().is_empty() {
        body["base_url"] = serde_json::json!(base_url.trim());
    }
    let path = format!("/v1/tenant/providers/{}", encode(provider.trim()));
    Ok(
        match call(Service::Gateway, reqwest::Method::PUT, &path, Some(body)).await {
            Ok(_) => Outcome::ok(format!(
                "{provider} accepted the key; your agents on {provider} now use it."
            )),
            Err(e) => e.outcome(),
        },
    )
}

#[server(endpoint = "model-keys/remove")]
pub async fn remove_model_key(csrf: String, provider: String) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let path = format!("/v1/tenant/providers/{}", encode(provider.trim()));
    Ok(
        match call(Service::Gateway, reqwest::Method::DELETE, &path, None).await {
            Ok(_) => Outcome::ok("Key removed; calls fall back to the deployment's key, if any."),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub fn ModelProvidersSection(
    providers: Vec<ModelProvider>,
    manage: bool,
    set: ServerAction<SetModelKey>,
    remove: ServerAction<RemoveModelKey>,
) -> impl IntoView {
    let remove_outcome = Signal::derive(move || remove.value().get());
    let keyed: Vec<String> = providers
        .iter()
        .filter(|p| p.takes_key())
        .map(|p| p.provider.clone())
        .collect();
    view! {
        <section class="card" aria-labelledby="models-h">
            <h2 id="models-h">"Model providers"</h2>
            <p class="muted small">
                "Your own key is checked with the provider, kept in the vault and never shown again; "
                "without one, calls use the deployment's key when it has one."
            </p>
            <div class="table-wrap">
                <table>
                    <caption class="visually-hidden">"Model providers"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Provider"</th>
                            <th scope="col">"Key in use"</th>
                            <th scope="col">"Your key"</th>
                            <th scope="col">"Endpoint"</th>
                            <th scope="col">"Checked"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {providers.into_iter().map(|p| provider_row(p, manage, remove)).collect_view()}
                    </tbody>
                </table>
            </div>
            <OutcomeNote outcome=remove_outcome/>
            {if manage {
                view! { <ModelKeyForm providers=keyed set/> }.into_any()
            } else {
                view! { <p class="muted">"Only owners and admins set model keys."</p> }.into_any()
            }}
        </section>
    }
}

fn provider_row(
    p: ModelProvider,
    manage: bool,
    remove: ServerAction<RemoveModelKey>,
) -> impl IntoView {
    let own = p.key == "tenant";
    let label = format!(" {}", p.provider);
    let name = p.provider.clone();
    view! {
        <tr data-provider=p.provider.clone()>
            <td><code>{p.provider.clone()}</code></td>
            <td><Badge status=p.key.clone()/></td>
            <td><code>{p.key_hint.clone().unwrap_or_default()}</code></td>
            <td class="small">{p.base_url.clone().unwrap_or_default()}</td>
            <td>{p.verified_at.as_deref().map(short_time).unwrap_or_default()}</td>
            <td>
                {(manage && own).then(|| view! {
                    <ActionForm action=remove>
                        <CsrfField/>
                        <input type="hidden" name="provider" value=name/>
                        <button type="submit" class="link danger remove-model-key">
                            "Remove key"
                            <span class="visually-hidden">{label}</span>
                        </button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}

#[component]
fn ModelKeyForm(providers: Vec<String>, set: ServerAction<SetModelKey>) -> impl IntoView {
    let outcome = Signal::derive(move || set.value().get());
    view! {
        <ActionForm action=set>
            <CsrfField/>
            <h3>"Use your own key"</h3>
            <div class="field">
                <label for="model-provider">"Provider"</label>
                <select id="model-provider" name="provider">
                    {providers
                        .into_iter()
                        .map(|p| view! { <option value=p.clone()>{p.clone()}</option> })
                        .collect_view()}
                </select>
                <FieldError outcome field="provider"/>
            </div>
            <div class="field">
                <label for="model-api-key">"API key"</label>
                <input id="model-api-key" name="api_key" type="password" required autocomplete="off"/>
                <FieldError outcome field="api_key"/>
            </div>
            <div class="field">
                <label for="model-base-url">"Endpoint (optional)"</label>
                <input id="model-base-url" name="base_url" type="url"
                    placeholder="e.g. https://acme.openai.azure.com or a proxy"/>
                <FieldError outcome field="base_url"/>
            </div>
            <button id="save-model-key" type="submit" class="primary">"Check and save"</button>
            <OutcomeNote outcome/>
        </ActionForm>
    }
}
