//! The agent's grants of the tenant's MCP servers (a box per tool) and remote A2A agents (one
//! box each), each with its approval policy; grants the page cannot offer travel along
//! unchanged, so a save never drops them.

use leptos::prelude::*;

use super::grants::{agent_key, server_key, tool_key};
use crate::app::Badge;
use crate::model::{Grant, SourceTool, ToolSource, ToolSourceKind};

/// The MCP servers and remote agents whose grants the Tools card offers: the enabled ones.
/// Grants of the others are kept as they are (`KeptGrants`).
pub(super) fn offered(sources: &[ToolSource]) -> impl Iterator<Item = &ToolSource> {
    sources.iter().filter(|s| s.enabled)
}

/// The enabled MCP servers and remote agents of the Tools card.
#[component]
pub(super) fn ToolSourceGrants(
    sources: Vec<ToolSource>,
    grants: Vec<Grant>,
    edit: bool,
) -> impl IntoView {
    let of_kind = |kind: ToolSourceKind| -> Vec<&ToolSource> {
        offered(&sources).filter(|s| s.protocol == kind).collect()
    };
    let grant = |s: &ToolSource| grants.iter().find(|g| g.is_of(s.protocol, &s.slug));
    let servers = of_kind(ToolSourceKind::Mcp);
    let agents = of_kind(ToolSourceKind::A2a);
    let servers = (!servers.is_empty()).then(|| {
        let blocks = servers
            .into_iter()
            .enumerate()
            .map(|(i, s)| server_block(i, s, grant(s), edit))
            .collect_view();
        view! {
            <h3>"MCP servers"</h3>
            <div class="tools-grid">{blocks}</div>
        }
    });
    let agents = (!agents.is_empty()).then(|| {
        let rows = agents
            .into_iter()
            .enumerate()
            .map(|(i, s)| agent_row(i, s, grant(s), edit))
            .collect_view();
        view! {
            <h3>"Remote agents"</h3>
            <div class="tools-grid">{rows}</div>
        }
    });
    view! {
        {servers}
        {agents}
    }
}

/// One enabled MCP server: a box per tool it listed — and per granted tool it no longer lists,
/// ticked, for the person to untick (the API refuses a grant of it) — and its approval policy.
fn server_block(
    i: usize,
    s: &ToolSource,
    grant: Option<&Grant>,
    edit: bool,
) -> impl IntoView + use<> {
    let key = server_key(i);
    let unlisted = grant
        .and_then(|g| g.tools.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| *t != "*" && !s.tools.iter().any(|listed| &listed.name == *t))
        .map(|name| SourceTool {
            name: name.clone(),
            ..SourceTool::default()
        });
    let listed = s.tools.iter().cloned().map(|t| (t, true));
    let offered: Vec<(SourceTool, bool)> = listed.chain(unlisted.map(|t| (t, false))).collect();
    // A grant of every tool stays one while every box stays ticked.
    let all = grant
        .is_some_and(|g| g.tools.iter().flatten().any(|t| t == "*"))
        .then(|| view! { <input type="hidden" name=format!("mcp_all[{key}]") value=offered.len().to_string()/> });
    let empty = offered.is_empty();
    let tools = offered
        .into_iter()
        .enumerate()
        .map(|(j, (tool, listed))| {
            let checked = grant.is_some_and(|g| g.allows_tool(&tool.name));
            let id = format!("mcp-{}-{j}", s.slug);
            tool_check(id, tool_key(i, j), tool, listed, checked, edit)
        })
        .collect_view();
    view! {
        <fieldset class="tool" id=format!("mcp-{}", s.slug)>
            <legend>{s.name.clone()}</legend>
            <input type="hidden" name=format!("mcp_slug[{key}]") value=s.slug.clone()/>
            {all}
            {limit_field("mcp_limit", &key, grant)}
            {empty.then(|| view! { <p class="hint">"This server lists no tools."</p> })}
            <ul class="plain source-tools">{tools}</ul>
            {approval_select(format!("mcp-approval-{}", s.slug), format!("mcp_approval[{key}]"), grant, edit)}
        </fieldset>
    }
}

