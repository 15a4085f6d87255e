//! `/dashboard/tasks/{id}`: one task followed live — an agent task with its steps, or a crew
//! run with each member's turn, its output and a link to the member's own task. Once
//! hydrated the page follows the task's run events (the portal relays the gateway's
//! `/v1/tasks/{id}/events` stream, so the token stays in its HttpOnly cookie); without
//! JavaScript it reloads itself every few seconds until the task ends.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, LoadError, OutcomeNote, PageHeader, short_time};
use crate::model::{LiveRun, Me, Step, Task};
use crate::pages::tasks::{CancelTask, Decide, decision_form};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskData {
    pub me: Me,
    pub task: Task,
    /// `(id, name)` of the tenant's agents.
    pub agents: Vec<(String, String)>,
    /// `(id, name)` of the crew a crew run belongs to, while it exists.
    pub crew: Option<(String, String)>,
}

#[server]
pub async fn load_task(id: String) -> Result<TaskData, ServerFnError> {
    use crate::api::{encode, get, get_list};
    let task: Task = get(&format!("/v1/tasks/{}", encode(&id))).await?;
    let agents: Vec<crate::model::Agent> = get_list("/v1/agents", "agents").await?;
    let crew = match &task.crew_id {
        Some(crew) => get::<crate::model::Crew>(&format!("/v1/crews/{}", encode(crew)))
            .await
            .ok()
            .map(|c| (c.id, c.name)),
        None => None,
    };
    Ok(TaskData {
        me: crate::api::me(),
        task,
        agents: agents.into_iter().map(|a| (a.id, a.name)).collect(),
        crew,
    })
}

