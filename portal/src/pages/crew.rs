//! `/dashboard/crews/{id}`: one crew — its editor (members, process, manager, tasks), a form
//! that starts a run and opens the run's page, the crew's recent runs, and deleting it.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, LoadError, OutcomeNote, PageHeader, short_time};
use crate::model::{Agent, Crew, Me, Outcome, Task};
use crate::pages::crews::{CrewEditor, SaveCrew, agent_name, error_from_query};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CrewData {
    pub me: Me,
    pub crew: Crew,
    pub agents: Vec<Agent>,
    /// The crew's latest runs, newest first.
    pub runs: Vec<Task>,
}

#[server]
pub async fn load_crew(id: String) -> Result<CrewData, ServerFnError> {
    use crate::api::{encode, get, get_list};
    /// How many runs the page lists.
    const RECENT_RUNS: usize = 10;
    let id = encode(&id);
    let crew: Crew = get(&format!("/v1/crews/{id}")).await?;
    let agents = get_list("/v1/agents", "agents").await?;
    let runs = get_list(
        &format!("/v1/tasks?crew_id={id}&limit={RECENT_RUNS}"),
        "tasks",
    )
    .await?;
    Ok(CrewData {
        me: crate::api::me(),
        crew,
        agents,
        runs,
    })
}

/// Starts a run of the crew and opens its page.
#[server(endpoint = "crews/run")]
pub async fn run_crew(csrf: String, crew: String, input: String) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, back_to_page, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let path = format!("/v1/crews/{}/runs", encode(&crew));
    let body = serde_json::json!({ "input": input.trim() });
    let outcome = match call(Service::Gateway, reqwest::Method::POST, &path, Some(body)).await {
        Ok(started) => {
            leptos_axum::redirect(&format!(
                "/dashboard/tasks/{}",
                encode(started["task_id"].as_str().unwrap_or_default())
            ));
            return Ok(Outcome::ok("Run started."));
        }
        Err(e) => e.outcome(),
    };
    back_to_page(&outcome);
    Ok(outcome)
}

/// Deletes the crew and goes back to the list (its past runs stay among the tasks).
#[server(endpoint = "crews/delete")]
pub async fn delete_crew(
    csrf: String,
    id: String,
    #[server(default)] confirm: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, back_to_page, call, check_csrf, encode};
    check_csrf(&csrf)?;
    if confirm.is_empty() {
        let outcome = Outcome::error("Tick “Yes, delete this crew” first.");
        back_to_page(&outcome);
        return Ok(outcome);
    }
    let path = format!("/v1/crews/{}", encode(&id));
    let outcome = match call(Service::Gateway, reqwest::Method::DELETE, &path, None).await {
        Ok(_) => {
            leptos_axum::redirect("/dashboard/crews");
            return Ok(Outcome::ok("Crew deleted."));
        }
        Err(e) => e.outcome(),
    };
    back_to_page(&outcome);
    Ok(outcome)
}

