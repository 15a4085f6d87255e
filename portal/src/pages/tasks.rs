//! `/dashboard/tasks`: durable tasks with their steps; a call waiting for a person gets
//! Approve / Reject buttons (owners and admins).

use brain_types::status::TaskStatus;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, LoadError, OutcomeNote, PageHeader, short_time};
use crate::model::{Me, Outcome, Step, Task};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TasksData {
    pub me: Me,
    pub tasks: Vec<Task>,
    pub agents: Vec<(String, String)>,
}

#[server]
pub async fn load_tasks(status: String) -> Result<TasksData, ServerFnError> {
    use crate::api::{encode, get, get_list};
    let query = if TaskStatus::parse(&status).is_some() {
        format!("?limit=25&status={}", encode(&status))
    } else {
        "?limit=25".to_owned()
    };
    let listed: Vec<Task> = get_list(&format!("/v1/tasks{query}"), "tasks").await?;
    // Listings carry no steps; each task's page does.
    let paths: Vec<String> = listed
        .iter()
        .map(|t| format!("/v1/tasks/{}", encode(&t.task_id)))
        .collect();
    let detailed = futures::future::join_all(paths.iter().map(|p| get::<Task>(p))).await;
    let tasks = listed
        .into_iter()
        .zip(detailed)
        .map(|(t, d)| d.unwrap_or(t))
        .collect();
    let agents: Vec<crate::model::Agent> = get_list("/v1/agents", "agents").await?;
    Ok(TasksData {
        me: crate::api::me(),
        tasks,
        agents: agents.into_iter().map(|a| (a.id, a.name)).collect(),
    })
}

#[server(endpoint = "tasks/decide")]
pub async fn decide(
    csrf: String,
    task: String,
    call_id: String,
    decision: String,
    #[server(default)] note: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let mut body = serde_json::json!({ "decision": decision });
    if !note.trim().is_empty() {
        body["note"] = serde_json::json!(note.trim());
    }
    let path = format!("/v1/tasks/{}/approvals/{}", encode(&task), encode(&call_id));
    Ok(
        match call(Service::Gateway, reqwest::Method::POST, &path, Some(body)).await {
            Ok(_) if decision == "approve" => Outcome::ok("Approved; the task goes on."),
            Ok(_) => Outcome::ok("Rejected; the call will not run."),
            Err(e) => e.outcome(),
        },
    )
}

#[server(endpoint = "tasks/cancel")]
pub async fn cancel_task(csrf: String, task: String) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let path = format!("/v1/tasks/{}/cancel", encode(&task));
    Ok(
        match call(Service::Gateway, reqwest::Method::POST, &path, None).await {
            Ok(_) => Outcome::ok("Cancelling."),
            Err(e) => e.outcome(),
        },
    )
}

#[server(endpoint = "tasks/start")]
pub async fn start_task(
    csrf: String,
    agent: String,
    input: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let path = format!("/v1/agents/{}/tasks", encode(&agent));
    let body = serde_json::json!({ "input": input });
    Ok(
        match call(Service::Gateway, reqwest::Method::POST, &path, Some(body)).await {
            Ok(_) => Outcome::ok("Task started."),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub fn TasksPage() -> impl IntoView {
    let query = use_query_map();
    let status = move || query.read().get("status").unwrap_or_default();
    let decide = ServerAction::<Decide>::new();
    let cancel = ServerAction::<CancelTask>::new();
    let start = ServerAction::<StartTask>::new();
    let data = Resource::new(
        move || {
            (
                status(),
                decide.version().get(),
                cancel.version().get(),
                start.version().get(),
            )
        },
        |(s, ..)| load_tasks(s),
    );
    let start_outcome = Signal::derive(move || start.value().get());
    let cancel_outcome = Signal::derive(move || cancel.value().get());
    view! {
        <PageHeader title="Tasks".to_owned() subtitle="Durable work: it survives restarts and waits for approvals"/>
        <form method="get" class="filters" aria-label="Filter tasks">
            <label for="status-filter">"Status"</label>
            <select id="status-filter" name="status">
                <option value="">"any"</option>
                {TaskStatus::ALL
                    .iter()
                    .map(|s| {
                        let s = s.as_str();
                        let selected = move || status() == s;
                        view! { <option value=s selected=selected>{s.replace('_', " ")}</option> }
                    })
                    .collect_view()}
            </select>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let d = match data.await {
                    Err(e) => return view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => d,
                };
                let approve = d.me.can_approve();
                let invoke = d.me.can_chat();
                let agents = d.agents.clone();
                view! {
                    <div class="decision-outcome">
                        <OutcomeNote outcome=Signal::derive(move || decide.value().get())/>
                    </div>
                    <OutcomeNote outcome=cancel_outcome/>
                    {d.tasks.is_empty().then(|| view! { <p class="muted">"No tasks."</p> })}
                    <ol class="plain tasks">
                        {d.tasks
                            .into_iter()
                            .map(|t| {
                                let by = agent_name(&t, &agents);
                                task_card(t, by, approve, invoke, decide, cancel)
                            })
                            .collect_view()}
                    </ol>
                    {invoke.then(|| start_form(start, d.agents, start_outcome))}
                }
                    .into_any()
            })}
        </Transition>
    }
}

