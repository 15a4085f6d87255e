//! The agent's tool grants: per connector, whether it may be used, which actions, and whether
//! a person approves each call; then the tenant's MCP servers and remote agents
//! (`tool_sources`). One save sends them all.

// A server function takes one argument per form field.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use leptos::prelude::*;

use super::tool_sources::{KeptGrants, ToolSourceGrants, offered};
use crate::app::{Badge, CsrfField, OutcomeNote};
use crate::model::{ActionDef, Agent, Connector, Grant, Outcome, ToolSource};

/// Replaces the tool grants with every grant the form stands for (see `grants::GrantsForm`).
/// `If-Match` with the version the form showed makes a concurrent edit a conflict.
#[server(endpoint = "agents/tools")]
pub async fn save_tools(
    csrf: String,
    id: String,
    version: String,
    #[server(default)] grants: HashMap<String, String>,
    #[server(default)] actions: HashMap<String, String>,
    #[server(default)] approval: HashMap<String, String>,
    #[server(default)] limit: HashMap<String, String>,
    #[server(default)] mcp_slug: HashMap<String, String>,
    #[server(default)] mcp_tools: HashMap<String, String>,
    #[server(default)] mcp_approval: HashMap<String, String>,
    #[server(default)] mcp_limit: HashMap<String, String>,
    #[server(default)] mcp_all: HashMap<String, String>,
    #[server(default)] a2a: HashMap<String, String>,
    #[server(default)] a2a_approval: HashMap<String, String>,
    #[server(default)] a2a_limit: HashMap<String, String>,
    #[server(default)] keep: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use super::grants::{GrantsForm, saved_message};
    use crate::api::{Service, call_with, check_csrf, encode};
    check_csrf(&csrf)?;
    let form = GrantsForm {
        grants,
        actions,
        approval,
        limit,
        mcp_slug,
        mcp_tools,
        mcp_approval,
        mcp_limit,
        mcp_all,
        a2a,
        a2a_approval,
        a2a_limit,
        keep,
    };
    let (tools, counts) = form.body();
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
            Ok(_) => Outcome::ok(saved_message(counts)),
            // The message in full: this form marks no field.
            Err(e) => Outcome {
                field: None,
                ..e.outcome()
            },
        },
    )
}

#[component]
pub(super) fn ToolsForm(
    agent: Agent,
    connectors: Vec<Connector>,
    sources: Vec<ToolSource>,
    edit: bool,
    tools: ServerAction<SaveTools>,
) -> impl IntoView {
    let outcome = Signal::derive(move || tools.value().get());
    let offered = |g: &Grant| match g.source() {
        Some((kind, slug)) => offered(&sources).any(|s| s.protocol == kind && s.slug == slug),
        None => connectors.iter().any(|c| c.id == g.connector),
    };
    let kept: Vec<Grant> = agent
        .tools
        .iter()
        .filter(|g| !offered(g))
        .cloned()
        .collect();
    let rows = connectors
        .iter()
        .cloned()
        .map(|c| tool_row(c, &agent.tools, edit))
        .collect_view();
    let grid = view! {
        <div class="tools-grid">{rows}</div>
        <ToolSourceGrants sources grants=agent.tools.clone() edit/>
        <KeptGrants grants=kept/>
    };
    view! {
        <section class="card" aria-labelledby="tools-h">
            <h2 id="tools-h">"Tools"</h2>
            <p class="muted">
                "Which connected platforms, MCP servers and remote agents this agent may use, and how. A revoked grant stops the very next call."
            </p>
            {if edit {
                view! {
                    <ActionForm action=tools>
                        <CsrfField/>
                        <input type="hidden" name="id" value=agent.id.clone()/>
                        <input type="hidden" name="version" value=agent.version.to_string()/>
                        {grid}
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
                grid.into_any()
            }}
        </section>
    }
}

/// One connector: its grant box, its actions and its approval policy.
fn tool_row(c: Connector, grants: &[Grant], edit: bool) -> impl IntoView + use<> {
    let grant = grants
        .iter()
        .find(|g| g.source().is_none() && g.connector == c.id);
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
            {grant.and_then(|g| g.max_calls_per_run).map(|n| view! {
                <input type="hidden" name=format!("limit[{id}]") value=n.to_string()/>
            })}
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
