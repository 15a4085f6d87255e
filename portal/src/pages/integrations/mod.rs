//! `/dashboard/integrations`: how the outside world reaches Brain and Brain reaches models and
//! tools — inbound webhooks, API keys, automation rules (rows link to their connectors), MCP
//! servers and remote A2A agents, and the model providers' keys.

mod keys;
mod models;
mod rules;
mod tool_sources;
mod webhooks;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{LoadError, OutcomeNote, PageHeader};
use crate::model::{ApiKey, Me, Outcome, Rule, ToolSource, Webhook};
use crate::providers::ModelProvider;
use keys::{ApiKeysSection, CreateKey, RevokeKey};
use models::{ModelProvidersSection, RemoveModelKey, SetModelKey};
use rules::{EditRule, RulesSection, ToggleRule};
use tool_sources::{ChangeToolSource, CreateToolSource, ToolSourcesSection};
use webhooks::{CreateWebhook, DeleteWebhook, WebhooksSection};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntegrationsData {
    pub me: Me,
    pub webhooks: Vec<Webhook>,
    /// `None` when the role may not see API keys.
    pub api_keys: Option<Vec<ApiKey>>,
    pub rules: Vec<Rule>,
    pub connectors: Vec<(String, String)>,
    pub providers: Vec<ModelProvider>,
    /// MCP servers and remote A2A agents; `None` when the role may not see them.
    pub tool_sources: Option<Vec<ToolSource>>,
}

// Stays in this module: without an `endpoint`, its URL is hashed from the module path.
#[server]
pub async fn load_integrations() -> Result<IntegrationsData, ServerFnError> {
    use crate::api::{get, get_list};
    let me = crate::api::me();
    let connectors: Vec<crate::model::Connector> = get("/v1/connectors").await?;
    let api_keys = if me.can_manage() {
        Some(get_list("/v1/integrations/api-keys", "api_keys").await?)
    } else {
        None
    };
    Ok(IntegrationsData {
        me,
        webhooks: get_list("/v1/integrations/webhooks", "webhooks").await?,
        api_keys,
        rules: get_list("/v1/integrations/rules", "rules").await?,
        connectors: connectors.into_iter().map(|c| (c.id, c.name)).collect(),
        providers: get_list("/v1/tenant/providers", "providers").await?,
        tool_sources: crate::api::tool_sources().await?,
    })
}

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let create_key = ServerAction::<CreateKey>::new();
    let revoke_key = ServerAction::<RevokeKey>::new();
    let create_webhook = ServerAction::<CreateWebhook>::new();
    let delete_webhook = ServerAction::<DeleteWebhook>::new();
    let toggle_rule = ServerAction::<ToggleRule>::new();
    let edit_rule = ServerAction::<EditRule>::new();
    let set_model_key = ServerAction::<SetModelKey>::new();
    let remove_model_key = ServerAction::<RemoveModelKey>::new();
    let create_source = ServerAction::<CreateToolSource>::new();
    let change_source = ServerAction::<ChangeToolSource>::new();
    let data = Resource::new(
        move || {
            (
                create_key.version().get(),
                revoke_key.version().get(),
                create_webhook.version().get(),
                delete_webhook.version().get(),
                toggle_rule.version().get(),
                edit_rule.version().get(),
                set_model_key.version().get(),
                remove_model_key.version().get(),
                create_source.version().get(),
                change_source.version().get(),
            )
        },
        |_| load_integrations(),
    );
    view! {
        <PageHeader
            title="Integrations".to_owned()
            subtitle="Webhooks in, API keys for your scripts, automation rules, outside tools and model keys"
        />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let d = match data.await {
                    Err(e) => return view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => d,
                };
                let manage = d.me.can_manage();
                view! {
                    <WebhooksSection
                        webhooks=d.webhooks
                        connectors=d.connectors.clone()
                        manage
                        create=create_webhook
                        delete=delete_webhook
                    />
                    <ApiKeysSection keys=d.api_keys create=create_key revoke=revoke_key/>
                    <RulesSection
                        rules=d.rules
                        connectors=d.connectors
                        manage
                        toggle=toggle_rule
                        edit=edit_rule
                    />
                    {d.tool_sources.map(|sources| view! {
                        <ToolSourcesSection
                            sources
                            manage
                            create=create_source
                            change=change_source
                        />
                    })}
                    <ModelProvidersSection
                        providers=d.providers
                        manage
                        set=set_model_key
                        remove=remove_model_key
                    />
                }
                    .into_any()
            })}
        </Transition>
    }
}

/// A link to a connector's page, named after the connector (its id when it is gone).
fn connector_link(connectors: &[(String, String)], id: String) -> impl IntoView + use<> {
    let label = connectors
        .iter()
        .find(|(c, _)| *c == id)
        .map_or_else(|| id.clone(), |(_, n)| n.clone());
    view! { <a href=format!("/dashboard/connectors/{id}")>{label}</a> }
}

/// A form's outcome that may carry a secret to show once.
#[component]
fn SecretOutcome(outcome: Signal<Option<Result<Outcome, ServerFnError>>>) -> impl IntoView {
    view! {
        <OutcomeNote outcome/>
        {move || {
            outcome
                .get()
                .and_then(|o| o.ok())
                .and_then(|o| o.secret)
                .map(|secret| {
                    view! {
                        <p class="secret-box">
                            <code class="secret">{secret}</code>
                        </p>
                    }
                })
        }}
    }
}
