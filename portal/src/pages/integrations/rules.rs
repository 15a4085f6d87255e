//! The automation rules table: each rule's trigger, connectors and steps, and the forms that
//! enable, disable and edit it.

use leptos::prelude::*;

use super::connector_link;
use crate::app::{Badge, CsrfField, OutcomeNote};
use crate::model::{Outcome, Rule};

/// Enables or disables a rule.
#[server(endpoint = "rules/toggle")]
pub async fn toggle_rule(
    csrf: String,
    id: String,
    enabled: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let enabled = enabled == "true";
    let path = format!("/v1/integrations/rules/{}", encode(&id));
    let body = serde_json::json!({ "enabled": enabled });
    Ok(
        match call(Service::Gateway, reqwest::Method::PATCH, &path, Some(body)).await {
            Ok(_) => Outcome::ok(if enabled {
                "Rule enabled."
            } else {
                "Rule disabled."
            }),
            Err(e) => e.outcome(),
        },
    )
}

/// Edits a rule: its name, and its trigger and steps as JSON.
#[server(endpoint = "rules/edit")]
pub async fn edit_rule(
    csrf: String,
    id: String,
    name: String,
    trigger: String,
    steps: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let Ok(trigger) = serde_json::from_str::<serde_json::Value>(&trigger) else {
        return Ok(Outcome::error("trigger: not valid JSON"));
    };
    let Ok(steps) = serde_json::from_str::<serde_json::Value>(&steps) else {
        return Ok(Outcome::error("steps: not valid JSON"));
    };
    let path = format!("/v1/integrations/rules/{}", encode(&id));
    let body = serde_json::json!({ "name": name.trim(), "trigger": trigger, "steps": steps });
    Ok(
        match call(Service::Gateway, reqwest::Method::PATCH, &path, Some(body)).await {
            Ok(_) => Outcome::ok("Rule saved."),
            Err(e) => e.outcome(),
        },
    )
}

#[component]
pub fn RulesSection(
    rules: Vec<Rule>,
    connectors: Vec<(String, String)>,
    manage: bool,
    toggle: ServerAction<ToggleRule>,
    edit: ServerAction<EditRule>,
) -> impl IntoView {
    let rule_outcome = Signal::derive(move || edit.value().get().or_else(|| toggle.value().get()));
    view! {
        <section class="card" aria-labelledby="rules-h">
            <h2 id="rules-h">"Automation rules"</h2>
            <div class="table-wrap">
                <table>
                    <caption class="visually-hidden">"Automation rules"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Trigger"</th>
                            <th scope="col">"Connectors"</th>
                            <th scope="col">"Steps"</th>
                            <th scope="col">"Status"</th>
                            {manage.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {rules.is_empty().then(|| view! { <tr><td colspan="6" class="muted">"No rules yet."</td></tr> })}
                        {rules
                            .into_iter()
                            .map(|r| {
                                let links = r
                                    .connectors()
                                    .into_iter()
                                    .map(|c| view! { {connector_link(&connectors, c)} " " })
                                    .collect_view();
                                view! {
                                    <tr data-rule=r.id.clone()>
                                        <td>{r.name.clone()}</td>
                                        <td><code class="small">{r.trigger_label()}</code></td>
                                        <td>{links}</td>
                                        <td>{r.steps.len()}</td>
                                        <td><Badge status=if r.enabled { "enabled".to_owned() } else { "disabled".to_owned() }/></td>
                                        {manage.then(|| view! { <td><RuleActions rule=r.clone() toggle edit/></td> })}
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <OutcomeNote outcome=rule_outcome/>
        </section>
    }
}

/// A rule's toggle button and its edit form, for those who manage integrations.
#[component]
fn RuleActions(
    rule: Rule,
    toggle: ServerAction<ToggleRule>,
    edit: ServerAction<EditRule>,
) -> impl IntoView {
    let rule_id = rule.id.clone();
    let trigger_json = serde_json::to_string_pretty(&rule.trigger).unwrap_or_default();
    let steps_json = serde_json::to_string_pretty(&rule.steps).unwrap_or_default();
    let enabled = rule.enabled;
    view! {
        <ActionForm action=toggle>
            <CsrfField/>
            <input type="hidden" name="id" value=rule.id.clone()/>
            <input type="hidden" name="enabled" value=(!enabled).to_string()/>
            <button type="submit" class="link">{if enabled { "Disable" } else { "Enable" }}</button>
        </ActionForm>
        <details class="inline-form">
            <summary>"Edit"</summary>
            <ActionForm action=edit>
                <CsrfField/>
                <input type="hidden" name="id" value=rule_id.clone()/>
                <div class="field">
                    <label for=format!("rule-name-{rule_id}")>"Name"</label>
                    <input id=format!("rule-name-{rule_id}") name="name" value=rule.name.clone()/>
                </div>
                <div class="field">
                    <label for=format!("rule-trigger-{rule_id}")>"Trigger (JSON)"</label>
                    <textarea class="code" rows="4" id=format!("rule-trigger-{rule_id}") name="trigger">
                        {trigger_json}
                    </textarea>
                </div>
                <div class="field">
                    <label for=format!("rule-steps-{rule_id}")>"Steps (JSON)"</label>
                    <textarea class="code" rows="6" id=format!("rule-steps-{rule_id}") name="steps">
                        {steps_json}
                    </textarea>
                </div>
                <button type="submit" class="primary">"Save rule"</button>
            </ActionForm>
        </details>
    }
}