/// One tool of an MCP server: its box, name, description, and whether it is read-only.
fn tool_check(
    id: String,
    key: String,
    tool: SourceTool,
    listed: bool,
    checked: bool,
    edit: bool,
) -> impl IntoView + use<> {
    let read_only = tool.read_only();
    view! {
        <li>
            <input
                type="checkbox"
                id=id.clone()
                name=format!("mcp_tools[{key}]")
                value=tool.name.clone()
                checked=checked
                disabled=!edit
            />
            <label for=id>
                <code>{tool.name}</code>
                {read_only.then(|| view! { " " <Badge status="read-only".to_owned()/> })}
                {(!listed).then(|| view! { <span class="tag">"no longer listed"</span> })}
                {(!tool.description.is_empty())
                    .then(|| view! { <span class="hint">{tool.description}</span> })}
            </label>
        </li>
    }
}

/// One enabled remote agent: "may ask" and its approval policy.
fn agent_row(i: usize, s: &ToolSource, grant: Option<&Grant>, edit: bool) -> impl IntoView + use<> {
    let key = agent_key(i);
    let id = format!("a2a-{}", s.slug);
    let about = s
        .tools
        .first()
        .map(|t| t.description.clone())
        .filter(|d| !d.is_empty())
        .map(|d| view! { <p class="muted small">{d}</p> });
    view! {
        <fieldset class="tool" id=format!("a2a-row-{}", s.slug)>
            <legend>
                <input
                    type="checkbox"
                    id=id.clone()
                    name=format!("a2a[{key}]")
                    value=s.slug.clone()
                    checked=grant.is_some()
                    disabled=!edit
                />
                <label for=id>{format!("May ask {}", s.name)}</label>
            </legend>
            {about}
            {limit_field("a2a_limit", &key, grant)}
            {approval_select(format!("a2a-approval-{}", s.slug), format!("a2a_approval[{key}]"), grant, edit)}
        </fieldset>
    }
}

/// The grant's limit per run, which this page does not edit, carried through a save.
fn limit_field(field: &str, key: &str, grant: Option<&Grant>) -> impl IntoView + use<> {
    let name = format!("{field}[{key}]");
    grant
        .and_then(|g| g.max_calls_per_run)
        .map(|n| view! { <input type="hidden" name=name value=n.to_string()/> })
}

/// `auto` (the default), `always` or `never`.
fn approval_select(
    id: String,
    name: String,
    grant: Option<&Grant>,
    edit: bool,
) -> impl IntoView + use<> {
    let current = grant.map_or("auto", |g| g.approval.as_str());
    let (always, never) = (current == "always", current == "never");
    view! {
        <div class="field inline">
            <label for=id.clone()>"Approval"</label>
            <select id=id name=name disabled=!edit>
                <option value="auto" selected=!always && !never>"Approval unless read-only"</option>
                <option value="always" selected=always>"A person approves each call"</option>
                <option value="never" selected=never>"Runs without approval"</option>
            </select>
        </div>
    }
}

/// Grants the page does not offer — of a disabled MCP server or remote agent, or of one it
/// cannot see — as hidden fields a save sends back unchanged, and named in a hint.
#[component]
pub(super) fn KeptGrants(grants: Vec<Grant>) -> impl IntoView {
    (!grants.is_empty()).then(|| {
        let labels: Vec<String> = grants.iter().map(Grant::label).collect();
        let fields = grants
            .iter()
            .enumerate()
            .map(|(n, g)| {
                let json = serde_json::to_string(g).unwrap_or_default();
                view! { <input type="hidden" name=format!("keep[k{n}]") value=json/> }
            })
            .collect_view();
        view! {
            {fields}
            <p class="hint">"Also granted, kept as is (disabled or not shown here): " {labels.join(", ")}</p>
        }
    })
}
