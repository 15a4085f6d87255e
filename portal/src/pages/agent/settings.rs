//! The agent's settings form: name, role, goal, backstory, temperature, model and token limit.

// A server function takes one argument per form field.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;

use crate::app::{CsrfField, FieldError, OutcomeNote};
use crate::model::{Agent, Outcome};

type FormOutcome = Signal<Option<Result<Outcome, ServerFnError>>>;

/// Saves the settings; `If-Match` makes a concurrent edit a conflict instead of a silent
/// overwrite.
#[server(endpoint = "agents/save")]
pub async fn save_agent(
    csrf: String,
    id: String,
    version: String,
    name: String,
    role: String,
    goal: String,
    backstory: String,
    temperature: String,
    model: String,
    max_tokens: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call_with, check_csrf, encode};
    check_csrf(&csrf)?;
    let Ok(temperature) = temperature.trim().parse::<f64>() else {
        return Ok(Outcome::error("temperature: must be a number"));
    };
    let Ok(max_tokens) = max_tokens.trim().parse::<u64>() else {
        return Ok(Outcome::error("max_tokens: must be a whole number"));
    };
    let body = serde_json::json!({
        "name": name, "role": role, "goal": goal, "backstory": backstory,
        "temperature": temperature, "model": model, "max_tokens": max_tokens,
    });
    let answer = call_with(
        Service::Gateway,
        reqwest::Method::PATCH,
        &format!("/v1/agents/{}", encode(&id)),
        Some(body),
        &[("if-match", version)],
    )
    .await;
    Ok(match answer {
        Ok(agent) => Outcome::ok(format!(
            "Saved (version {}). The agent's next turn uses these settings.",
            agent["version"]
        )),
        Err(e) => e.outcome(),
    })
}

#[component]
pub(super) fn SettingsForm(
    agent: Agent,
    models: Vec<String>,
    edit: bool,
    save: ServerAction<SaveAgent>,
) -> impl IntoView {
    let outcome = Signal::derive(move || save.value().get());
    let fields = view! { <SettingsFields agent models edit outcome/> };
    view! {
        <section class="card" aria-labelledby="settings-h">
            <h2 id="settings-h">"Settings"</h2>
            {if edit {
                view! {
                    <ActionForm action=save>
                        <CsrfField/>
                        {fields}
                        <div class="settings-outcome">
                            <OutcomeNote outcome/>
                        </div>
                        <button id="save-settings" type="submit" class="primary" disabled=move || save.pending().get()>
                            "Save settings"
                        </button>
                    </ActionForm>
                }
                    .into_any()
            } else {
                view! {
                    <form aria-label="Settings (read only)">
                        {fields}
                        <p class="muted">"Only owners and admins change an agent's settings."</p>
                    </form>
                }
                    .into_any()
            }}
        </section>
    }
}

/// The id of the element that describes a field's error.
fn described(field: &str) -> String {
    format!("{field}-error")
}

#[component]
fn SettingsFields(
    agent: Agent,
    models: Vec<String>,
    edit: bool,
    outcome: FormOutcome,
) -> impl IntoView {
    view! {
        <input type="hidden" name="id" value=agent.id.clone()/>
        <input type="hidden" name="version" value=agent.version.to_string()/>
        <div class="field">
            <label for="name">"Name"</label>
            <input id="name" name="name" value=agent.name.clone() required disabled=!edit aria-describedby=described("name")/>
            <FieldError outcome field="name"/>
        </div>
        <div class="field">
            <label for="role">"Role"</label>
            <input id="role" name="role" value=agent.role.clone() required disabled=!edit aria-describedby=described("role")/>
            <FieldError outcome field="role"/>
        </div>
        <div class="field">
            <label for="goal">"Goal"</label>
            <textarea id="goal" name="goal" rows="2" required disabled=!edit aria-describedby=described("goal")>
                {agent.goal.clone()}
            </textarea>
            <FieldError outcome field="goal"/>
        </div>
        <div class="field">
            <label for="backstory">"Backstory"</label>
            <textarea id="backstory" name="backstory" rows="5" disabled=!edit aria-describedby=described("backstory")>
                {agent.backstory.clone()}
            </textarea>
            <FieldError outcome field="backstory"/>
        </div>
        <TemperatureField initial=agent.temperature edit outcome/>
        <div class="field-row">
            <ModelField current=agent.model.clone() models edit outcome/>
            <div class="field">
                <label for="max_tokens">"Max tokens per call"</label>
                <input
                    id="max_tokens"
                    name="max_tokens"
                    type="number"
                    value=agent.max_tokens.to_string()
                    disabled=!edit
                    aria-describedby=described("max_tokens")
                />
                <FieldError outcome field="max_tokens"/>
            </div>
        </div>
    }
}

/// The temperature slider, whose value is shown beside its label as it moves.
#[component]
fn TemperatureField(initial: f32, edit: bool, outcome: FormOutcome) -> impl IntoView {
    let (temperature, set_temperature) = signal(initial);
    view! {
        <div class="field">
            <label for="temperature">
                "Temperature "
                <output id="temperature-value" for="temperature">
                    {move || format!("{:.1}", temperature.get())}
                </output>
            </label>
            <input
                id="temperature"
                name="temperature"
                type="range"
                min="0"
                max="2"
                step="0.1"
                value=format!("{initial:.1}")
                disabled=!edit
                aria-describedby=described("temperature")
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f32>() {
                        set_temperature.set(v);
                    }
                }
            />
            <p class="hint">"0 is focused and repeatable, 2 is loose and surprising."</p>
            <FieldError outcome field="temperature"/>
        </div>
    }
}

/// The model picker: the models of providers with a key, led by the agent's own when it is
/// not among them.
#[component]
fn ModelField(
    current: String,
    models: Vec<String>,
    edit: bool,
    outcome: FormOutcome,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for="model">"Model"</label>
            <select id="model" name="model" disabled=!edit aria-describedby=described("model")>
                {models
                    .into_iter()
                    .map(|m| {
                        let selected = m == current;
                        view! { <option value=m.clone() selected=selected>{m.clone()}</option> }
                    })
                    .collect_view()}
            </select>
            <FieldError outcome field="model"/>
        </div>
    }
}