#[component]
pub fn CrewPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let save = ServerAction::<SaveCrew>::new();
    let run = ServerAction::<RunCrew>::new();
    let delete = ServerAction::<DeleteCrew>::new();
    // Read again after a successful save only: a refused one keeps what the user typed
    // (added rows included) on the page, next to the errors.
    let saved = Memo::new(move |count: Option<&u32>| {
        let count = count.copied().unwrap_or(0);
        match save.value().get() {
            Some(Ok(o)) if o.ok => count + 1,
            _ => count,
        }
    });
    let data = Resource::new(move || (id(), saved.get()), |(id, _)| load_crew(id));
    let failed = error_from_query();
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => view! { <CrewView data=d save run delete failed/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn CrewView(
    data: CrewData,
    save: ServerAction<SaveCrew>,
    run: ServerAction<RunCrew>,
    delete: ServerAction<DeleteCrew>,
    failed: Signal<Option<Outcome>>,
) -> impl IntoView {
    let CrewData {
        me,
        crew,
        agents,
        runs,
    } = data;
    let edit = me.can_edit_agents();
    let subtitle = format!(
        "{} crew · {} member(s) · version {}",
        if crew.process == "hierarchical" {
            "Hierarchical"
        } else {
            "Sequential"
        },
        crew.members.len(),
        crew.version
    );
    let run_section = me.can_run().then(|| run_form(run, crew.id.clone()));
    let members_named = crew
        .members
        .iter()
        .map(|m| agent_name(&agents, m))
        .collect::<Vec<_>>()
        .join(", ");
    let delete_section = edit.then(|| delete_form(delete, crew.id.clone()));
    view! {
        <PageHeader title=crew.name.clone() subtitle=subtitle>
            <a class="button" href="/dashboard/crews">
                "All crews"
            </a>
        </PageHeader>
        <div class="grid two wide-left">
            <section class="card" aria-labelledby="crew-h">
                <h2 id="crew-h">"Crew"</h2>
                <p class="muted small">{members_named}</p>
                <CrewEditor crew=crew.clone() agents=agents.clone() edit save failed/>
            </section>
            <div>
                {run_section}
                <section class="card" aria-labelledby="runs-h">
                    <h2 id="runs-h">"Recent runs"</h2>
                    {runs_list(runs)}
                </section>
            </div>
        </div>
        {delete_section}
    }
}

/// Starts a run of the crew (the server function then opens the run's page).
fn run_form(run: ServerAction<RunCrew>, crew_id: String) -> impl IntoView {
    let run_outcome = Signal::derive(move || run.value().get());
    view! {
        <section class="card" aria-labelledby="run-h">
            <h2 id="run-h">"Run this crew"</h2>
            <ActionForm action=run>
                <CsrfField/>
                <input type="hidden" name="crew" value=crew_id/>
                <div class="field">
                    <label for="run-input">"What should the crew work on?"</label>
                    <textarea
                        id="run-input"
                        name="input"
                        rows="3"
                        required
                        placeholder="e.g. Launch the spring sale"
                    ></textarea>
                </div>
                <div class="run-outcome">
                    <OutcomeNote outcome=run_outcome/>
                </div>
                <button
                    id="run-crew"
                    type="submit"
                    class="primary"
                    disabled=move || run.pending().get()
                >
                    "Run crew"
                </button>
            </ActionForm>
        </section>
    }
}

/// The crew's latest runs, each linking to its page.
fn runs_list(runs: Vec<Task>) -> AnyView {
    if runs.is_empty() {
        return view! { <p class="muted">"No runs yet."</p> }.into_any();
    }
    view! {
        <ol class="plain runs">
            {runs
                .into_iter()
                .map(|t| {
                    let input: String = t.input_text().chars().take(90).collect();
                    view! {
                        <li class="run" data-run=t.task_id.clone()>
                            <a href=format!("/dashboard/tasks/{}", t.task_id)>{input}</a>
                            <span class="run-meta">
                                <Badge status=t.status.clone()/>
                                <span class="muted small">{short_time(&t.created_at)}</span>
                            </span>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
    .into_any()
}

/// Deletes the crew, once the user ticked that they mean it.
fn delete_form(delete: ServerAction<DeleteCrew>, id: String) -> impl IntoView {
    let delete_outcome = Signal::derive(move || delete.value().get());
    view! {
        <section class="card narrow" aria-labelledby="delete-h">
            <h2 id="delete-h">"Delete this crew"</h2>
            <p class="muted small">"Its past runs stay listed among the tasks."</p>
            <ActionForm action=delete>
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <p class="remove-task">
                    <input type="checkbox" id="confirm-delete" name="confirm" required/>
                    <label for="confirm-delete">"Yes, delete this crew"</label>
                </p>
                <OutcomeNote outcome=delete_outcome/>
                <button id="delete-crew" type="submit" class="danger">
                    "Delete crew"
                </button>
            </ActionForm>
        </section>
    }
}
