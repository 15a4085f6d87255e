//! `/dashboard/connectors/{id}`: the connection form generated from the connector's
//! `auth_schema` (secret fields are never echoed back), and Test / Disconnect with their
//! results.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::app::{Badge, CsrfField, LoadError, OutcomeNote, PageHeader, short_time};
use crate::model::{ActionDef, AuthField, Connector, Me, Outcome};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorData {
    pub me: Me,
    pub connector: Connector,
}

#[server]
pub async fn load_connector(id: String) -> Result<ConnectorData, ServerFnError> {
    Ok(ConnectorData {
        me: crate::api::me(),
        connector: crate::api::get(&format!("/v1/connectors/{}", crate::api::encode(&id))).await?,
    })
}

/// Connects with the given credentials (the gateway checks them with a live call).
#[server(endpoint = "connectors/connect")]
pub async fn connect(
    csrf: String,
    id: String,
    #[server(default)] creds: HashMap<String, String>,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let credentials: serde_json::Map<String, serde_json::Value> = creds
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, serde_json::Value::String(v.trim().to_owned())))
        .collect();
    Ok(
        match call(
            Service::Gateway,
            reqwest::Method::PUT,
            &format!("/v1/connectors/{}/connection", encode(&id)),
            Some(serde_json::json!({ "credentials": credentials })),
        )
        .await
        {
            Ok(view) if view["status"] == "connected" => {
                Outcome::ok("Connected: the platform accepted the credentials.")
            }
            Ok(view) => Outcome::error(format!(
                "Not connected: {}",
                view["last_error"]
                    .as_str()
                    .unwrap_or("the platform refused")
            )),
            Err(e) => e.outcome(),
        },
    )
}

/// Tests (`test`) or removes (`disconnect`) the connection.
#[server(endpoint = "connectors/check")]
pub async fn connector_command(
    csrf: String,
    id: String,
    command: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call, check_csrf, encode};
    check_csrf(&csrf)?;
    let (method, path) = match command.as_str() {
        "test" => (
            reqwest::Method::POST,
            format!("/v1/connectors/{}/test", encode(&id)),
        ),
        "disconnect" => (
            reqwest::Method::DELETE,
            format!("/v1/connectors/{}/connection", encode(&id)),
        ),
        _ => return Ok(Outcome::error("unknown command")),
    };
    Ok(match call(Service::Gateway, method, &path, None).await {
        Ok(view) if command == "disconnect" => {
            let _ = view;
            Outcome::ok("Disconnected; the stored secret was destroyed.")
        }
        Ok(view) if view["status"] == "connected" => Outcome::ok("Connection works."),
        Ok(view) => Outcome::error(format!(
            "The test failed: {}",
            view["last_error"]
                .as_str()
                .unwrap_or("the platform refused")
        )),
        Err(e) => e.outcome(),
    })
}

