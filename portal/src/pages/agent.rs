//! `/dashboard/agents/{id}`: an agent's settings (role, goal, backstory, temperature, model),
//! its tool grants per connector, its knowledge collections with uploads whose ingestion the
//! page follows live, and its delegation: the other agents it may ask, and its crews.

// A server function takes one argument per form field.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;
use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, FieldError, LoadError, OutcomeNote, PageHeader};
use crate::model::{Agent, Collection, Connector, Document, Grant, Me, Outcome};
use crate::pages::agents::MODELS;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentData {
    pub me: Me,
    pub agent: Agent,
    pub connectors: Vec<Connector>,
    pub collections: Vec<Collection>,
    /// The documents of the collections attached to the agent, with their ingestion status.
    pub documents: Vec<Document>,
    /// The tenant's other agents (those this one may be allowed to ask).
    pub others: Vec<Agent>,
    /// `(id, name)` of the crews the agent works in, as a member or their manager.
    pub crews: Vec<(String, String)>,
}

#[server]
pub async fn load_agent(id: String) -> Result<AgentData, ServerFnError> {
    use crate::api::{encode, get, get_list};
    let agent: Agent = get(&format!("/v1/agents/{}", encode(&id))).await?;
    let connectors: Vec<Connector> = get("/v1/connectors").await?;
    let collections: Vec<Collection> = get("/v1/knowledge/collections").await?;
    let all: Vec<Agent> = get_list("/v1/agents", "agents").await?;
    let crews: Vec<crate::model::Crew> = get_list("/v1/crews", "crews").await?;
    let mut documents = Vec::new();
    for c in collections
        .iter()
        .filter(|c| agent.knowledge_collections.contains(&c.id))
    {
        let path = format!("/v1/knowledge/collections/{}/documents", encode(&c.id));
        documents.extend(get::<Vec<Document>>(&path).await?);
    }
    Ok(AgentData {
        me: crate::api::me(),
        others: all.into_iter().filter(|a| a.id != agent.id).collect(),
        crews: crews
            .into_iter()
            .filter(|c| {
                c.members.contains(&agent.id) || c.manager_agent_id.as_ref() == Some(&agent.id)
            })
            .map(|c| (c.id, c.name))
            .collect(),
        agent,
        connectors,
        collections,
        documents,
    })
}

/// Replaces the agents this one may ask: each ticked agent with its approval policy and
/// optional limit per run.
#[server(endpoint = "agents/delegates")]
pub async fn save_delegates(
    csrf: String,
    id: String,
    #[server(default)] delegates: HashMap<String, String>,
    #[server(default)] delegate_approval: HashMap<String, String>,
    #[server(default)] delegate_max: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
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
        match call(
            Service::Gateway,
            reqwest::Method::PUT,
            &format!("/v1/agents/{}/delegates", encode(&id)),
            Some(serde_json::Value::Array(grants)),
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
    use crate::api::{ApiFailure, Service, call_with, check_csrf, encode};
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
        Err(ApiFailure { code, .. }) if code == "version_conflict" => Outcome::error(
            "Someone else changed this agent meanwhile; reload the page to see their changes.",
        ),
        Err(e) => e.outcome(),
    })
}

/// Replaces the tool grants: a ticked connector with no ticked action may use all of them.
#[server(endpoint = "agents/tools")]
pub async fn save_tools(
    csrf: String,
    id: String,
    #[server(default)] grants: HashMap<String, String>,
    #[server(default)] actions: HashMap<String, String>,
    #[server(default)] approval: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
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
        match call(
            Service::Gateway,
            reqwest::Method::PUT,
            &format!("/v1/agents/{}/tools", encode(&id)),
            Some(serde_json::Value::Array(tools)),
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

/// Creates a knowledge collection and attaches it to the agent.
#[server(endpoint = "agents/collection")]
pub async fn create_collection(
    csrf: String,
    agent: String,
    name: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf};
    check_csrf(&csrf)?;
    let created = match call(
        Service::Gateway,
        reqwest::Method::POST,
        "/v1/knowledge/collections",
        Some(serde_json::json!({ "name": name.trim() })),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return Ok(e.outcome()),
    };
    let outcome = attach(&agent, created["id"].as_str().unwrap_or_default()).await?;
    Ok(if outcome.ok {
        Outcome::ok(format!(
            "Collection “{}” created and attached.",
            name.trim()
        ))
    } else {
        outcome
    })
}

/// Attaches an existing collection to the agent.
#[server(endpoint = "agents/attach")]
pub async fn attach_collection(
    csrf: String,
    agent: String,
    collection: String,
) -> Result<Outcome, ServerFnError> {
    crate::api::check_csrf(&csrf)?;
    attach(&agent, &collection).await
}

#[cfg(feature = "ssr")]
async fn attach(agent: &str, collection: &str) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, encode, get};
    let current: Agent = get(&format!("/v1/agents/{}", encode(agent))).await?;
    let mut ids = current.knowledge_collections;
    if !ids.iter().any(|c| c == collection) {
        ids.push(collection.to_owned());
    }
    Ok(
        match call(
            Service::Gateway,
            reqwest::Method::PATCH,
            &format!("/v1/agents/{}", encode(agent)),
            Some(serde_json::json!({ "knowledge_collections": ids })),
        )
        .await
        {
            Ok(_) => Outcome::ok("Collection attached."),
            Err(e) => e.outcome(),
        },
    )
}

