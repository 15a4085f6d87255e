//! `/dashboard/crews`: the tenant's crews — agents working together on a list of tasks —
//! and the crew editor this page (to create one) and each crew's page (to change it) share.
//!
//! The editor is plain form fields, so it works without JavaScript: members are checkboxes,
//! tasks are numbered rows (`task_description[r0]`, …) followed by a blank row that becomes
//! a task when filled in, and each saved task has a "Remove" box. Once hydrated, "Add a task"
//! adds further blank rows in place.

// A server function takes one argument per form field.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};
#[cfg(any(feature = "ssr", test))]
use serde_json::{Value, json};

use crate::app::{CsrfField, FieldError, LoadError, OutcomeNote, PageHeader};
use crate::model::{Agent, Crew, CrewTask, Me, Outcome};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CrewsData {
    pub me: Me,
    pub crews: Vec<Crew>,
    pub agents: Vec<Agent>,
}

#[server]
pub async fn load_crews() -> Result<CrewsData, ServerFnError> {
    use crate::api::get_list;
    Ok(CrewsData {
        me: crate::api::me(),
        crews: get_list("/v1/crews", "crews").await?,
        agents: get_list("/v1/agents", "agents").await?,
    })
}

#[cfg(any(feature = "ssr", test))]
/// The crew form as posted. Keys carry the position on the page (`m3`, `r0`), so members
/// keep their order and errors find their row.
#[derive(Clone, Debug, Default)]
pub struct CrewForm {
    pub name: String,
    pub process: String,
    pub manager: String,
    pub members: HashMap<String, String>,
    pub descriptions: HashMap<String, String>,
    pub expected: HashMap<String, String>,
    pub agents: HashMap<String, String>,
    pub remove: HashMap<String, String>,
}

#[cfg(any(feature = "ssr", test))]
/// `(position, value)` of the keys `{prefix}{n}`, by position.
fn ordered(map: &HashMap<String, String>, prefix: char) -> Vec<(usize, &str)> {
    let mut found: Vec<(usize, &str)> = map
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix(prefix)?.parse::<usize>().ok()?;
            Some((n, v.as_str()))
        })
        .collect();
    found.sort_unstable();
    found
}

#[cfg(any(feature = "ssr", test))]
impl CrewForm {
    /// The API body, and for each task in it the form row it came from. Removed rows and
    /// rows left blank are not tasks.
    pub fn body(&self) -> (Value, Vec<usize>) {
        let members: Vec<&str> = ordered(&self.members, 'm')
            .into_iter()
            .map(|(_, id)| id.trim())
            .filter(|id| !id.is_empty())
            .collect();
        let mut rows: Vec<usize> = [&self.descriptions, &self.expected, &self.agents]
            .into_iter()
            .flat_map(|m| ordered(m, 'r').into_iter().map(|(n, _)| n))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let text = |map: &HashMap<String, String>, row: usize| {
            map.get(&format!("r{row}"))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let mut tasks = Vec::new();
        let mut origin = Vec::new();
        for row in rows {
            let (description, expected) =
                (text(&self.descriptions, row), text(&self.expected, row));
            if self.remove.contains_key(&format!("r{row}"))
                || (description.is_empty() && expected.is_empty())
            {
                continue;
            }
            let mut task = json!({"description": description, "expected_output": expected});
            let agent = text(&self.agents, row);
            if !agent.is_empty() {
                task["agent_id"] = json!(agent);
            }
            tasks.push(task);
            origin.push(row);
        }
        let hierarchical = self.process == "hierarchical";
        let manager = self.manager.trim();
        let body = json!({
            "name": self.name.trim(),
            "members": members,
            "process": if hierarchical { "hierarchical" } else { "sequential" },
            // Only a hierarchical crew has a manager; a left-over choice is not an error.
            "manager_agent_id": (hierarchical && !manager.is_empty()).then_some(manager),
            "tasks": tasks,
        });
        (body, origin)
    }
}

#[cfg(any(feature = "ssr", test))]
/// Points an API error at the form field it concerns: `tasks.N.…` names the N-th task
/// sent, which is row `origin[N]` of the form; `members.N` is the members box.
pub fn locate_error(outcome: Outcome, origin: &[usize]) -> Outcome {
    let Some(field) = outcome.field.clone() else {
        return outcome;
    };
    let mut parts = field.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("tasks"), Some(n), Some(rest)) => {
            let Some(row) = n.parse::<usize>().ok().and_then(|n| origin.get(n)) else {
                return outcome;
            };
            let located = format!("tasks.{row}.{rest}");
            let message = outcome
                .message
                .strip_prefix(&field)
                .map_or_else(|| outcome.message.clone(), |m| format!("{located}{m}"));
            Outcome {
                field: Some(located),
                message,
                ..outcome
            }
        }
        (Some("members"), Some(_), None) => Outcome {
            field: Some("members".to_owned()),
            ..outcome
        },
        _ => outcome,
    }
}