#[component]
pub fn TaskPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let decide = ServerAction::<Decide>::new();
    let cancel = ServerAction::<CancelTask>::new();
    let data = Resource::new(
        move || (id(), decide.version().get(), cancel.version().get()),
        |(id, ..)| load_task(id),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => view! { <TaskView data=d decide cancel/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TaskView(
    data: TaskData,
    decide: ServerAction<Decide>,
    cancel: ServerAction<CancelTask>,
) -> impl IntoView {
    let TaskData {
        me,
        task,
        agents,
        crew,
    } = data;
    let title = run_title(&task, crew.as_ref(), &agents);
    let subtitle = format!(
        "{} task · started {}",
        task.kind,
        short_time(&task.created_at)
    );
    let back = back_link(crew.as_ref());
    let part_of = task.parent_task_id.clone().map(|parent| {
        view! {
            <p class="muted small">
                "A step of "
                <a class="parent-run" href=format!("/dashboard/tasks/{parent}")>
                    "a larger run"
                </a>
                "."
            </p>
        }
    });
    let ended_at_load = task.is_final();
    let task_id = task.task_id.clone();
    let input = task.input_text();
    let live = RwSignal::new(LiveRun::new(task));
    follow(task_id.clone(), ended_at_load, live);
    let approve = me.can_approve();
    let invoke = me.can_run();
    let cancel_outcome = Signal::derive(move || cancel.value().get());
    let decide_outcome = Signal::derive(move || decide.value().get());
    let status = move || live.with(|l| l.task.status.clone());
    view! {
        <PageHeader title=title subtitle=subtitle>
            {back}
        </PageHeader>
        // Without JavaScript, the page looks again every few seconds until the task ends.
        {(!ended_at_load)
            .then(|| view! { <noscript inner_html=r#"<meta http-equiv="refresh" content="3">"#></noscript> })}
        <section class="card run" aria-labelledby="run-h">
            <header class="widget-head">
                <h2 id="run-h">"Progress"</h2>
                <p class="run-status" data-status=status role="status" aria-live="polite">
                    {move || view! { <Badge status=status()/> }}
                </p>
            </header>
            <p class="task-input">{input}</p>
            {part_of}
            {waiting_member(live)}
            <div class="decision-outcome">
                <OutcomeNote outcome=decide_outcome/>
            </div>
            {run_steps(live, approve, decide)}
            <OutcomeNote outcome=cancel_outcome/>
            {cancel_form(live, invoke, cancel, task_id)}
        </section>
        {run_result(live)}
    }
}

/// The page's title: whose run it is.
fn run_title(task: &Task, crew: Option<&(String, String)>, agents: &[(String, String)]) -> String {
    match (task.kind.as_str(), crew, &task.agent_id) {
        ("crew", Some((_, name)), _) => format!("Run of {name}"),
        ("crew", None, _) => "Crew run".to_owned(),
        (_, _, Some(agent)) => format!(
            "Task of {}",
            agents
                .iter()
                .find(|(a, _)| a == agent)
                .map_or_else(|| "an agent".to_owned(), |(_, n)| n.clone())
        ),
        _ => "Rule run".to_owned(),
    }
}

/// Back to the crew a run belongs to, else to all tasks.
fn back_link(crew: Option<&(String, String)>) -> AnyView {
    match crew {
        Some((id, name)) => view! {
            <a class="button" href=format!("/dashboard/crews/{id}")>
                {format!("Back to {name}")}
            </a>
        }
        .into_any(),
        None => view! {
            <a class="button" href="/dashboard/tasks">
                "All tasks"
            </a>
        }
        .into_any(),
    }
}

/// Cancel, while the run is still going and the user may run tasks.
fn cancel_form(
    live: RwSignal<LiveRun>,
    invoke: bool,
    cancel: ServerAction<CancelTask>,
    task_id: String,
) -> impl IntoView {
    move || {
        let active = live.with(|l| !l.task.is_final());
        (invoke && active).then(|| {
            let task_id = task_id.clone();
            view! {
                <ActionForm action=cancel>
                    <CsrfField/>
                    <input type="hidden" name="task" value=task_id/>
                    <button type="submit" class="link danger">
                        "Cancel this run"
                    </button>
                </ActionForm>
            }
        })
    }
}

/// The run's steps as they come: the members' turns of a crew run, else the task's steps.
fn run_steps(
    live: RwSignal<LiveRun>,
    approve: bool,
    decide: ServerAction<Decide>,
) -> impl IntoView {
    move || {
        let LiveRun { task, members } = live.get();
        if task.kind == "crew" {
            let turns = task
                .steps
                .iter()
                .filter(|s| s.kind == "agent_task")
                .map(|s| member_turn(s, &members))
                .collect_view();
            view! {
                <ol class="plain crew-steps" aria-label="Member turns">
                    {turns}
                </ol>
            }
            .into_any()
        } else {
            let waiting = task.status == "awaiting_approval";
            let rows = task
                .steps
                .iter()
                .map(|s| step_row(&task.task_id, s, approve && waiting, decide))
                .collect_view();
            view! { <ol class="steps plain">{rows}</ol> }.into_any()
        }
    }
}

/// The run's answer and error, once there are any.
fn run_result(live: RwSignal<LiveRun>) -> impl IntoView {
    move || {
        live.with(|l| {
            let reply = l.task.reply();
            let error = l.task.error.clone();
            view! {
                {reply
                    .map(|r| {
                        view! {
                            <section class="card" aria-labelledby="result-h">
                                <h2 id="result-h">"Result"</h2>
                                <p class="task-output" id="run-output">
                                    {r}
                                </p>
                            </section>
                        }
                    })}
                {error.map(|e| view! { <p class="note error">{e}</p> })}
            }
        })
    }
}

/// A crew run waiting for a person: the approval is made on the member's own task.
fn waiting_member(live: RwSignal<LiveRun>) -> impl IntoView {
    move || {
        live.with(|l| l.task.kind == "crew" && l.task.status == "awaiting_approval")
            .then(|| {
                view! {
                    <p class="note">
                        "A member's tool call waits for a person: open the member's task to approve or reject it."
                    </p>
                }
            })
    }
}

/// A crew member's turn: who, which task, how it went, what they answered, and a link to
/// their own task (with its model and tool steps).
fn member_turn(
    step: &Step,
    members: &std::collections::BTreeMap<String, crate::model::MemberProgress>,
) -> impl IntoView + use<> {
    let text = |key: &str| {
        step.detail
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let agent = text("agent").unwrap_or_else(|| "A member".to_owned());
    let child = text("task_id");
    let activity = child
        .as_ref()
        .and_then(|c| members.get(c))
        .and_then(|m| m.activity.clone())
        .filter(|_| step.status == "running");
    let output = text("output");
    view! {
        <li class="crew-step" data-seq=step.seq.to_string() data-status=step.status.clone()>
            <header class="widget-head">
                <h3>
                    {format!("{}. {agent}", step.seq + 1)}
                </h3>
                <Badge status=step.status.clone()/>
            </header>
            {text("crew_task").map(|t| view! { <p class="muted small">{t}</p> })}
            {activity.map(|a| view! { <p class="activity muted small">{format!("Working: {a}")}</p> })}
            {output.map(|o| view! { <p class="step-output">{o}</p> })}
            {step.error.clone().map(|e| view! { <p class="note error">{e}</p> })}
            {child
                .map(|c| {
                    view! {
                        <p class="small">
                            <a class="member-task" href=format!("/dashboard/tasks/{c}")>
                                {format!("{agent}'s task")}
                            </a>
                        </p>
                    }
                })}
        </li>
    }
}

/// A step of an agent or rule task; a call waiting for a person gets Approve / Reject.
fn step_row(
    task_id: &str,
    step: &Step,
    may_decide: bool,
    decide: ServerAction<Decide>,
) -> impl IntoView + use<> {
    let what = match (&step.connector, &step.action) {
        (Some(c), Some(a)) => format!("{c}.{a}"),
        _ => step.kind.clone(),
    };
    let args = step.detail.get("args").map(|a| a.to_string());
    let output = step
        .detail
        .get("output")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let child = step
        .detail
        .get("task_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let decision = (may_decide && step.kind == "approval" && step.status == "awaiting_approval")
        .then(|| step.call_id.clone())
        .flatten()
        .map(|call_id| {
            let note_id = format!("note-{call_id}");
            decision_form(decide, task_id.to_owned(), call_id, note_id)
        });
    view! {
        <li class="step" data-status=step.status.clone()>
            <span class="step-kind">{step.kind.clone()}</span>
            " "
            {(what != step.kind).then(|| view! { <code>{what.clone()}</code> })}
            " "
            <Badge status=step.status.clone()/>
            {args.map(|a| view! { <pre class="small">{a}</pre> })}
            {output.map(|o| view! { <p class="step-output">{o}</p> })}
            {child.map(|c| view! { <a class="small" href=format!("/dashboard/tasks/{c}")>"Its task"</a> })}
            {step.error.clone().map(|e| view! { <p class="note error">{e}</p> })}
            {decision}
        </li>
    }
}

/// Follows the task's run events into `live` once the page is hydrated, until the task ends
/// (then reads it once more, for its output).
fn follow(task_id: String, ended: bool, live: RwSignal<LiveRun>) {
    #[cfg(feature = "hydrate")]
    {
        let source = StoredValue::new_local(None::<events::Watch>);
        Effect::new(move |_| {
            if ended {
                return;
            }
            let id = task_id.clone();
            let watch = events::watch(
                &format!("/dashboard/tasks/{}/events", task_id),
                move |event, data| {
                    let mut finished = false;
                    live.update(|l| finished = l.apply(event, &data));
                    if event == "error" && data.get("message").is_some() {
                        source.with_value(|w| w.as_ref().map(events::Watch::close));
                        live.update(|l| {
                            l.task.error = Some(
                                "Live updates stopped; reload the page to see the latest state."
                                    .to_owned(),
                            );
                        });
                    }
                    if finished {
                        // The stream is over: close it before the browser reconnects.
                        source.with_value(|w| w.as_ref().map(events::Watch::close));
                        let id = id.clone();
                        leptos::task::spawn_local(async move {
                            if let Ok(d) = load_task(id).await {
                                live.update(|l| l.task = d.task);
                            }
                        });
                    }
                },
            );
            source.set_value(watch);
        });
        on_cleanup(move || {
            source.try_update_value(|w| *w = None);
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (task_id, ended, live);
    }
}

#[cfg(feature = "hydrate")]
mod events {
    //! The browser side of a task's event stream: an `EventSource` on the portal's relay.

    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{Event, EventSource};

    /// An open stream; closed when dropped.
    pub struct Watch {
        source: EventSource,
        _handlers: Vec<Closure<dyn FnMut(Event)>>,
    }

    impl Watch {
        /// Stops the browser from reading (and reconnecting).
        pub fn close(&self) {
            self.source.close();
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            self.source.close();
        }
    }

    const EVENTS: [&str; 6] = ["snapshot", "step", "status", "child_done", "done", "error"];

    /// Opens `url` and calls `on(event, data)` for each named event as it arrives.
    pub fn watch(
        url: &str,
        on: impl Fn(&'static str, serde_json::Value) + Clone + 'static,
    ) -> Option<Watch> {
        let source = EventSource::new(url).ok()?;
        let mut handlers = Vec::new();
        for name in EVENTS {
            let on = on.clone();
            let handler = Closure::<dyn FnMut(Event)>::new(move |ev: Event| {
                // The browser's own `error` (a dropped connection) carries no data; it
                // reconnects by itself.
                let data = js_sys::Reflect::get(&ev, &"data".into())
                    .ok()
                    .and_then(|d| d.as_string())
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or(serde_json::Value::Null);
                on(name, data);
            });
            source
                .add_event_listener_with_callback(name, handler.as_ref().unchecked_ref())
                .ok()?;
            handlers.push(handler);
        }
        Some(Watch {
            source,
            _handlers: handlers,
        })
    }
}
