//! Delegation between agents: grants, the target's own settings, cycles, depth, budgets,
//! approvals, nested tool calls, audit events, and the `RuntimeHandle` API for durable tasks.
//! Each agent has a scripted model of its own (`scripted-<slug>:default`), so what reached
//! which agent is observable separately.

use brain_auth::{Code, ErrorCode};
use std::collections::HashMap;
use std::sync::Arc;

use brain_agents::providers::scripted::{ScriptStep, ScriptedProvider};
use brain_agents::providers::{ChatRole, ToolCall};
use brain_agents::spec::{AgentId, AgentSpec, Approval, DelegateGrant};
use brain_agents::tool::ToolError;
use brain_agents::turn::{ToolCallRecord, ToolCallStatus};
use brain_agents::{AgentError, ProviderRegistry, TurnEvent};
use brain_auth::TenantId;
use brain_migrations::testing::TestDb;
use brain_runtime::{
    DelegationLimits, DelegationRequest, NoToolSource, RuntimeConfig, RuntimeError, RuntimeHandle,
};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::harness::{fast_config, new_agent, say};

/// A runtime whose agents each talk to their own scripted model.
struct Team {
    db: TestDb,
    runtime: RuntimeHandle,
    tenant: TenantId,
    models: HashMap<String, ScriptedProvider>,
    agents: HashMap<String, AgentSpec>,
}

impl Team {
    async fn new(slugs: &[&str]) -> Self {
        Self::with_config(slugs, fast_config()).await
    }

    async fn with_config(slugs: &[&str], config: RuntimeConfig) -> Self {
        let db = TestDb::new().await.unwrap();
        let mut providers = ProviderRegistry::new();
        let mut models = HashMap::new();
        for slug in slugs {
            let model = ScriptedProvider::new([]);
            providers = providers.with(format!("scripted-{slug}"), Arc::new(model.clone()));
            models.insert((*slug).to_owned(), model);
        }
        let fallback = ScriptedProvider::new([]);
        let (runtime, _registry) =
            crate::harness::runtime(&db, &fallback, providers, Arc::new(NoToolSource), config)
                .await;
        let tenant = TenantId(
            sqlx::query_scalar(
                "INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id",
            )
            .fetch_one(&db.owner)
            .await
            .unwrap(),
        );
        let mut agents = HashMap::new();
        for (i, slug) in slugs.iter().enumerate() {
            let mut input = new_agent(&format!("Agent {}", slug.to_uppercase()));
            input.slug = Some((*slug).to_owned());
            input.model = Some(format!("scripted-{slug}:default"));
            input.temperature = Some(0.1 * (i as f32 + 1.0));
            input.goal = format!("the goal of {slug}");
            input.backstory = format!("The backstory of {slug}.");
            input.role = format!("the {slug} specialist");
            let spec = runtime.create_agent(tenant, input).await.unwrap();
            agents.insert((*slug).to_owned(), spec);
        }
        Self {
            db,
            runtime,
            tenant,
            models,
            agents,
        }
    }

    fn id(&self, slug: &str) -> AgentId {
        self.agents[slug].id
    }

    fn model(&self, slug: &str) -> &ScriptedProvider {
        &self.models[slug]
    }

    /// Replaces `from`'s delegate grants with plain ones to `targets`.
    async fn grant(&self, from: &str, targets: &[&str]) {
        let grants = targets.iter().map(|t| grant(self.id(t))).collect();
        self.runtime
            .replace_delegates(self.tenant, self.id(from), grants, None)
            .await
            .unwrap();
    }

    /// `agent.delegate` audit events in order: (actor kind, actor id, resource, details).
    async fn delegate_events(&self) -> Vec<(String, String, String, Value)> {
        sqlx::query_as(
            "SELECT actor_kind, actor_id, resource, details FROM audit_events \
             WHERE action = 'agent.delegate' ORDER BY seq",
        )
        .fetch_all(&self.db.owner)
        .await
        .unwrap()
    }
}

