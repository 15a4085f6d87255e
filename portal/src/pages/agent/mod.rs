//! `/dashboard/agents/{id}`: an agent's settings (role, goal, backstory, temperature, model),
//! its tool grants (connectors, MCP servers, remote agents), its knowledge collections with uploads whose ingestion the
//! page follows live, and its delegation: the other agents it may ask, and its crews.

mod delegation;
mod grants;
mod knowledge;
mod settings;
mod tool_sources;
mod tools;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::app::{LoadError, PageHeader};
use crate::model::{Agent, Collection, Connector, Document, Me, ToolSource};
use delegation::{DelegatesForm, SaveDelegates};
use knowledge::{AttachCollection, CreateCollection, KnowledgePanel};
use settings::{SaveAgent, SettingsForm};
use tools::{SaveTools, ToolsForm};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentData {
    pub me: Me,
    pub agent: Agent,
    pub connectors: Vec<Connector>,
    /// The tenant's MCP servers and remote agents (none when the role may not see them).
    pub sources: Vec<ToolSource>,
    pub collections: Vec<Collection>,
    /// The documents of the collections attached to the agent, with their ingestion status.
    pub documents: Vec<Document>,
    /// The tenant's other agents (those this one may be allowed to ask).
    pub others: Vec<Agent>,
    /// `(id, name)` of the crews the agent works in, as a member or their manager.
    pub crews: Vec<(String, String)>,
    /// The model picker's choices (models of providers with a key, the agent's own first).
    pub models: Vec<String>,
}

// `load_agent` and `document_status` stay in this module: without an `endpoint`, a server
// function's URL is hashed from its module path.

#[server]
pub async fn load_agent(id: String) -> Result<AgentData, ServerFnError> {
    use crate::api::{encode, get, get_list};
    let agent: Agent = get(&format!("/v1/agents/{}", encode(&id))).await?;
    let connectors: Vec<Connector> = get("/v1/connectors").await?;
    let sources = crate::api::tool_sources().await?.unwrap_or_default();
    let collections: Vec<Collection> = get("/v1/knowledge/collections").await?;
    let all: Vec<Agent> = get_list("/v1/agents", "agents").await?;
    let crews: Vec<crate::model::Crew> = get_list("/v1/crews", "crews").await?;
    let providers = get_list("/v1/tenant/providers", "providers").await?;
    let models = crate::providers::model_choices(&providers, Some(&agent.model));
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
        sources,
        collections,
        documents,
        models,
    })
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
        sources,
        collections,
        documents,
        others,
        crews,
        models,
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
            <SettingsForm agent=agent.clone() models edit save/>
            <KnowledgePanel agent=agent.clone() collections documents me=me.clone() create attach/>
        </div>
        <DelegatesForm agent=agent.clone() others crews edit delegates/>
        <ToolsForm agent connectors sources edit tools/>
    }
}
