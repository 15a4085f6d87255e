//! The agent's delegation: the other agents it may ask (each with an approval policy and a
//! limit per run), and the crews it works in.

use std::collections::HashMap;

use leptos::prelude::*;

use crate::app::{CsrfField, OutcomeNote};
use crate::model::{Agent, DelegateGrant, Outcome};

/// Replaces the agents this one may ask: each ticked agent with its approval policy and
/// optional limit per run.
#[server(endpoint = "agents/delegates")]
pub async fn save_delegates(
    csrf: String,
    id: String,
    version: String,
    #[server(default)] delegates: HashMap<String, String>,
    #[server(default)] delegate_approval: HashMap<String, String>,
    #[server(default)] delegate_max: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call_with, check_csrf, encode};
    check_csrf(&csrf)?;
    // Keys are `a<agent id>`: a key starting with a digit would read as a list index.
    let mut targets: Vec<&String> = delegates.keys().collect();
    targets.sort();
    let mut grants = Vec::new();
    for key in targets {
        let agent = key.strip_prefix('a').unwrap_or(key);
        let approval = match delegate_approval.get(key).map(String::as_str) {
            Some("always") => "always",
            _ => "never",
        };
        let mut grant = serde_json::json!({"agent": agent, "approval": approval});
        let max = delegate_max.get(key).map(|m| m.trim()).unwrap_or_default();
        if !max.is_empty() {
            match max.parse::<u32>() {
                Ok(n) => grant["max_calls_per_run"] = serde_json::json!(n),
                Err(_) => {
                    return Ok(Outcome::error(
                        "delegates: a limit per run must be a whole number",
                    ));
                }
            }
        }
        grants.push(grant);
    }
    let count = grants.len();
    Ok(
        match call_with(
            Service::Gateway,
            reqwest::Method::PUT,
            &format!("/v1/agents/{}/delegates", encode(&id)),
            Some(serde_json::Value::Array(grants)),
            &[("if-match", version)],
        )
        .await
        {
            Ok(_) => Outcome::ok(match count {
                0 => "Saved: this agent asks no other agent.".to_owned(),
                1 => "Saved: this agent may ask 1 other agent.".to_owned(),
                n => format!("Saved: this agent may ask {n} other agents."),
            }),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub(super) fn DelegatesForm(
    agent: Agent,
    others: Vec<Agent>,
    crews: Vec<(String, String)>,
    edit: bool,
    delegates: ServerAction<SaveDelegates>,
) -> impl IntoView {
    let outcome = Signal::derive(move || delegates.value().get());
    let alone = others.is_empty();
    let rows = others
        .into_iter()
        .map(|other| delegate_row(other, &agent.delegates, edit))
        .collect_view();
    view! {
        <section class="card" id="delegation" aria-labelledby="delegation-h">
            <h2 id="delegation-h">"Delegation"</h2>
            <p class="muted">
                "Other agents this one may ask for help. Each answers with its own backstory, model, tools and knowledge."
            </p>
            {crew_links(crews)}
            {alone.then(|| view! { <p class="muted">"There are no other agents to ask yet."</p> })}
            {if edit && !alone {
                view! {
                    <ActionForm action=delegates>
                        <CsrfField/>
                        <input type="hidden" name="id" value=agent.id.clone()/>
                        <input type="hidden" name="version" value=agent.version.to_string()/>
                        <div class="tools-grid">{rows}</div>
                        <div class="delegates-outcome">
                            <OutcomeNote outcome/>
                        </div>
                        <button id="save-delegates" type="submit" class="primary">
                            "Save delegation"
                        </button>
                    </ActionForm>
                }
                    .into_any()
            } else {
                view! { <div class="tools-grid">{rows}</div> }.into_any()
            }}
        </section>
    }
}

/// The crews the agent works in, as links; nothing when it works in none.
fn crew_links(crews: Vec<(String, String)>) -> impl IntoView {
    (!crews.is_empty()).then(|| {
        view! {
            <p class="small in-crews">
                "Works in "
                {crews
                    .into_iter()
                    .enumerate()
                    .map(|(i, (id, name))| {
                        view! {
                            {(i > 0).then_some(", ")}
                            <a href=format!("/dashboard/crews/{id}")>{name}</a>
                        }
                    })
                    .collect_view()}
                "."
            </p>
        }
    })
}

/// Another agent this one may ask: the grant box, the approval policy and the limit per run.
fn delegate_row(other: Agent, grants: &[DelegateGrant], edit: bool) -> impl IntoView + use<> {
    let grant = grants.iter().find(|d| d.agent == other.id);
    let always = grant.is_some_and(|g| g.approval == "always");
    let max = grant
        .and_then(|g| g.max_calls_per_run)
        .map(|m| m.to_string())
        .unwrap_or_default();
    let id = other.id.clone();
    view! {
        <fieldset class="delegate" id=format!("delegate-row-{id}")>
            <legend>
                <input
                    type="checkbox"
                    id=format!("delegate-{id}")
                    name=format!("delegates[a{id}]")
                    checked=grant.is_some()
                    disabled=!edit
                />
                <label for=format!("delegate-{id}")>{other.name.clone()}</label>
            </legend>
            <p class="muted small">
                {other.role.clone()}
                " · tool "
                <code>{format!("ask_{}", other.slug)}</code>
            </p>
            <div class="field inline">
                <label for=format!("delegate-approval-{id}")>"Approval"</label>
                <select
                    id=format!("delegate-approval-{id}")
                    name=format!("delegate_approval[a{id}]")
                    disabled=!edit
                >
                    <option value="never" selected=!always>
                        "Asks without approval"
                    </option>
                    <option value="always" selected=always>
                        "A person approves each question"
                    </option>
                </select>
            </div>
            <div class="field inline">
                <label for=format!("delegate-max-{id}")>"Most questions per run"</label>
                <input
                    id=format!("delegate-max-{id}")
                    name=format!("delegate_max[a{id}]")
                    type="number"
                    min="1"
                    class="short"
                    value=max
                    placeholder="no limit"
                    disabled=!edit
                />
            </div>
        </fieldset>
    }
}