fn grant(agent: AgentId) -> DelegateGrant {
    DelegateGrant {
        agent,
        approval: Approval::Never,
        max_calls_per_run: None,
    }
}

fn ask(slug: &str, question: &str) -> ScriptStep {
    ScriptStep::call(&format!("ask_{slug}"), json!({"question": question}))
}

fn error_code(record: &ToolCallRecord) -> String {
    let summary: Value = serde_json::from_str(&record.result_summary).unwrap();
    summary["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn without_a_grant_nothing_reaches_the_target_and_a_grant_reaches_the_running_actor() {
    let team = Team::new(&["a", "b"]).await;
    let (a, b) = (team.id("a"), team.id("b"));
    team.model("a").push([
        ask("b", "What do you know?"),
        ScriptStep::reply("I could not ask."),
    ]);
    let refused = team
        .runtime
        .chat(team.tenant, a, say("Ask B"))
        .await
        .unwrap();
    assert_eq!(refused.tool_calls.len(), 1);
    let call = &refused.tool_calls[0];
    assert_eq!(
        (call.connector.as_str(), call.action.as_str()),
        ("delegate", "b")
    );
    assert_eq!(call.status, ToolCallStatus::Rejected);
    assert_eq!(error_code(call), "tool_not_granted");
    assert!(
        team.model("a").requests()[0].tools.is_empty(),
        "no ask_b tool is offered without a grant"
    );

    // Asked from outside a turn, too: refused, audited, and still nothing reaches B.
    let err = team
        .runtime
        .delegate(team.tenant, DelegationRequest::new(a, b, "Anything?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ToolNotGranted);
    assert!(
        team.model("b").requests().is_empty(),
        "B's model saw nothing"
    );
    let events = team.delegate_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].3["outcome"], "tool_not_granted");

    // Granting reaches the already running actor: its next turn offers and runs ask_b.
    let version = team
        .runtime
        .get_agent(team.tenant, a)
        .await
        .unwrap()
        .version;
    let spec = team
        .runtime
        .replace_delegates(team.tenant, a, vec![grant(b)], None)
        .await
        .unwrap();
    assert_eq!(
        spec.version,
        version + 1,
        "a delegate change bumps the version"
    );
    assert_eq!(spec.delegates, vec![grant(b)]);
    team.model("a").push([
        ask("b", "What do you know?"),
        ScriptStep::reply("B says hi."),
    ]);
    team.model("b").push([ScriptStep::reply("Hi from B.")]);
    let answered = team
        .runtime
        .chat(team.tenant, a, say("Ask B"))
        .await
        .unwrap();
    assert_eq!(answered.tool_calls[0].status, ToolCallStatus::Ok);
    assert_eq!(team.model("b").requests().len(), 1);
    let offered: Vec<String> = team.model("a").requests()[2]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(offered, ["ask_b"]);
}

#[tokio::test]
async fn the_target_runs_with_its_own_settings_and_its_answer_is_the_tool_result() {
    let team = Team::new(&["a", "b"]).await;
    team.grant("a", &["b"]).await;
    team.model("a").push([
        ScriptStep::call(
            "ask_b",
            json!({"question": "How did the spring campaign do?", "context": "For the board deck."}),
        ),
        ScriptStep::reply("The campaign did well, says B."),
    ]);
    team.model("b")
        .push([ScriptStep::reply("Spring campaign: 1,204 sign-ups.")]);
    let result = team
        .runtime
        .chat(team.tenant, team.id("a"), say("Report on spring"))
        .await
        .unwrap();
    assert_eq!(result.reply, "The campaign did well, says B.");

    // The target's provider call carries the target's values, not the caller's.
    let b_requests = team.model("b").requests();
    assert_eq!(b_requests.len(), 1);
    let request = &b_requests[0];
    assert_eq!(request.temperature, team.agents["b"].temperature.get());
    assert!((request.temperature - 0.2).abs() < 1e-6);
    let system = &request.messages[0];
    assert_eq!(system.role, ChatRole::System);
    assert!(
        system
            .content
            .contains("You are Agent B, the b specialist.")
    );
    assert!(system.content.contains("Your goal: the goal of b"));
    assert!(system.content.contains("Backstory: The backstory of b."));
    assert!(!system.content.contains("of a"), "{}", system.content);
    let user = request.messages.last().unwrap();
    assert_eq!(user.role, ChatRole::User);
    assert!(user.content.contains("How did the spring campaign do?"));
    assert!(user.content.contains("For the board deck."));

    // The caller saw the tool described with the target's name, role and goal, and got the
    // answer back as the tool result.
    let a_requests = team.model("a").requests();
    assert!((a_requests[0].temperature - 0.1).abs() < 1e-6);
    let tool = &a_requests[0].tools[0];
    assert_eq!(tool.name, "ask_b");
    assert!(tool.description.contains("Agent B"));
    assert!(tool.description.contains("the b specialist"));
    assert!(tool.description.contains("the goal of b"));
    assert_eq!(tool.parameters["required"], json!(["question"]));
    let fed_back = a_requests[1].messages.last().unwrap();
    assert_eq!(fed_back.role, ChatRole::Tool);
    assert!(
        fed_back
            .content
            .contains("Spring campaign: 1,204 sign-ups.")
    );

    let call = &result.tool_calls[0];
    assert_eq!(
        (call.connector.as_str(), call.action.as_str()),
        ("delegate", "b")
    );
    assert_eq!(call.status, ToolCallStatus::Ok);

    // One audit event for the hop, by the caller, without the texts.
    let events = team.delegate_events().await;
    assert_eq!(events.len(), 1);
    let (kind, actor, resource, details) = &events[0];
    assert_eq!(kind, "agent");
    assert_eq!(actor, &team.id("a").to_string());
    assert_eq!(resource, &format!("agents/{}", team.id("b")));
    assert_eq!(
        details["chain"],
        json!([team.id("a").to_string(), team.id("b").to_string()])
    );
    assert_eq!(details["outcome"], "ok");
    assert_eq!(details["question_chars"], 31);
    let text = details.to_string();
    assert!(
        !text.contains("spring campaign") && !text.contains("1,204"),
        "{text}"
    );

    // The delegated question is a conversation of the target's own.
    let conversations = team
        .runtime
        .list_conversations(team.tenant, team.id("b"))
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
}

#[tokio::test]
async fn a_cycle_is_refused_with_the_chain_named() {
    let team = Team::new(&["a", "b"]).await;
    team.grant("a", &["b"]).await;
    team.grant("b", &["a"]).await;
    team.model("a")
        .push([ask("b", "Question for B"), ScriptStep::reply("done")]);
    team.model("b")
        .push([ask("a", "Back to A?"), ScriptStep::reply("B answers alone")]);
    let result = team
        .runtime
        .chat(team.tenant, team.id("a"), say("go"))
        .await
        .unwrap();
    assert_eq!(
        team.model("a").requests().len(),
        2,
        "A's model was not called for a second, nested turn"
    );
    let outer = &result.tool_calls[0];
    assert_eq!(outer.status, ToolCallStatus::Ok);
    let inner = &outer.nested[0];
    assert_eq!(
        (inner.connector.as_str(), inner.action.as_str()),
        ("delegate", "a")
    );
    assert_eq!(inner.status, ToolCallStatus::Error);
    assert_eq!(error_code(inner), "delegation_cycle");
    assert!(
        inner.result_summary.contains("a → b → a"),
        "{}",
        inner.result_summary
    );

    let outcomes: Vec<Value> = team
        .delegate_events()
        .await
        .into_iter()
        .map(|e| e.3["outcome"].clone())
        .collect();
    // The refused inner hop is recorded first: the outer one is recorded when it ends.
    assert_eq!(outcomes, [json!("delegation_cycle"), json!("ok")]);
}

#[tokio::test]
async fn depth_is_bounded_at_three_hops() {
    let team = Team::new(&["a", "b", "c", "d", "e"]).await;
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")] {
        team.grant(from, &[to]).await;
    }
    team.model("a")
        .push([ask("b", "1"), ScriptStep::reply("a done")]);
    team.model("b")
        .push([ask("c", "2"), ScriptStep::reply("b done")]);
    team.model("c")
        .push([ask("d", "3"), ScriptStep::reply("c done")]);
    team.model("d")
        .push([ask("e", "4"), ScriptStep::reply("d done")]);
    let result = team
        .runtime
        .chat(team.tenant, team.id("a"), say("go deep"))
        .await
        .unwrap();
    assert!(
        team.model("e").requests().is_empty(),
        "the fourth hop never ran"
    );
    let d_call = &result.tool_calls[0].nested[0].nested[0].nested[0];
    assert_eq!(d_call.action, "e");
    assert_eq!(error_code(d_call), "delegation_depth");
    assert!(d_call.result_summary.contains("a → b → c → d → e"));
    // One audit event per hop, the refused one included; inner hops end (and are recorded)
    // first.
    let events = team.delegate_events().await;
    let chains: Vec<usize> = events
        .iter()
        .map(|e| e.3["chain"].as_array().unwrap().len())
        .collect();
    assert_eq!(chains, [5, 4, 3, 2]);
    assert_eq!(events[0].3["outcome"], "delegation_depth");
}

