//! The MCP servers and remote A2A agents table: the tenant's tool sources with the tools each
//! listed, and the forms that add, refresh, enable, disable and delete them.

// A server function takes one argument per form field.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;

use crate::app::{Badge, CsrfField, OutcomeNote, short_time};
use crate::model::{Outcome, ToolSource, ToolSourceKind};

/// The outcome of a failed call, its message shown in full: this section marks no field.
#[cfg(feature = "ssr")]
fn failed(e: &crate::api::ApiFailure) -> Outcome {
    Outcome {
        field: None,
        ..e.outcome()
    }
}

/// Registers an MCP server or a remote agent; the gateway connects to it first (lists the
/// server's tools, reads the agent's card) and keeps it only when that works.
#[server(endpoint = "tool-sources/create")]
pub async fn create_tool_source(
    csrf: String,
    kind: String,
    name: String,
    slug: String,
    url: String,
    auth_kind: String,
    #[server(default)] token: String,
    #[server(default)] header_name: String,
    #[server(default)] header_value: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf};
    use serde_json::json;
    check_csrf(&csrf)?;
    let Some(kind) = ToolSourceKind::parse(&kind) else {
        return Ok(Outcome::error("Choose an MCP server or an A2A agent."));
    };
    let auth = match auth_kind.as_str() {
        "bearer" => json!({"kind": "bearer", "token": token.trim()}),
        "header" => {
            json!({"kind": "header", "name": header_name.trim(), "value": header_value.trim()})
        }
        _ => json!({"kind": "none"}),
    };
    let body = json!({"name": name.trim(), "slug": slug.trim(), "url": url.trim(), "auth": auth});
    Ok(
        match call(
            Service::Gateway,
            reqwest::Method::POST,
            kind.path(),
            Some(body),
        )
        .await
        {
            Ok(created) => Outcome::ok(match kind {
                ToolSourceKind::Mcp => format!(
                    "MCP server added; it lists {} tool(s).",
                    created["tools"].as_array().map_or(0, Vec::len)
                ),
                ToolSourceKind::A2a => "Remote agent added.".to_owned(),
            }),
            Err(e) => failed(&e),
        },
    )
}

/// What a row's buttons do to a tool source.
#[cfg(feature = "ssr")]
#[derive(Clone, Copy)]
enum SourceChange {
    Refresh,
    Enable,
    Disable,
    Delete,
}

#[cfg(feature = "ssr")]
impl SourceChange {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "refresh" => Some(Self::Refresh),
            "enable" => Some(Self::Enable),
            "disable" => Some(Self::Disable),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    fn done(self, kind: ToolSourceKind, answer: &serde_json::Value) -> String {
        match (self, kind) {
            (Self::Refresh, ToolSourceKind::Mcp) => format!(
                "Tools listed again: {}.",
                answer["tools"].as_array().map_or(0, Vec::len)
            ),
            (Self::Refresh, ToolSourceKind::A2a) => "Agent card read again.".to_owned(),
            (Self::Enable, _) => "Enabled.".to_owned(),
            (Self::Disable, _) => "Disabled: its tools stop working on the next call.".to_owned(),
            (Self::Delete, _) => "Deleted, with every agent's grant of it.".to_owned(),
        }
    }
}

/// Refreshes, enables, disables or deletes one MCP server or remote agent.
#[server(endpoint = "tool-sources/change")]
pub async fn change_tool_source(
    csrf: String,
    kind: String,
    id: String,
    change: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    use reqwest::Method;
    check_csrf(&csrf)?;
    let (Some(kind), Some(change)) = (ToolSourceKind::parse(&kind), SourceChange::parse(&change))
    else {
        return Ok(Outcome::error("This form is out of date; reload the page."));
    };
    let path = format!("{}/{}", kind.path(), encode(&id));
    let (method, path, body) = match change {
        SourceChange::Refresh => (Method::POST, format!("{path}/refresh"), None),
        SourceChange::Enable => (
            Method::PATCH,
            path,
            Some(serde_json::json!({"enabled": true})),
        ),
        SourceChange::Disable => (
            Method::PATCH,
            path,
            Some(serde_json::json!({"enabled": false})),
        ),
        SourceChange::Delete => (Method::DELETE, path, None),
    };
    Ok(match call(Service::Gateway, method, &path, body).await {
        Ok(answer) => Outcome::ok(change.done(kind, &answer)),
        Err(e) => failed(&e),
    })
}