/// Creates a crew (no `id`) or saves one (`If-Match` its version); a new crew's page opens.
#[server(endpoint = "crews/save")]
pub async fn save_crew(
    csrf: String,
    #[server(default)] id: String,
    #[server(default)] version: String,
    name: String,
    process: String,
    #[server(default)] manager: String,
    #[server(default)] members: HashMap<String, String>,
    #[server(default)] task_description: HashMap<String, String>,
    #[server(default)] task_expected: HashMap<String, String>,
    #[server(default)] task_agent: HashMap<String, String>,
    #[server(default)] task_remove: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{ApiFailure, Service, back_to_page, call_with, check_csrf, encode};
    check_csrf(&csrf)?;
    let form = CrewForm {
        name,
        process,
        manager,
        members,
        descriptions: task_description,
        expected: task_expected,
        agents: task_agent,
        remove: task_remove,
    };
    let (body, origin) = form.body();
    let creating = id.trim().is_empty();
    let answer = if creating {
        call_with(
            Service::Gateway,
            reqwest::Method::POST,
            "/v1/crews",
            Some(body),
            &[],
        )
        .await
    } else {
        call_with(
            Service::Gateway,
            reqwest::Method::PATCH,
            &format!("/v1/crews/{}", encode(&id)),
            Some(body),
            &[("if-match", version)],
        )
        .await
    };
    let outcome = match answer {
        Ok(crew) if creating => {
            leptos_axum::redirect(&format!(
                "/dashboard/crews/{}",
                encode(crew["id"].as_str().unwrap_or_default())
            ));
            return Ok(Outcome::ok("Crew created."));
        }
        Ok(crew) => Outcome::ok(format!("Saved (version {}).", crew["version"])),
        Err(ApiFailure { code, message, .. }) if code == "name_taken" => Outcome {
            ok: false,
            message: format!("name: {message}"),
            field: Some("name".to_owned()),
            secret: None,
        },
        Err(e) => locate_error(e.outcome(), &origin),
    };
    back_to_page(&outcome);
    Ok(outcome)
}

/// An agent's name, from its id.
pub fn agent_name(agents: &[Agent], id: &str) -> String {
    agents
        .iter()
        .find(|a| a.id == id)
        .map_or_else(|| "a removed agent".to_owned(), |a| a.name.clone())
}

/// The form's error as the page received it without JavaScript (`?error=`).
pub fn error_from_query() -> Signal<Option<Outcome>> {
    let query = use_query_map();
    Signal::derive(move || query.read().get("error").map(Outcome::error))
}