#[tokio::test]
async fn per_grant_limits_and_the_budget_of_the_root_turn_are_enforced() {
    let config = RuntimeConfig {
        delegation: DelegationLimits {
            max_depth: 3,
            max_calls_per_turn: 2,
        },
        ..fast_config()
    };
    let team = Team::with_config(&["a", "b", "c"], config).await;
    let limited = DelegateGrant {
        max_calls_per_run: Some(1),
        ..grant(team.id("b"))
    };
    team.runtime
        .replace_delegates(
            team.tenant,
            team.id("a"),
            vec![limited, grant(team.id("c"))],
            None,
        )
        .await
        .unwrap();
    let call = |id: &str, slug: &str| ToolCall {
        id: id.into(),
        name: format!("ask_{slug}"),
        arguments: json!({"question": "q"}),
    };
    team.model("a").push([
        ScriptStep::Call(vec![
            call("1", "b"),
            call("2", "b"),
            call("3", "c"),
            call("4", "c"),
        ]),
        ScriptStep::reply("done"),
    ]);
    team.model("b").push([ScriptStep::reply("b")]);
    team.model("c").push([ScriptStep::reply("c")]);
    let result = team
        .runtime
        .chat(team.tenant, team.id("a"), say("go"))
        .await
        .unwrap();
    let outcomes: Vec<(ToolCallStatus, String)> = result
        .tool_calls
        .iter()
        .map(|c| (c.status, error_code(c)))
        .collect();
    assert_eq!(
        outcomes,
        [
            (ToolCallStatus::Ok, String::new()),
            (ToolCallStatus::Error, "tool_call_limit".into()),
            (ToolCallStatus::Ok, String::new()),
            (ToolCallStatus::Error, "delegation_limit".into()),
        ]
    );
    assert_eq!(team.model("b").requests().len(), 1);
    assert_eq!(team.model("c").requests().len(), 1);
    // Every hop is audited, the one the turn's gate refused before it left the turn too.
    let audited: Vec<Value> = team
        .delegate_events()
        .await
        .into_iter()
        .map(|(.., details)| details["outcome"].clone())
        .collect();
    assert_eq!(
        audited,
        ["ok", "tool_call_limit", "ok", "delegation_limit"].map(Value::from)
    );
}