/// Who ran a task: its agent's name, else `crew` or `rule`.
fn agent_name(t: &Task, agents: &[(String, String)]) -> String {
    t.agent_id
        .as_ref()
        .and_then(|id| agents.iter().find(|(a, _)| a == id).map(|(_, n)| n.clone()))
        .unwrap_or_else(|| if t.kind == "crew" { "crew" } else { "rule" }.to_owned())
}

/// One task of the list: what it was asked, by whom, how it went, its steps, and Cancel
/// while it still runs.
fn task_card(
    t: Task,
    agent_name: String,
    approve: bool,
    invoke: bool,
    decide: ServerAction<Decide>,
    cancel: ServerAction<CancelTask>,
) -> impl IntoView {
    let waiting = t.status == "awaiting_approval";
    let active = TaskStatus::parse(&t.status).is_some_and(|s| !s.is_final());
    let cancel_id = t.task_id.clone();
    let steps = t
        .steps
        .iter()
        .map(|s| step_item(s, &t.task_id, approve && waiting, decide))
        .collect_view();
    let output = t
        .output
        .as_ref()
        .and_then(|o| o.get("reply").and_then(|r| r.as_str()).map(str::to_owned));
    view! {
        <li class="card task" data-task=t.task_id.clone()>
            <header class="widget-head">
                <h2 class="task-title">
                    <a href=format!("/dashboard/tasks/{}", t.task_id)>
                        {t.input_text().chars().take(120).collect::<String>()}
                    </a>
                </h2>
                <span class="task-status"><Badge status=t.status.clone()/></span>
            </header>
            <p class="muted small">
                {format!("{} · {} · {}", agent_name, t.kind, short_time(&t.created_at))}
            </p>
            {output.map(|o| view! { <p class="task-output">{o}</p> })}
            {t.error.clone().map(|e| view! { <p class="note error">{e}</p> })}
            <ol class="steps plain">{steps}</ol>
            {(invoke && active)
                .then(|| view! {
                    <ActionForm action=cancel>
                        <CsrfField/>
                        <input type="hidden" name="task" value=cancel_id/>
                        <button type="submit" class="link danger">"Cancel task"</button>
                    </ActionForm>
                })}
        </li>
    }
}

/// One step of a task; `decidable` when the task waits for a person and the user may
/// approve, which gives a waiting approval step its Approve / Reject form.
fn step_item(
    s: &Step,
    task_id: &str,
    decidable: bool,
    decide: ServerAction<Decide>,
) -> impl IntoView + use<> {
    let what = match (&s.connector, &s.action) {
        (Some(c), Some(a)) => format!("{c}.{a}"),
        _ => s.kind.clone(),
    };
    let args = s.detail.get("args").map(|a| a.to_string());
    let decision = (decidable && s.kind == "approval" && s.status == "awaiting_approval")
        .then(|| s.call_id.clone())
        .flatten()
        .map(|call_id| {
            let note_id = format!("note-{}-{}", task_id, call_id);
            decision_form(decide, task_id.to_owned(), call_id, note_id)
        });
    view! {
        <li class="step">
            <span class="step-kind">{s.kind.clone()}</span>
            " "
            {(what != s.kind).then(|| view! { <code>{what.clone()}</code> })}
            " "
            <Badge status=s.status.clone()/>
            {args.map(|a| view! { <pre class="small">{a}</pre> })}
            {s.error.clone().map(|e| view! { <p class="note error">{e}</p> })}
            {decision}
        </li>
    }
}

/// Approve / Reject, with an optional note, for one call waiting for a person (here and on
/// the task's own page, which names the note field differently).
pub(crate) fn decision_form(
    decide: ServerAction<Decide>,
    task_id: String,
    call_id: String,
    note_id: String,
) -> impl IntoView {
    view! {
        <ActionForm action=decide>
            <CsrfField/>
            <input type="hidden" name="task" value=task_id/>
            <input type="hidden" name="call_id" value=call_id/>
            <div class="field inline">
                <label for=note_id.clone()>"Note"</label>
                <input id=note_id name="note" placeholder="optional"/>
            </div>
            <div class="button-row">
                <button type="submit" name="decision" value="approve" class="primary approve">"Approve"</button>
                <button type="submit" name="decision" value="reject" class="danger reject">"Reject"</button>
            </div>
        </ActionForm>
    }
}

/// Starts a task of one of the tenant's agents.
fn start_form(
    start: ServerAction<StartTask>,
    agents: Vec<(String, String)>,
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
) -> impl IntoView {
    view! {
        <section class="card narrow" aria-labelledby="start-h">
            <h2 id="start-h">"Start a task"</h2>
            <ActionForm action=start>
                <CsrfField/>
                <div class="field">
                    <label for="task-agent">"Agent"</label>
                    <select id="task-agent" name="agent">
                        {agents.iter().map(|(id, name)| view! { <option value=id.clone()>{name.clone()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="task-input">"What should it do?"</label>
                    <textarea id="task-input" name="input" rows="2" required></textarea>
                </div>
                <OutcomeNote outcome=outcome/>
                <button type="submit" class="primary">"Start task"</button>
            </ActionForm>
        </section>
    }
}