#[component]
pub fn CrewsPage() -> impl IntoView {
    let save = ServerAction::<SaveCrew>::new();
    // A created crew opens its own page; a refused one stays in the form, as typed.
    let data = Resource::new(|| (), |_| load_crews());
    let failed = error_from_query();
    view! {
        <PageHeader
            title="Crews".to_owned()
            subtitle="Agents working together on a list of tasks, in order or under a manager"
        >
            <a class="button" href="/dashboard/agents">"Agents"</a>
        </PageHeader>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(CrewsData { me, crews, agents }) => {
                        let cards = crews
                            .into_iter()
                            .map(|c| crew_card(c, &agents))
                            .collect_view();
                        view! {
                            {if cards.is_empty() {
                                view! { <p class="muted">"No crews yet."</p> }.into_any()
                            } else {
                                view! { <div class="grid cards crews">{cards}</div> }.into_any()
                            }}
                            {me
                                .can_edit_agents()
                                .then(|| {
                                    view! {
                                        <section class="card narrow-wide" aria-labelledby="new-crew-h">
                                            <h2 id="new-crew-h">"New crew"</h2>
                                            <CrewEditor
                                                crew=Crew {
                                                    process: "sequential".to_owned(),
                                                    ..Crew::default()
                                                }
                                                agents=agents.clone()
                                                edit=true
                                                save
                                                failed
                                            />
                                        </section>
                                    }
                                })}
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

fn crew_card(crew: Crew, agents: &[Agent]) -> impl IntoView + use<> {
    let href = format!("/dashboard/crews/{}", crew.id);
    let members = crew
        .members
        .iter()
        .map(|m| view! { <li class="chip">{agent_name(agents, m)}</li> })
        .collect_view();
    let manager = crew
        .manager_agent_id
        .as_ref()
        .map(|m| format!("managed by {}", agent_name(agents, m)));
    let tasks = crew.tasks.len();
    let summary = match manager {
        Some(m) => format!("{tasks} task(s), {m}"),
        None => format!("{tasks} task(s)"),
    };
    view! {
        <article class="card crew-card" data-crew=crew.id.clone()>
            <header class="widget-head">
                <h2>
                    <a href=href.clone()>{crew.name.clone()}</a>
                </h2>
                <span class="badge process">{crew.process.clone()}</span>
            </header>
            <p class="muted small">{summary}</p>
            <ul class="plain chips" aria-label="Members">
                {members}
            </ul>
            <p class="card-actions">
                <a class="button" href=href>
                    "Open"
                </a>
            </p>
        </article>
    }
}

/// The error of a field whose name is only known at run time (a task row's).
#[component]
fn RowError(
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
    field: String,
) -> impl IntoView {
    let id = format!("{}-error", field.replace('.', "-"));
    view! {
        <p class="field-error" id=id role="alert">
            {move || outcome.get().and_then(|o| o.ok()).and_then(|o| o.error_for(&field))}
        </p>
    }
}

/// One task row of the editor; `task` is `None` for a blank row.
#[component]
fn TaskRow(
    index: usize,
    task: Option<CrewTask>,
    agents: Vec<Agent>,
    edit: bool,
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
) -> impl IntoView {
    let saved = task.is_some();
    let task = task.unwrap_or_default();
    let key = format!("r{index}");
    let (description_id, expected_id, agent_id, remove_id) = (
        format!("task-{index}-description"),
        format!("task-{index}-expected_output"),
        format!("task-{index}-agent"),
        format!("task-{index}-remove"),
    );
    let assigned = task.agent_id.clone().unwrap_or_default();
    let options = agents
        .into_iter()
        .map(|a| {
            let selected = a.id == assigned;
            view! {
                <option value=a.id.clone() selected=selected>
                    {a.name.clone()}
                </option>
            }
        })
        .collect_view();
    let legend = if saved {
        format!("Task {}", index + 1)
    } else {
        "New task".to_owned()
    };
    view! {
        <li class="crew-task" data-row=index data-saved=saved.to_string()>
            <fieldset>
                <legend>{legend}</legend>
                <div class="field">
                    <label for=description_id.clone()>"What to do"</label>
                    <textarea
                        id=description_id
                        name=format!("task_description[{key}]")
                        rows="2"
                        disabled=!edit
                        aria-describedby=format!("tasks-{index}-description-error")
                    >
                        {task.description.clone()}
                    </textarea>
                    <RowError outcome field=format!("tasks.{index}.description")/>
                </div>
                <div class="field">
                    <label for=expected_id.clone()>"Expected output"</label>
                    <input
                        id=expected_id
                        name=format!("task_expected[{key}]")
                        value=task.expected_output.clone()
                        disabled=!edit
                        aria-describedby=format!("tasks-{index}-expected_output-error")
                    />
                    <RowError outcome field=format!("tasks.{index}.expected_output")/>
                </div>
                <div class="task-row-foot">
                    <div class="field">
                        <label for=agent_id.clone()>"Done by"</label>
                        <select
                            id=agent_id
                            name=format!("task_agent[{key}]")
                            disabled=!edit
                            aria-describedby=format!("tasks-{index}-agent_id-error")
                        >
                            <option value="" selected=assigned.is_empty()>
                                "Any member, in turn"
                            </option>
                            {options}
                        </select>
                        <RowError outcome field=format!("tasks.{index}.agent_id")/>
                    </div>
                    {(edit && saved)
                        .then(|| {
                            view! {
                                <p class="remove-task">
                                    <input
                                        type="checkbox"
                                        id=remove_id.clone()
                                        name=format!("task_remove[{key}]")
                                    />
                                    <label for=remove_id>"Remove this task"</label>
                                </p>
                            }
                        })}
                </div>
            </fieldset>
        </li>
    }
}

/// The crew form: name, members, process, manager and tasks. For a new crew `crew.id` is
/// empty; `edit` is false for roles that may only look.
#[component]
pub fn CrewEditor(
    crew: Crew,
    agents: Vec<Agent>,
    edit: bool,
    save: ServerAction<SaveCrew>,
    /// An error the page was sent back with (a form posted without JavaScript).
    failed: Signal<Option<Outcome>>,
) -> impl IntoView {
    let outcome = Signal::derive(move || save.value().get().or_else(|| failed.get().map(Ok)));
    let creating = crew.id.is_empty();
    let prefix = if creating { "new-crew" } else { "crew" };
    // Blank rows after the saved ones: one without JavaScript, more with "Add a task".
    let (blank, set_blank) = signal(if edit { 1usize } else { 0 });
    let fields = crew_fields(&crew, &agents, prefix, edit, outcome, blank);
    if !edit {
        return view! {
            <form aria-label="Crew (read only)">
                {fields}
                <p class="muted">"Only owners and admins change a crew."</p>
            </form>
        }
        .into_any();
    }
    let submit_id = if creating { "create-crew" } else { "save-crew" };
    view! {
        <ActionForm action=save>
            <CsrfField/>
            {fields}
            <p class="js-only">
                <button
                    type="button"
                    id=format!("{prefix}-add-task")
                    class="add-task"
                    on:click=move |_| set_blank.update(|n| *n += 1)
                >
                    "Add a task"
                </button>
            </p>
            <div class="crew-outcome">
                <OutcomeNote outcome/>
            </div>
            <button id=submit_id type="submit" class="primary" disabled=move || save.pending().get()>
                {if creating { "Create crew" } else { "Save crew" }}
            </button>
        </ActionForm>
    }
    .into_any()
}

/// The editor's fields, the same in the form that saves and in the read-only one; `blank`
/// counts the blank task rows after the saved ones.
fn crew_fields(
    crew: &Crew,
    agents: &[Agent],
    prefix: &str,
    edit: bool,
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
    blank: ReadSignal<usize>,
) -> impl IntoView + use<> {
    let members = member_checks(crew, agents, prefix, edit);
    let process = process_fields(crew, agents, prefix, edit, outcome);
    let rows = crew
        .tasks
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, t)| {
            view! { <TaskRow index=i task=Some(t) agents=agents.to_vec() edit outcome/> }
        })
        .collect_view();
    let saved_rows = crew.tasks.len();
    let blank_agents = agents.to_vec();
    let blank_rows = move || {
        (saved_rows..saved_rows + blank.get())
            .map(|i| {
                view! { <TaskRow index=i task=None agents=blank_agents.clone() edit outcome/> }
            })
            .collect_view()
    };
    let name_id = format!("{prefix}-name");
    view! {
        <input type="hidden" name="id" value=crew.id.clone()/>
        <input type="hidden" name="version" value=crew.version.to_string()/>
        <div class="field">
            <label for=name_id.clone()>"Name"</label>
            <input
                id=name_id
                name="name"
                value=crew.name.clone()
                required
                disabled=!edit
                aria-describedby="name-error"
                placeholder="e.g. Launch crew"
            />
            <FieldError outcome field="name"/>
        </div>
        <fieldset class="members">
            <legend>"Members"</legend>
            <ul class="plain checks">{members}</ul>
            <FieldError outcome field="members"/>
        </fieldset>
        {process}
        <h3>"Tasks"</h3>
        <p class="hint">
            "A blank row is left out. Tasks without an agent go round the members in order."
        </p>
        <ol class="plain crew-tasks">{rows} {blank_rows}</ol>
        <FieldError outcome field="tasks"/>
    }
}

/// A checkbox per agent: the crew's members first, in the crew's order (a sequential crew
/// hands out tasks in it), then the other agents.
fn member_checks(crew: &Crew, agents: &[Agent], prefix: &str, edit: bool) -> impl IntoView + use<> {
    let mut listed: Vec<Agent> = crew
        .members
        .iter()
        .filter_map(|m| agents.iter().find(|a| &a.id == m).cloned())
        .collect();
    listed.extend(
        agents
            .iter()
            .filter(|a| !crew.members.contains(&a.id))
            .cloned(),
    );
    listed
        .iter()
        .enumerate()
        .map(|(pos, a)| {
            let input_id = format!("{prefix}-member-{}", a.id);
            let checked = crew.members.contains(&a.id);
            view! {
                <li>
                    <input
                        type="checkbox"
                        id=input_id.clone()
                        name=format!("members[m{pos}]")
                        value=a.id.clone()
                        checked=checked
                        disabled=!edit
                    />
                    <label for=input_id>
                        {a.name.clone()}
                        " "
                        <span class="muted small">{a.role.clone()}</span>
                    </label>
                </li>
            }
        })
        .collect_view()
}

/// The process menu and the manager menu, side by side.
fn process_fields(
    crew: &Crew,
    agents: &[Agent],
    prefix: &str,
    edit: bool,
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
) -> impl IntoView + use<> {
    let manager = crew.manager_agent_id.clone().unwrap_or_default();
    let managers = agents
        .iter()
        .map(|a| {
            let selected = a.id == manager;
            view! {
                <option value=a.id.clone() selected=selected>
                    {a.name.clone()}
                </option>
            }
        })
        .collect_view();
    let hierarchical = crew.process == "hierarchical";
    let (process_id, manager_id) = (format!("{prefix}-process"), format!("{prefix}-manager"));
    view! {
        <div class="field-row">
            <div class="field">
                <label for=process_id.clone()>"Process"</label>
                <select id=process_id name="process" disabled=!edit>
                    <option value="sequential" selected=!hierarchical>
                        "Sequential"
                    </option>
                    <option value="hierarchical" selected=hierarchical>
                        "Hierarchical"
                    </option>
                </select>
                <p class="hint">
                    "Sequential: the tasks in order, each seeing the earlier results. Hierarchical: a manager hands them out."
                </p>
            </div>
            <div class="field">
                <label for=manager_id.clone()>"Manager"</label>
                <select
                    id=manager_id
                    name="manager"
                    disabled=!edit
                    aria-describedby="manager_agent_id-error"
                >
                    <option value="" selected=manager.is_empty()>
                        "No manager"
                    </option>
                    {managers}
                </select>
                <p class="hint">"Only a hierarchical crew has one; it is not a member."</p>
                <FieldError outcome field="manager_agent_id"/>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_becomes_a_crew_and_errors_find_their_row() {
        let form = CrewForm {
            name: " Launch ".into(),
            process: "sequential".into(),
            manager: "m".into(),
            members: map(&[("m10", "b"), ("m2", "a")]),
            descriptions: map(&[
                ("r0", "Outline"),
                ("r1", "Gone"),
                ("r2", "Edit"),
                ("r3", ""),
            ]),
            expected: map(&[("r0", "An outline"), ("r1", "x"), ("r2", " "), ("r3", "")]),
            agents: map(&[("r0", "a"), ("r2", ""), ("r3", "")]),
            remove: map(&[("r1", "on")]),
        };
        let (body, origin) = form.body();
        assert_eq!(body["name"], "Launch");
        assert_eq!(body["members"], json!(["a", "b"]));
        assert_eq!(body["manager_agent_id"], Value::Null);
        assert_eq!(
            body["tasks"],
            json!([{"description": "Outline", "expected_output": "An outline", "agent_id": "a"},
                   {"description": "Edit", "expected_output": ""}])
        );
        assert_eq!(origin, [0, 2]);
        let located = locate_error(
            Outcome::error("tasks.1.expected_output: must not be blank"),
            &origin,
        );
        assert_eq!(located.field.as_deref(), Some("tasks.2.expected_output"));
        assert_eq!(
            located.message,
            "tasks.2.expected_output: must not be blank"
        );
        let members = locate_error(Outcome::error("members.1: appears twice"), &origin);
        assert_eq!(members.field.as_deref(), Some("members"));
    }

    #[test]
    fn only_a_hierarchical_crew_sends_its_manager() {
        let form = CrewForm {
            process: "hierarchical".into(),
            manager: "boss".into(),
            ..CrewForm::default()
        };
        assert_eq!(form.body().0["manager_agent_id"], "boss");
        assert_eq!(form.body().0["process"], "hierarchical");
    }
}