#[tokio::test]
async fn an_approval_grant_is_refused_in_chat_and_passes_once_approved() {
    let team = Team::new(&["a", "b"]).await;
    let (a, b) = (team.id("a"), team.id("b"));
    let needs_approval = DelegateGrant {
        approval: Approval::Always,
        ..grant(b)
    };
    team.runtime
        .replace_delegates(team.tenant, a, vec![needs_approval], None)
        .await
        .unwrap();
    team.model("a")
        .push([ask("b", "May I?"), ScriptStep::reply("Needs approval.")]);
    let result = team.runtime.chat(team.tenant, a, say("go")).await.unwrap();
    let call = &result.tool_calls[0];
    assert_eq!(error_code(call), "approval_required");
    assert!(call.result_summary.contains("human approval"));
    assert!(team.model("b").requests().is_empty());
    let audited = team.delegate_events().await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].3["outcome"], "approval_required");

    // A durable task that obtained the approval may go ahead.
    team.model("b")
        .push([ScriptStep::reply("Approved answer.")]);
    let request = DelegationRequest {
        approved: true,
        ..DelegationRequest::new(a, b, "May I?")
    };
    let outcome = team.runtime.delegate(team.tenant, request).await.unwrap();
    assert_eq!(outcome.answer, "Approved answer.");
}