#[component]
pub fn ToolSourcesSection(
    sources: Vec<ToolSource>,
    manage: bool,
    create: ServerAction<CreateToolSource>,
    change: ServerAction<ChangeToolSource>,
) -> impl IntoView {
    let change_outcome = Signal::derive(move || change.value().get());
    view! {
        <section class="card" aria-labelledby="tool-sources-h">
            <h2 id="tool-sources-h">"MCP servers and remote agents"</h2>
            <p class="muted">
                "Tools from outside Brain that agents may be granted. Tokens are never shown again."
            </p>
            <div class="table-wrap">
                <table>
                    <caption class="visually-hidden">"MCP servers and remote agents"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Slug"</th>
                            <th scope="col">"Kind"</th>
                            <th scope="col">"URL"</th>
                            <th scope="col">"Auth"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Tools"</th>
                            <th scope="col">"Last refresh"</th>
                            {manage.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {sources.is_empty().then(|| view! { <tr><td colspan="9" class="muted">"No MCP servers or remote agents yet."</td></tr> })}
                        {sources.into_iter().map(|s| source_row(s, manage, change)).collect_view()}
                    </tbody>
                </table>
            </div>
            <OutcomeNote outcome=change_outcome/>
            {manage.then(|| view! { <NewToolSourceForm create/> })}
        </section>
    }
}

fn source_row(
    s: ToolSource,
    manage: bool,
    change: ServerAction<ChangeToolSource>,
) -> impl IntoView {
    let auth = match &s.auth.header {
        Some(header) => format!("{} ({header})", s.auth.kind),
        None => s.auth.kind.clone(),
    };
    let tools = match s.protocol {
        ToolSourceKind::Mcp => {
            let names: Vec<&str> = s.tools.iter().map(|t| t.name.as_str()).collect();
            view! {
                {names.len()}
                " "
                <span class="small muted">{names.join(", ")}</span>
            }
            .into_any()
        }
        ToolSourceKind::A2a => "—".into_any(),
    };
    view! {
        <tr data-source=s.slug.clone()>
            <td>{s.name.clone()}</td>
            <td><code>{s.slug.clone()}</code></td>
            <td>{s.protocol.label()}</td>
            <td><code class="small">{s.url.clone()}</code></td>
            <td>{auth}</td>
            <td><Badge status=if s.enabled { "enabled".to_owned() } else { "disabled".to_owned() }/></td>
            <td>{tools}</td>
            <td>{s.refreshed_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
            {manage.then(|| view! { <td class="row-actions">{source_actions(&s, change)}</td> })}
        </tr>
    }
}

/// A row's buttons: Refresh, Enable or Disable, Delete — each its own small form.
fn source_actions(s: &ToolSource, change: ServerAction<ChangeToolSource>) -> impl IntoView + use<> {
    let toggle = if s.enabled {
        ("disable", "Disable", "link")
    } else {
        ("enable", "Enable", "link")
    };
    let (kind, id, name) = (s.protocol.as_str(), s.id.clone(), format!(" {}", s.name));
    [
        ("refresh", "Refresh", "link"),
        toggle,
        ("delete", "Delete", "link danger"),
    ]
    .into_iter()
    .map(|(what, label, class)| {
        let (id, name) = (id.clone(), name.clone());
        view! {
            <ActionForm action=change>
                <CsrfField/>
                <input type="hidden" name="kind" value=kind/>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="change" value=what/>
                <button type="submit" class=class>
                    {label}
                    <span class="visually-hidden">{name}</span>
                </button>
            </ActionForm>
        }
    })
    .collect_view()
}

#[component]
fn NewToolSourceForm(create: ServerAction<CreateToolSource>) -> impl IntoView {
    let outcome = Signal::derive(move || create.value().get());
    view! {
        <details class="inline-form">
            <summary>"Add an MCP server or remote agent"</summary>
            <ActionForm action=create>
                <CsrfField/>
                <div class="field-row">
                    <div class="field">
                        <label for="source-kind">"Kind"</label>
                        <select id="source-kind" name="kind">
                            <option value="mcp">"MCP server"</option>
                            <option value="a2a">"A2A agent"</option>
                        </select>
                    </div>
                    <div class="field">
                        <label for="source-name">"Name"</label>
                        <input id="source-name" name="name" required placeholder="e.g. CRM tools"/>
                    </div>
                    <div class="field">
                        <label for="source-slug">"Slug"</label>
                        <input id="source-slug" name="slug" required placeholder="e.g. crm" pattern="[a-z0-9][a-z0-9_]{0,39}"/>
                    </div>
                </div>
                <div class="field">
                    <label for="source-url">"URL"</label>
                    <input id="source-url" name="url" type="url" required placeholder="https://mcp.example.com/mcp"/>
                    <p class="hint">"An MCP server's endpoint, or an A2A agent's base or card URL."</p>
                </div>
                <AuthFields/>
                <button id="create-source" type="submit" class="primary">"Add"</button>
                <OutcomeNote outcome/>
            </ActionForm>
        </details>
    }
}

/// How Brain signs in to the new source: no auth, a bearer token, or a header of its own.
#[component]
fn AuthFields() -> impl IntoView {
    view! {
        <div class="field-row">
            <div class="field">
                <label for="source-auth">"Auth"</label>
                <select id="source-auth" name="auth_kind">
                    <option value="none">"None"</option>
                    <option value="bearer">"Bearer token"</option>
                    <option value="header">"Header"</option>
                </select>
            </div>
            <div class="field">
                <label for="source-token">"Token (bearer)"</label>
                <input id="source-token" name="token" type="password" autocomplete="off"/>
            </div>
            <div class="field">
                <label for="source-header-name">"Header name"</label>
                <input id="source-header-name" name="header_name" autocomplete="off" placeholder="e.g. X-API-Key"/>
            </div>
            <div class="field">
                <label for="source-header-value">"Header value"</label>
                <input id="source-header-value" name="header_value" type="password" autocomplete="off"/>
            </div>
        </div>
    }
}
