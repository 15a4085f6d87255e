//! Tools through capability handles: a grant revoked mid-turn fails the very next call.

use std::sync::Arc;
use std::time::Duration;

use brain_agents::providers::scripted::ScriptStep;
use brain_agents::turn::ToolCallStatus;
use brain_auth::secrets::{SecretStore, VaultSecretStore};
use brain_migrations::testing::setting;
use brain_runtime::{ConnectorTools, ToolSource};
use brain_tools::{ConnectorService, ServiceConfig};
use serde_json::json;

use crate::harness::{Harness, fast_config, new_agent, say};

async fn connector_tools(db: &brain_migrations::testing::TestDb) -> Arc<dyn ToolSource> {
    let redis = redis::aio::ConnectionManager::new(
        redis::Client::open(setting("REDIS_URL").unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let secrets: Arc<dyn SecretStore> = Arc::new(
        VaultSecretStore::new(
            &setting("VAULT_ADDR").unwrap(),
            &setting("VAULT_TOKEN").unwrap(),
            "secret",
        )
        .unwrap(),
    );
    let service =
        ConnectorService::new(db.app.clone(), redis, secrets, ServiceConfig::default()).unwrap();
    Arc::new(ConnectorTools::new(Arc::new(service)))
}

#[tokio::test]
async fn a_grant_revoked_during_a_turn_fails_the_next_call_without_a_restart() {
    // The harness needs the database before the tool source, so build it in two steps.
    let h = Harness::new(vec![]).await;
    let tools = connector_tools(&h.db).await;
    let model = h.model.clone();
    let (runtime, registry) = crate::harness::runtime(
        &h.db,
        &model,
        brain_agents::ProviderRegistry::new(),
        tools,
        fast_config(),
    )
    .await;
    let t = h.tenant("acme").await;
    let mut input = new_agent("Publisher");
    input.tools = vec![brain_agents::ToolGrant {
        connector: "wordpress".into(),
        actions: vec!["create_post".into()],
        approval: Default::default(),
        max_calls_per_run: None,
    }];
    let agent = runtime.create_agent(t, input).await.unwrap();

    model.push([
        // The model "thinks" long enough for the grant to be revoked meanwhile.
        ScriptStep::Slow(
            Duration::from_millis(800),
            Box::new(ScriptStep::call(
                "wordpress__create_post",
                json!({"title": "Launch", "content": "We launched."}),
            )),
        ),
        ScriptStep::reply("I could not publish: the permission was revoked."),
    ]);
    let turn = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            runtime
                .chat(t, agent.id, say("Publish the launch post"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    runtime
        .replace_tools(t, agent.id, vec![], None)
        .await
        .unwrap();

    let result = turn.await.unwrap().unwrap();
    // The model was offered the tool (granted when the turn began) …
    let offered: Vec<String> = model.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(offered, vec!["wordpress__create_post".to_owned()]);
    // … and the call after the revocation was refused by the capability check.
    assert_eq!(result.tool_calls.len(), 1);
    assert_eq!(result.tool_calls[0].status, ToolCallStatus::Error);
    assert!(
        result.tool_calls[0]
            .result_summary
            .contains("grant_revoked"),
        "{}",
        result.tool_calls[0].result_summary
    );
    assert_eq!(
        crate::harness::metric(&registry, "brain_agent_actor_restarts_total"),
        0.0
    );
    let status = runtime.status(t, agent.id).await.unwrap();
    assert!(status.running);
    assert_eq!(status.version, 2);

    // The next turn is not even offered the tool.
    model.push([ScriptStep::reply("No tools here.")]);
    runtime.chat(t, agent.id, say("Try again")).await.unwrap();
    assert!(model.requests().last().unwrap().tools.is_empty());
}

#[tokio::test]
async fn calls_to_tools_the_agent_holds_no_handle_for_are_rejected() {
    let h = Harness::new(vec![]).await;
    let tools = connector_tools(&h.db).await;
    let model = h.model.clone();
    let (runtime, registry) = crate::harness::runtime(
        &h.db,
        &model,
        brain_agents::ProviderRegistry::new(),
        tools,
        fast_config(),
    )
    .await;
    let t = h.tenant("acme").await;
    let agent = runtime.create_agent(t, new_agent("NoTools")).await.unwrap();
    model.push([
        ScriptStep::call("stripe__create_refund", json!({"charge": "ch_1"})),
        ScriptStep::reply("I can't do refunds."),
    ]);
    let result = runtime.chat(t, agent.id, say("refund ch_1")).await.unwrap();
    assert_eq!(result.tool_calls[0].status, ToolCallStatus::Rejected);
    assert!(
        result.tool_calls[0]
            .result_summary
            .contains("tool_not_granted")
    );
    assert_eq!(
        crate::harness::metric(&registry, "brain_agent_tool_calls_total"),
        1.0
    );
}

#[tokio::test]
async fn grants_must_name_real_connectors_and_actions() {
    let db = brain_migrations::testing::TestDb::new().await.unwrap();
    let t = brain_auth::TenantId(
        sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ('acme', 'A') RETURNING id")
            .fetch_one(&db.owner)
            .await
            .unwrap(),
    );
    let store = brain_agents::AgentStore::new(db.app.clone())
        .with_catalog(Arc::new(brain_runtime::ConnectorRegistryCatalog));
    let grant = |connector: &str, action: &str| brain_agents::ToolGrant {
        connector: connector.into(),
        actions: vec![action.into()],
        approval: Default::default(),
        max_calls_per_run: None,
    };
    for (connector, action) in [("myspace", "post"), ("wordpress", "drop_database")] {
        let mut input = new_agent("Bad");
        input.tools = vec![grant(connector, action)];
        let err = store.create(t, input).await.unwrap_err();
        assert!(
            matches!(&err, brain_agents::AgentError::Validation(v) if v.field == "tools"),
            "{err:?}"
        );
    }
    let mut input = new_agent("Good");
    input.tools = vec![grant("wordpress", "create_post"), grant("slack", "*")];
    let agent = store.create(t, input).await.unwrap();
    assert_eq!(agent.tools.len(), 2);
}

#[tokio::test]
async fn handles_enforce_calls_per_run_and_approval() {
    let h = Harness::new(vec![]).await;
    let tools = connector_tools(&h.db).await;
    let model = h.model.clone();
    let (runtime, _) = crate::harness::runtime(
        &h.db,
        &model,
        brain_agents::ProviderRegistry::new(),
        tools,
        fast_config(),
    )
    .await;
    let t = h.tenant("acme").await;
    let mut input = new_agent("Limited");
    input.tools = vec![
        brain_agents::ToolGrant {
            connector: "wordpress".into(),
            actions: vec!["create_post".into()],
            approval: Default::default(),
            max_calls_per_run: Some(1),
        },
        brain_agents::ToolGrant {
            connector: "slack".into(),
            actions: vec!["*".into()],
            approval: brain_agents::spec::Approval::Always,
            max_calls_per_run: None,
        },
    ];
    let agent = runtime.create_agent(t, input).await.unwrap();
    let post = |id: &str| brain_agents::providers::ToolCall {
        id: id.into(),
        name: "wordpress__create_post".into(),
        arguments: json!({"title": "T", "content": "C"}),
    };
    let slack_tool = "slack__post_message";
    model.push([
        ScriptStep::Call(vec![
            post("p1"),
            post("p2"),
            brain_agents::providers::ToolCall {
                id: "s1".into(),
                name: slack_tool.into(),
                arguments: json!({"channel": "#general", "text": "hi"}),
            },
        ]),
        ScriptStep::reply("done"),
    ]);
    let result = runtime.chat(t, agent.id, say("post twice")).await.unwrap();
    let summaries: Vec<&str> = result
        .tool_calls
        .iter()
        .map(|c| c.result_summary.as_str())
        .collect();
    // The first call reached the connector (which is not connected in this test) …
    assert!(
        !summaries[0].contains("tool_call_limit"),
        "{}",
        summaries[0]
    );
    // … the second exceeded the grant's one call per run, and Slack needs approval.
    assert!(summaries[1].contains("tool_call_limit"), "{}", summaries[1]);
    assert!(
        summaries[2].contains("approval_required"),
        "{}",
        summaries[2]
    );
    assert!(
        model.requests()[0]
            .tools
            .iter()
            .any(|t| t.name == slack_tool),
        "approval-gated tools are still offered"
    );
}