#[component]
pub fn ConnectorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let connect = ServerAction::<Connect>::new();
    let command = ServerAction::<ConnectorCommand>::new();
    let data = Resource::new(
        move || (id(), connect.version().get(), command.version().get()),
        |(id, ..)| load_connector(id),
    );
    view! {
        <p class="crumbs"><a href="/dashboard/connectors">"← All connectors"</a></p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => view! { <ConnectorView data=d connect command/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ConnectorView(
    data: ConnectorData,
    connect: ServerAction<Connect>,
    command: ServerAction<ConnectorCommand>,
) -> impl IntoView {
    let ConnectorData { me, connector: c } = data;
    let manage = me.can_manage();
    let connected = c.status == "connected";
    let fields = c
        .auth_schema
        .iter()
        .map(|f| {
            let stored = c.fields.get(&f.field).cloned().unwrap_or_default();
            credential_field(f, stored, connected, manage, connect)
        })
        .collect_view();
    let actions = c.actions.iter().map(action_item).collect_view();
    let checked = c
        .last_checked_at
        .clone()
        .map(|t| format!("Last checked {}", short_time(&t)));
    view! {
        <PageHeader title=c.name.clone() subtitle=c.description.clone()/>
        <div class="grid two wide-left">
            <section class="card" aria-labelledby="connection-h">
                <h2 id="connection-h">"Connection"</h2>
                <p class="connection-status">
                    <Badge status=c.status.clone()/>
                    " "
                    <span class="muted">{checked}</span>
                </p>
                {c.last_error.clone().map(|e| view! { <p class="note error">{e}</p> })}
                {if manage {
                    connection_forms(c.id.clone(), connected, fields, connect, command).into_any()
                } else {
                    view! {
                        <form aria-label="Connection (read only)">{fields}</form>
                        <p class="muted">"Only owners and admins connect platforms."</p>
                    }
                        .into_any()
                }}
            </section>
            <section class="card" aria-labelledby="actions-h">
                <h2 id="actions-h">"What agents can do"</h2>
                <ul class="plain list small">{actions}</ul>
                <h3>"Readable data"</h3>
                <p class="muted">{c.resources.join(", ")}</p>
            </section>
        </div>
    }
}

/// One field of the connection form, as the connector's `auth_schema` describes it;
/// `stored` is its saved value (never a secret's).
fn credential_field(
    f: &AuthField,
    stored: String,
    connected: bool,
    manage: bool,
    connect: ServerAction<Connect>,
) -> impl IntoView + use<> {
    let id = format!("cred-{}", f.field);
    let name = format!("creds[{}]", f.field);
    let required = f.required && !(connected && f.kind == "secret");
    let input = match f.kind.as_str() {
        "select" => view! {
            <select id=id.clone() name=name disabled=!manage>
                {f.options
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| {
                        let selected = o == stored;
                        view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                    })
                    .collect_view()}
            </select>
        }
        .into_any(),
        // Cleared after every submit: a typed secret does not linger in the page.
        "secret" => view! {
            <input
                id=id.clone()
                name=name
                prop:value=move || {
                    connect.version().get();
                    String::new()
                }
                type="password"
                autocomplete="off"
                required=required
                disabled=!manage
                placeholder=if connected { "•••••••• stored in the vault — type to replace" } else { "" }
            />
        }
        .into_any(),
        kind => {
            let kind = if kind == "url" { "url" } else { "text" };
            view! {
                <input id=id.clone() name=name type=kind value=stored required=required disabled=!manage autocomplete="off"/>
            }
            .into_any()
        }
    };
    view! {
        <div class="field">
            <label for=id>
                {f.label.clone()}
                {f.required.then(|| view! { <span class="required" aria-hidden="true">" *"</span> })}
            </label>
            {input}
            {f.help.clone().map(|h| view! { <p class="hint">{h}</p> })}
        </div>
    }
}

/// One action the connector offers agents, marked when it writes.
fn action_item(a: &ActionDef) -> impl IntoView + use<> {
    view! {
        <li>
            <code>{a.name.clone()}</code>
            {a.side_effect.then(|| view! { " " <span class="tag">"writes"</span> })}
            <span class="muted">{format!(" — {}", a.description)}</span>
        </li>
    }
}

/// Connect (with the credential `fields`), and Test / Disconnect once connected.
fn connection_forms(
    id: String,
    connected: bool,
    fields: impl IntoView + 'static,
    connect: ServerAction<Connect>,
    command: ServerAction<ConnectorCommand>,
) -> impl IntoView {
    let connect_outcome = Signal::derive(move || connect.value().get());
    let command_outcome = Signal::derive(move || command.value().get());
    let (connect_id, command_id) = (id.clone(), id);
    view! {
        <ActionForm action=connect>
            <CsrfField/>
            <input type="hidden" name="id" value=connect_id/>
            {fields}
            <OutcomeNote outcome=connect_outcome/>
            <button id="connect" type="submit" class="primary" disabled=move || connect.pending().get()>
                {if connected { "Save and reconnect" } else { "Connect" }}
            </button>
        </ActionForm>
        {connected
            .then(|| {
                view! {
                    <ActionForm action=command>
                        <CsrfField/>
                        <input type="hidden" name="id" value=command_id/>
                        <div class="button-row">
                            <button id="test" type="submit" name="command" value="test">"Test connection"</button>
                            <button id="disconnect" type="submit" name="command" value="disconnect" class="danger">
                                "Disconnect"
                            </button>
                        </div>
                    </ActionForm>
                }
            })}
        <div class="test-outcome">
            <OutcomeNote outcome=command_outcome/>
        </div>
    }
}