#[tokio::test]
async fn nested_calls_are_visible_in_the_reply_and_the_stream() {
    let team = Team::new(&["a", "b", "c"]).await;
    team.grant("a", &["b"]).await;
    team.grant("b", &["c"]).await;
    team.model("a").push([
        ask("b", "Plan the launch"),
        ScriptStep::reply("Plan ready."),
    ]);
    team.model("b").push([
        ScriptStep::Call(vec![
            ToolCall {
                id: "wp".into(),
                name: "wordpress__create_post".into(),
                arguments: json!({"title": "Launch"}),
            },
            ToolCall {
                id: "c1".into(),
                name: "ask_c".into(),
                arguments: json!({"question": "Numbers?", "context": "launch"}),
            },
        ]),
        ScriptStep::reply("B's plan."),
    ]);
    team.model("c").push([ScriptStep::reply("C's numbers.")]);
    let mut stream = team
        .runtime
        .chat_stream(team.tenant, team.id("a"), say("Launch plan"))
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event);
    }
    assert!(
        events.iter().any(|e| matches!(e,
        TurnEvent::ToolCall { connector, action, .. } if connector == "delegate" && action == "b"))
    );
    assert!(events.iter().any(
        |e| matches!(e, TurnEvent::ToolResult { status, .. } if *status == ToolCallStatus::Ok)
    ));
    let Some(TurnEvent::Done(result)) = events.last() else {
        panic!("the stream ends with done: {events:?}");
    };
    let to_b = &result.tool_calls[0];
    assert_eq!(to_b.action, "b");
    assert_eq!(to_b.nested.len(), 2);
    assert_eq!(
        (to_b.nested[0].connector.as_str(), to_b.nested[0].status),
        ("wordpress", ToolCallStatus::Rejected)
    );
    let to_c = &to_b.nested[1];
    assert_eq!(
        (to_c.connector.as_str(), to_c.action.as_str()),
        ("delegate", "c")
    );
    assert_eq!(to_c.status, ToolCallStatus::Ok);
    assert!(to_c.nested.is_empty());
    let json = serde_json::to_value(result).unwrap();
    assert!(json["tool_calls"][0]["nested"][1].get("nested").is_none());

    let chains: Vec<usize> = team
        .delegate_events()
        .await
        .iter()
        .map(|e| e.3["chain"].as_array().unwrap().len())
        .collect();
    // B→C is recorded when it ends, before A→B does.
    assert_eq!(chains, [3, 2]);
}

