//! The agent's knowledge: its collections with their documents and upload forms, the live
//! ingestion status of a fresh upload, and the forms that create and attach collections.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::document_status;
use crate::app::{Badge, CsrfField, LoadError, OutcomeNote};
use crate::model::{Agent, Collection, Document, Me, Outcome};

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
    use crate::api::{Service, call_with, encode, get};
    let current: Agent = get(&format!("/v1/agents/{}", encode(agent))).await?;
    let mut ids = current.knowledge_collections;
    if !ids.iter().any(|c| c == collection) {
        ids.push(collection.to_owned());
    }
    // Read, change, write: `If-Match` turns an edit made in between into a conflict instead
    // of silently dropping the collections it attached.
    Ok(
        match call_with(
            Service::Gateway,
            reqwest::Method::PATCH,
            &format!("/v1/agents/{}", encode(agent)),
            Some(serde_json::json!({ "knowledge_collections": ids })),
            &[("if-match", current.version.to_string())],
        )
        .await
        {
            Ok(_) => Outcome::ok("Collection attached."),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub(super) fn KnowledgePanel(
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
    let (attached, others): (Vec<Collection>, Vec<Collection>) = collections
        .into_iter()
        .partition(|c| agent.knowledge_collections.contains(&c.id));
    let upload = me.can_write_knowledge();
    let admin = me.can_edit_agents();
    let csrf = crate::session::csrf_token();
    view! {
        <section class="card" id="knowledge" aria-labelledby="knowledge-h">
            <h2 id="knowledge-h">"Knowledge"</h2>
            {if attached.is_empty() {
                view! { <p class="muted">"No collections attached yet."</p> }.into_any()
            } else {
                attached
                    .into_iter()
                    .map(|c| collection_card(c, &agent.id, &csrf, &documents, upload))
                    .collect_view()
                    .into_any()
            }}
            {move || upload_error().map(|e| view! { <p class="note error" role="alert">{format!("Upload refused: {e}")}</p> })}
            {move || document().map(|id| view! { <DocumentStatus id/> })}
            {admin
                .then(|| {
                    view! {
                        <NewCollectionForm agent=agent.id.clone() create/>
                        <AttachCollectionForm agent=agent.id.clone() others attach/>
                    }
                })}
        </section>
    }
}

/// An attached collection: its documents and, for those who may write knowledge, an upload
/// form.
fn collection_card(
    c: Collection,
    agent_id: &str,
    csrf: &str,
    documents: &[Document],
    upload: bool,
) -> impl IntoView + use<> {
    let action = format!(
        "/dashboard/agents/{}/upload?collection={}&csrf={}",
        agent_id, c.id, csrf,
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
}

#[component]
fn NewCollectionForm(agent: String, create: ServerAction<CreateCollection>) -> impl IntoView {
    let create_outcome = Signal::derive(move || create.value().get());
    view! {
        <ActionForm action=create>
            <CsrfField/>
            <input type="hidden" name="agent" value=agent/>
            <div class="field">
                <label for="new-collection">"New collection"</label>
                <div class="input-row">
                    <input id="new-collection" name="name" required placeholder="e.g. Brand book"/>
                    <button id="create-collection" type="submit">"Create and attach"</button>
                </div>
            </div>
            <OutcomeNote outcome=create_outcome/>
        </ActionForm>
    }
}

/// Attaches one of the tenant's other collections; nothing when there is none.
#[component]
fn AttachCollectionForm(
    agent: String,
    others: Vec<Collection>,
    attach: ServerAction<AttachCollection>,
) -> impl IntoView {
    let attach_outcome = Signal::derive(move || attach.value().get());
    (!others.is_empty()).then(|| {
        view! {
            <ActionForm action=attach>
                <CsrfField/>
                <input type="hidden" name="agent" value=agent/>
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
    })
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