#[server]
pub async fn document_status(id: String) -> Result<Document, ServerFnError> {
    crate::api::get(&format!(
        "/v1/knowledge/documents/{}",
        crate::api::encode(&id)
    ))
    .await
}

#[component]
pub fn AgentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let save = ServerAction::<SaveAgent>::new();
    let tools = ServerAction::<SaveTools>::new();
    let create = ServerAction::<CreateCollection>::new();
    let attach = ServerAction::<AttachCollection>::new();
    let delegates = ServerAction::<SaveDelegates>::new();
    let data = Resource::new(
        move || {
            (
                id(),
                save.version().get(),
                tools.version().get(),
                create.version().get(),
                attach.version().get(),
                delegates.version().get(),
            )
        },
        |(id, ..)| load_agent(id),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => {
                        view! { <AgentView data=d save tools create attach delegates/> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn AgentView(
    data: AgentData,
    save: ServerAction<SaveAgent>,
    tools: ServerAction<SaveTools>,
    create: ServerAction<CreateCollection>,
    attach: ServerAction<AttachCollection>,
    delegates: ServerAction<SaveDelegates>,
) -> impl IntoView {
    let AgentData {
        me,
        agent,
        connectors,
        collections,
        documents,
        others,
        crews,
    } = data;
    let edit = me.can_edit_agents();
    let subtitle = format!("{} · version {}", agent.slug, agent.version);
    let chat = me.can_chat().then(|| {
        view! {
            <a class="button primary" href=format!("/dashboard/chat/{}", agent.id)>
                "Chat with this agent"
            </a>
        }
    });
    view! {
        <PageHeader title=agent.name.clone() subtitle=subtitle>
            {chat}
        </PageHeader>
        <div class="grid two wide-left">
            <SettingsForm agent=agent.clone() edit save/>
            <KnowledgePanel agent=agent.clone() collections documents me=me.clone() create attach/>
        </div>
        <DelegatesForm agent=agent.clone() others crews edit delegates/>
        <ToolsForm agent connectors edit tools/>
    }
}

#[component]
fn DelegatesForm(
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
        .map(|other| {
            let grant = agent
                .delegates
                .iter()
                .find(|d| d.agent == other.id)
                .cloned();
            let always = grant.as_ref().is_some_and(|g| g.approval == "always");
            let max = grant
                .as_ref()
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
        })
        .collect_view();
    let crews = (!crews.is_empty()).then(|| {
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
    });
    view! {
        <section class="card" id="delegation" aria-labelledby="delegation-h">
            <h2 id="delegation-h">"Delegation"</h2>
            <p class="muted">
                "Other agents this one may ask for help. Each answers with its own backstory, model, tools and knowledge."
            </p>
            {crews}
            {alone.then(|| view! { <p class="muted">"There are no other agents to ask yet."</p> })}
            {if edit && !alone {
                view! {
                    <ActionForm action=delegates>
                        <CsrfField/>
                        <input type="hidden" name="id" value=agent.id.clone()/>
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

#[component]
fn SettingsForm(agent: Agent, edit: bool, save: ServerAction<SaveAgent>) -> impl IntoView {
    let outcome = Signal::derive(move || save.value().get());
    let (temperature, set_temperature) = signal(agent.temperature);
    let mut models: Vec<String> = MODELS.iter().map(|m| (*m).to_owned()).collect();
    if !models.contains(&agent.model) {
        models.insert(0, agent.model.clone());
    }
    let current_model = agent.model.clone();
    let described = |field: &str| format!("{field}-error");
    let fields = view! {
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
                value=format!("{:.1}", agent.temperature)
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
        <div class="field-row">
            <div class="field">
                <label for="model">"Model"</label>
                <select id="model" name="model" disabled=!edit aria-describedby=described("model")>
                    {models
                        .into_iter()
                        .map(|m| {
                            let selected = m == current_model;
                            view! { <option value=m.clone() selected=selected>{m.clone()}</option> }
                        })
                        .collect_view()}
                </select>
                <FieldError outcome field="model"/>
            </div>
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
    };
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

#[component]
fn ToolsForm(
    agent: Agent,
    connectors: Vec<Connector>,
    edit: bool,
    tools: ServerAction<SaveTools>,
) -> impl IntoView {
    let outcome = Signal::derive(move || tools.value().get());
    let grants = agent.tools.clone();
    let rows = connectors
        .into_iter()
        .map(|c| {
            let grant: Option<Grant> = grants.iter().find(|g| g.connector == c.id).cloned();
            let granted = grant.is_some();
            let all = grant.as_ref().is_some_and(|g| g.actions.iter().any(|a| a == "*"));
            let always = grant.as_ref().is_some_and(|g| g.approval == "always");
            let id = c.id.clone();
            let actions = c
                .actions
                .iter()
                .map(|a| {
                    let checked = grant
                        .as_ref()
                        .is_some_and(|g| g.actions.iter().any(|x| x == &a.name));
                    let input_id = format!("action-{id}-{}", a.name);
                    view! {
                        <li>
                            <input
                                type="checkbox"
                                id=input_id.clone()
                                name=format!("actions[{id}__{}]", a.name)
                                checked=checked
                                disabled=!edit
                            />
                            <label for=input_id title=a.description.clone()>
                                {a.name.clone()}
                                {a.side_effect.then(|| view! { <span class="tag">"writes"</span> })}
                            </label>
                        </li>
                    }
                })
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
                        <summary>
                            {if all {
                                "All actions".to_owned()
                            } else if granted {
                                format!("{} action(s) allowed", grant.as_ref().map_or(0, |g| g.actions.len()))
                            } else {
                                "Actions".to_owned()
                            }}
                        </summary>
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
        })
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

#[component]
fn KnowledgePanel(
    agent: Agent,
    collections: Vec<Collection>,
    documents: Vec<Document>,
    me: Me,
    create: ServerAction<CreateCollection>,
    attach: ServerAction<AttachCollection>,
) -> impl IntoView {
    let query = use_query_map();
    let document = move || query.read().get("document");
    let upload_error = move || query.read().get("upload_error");
    let attached: Vec<Collection> = collections
        .iter()
        .filter(|c| agent.knowledge_collections.contains(&c.id))
        .cloned()
        .collect();
    let others: Vec<Collection> = collections
        .into_iter()
        .filter(|c| !agent.knowledge_collections.contains(&c.id))
        .collect();
    let upload = me.can_write_knowledge();
    let admin = me.can_edit_agents();
    let csrf = crate::session::csrf_token();
    let create_outcome = Signal::derive(move || create.value().get());
    let attach_outcome = Signal::derive(move || attach.value().get());
    let agent_id = agent.id.clone();
    let (create_for, attach_for) = (agent.id.clone(), agent.id.clone());
    view! {
        <section class="card" id="knowledge" aria-labelledby="knowledge-h">
            <h2 id="knowledge-h">"Knowledge"</h2>
            {if attached.is_empty() {
                view! { <p class="muted">"No collections attached yet."</p> }.into_any()
            } else {
                attached
                    .into_iter()
                    .map(|c| {
                        let action = format!(
                            "/dashboard/agents/{}/upload?collection={}&csrf={}",
                            agent_id,
                            c.id,
                            csrf,
                        );
                        let input_id = format!("file-{}", c.id);
                        let docs: Vec<Document> = documents
                            .iter()
                            .filter(|d| d.collection_id == c.id)
                            .cloned()
                            .collect();
                        view! {
                            <div class="collection">
                                <h3>{c.name.clone()}</h3>
                                <p class="muted small">{c.embedder.clone()}</p>
                                <DocumentList name=c.name.clone() documents=docs/>
                                {upload
                                    .then(|| {
                                        view! {
                                            <form method="post" enctype="multipart/form-data" action=action class="upload-form">
                                                <label for=input_id.clone()>"Add a PDF, .txt or .md file"</label>
                                                <input id=input_id type="file" name="file" accept=".pdf,.txt,.md,application/pdf,text/plain,text/markdown" required/>
                                                <button type="submit" class="upload">"Upload"</button>
                                            </form>
                                        }
                                    })}
                            </div>
                        }
                    })
                    .collect_view()
                    .into_any()
            }}
            {move || upload_error().map(|e| view! { <p class="note error" role="alert">{format!("Upload refused: {e}")}</p> })}
            {move || document().map(|id| view! { <DocumentStatus id/> })}
            {admin
                .then(|| {
                    view! {
                        <ActionForm action=create>
                            <CsrfField/>
                            <input type="hidden" name="agent" value=create_for/>
                            <div class="field">
                                <label for="new-collection">"New collection"</label>
                                <div class="input-row">
                                    <input id="new-collection" name="name" required placeholder="e.g. Brand book"/>
                                    <button id="create-collection" type="submit">"Create and attach"</button>
                                </div>
                            </div>
                            <OutcomeNote outcome=create_outcome/>
                        </ActionForm>
                        {(!others.is_empty())
                            .then(|| {
                                view! {
                                    <ActionForm action=attach>
                                        <CsrfField/>
                                        <input type="hidden" name="agent" value=attach_for/>
                                        <div class="field">
                                            <label for="attach-collection">"Attach an existing collection"</label>
                                            <div class="input-row">
                                                <select id="attach-collection" name="collection">
                                                    {others
                                                        .iter()
                                                        .map(|c| view! { <option value=c.id.clone()>{c.name.clone()}</option> })
                                                        .collect_view()}
                                                </select>
                                                <button type="submit">"Attach"</button>
                                            </div>
                                        </div>
                                        <OutcomeNote outcome=attach_outcome/>
                                    </ActionForm>
                                }
                            })}
                    }
                })}
        </section>
    }
}

/// A collection's documents as they were when the page loaded: file, status, pages, chunks
/// and, for a failed one, why.
#[component]
fn DocumentList(name: String, documents: Vec<Document>) -> impl IntoView {
    if documents.is_empty() {
        return view! { <p class="muted small">"No documents yet."</p> }.into_any();
    }
    let rows = documents
        .into_iter()
        .map(|d| {
            let status = d.status.clone();
            view! {
                <tr class="document" data-status=status>
                    <td>
                        {d.filename}
                        {d.error.map(|e| view! { <p class="note error small">{e}</p> })}
                    </td>
                    <td><Badge status=d.status/></td>
                    <td>{d.pages}</td>
                    <td>{d.chunks}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="documents">
                <caption class="visually-hidden">{format!("Documents in {name}")}</caption>
                <thead>
                    <tr>
                        <th scope="col">"Document"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Pages"</th>
                        <th scope="col">"Chunks"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

fn terminal(status: &str) -> bool {
    matches!(status, "ready" | "failed")
}

/// The ingestion status of an uploaded document, refreshed every second until it is ready
/// or failed.
#[component]
fn DocumentStatus(id: String) -> impl IntoView {
    let (tick, set_tick) = signal(0u32);
    let doc = Resource::new(
        move || (id.clone(), tick.get()),
        |(id, _)| document_status(id),
    );
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let done = doc
                    .get_untracked()
                    .and_then(Result::ok)
                    .is_some_and(|d| terminal(&d.status));
                if !done {
                    set_tick.update(|t| *t += 1);
                }
            },
            Duration::from_millis(1000),
        )
        .ok();
        on_cleanup(move || {
            if let Some(handle) = handle {
                handle.clear();
            }
        });
    });
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match doc.await {
                    Ok(d) => {
                        let pct = (d.progress * 100.0).round();
                        view! {
                            <div class="document-status" data-status=d.status.clone() role="status" aria-live="polite">
                                <p>
                                    <strong>{d.filename.clone()}</strong>
                                    " "
                                    <Badge status=d.status.clone()/>
                                </p>
                                <progress max="100" value=pct.to_string() aria-label="Ingestion progress">
                                    {format!("{pct}%")}
                                </progress>
                                <p class="muted small">
                                    {format!("{} page(s), {} chunk(s)", d.pages, d.chunks)}
                                </p>
                                {d.error.clone().map(|e| view! { <p class="note error">{e}</p> })}
                            </div>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}
