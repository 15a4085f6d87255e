//! `/dashboard/agents`: the tenant's agents, and a form to add one (admins).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, FieldError, LoadError, OutcomeNote, PageHeader};
use crate::model::{Agent, Me, Outcome};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsData {
    pub me: Me,
    pub agents: Vec<Agent>,
    /// The model picker's choices (models of providers with a key).
    pub models: Vec<String>,
}

#[server]
pub async fn load_agents() -> Result<AgentsData, ServerFnError> {
    let providers = crate::api::get_list("/v1/tenant/providers", "providers").await?;
    Ok(AgentsData {
        me: crate::api::me(),
        agents: crate::api::get_list("/v1/agents", "agents").await?,
        models: crate::providers::model_choices(&providers, None),
    })
}

#[server(endpoint = "agents/create")]
pub async fn create_agent(
    csrf: String,
    name: String,
    role: String,
    goal: String,
    model: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf};
    check_csrf(&csrf)?;
    let body = serde_json::json!({"name": name, "role": role, "goal": goal, "model": model});
    Ok(
        match call(
            Service::Gateway,
            reqwest::Method::POST,
            "/v1/agents",
            Some(body),
        )
        .await
        {
            Ok(agent) => Outcome::ok(format!(
                "Created {}.",
                agent["name"].as_str().unwrap_or("the agent")
            )),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub fn AgentsPage() -> impl IntoView {
    let create = ServerAction::<CreateAgent>::new();
    let data = Resource::new(move || create.version().get(), |_| load_agents());
    let outcome = Signal::derive(move || create.value().get());
    view! {
        <PageHeader title="Agents".to_owned() subtitle="Each agent has its own role, model, tools and knowledge"/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(AgentsData { me, agents, models }) => {
                        let chat = me.can_chat();
                        view! {
                            <div class="grid cards">
                                {agents
                                    .into_iter()
                                    .map(|a| agent_card(a, chat))
                                    .collect_view()}
                            </div>
                            {me.can_edit_agents().then(|| new_agent_form(create, outcome, models))}
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// One agent: what it is for, its model and tools, and links to its settings and a chat.
fn agent_card(a: Agent, chat: bool) -> impl IntoView {
    view! {
        <article class="card agent-card">
            <header class="widget-head">
                <h2>
                    <a href=format!("/dashboard/agents/{}", a.id)>{a.name.clone()}</a>
                </h2>
                <Badge status=a.status.clone()/>
            </header>
            <p>{a.role.clone()}</p>
            <p class="muted">{a.goal.clone()}</p>
            <dl class="facts">
                <dt>"Model"</dt>
                <dd>{a.model.clone()}</dd>
                <dt>"Temperature"</dt>
                <dd>{format!("{:.1}", a.temperature)}</dd>
                <dt>"Tools"</dt>
                <dd>
                    {if a.tools.is_empty() {
                        "none".to_owned()
                    } else {
                        a.tools.iter().map(crate::model::Grant::label).collect::<Vec<_>>().join(", ")
                    }}
                </dd>
            </dl>
            <p class="card-actions">
                <a class="button" href=format!("/dashboard/agents/{}", a.id)>
                    "Settings"
                </a>
                {chat
                    .then(|| {
                        view! {
                            <a class="button primary" href=format!("/dashboard/chat/{}", a.id)>
                                "Chat"
                            </a>
                        }
                    })}
            </p>
        </article>
    }
}

/// Adds an agent: name, role, goal and model (the rest is set on the agent's page).
fn new_agent_form(
    create: ServerAction<CreateAgent>,
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
    models: Vec<String>,
) -> impl IntoView {
    view! {
        <section class="card narrow" aria-labelledby="new-agent-h">
            <h2 id="new-agent-h">"New agent"</h2>
            <ActionForm action=create>
                <CsrfField/>
                <div class="field">
                    <label for="new-name">"Name"</label>
                    <input id="new-name" name="name" required/>
                    <FieldError outcome field="name"/>
                </div>
                <div class="field">
                    <label for="new-role">"Role"</label>
                    <input id="new-role" name="role" required placeholder="e.g. Content writer"/>
                    <FieldError outcome field="role"/>
                </div>
                <div class="field">
                    <label for="new-goal">"Goal"</label>
                    <input id="new-goal" name="goal" required/>
                    <FieldError outcome field="goal"/>
                </div>
                <div class="field">
                    <label for="new-model">"Model"</label>
                    <select id="new-model" name="model">
                        {models
                            .into_iter()
                            .map(|m| view! { <option value=m.clone()>{m.clone()}</option> })
                            .collect_view()}
                    </select>
                </div>
                <OutcomeNote outcome/>
                <button type="submit" class="primary">"Create agent"</button>
            </ActionForm>
        </section>
    }
}
