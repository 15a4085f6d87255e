//! The agent's tool grants: per connector, whether it may be used, which actions, and whether
//! a person approves each call.

use std::collections::HashMap;

use leptos::prelude::*;

use crate::app::{Badge, CsrfField, OutcomeNote};
use crate::model::{ActionDef, Agent, Connector, Grant, Outcome};

/// Replaces the tool grants: a ticked connector with no ticked action may use all of them.
/// `If-Match` with the version the form showed makes a concurrent edit a conflict.
#[server(endpoint = "agents/tools")]
pub async fn save_tools(
    csrf: String,
    id: String,
    version: String,
    #[server(default)] grants: HashMap<String, String>,
    #[server(default)] actions: HashMap<String, String>,
    #[server(default)] approval: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call_with, check_csrf, encode};
    check_csrf(&csrf)?;
    let mut connectors: Vec<&String> = grants.keys().collect();
    connectors.sort();
    let tools: Vec<serde_json::Value> = connectors
        .into_iter()
        .map(|connector| {
            let prefix = format!("{connector}__");
            let mut chosen: Vec<&str> = actions
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .collect();
            chosen.sort_unstable();
            if chosen.is_empty() {
                chosen.push("*");
            }
            let policy = approval
                .get(connector)
                .filter(|p| p.as_str() == "always")
                .map_or("never", |_| "always");
            serde_json::json!({"connector": connector, "actions": chosen, "approval": policy})
        })
        .collect();
    let count = tools.len();
    Ok(
        match call_with(
            Service::Gateway,
            reqwest::Method::PUT,
            &format!("/v1/agents/{}/tools", encode(&id)),
            Some(serde_json::Value::Array(tools)),
            &[("if-match", version)],
        )
        .await
        {
            Ok(_) => Outcome::ok(format!(
                "Tools saved: {count} connector{} granted.",
                if count == 1 { "" } else { "s" }
            )),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub(super) fn ToolsForm(
    agent: Agent,
    connectors: Vec<Connector>,
    edit: bool,
    tools: ServerAction<SaveTools>,
) -> impl IntoView {
    let outcome = Signal::derive(move || tools.value().get());
    let rows = connectors
        .into_iter()
        .map(|c| tool_row(c, &agent.tools, edit))
        .collect_view();
    view! {
        <section class="card" aria-labelledby="tools-h">
            <h2 id="tools-h">"Tools"</h2>
            <p class="muted">
                "Which connected platforms this agent may use, and how. A revoked grant stops the very next call."
            </p>
            {if edit {
                view! {
                    <ActionForm action=tools>
                        <CsrfField/>
                        <input type="hidden" name="id" value=agent.id.clone()/>
                        <input type="hidden" name="version" value=agent.version.to_string()/>
                        <div class="tools-grid">{rows}</div>
                        <div class="tools-outcome">
                            <OutcomeNote outcome/>
                        </div>
                        <button id="save-tools" type="submit" class="primary">
                            "Save tools"
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

/// One connector: its grant box, its actions and its approval policy.
fn tool_row(c: Connector, grants: &[Grant], edit: bool) -> impl IntoView + use<> {
    let grant = grants.iter().find(|g| g.connector == c.id);
    let granted = grant.is_some();
    let always = grant.is_some_and(|g| g.approval == "always");
    let id = c.id.clone();
    let actions = c
        .actions
        .iter()
        .map(|a| action_check(a, &id, grant, edit))
        .collect_view();
    view! {
        <fieldset class="tool" id=format!("tools-{id}")>
            <legend>
                <input
                    type="checkbox"
                    id=format!("grant-{id}")
                    name=format!("grants[{id}]")
                    checked=granted
                    disabled=!edit
                />
                <label for=format!("grant-{id}")>{c.name.clone()}</label>
                " "
                <Badge status=c.status.clone()/>
            </legend>
            <details open=granted>
                <summary>{actions_summary(grant)}</summary>
                <p class="hint">"Tick none to allow every action."</p>
                <ul class="plain checks">{actions}</ul>
            </details>
            <div class="field inline">
                <label for=format!("approval-{id}")>"Approval"</label>
                <select id=format!("approval-{id}") name=format!("approval[{id}]") disabled=!edit>
                    <option value="never" selected=!always>"Runs without approval"</option>
                    <option value="always" selected=always>"A person approves each call"</option>
                </select>
            </div>
        </fieldset>
    }
}

/// What a connector's grant allows, as the summary of its actions list.
fn actions_summary(grant: Option<&Grant>) -> String {
    match grant {
        Some(g) if g.actions.iter().any(|a| a == "*") => "All actions".to_owned(),
        Some(g) => format!("{} action(s) allowed", g.actions.len()),
        None => "Actions".to_owned(),
    }
}

/// One action of a connector, ticked when the grant names it.
fn action_check(
    a: &ActionDef,
    connector: &str,
    grant: Option<&Grant>,
    edit: bool,
) -> impl IntoView + use<> {
    let checked = grant.is_some_and(|g| g.actions.iter().any(|x| x == &a.name));
    let input_id = format!("action-{connector}-{}", a.name);
    view! {
        <li>
            <input
                type="checkbox"
                id=input_id.clone()
                name=format!("actions[{connector}__{}]", a.name)
                checked=checked
                disabled=!edit
            />
            <label for=input_id title=a.description.clone()>
                {a.name.clone()}
                {a.side_effect.then(|| view! { <span class="tag">"writes"</span> })}
            </label>
        </li>
    }
}
