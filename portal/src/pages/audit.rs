//! `/dashboard/audit`: the tenant's audit log, filterable by actor and action, newest first.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::app::{LoadError, PageHeader, short_time};
use crate::model::{AuditEvent, Me};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditData {
    pub me: Me,
    pub events: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

#[server]
pub async fn load_audit(
    actor: String,
    action: String,
    cursor: String,
) -> Result<AuditData, ServerFnError> {
    use crate::api::{Service, call, decode, encode};
    let me = crate::api::me();
    if !me.can_read_audit() {
        return Ok(AuditData {
            me,
            ..AuditData::default()
        });
    }
    let mut path = "/v1/audit?limit=50".to_owned();
    for (key, value) in [("actor", &actor), ("action", &action), ("cursor", &cursor)] {
        if !value.trim().is_empty() {
            path.push_str(&format!("&{key}={}", encode(value.trim())));
        }
    }
    let mut page = call(Service::Gateway, reqwest::Method::GET, &path, None).await?;
    Ok(AuditData {
        me,
        events: decode(page["events"].take())?,
        next_cursor: page["next_cursor"].as_str().map(str::to_owned),
    })
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |key: &str| query.read().get(key).unwrap_or_default();
    let data = Resource::new(
        move || (get("actor"), get("action"), get("cursor")),
        |(actor, action, cursor)| load_audit(actor, action, cursor),
    );
    view! {
        <PageHeader title="Audit log".to_owned() subtitle="Every sensitive change, hash-chained so tampering shows"/>
        <form method="get" class="filters" aria-label="Filter the audit log">
            <div class="field inline">
                <label for="audit-action">"Action"</label>
                <input id="audit-action" name="action" placeholder="e.g. agent.update" value=move || get("action")/>
            </div>
            <div class="field inline">
                <label for="audit-actor">"Actor"</label>
                <input id="audit-actor" name="actor" placeholder="user, api_key or agent id" value=move || get("actor")/>
            </div>
            <button type="submit">"Filter"</button>
            <a href="/dashboard/audit">"Clear"</a>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let d = match data.await {
                    Err(e) => return view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => d,
                };
                if !d.me.can_read_audit() {
                    return view! { <p class="muted">"Only owners and admins read the audit log."</p> }.into_any();
                }
                let next = d.next_cursor.clone().map(|c| {
                    let mut href = format!("/dashboard/audit?cursor={c}");
                    for key in ["actor", "action"] {
                        let v = get(key);
                        if !v.is_empty() {
                            href.push_str(&format!("&{key}={v}"));
                        }
                    }
                    view! { <p><a href=href>"Older events →"</a></p> }
                });
                view! {
                    <div class="card table-wrap">
                        <table class="audit stack">
                            <caption class="visually-hidden">"Audit events, newest first"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"When"</th>
                                    <th scope="col">"Actor"</th>
                                    <th scope="col">"Action"</th>
                                    <th scope="col">"Resource"</th>
                                    <th scope="col">"Details"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {d.events.is_empty().then(|| view! { <tr><td colspan="5" class="muted">"No matching events."</td></tr> })}
                                {d.events
                                    .into_iter()
                                    .map(|e| {
                                        let actor = format!(
                                            "{} {}",
                                            e.actor.kind,
                                            e.actor.id.clone().unwrap_or_default().chars().take(8).collect::<String>()
                                        );
                                        let full = if e.details.as_object().is_some_and(|m| m.is_empty()) {
                                            String::new()
                                        } else {
                                            e.details.to_string()
                                        };
                                        let mut details: String = full.chars().take(140).collect();
                                        if full.chars().count() > 140 {
                                            details.push('…');
                                        }
                                        view! {
                                            <tr>
                                                <td class="nowrap" data-label="When">{short_time(&e.at)}</td>
                                                <td class="nowrap" data-label="Actor" title=e.actor.id.clone().unwrap_or_default()>{actor}</td>
                                                <td data-label="Action"><code>{e.action.clone()}</code></td>
                                                <td class="small" data-label="Resource">{e.resource.clone()}</td>
                                                <td class="small details" data-label="Details" title=full>{details}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                    {next}
                }
                    .into_any()
            })}
        </Transition>
    }
}