#[tokio::test]
async fn the_handle_lists_delegation_tools_and_delegates_for_durable_tasks() {
    let team = Team::new(&["a", "b"]).await;
    let (a, b) = (team.id("a"), team.id("b"));
    team.grant("a", &["b"]).await;
    let tools = team.runtime.delegation_tools(team.tenant, a).await.unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].definition.name, "ask_b");
    assert_eq!((tools[0].target, tools[0].slug.as_str()), (b, "b"));
    assert!(
        team.runtime
            .delegation_tools(team.tenant, b)
            .await
            .unwrap()
            .is_empty()
    );

    team.model("b").push([ScriptStep::reply("From B.")]);
    let outcome = team
        .runtime
        .delegate(
            team.tenant,
            DelegationRequest::new(a, b, "Hello?").with_context("ctx"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.answer, "From B.");
    assert_eq!(outcome.chain.len(), 2);
    assert!(
        team.model("b").requests()[0]
            .messages
            .last()
            .unwrap()
            .content
            .contains("ctx")
    );

    // A per-grant limit counts the caller's earlier calls in the run.
    team.runtime
        .replace_delegates(
            team.tenant,
            a,
            vec![DelegateGrant {
                max_calls_per_run: Some(1),
                ..grant(b)
            }],
            None,
        )
        .await
        .unwrap();
    let second = DelegationRequest {
        prior_calls: 1,
        ..DelegationRequest::new(a, b, "Again?")
    };
    let err = team
        .runtime
        .delegate(team.tenant, second)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::Agent(AgentError::Tool(ToolError::CallLimit(_)))
    ));

    // A revoked grant fails the next call; an unknown caller is not found.
    team.runtime
        .replace_delegates(team.tenant, a, vec![], None)
        .await
        .unwrap();
    let err = team
        .runtime
        .delegate(team.tenant, DelegationRequest::new(a, b, "Still there?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ToolNotGranted);
    let err = team
        .runtime
        .delegate(
            team.tenant,
            DelegationRequest::new(AgentId::new(), b, "Who am I?"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Agent(AgentError::NotFound)));
    assert_eq!(team.model("b").requests().len(), 1);
}

#[tokio::test]
async fn grants_are_validated_and_follow_deleted_agents() {
    let team = Team::new(&["a", "b"]).await;
    let (a, b) = (team.id("a"), team.id("b"));
    let field = |e: RuntimeError| match e {
        RuntimeError::Agent(AgentError::Validation(v)) => (v.field, v.message),
        other => panic!("expected a validation error, got {other:?}"),
    };
    let own = team
        .runtime
        .replace_delegates(team.tenant, a, vec![grant(a)], None)
        .await
        .unwrap_err();
    assert_eq!(field(own).0, "delegates");
    let unknown = team
        .runtime
        .replace_delegates(team.tenant, a, vec![grant(AgentId::new())], None)
        .await
        .unwrap_err();
    let (name, message) = field(unknown);
    assert_eq!(name, "delegates");
    assert!(message.contains("no such agent"), "{message}");
    let twice = team
        .runtime
        .replace_delegates(team.tenant, a, vec![grant(b), grant(b)], None)
        .await
        .unwrap_err();
    assert_eq!(field(twice).0, "delegates");

    // Another tenant's agent reads exactly like one that does not exist.
    let other = TenantId(
        sqlx::query_scalar(
            "INSERT INTO tenants (slug, name) VALUES ('other', 'Other') RETURNING id",
        )
        .fetch_one(&team.db.owner)
        .await
        .unwrap(),
    );
    let mut foreign = new_agent("Foreign");
    foreign.model = Some("scripted-a:default".into());
    let foreign = team.runtime.create_agent(other, foreign).await.unwrap();
    let (_, message) = field(
        team.runtime
            .replace_delegates(team.tenant, a, vec![grant(foreign.id)], None)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("no such agent"), "{message}");

    // Created with delegates; deleting the target removes the grant.
    let mut input = new_agent("Manager");
    input.model = Some("scripted-a:default".into());
    input.delegates = vec![grant(b)];
    let manager = team.runtime.create_agent(team.tenant, input).await.unwrap();
    assert_eq!(manager.delegates, vec![grant(b)]);
    let listed = team.runtime.list_agents(team.tenant).await.unwrap();
    let listed = listed.iter().find(|s| s.id == manager.id).unwrap();
    assert_eq!(listed.delegates, vec![grant(b)]);
    team.runtime.delete_agent(team.tenant, b).await.unwrap();
    let manager = team
        .runtime
        .get_agent(team.tenant, manager.id)
        .await
        .unwrap();
    assert!(manager.delegates.is_empty());
}
