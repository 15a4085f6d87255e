//! Live config updates, responsiveness during a long turn, streaming, persistence across
//! runtime restarts, idle tenants, budgets and metrics.

use brain_auth::{Code, ErrorCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brain_agents::providers::scripted::ScriptStep;
use brain_agents::spec::{AgentPatch, Budget};
use brain_agents::{AgentError, ProviderRegistry, TurnEvent, TurnInput};
use brain_runtime::{NoToolSource, RuntimeConfig, RuntimeError};
use futures::StreamExt;

use crate::harness::{Harness, fast_config, runtime, say};

#[tokio::test]
async fn a_config_update_reaches_the_running_actor_without_a_restart() {
    let h = Harness::new(vec![ScriptStep::reply("one"), ScriptStep::reply("two")]).await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Writer").await;

    h.runtime.chat(t, agent.id, say("first")).await.unwrap();
    let before = h.runtime.status(t, agent.id).await.unwrap();
    assert!(before.running);
    assert_eq!(before.version, 1);

    let patch = AgentPatch {
        temperature: Some(1.5),
        goal: Some("sell more socks".into()),
        ..AgentPatch::default()
    };
    let updated = h
        .runtime
        .update_agent(t, agent.id, patch, Some(1))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);

    h.runtime.chat(t, agent.id, say("second")).await.unwrap();
    let requests = h.model.requests();
    assert_eq!(requests[0].temperature, 0.2);
    assert_eq!(requests[1].temperature, 1.5);
    assert!(!requests[0].messages[0].content.contains("sell more socks"));
    assert!(
        requests[1].messages[0]
            .content
            .contains("Your goal: sell more socks")
    );

    let after = h.runtime.status(t, agent.id).await.unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.turns_completed, 2, "same actor, not a restarted one");
    assert_eq!(h.metric("brain_agent_actor_restarts_total"), 0.0);
}

#[tokio::test]
async fn status_and_updates_are_answered_during_a_long_turn() {
    let h = Harness::new(vec![ScriptStep::Slow(
        Duration::from_secs(3),
        Box::new(ScriptStep::reply("finally")),
    )])
    .await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Slow").await;
    let runtime = h.runtime.clone();
    let id = agent.id;
    let turn = tokio::spawn(async move { runtime.chat(t, id, say("take your time")).await });

    crate::harness::eventually("the turn to start", || async {
        h.runtime.status(t, id).await.unwrap().turns_in_progress == 1
    })
    .await;
    let asked = Instant::now();
    let status = h.runtime.status(t, id).await.unwrap();
    assert_eq!(status.turns_in_progress, 1);
    let patch = AgentPatch {
        backstory: Some("patient".into()),
        ..AgentPatch::default()
    };
    h.runtime.update_agent(t, id, patch, None).await.unwrap();
    assert_eq!(h.runtime.status(t, id).await.unwrap().version, 2);
    // Answered while the model call still sleeps (it takes 3 s).
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert!(!turn.is_finished());

    let result = turn.await.unwrap().unwrap();
    assert_eq!(result.reply, "finally");
}

#[tokio::test]
async fn a_streamed_turn_ends_with_done_carrying_the_result() {
    let h = Harness::new(vec![ScriptStep::reply("Hello there, marketer.")]).await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Streamer").await;
    let events: Vec<TurnEvent> = h
        .runtime
        .chat_stream(t, agent.id, say("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    let names: Vec<&str> = events.iter().map(TurnEvent::name).collect();
    assert_eq!(names, vec!["token", "token", "token", "done"]);
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Token { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let TurnEvent::Done(result) = events.last().unwrap() else {
        panic!("no done event");
    };
    assert_eq!(text, result.reply);
    assert_eq!(result.reply, "Hello there, marketer.");
}

#[tokio::test]
async fn a_committed_turn_survives_a_runtime_restart() {
    let h = Harness::new(vec![ScriptStep::reply("Noted: blue.")]).await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Memory").await;
    let first = h
        .runtime
        .chat(t, agent.id, say("My favourite colour is blue."))
        .await
        .unwrap();
    h.runtime.shutdown().await;

    // A new process: a new tree and provider on the same database.
    let model =
        brain_agents::providers::scripted::ScriptedProvider::new([ScriptStep::reply("Blue.")]);
    let (second_runtime, _) = runtime(
        &h.db,
        &model,
        ProviderRegistry::new(),
        Arc::new(NoToolSource),
        fast_config(),
    )
    .await;
    let second = second_runtime
        .chat(
            t,
            agent.id,
            TurnInput {
                message: "What is my favourite colour?".into(),
                conversation_id: Some(first.conversation_id),
                ..TurnInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.conversation_id, first.conversation_id);
    let seen = &model.requests()[0].messages;
    assert_eq!(seen[1].content, "My favourite colour is blue.");
    assert_eq!(seen[2].content, "Noted: blue.");
    let messages = second_runtime
        .list_messages(t, first.conversation_id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 4);
    let conversations = second_runtime
        .list_conversations(t, agent.id)
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
}

#[tokio::test]
async fn an_idle_tenant_supervisor_stops_and_comes_back_on_demand() {
    let config = RuntimeConfig {
        tenant_idle_timeout: Duration::from_millis(150),
        idle_check_interval: Duration::from_millis(30),
        ..fast_config()
    };
    let h = Harness::with(
        vec![ScriptStep::reply("a"), ScriptStep::reply("b")],
        Arc::new(NoToolSource),
        config,
    )
    .await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Sleepy").await;
    h.runtime.chat(t, agent.id, say("one")).await.unwrap();
    assert_eq!(h.runtime.running_tenants().await.unwrap(), 1);
    crate::harness::eventually("the tenant to go idle", || async {
        h.runtime.running_tenants().await.unwrap() == 0
    })
    .await;
    // Its agent actors stop with it.
    crate::harness::eventually("the agent actors to stop", || async {
        h.metric("brain_agent_actors") == 0.0
    })
    .await;
    let reply = h.runtime.chat(t, agent.id, say("two")).await.unwrap();
    assert_eq!(reply.reply, "b");
}

/// Chats reach a running actor without asking the tree; they still count as the tenant's
/// activity, and a deleted agent's actor gets no turn even before its supervisor stops it.
#[tokio::test]
async fn turns_sent_straight_to_a_running_actor_keep_its_tenant_up_until_the_agent_is_deleted() {
    let config = RuntimeConfig {
        tenant_idle_timeout: Duration::from_millis(200),
        idle_check_interval: Duration::from_millis(20),
        ..fast_config()
    };
    let h = Harness::with(
        vec![ScriptStep::reply("ok"); 12],
        Arc::new(NoToolSource),
        config,
    )
    .await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Busy").await;
    let started = Instant::now();
    for i in 0..10 {
        let reply = h.runtime.chat(t, agent.id, say(&format!("turn {i}"))).await;
        assert_eq!(reply.unwrap().reply, "ok");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(started.elapsed() > Duration::from_millis(500));
    assert_eq!(h.runtime.running_tenants().await.unwrap(), 1);
    // One actor served every turn: none was stopped and started again.
    assert_eq!(h.metric("brain_agent_actors"), 1.0);

    h.runtime.delete_agent(t, agent.id).await.unwrap();
    let err = h
        .runtime
        .chat(t, agent.id, say("still there?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn budget_and_unknown_agents_surface_as_typed_errors() {
    let h = Harness::new(vec![ScriptStep::reply(
        "a reply that costs more than the tiny budget allows",
    )])
    .await;
    let t = h.tenant("acme").await;
    let mut input = crate::harness::new_agent("Thrifty");
    input.budget = Budget {
        max_tokens_per_day: Some(5),
    };
    let agent = h.runtime.create_agent(t, input).await.unwrap();
    h.runtime.chat(t, agent.id, say("hi")).await.unwrap();
    let err = h.runtime.chat(t, agent.id, say("again")).await.unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::Agent(AgentError::BudgetExhausted)
    ));
    assert_eq!(err.code(), Code::BudgetExhausted);

    // Streaming reports the same failure as its only event.
    let events: Vec<TurnEvent> = h
        .runtime
        .chat_stream(t, agent.id, say("and again"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(matches!(&events[..], [TurnEvent::Error { code, .. }] if code == "budget_exhausted"));

    let missing = brain_agents::AgentId::new();
    let err = h.runtime.chat(t, missing, say("hi")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Another tenant's agent is just as missing.
    let other = h.tenant("other").await;
    let err = h
        .runtime
        .chat(other, agent.id, say("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    assert_eq!(h.metric("brain_agent_turns_total"), 3.0);
    assert!(h.metric("brain_agent_tokens_total") > 0.0);
    assert_eq!(h.metric("brain_agent_mailbox_depth"), 0.0);
}

#[tokio::test]
async fn turns_of_one_conversation_run_in_order_while_others_run_alongside() {
    let h = Harness::new(vec![ScriptStep::reply("Hi.")]).await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Orderly").await;
    let first = h.runtime.chat(t, agent.id, say("Hello")).await.unwrap();
    let in_conversation = |message: &str| TurnInput {
        message: message.into(),
        conversation_id: Some(first.conversation_id),
        ..TurnInput::default()
    };
    h.model.push([
        ScriptStep::Slow(
            Duration::from_millis(600),
            Box::new(ScriptStep::reply("Slow answer.")),
        ),
        ScriptStep::reply("Unrelated answer."),
        ScriptStep::reply("Second answer."),
    ]);
    let slow = {
        let runtime = h.runtime.clone();
        let input = in_conversation("slow question");
        tokio::spawn(async move { runtime.chat(t, agent.id, input).await })
    };
    crate::harness::eventually("the slow turn to reach the model", || async {
        h.model.requests().len() == 2
    })
    .await;
    assert_eq!(
        h.runtime
            .status(t, agent.id)
            .await
            .unwrap()
            .turns_in_progress,
        1
    );
    let queued = {
        let runtime = h.runtime.clone();
        let input = in_conversation("second question");
        tokio::spawn(async move { runtime.chat(t, agent.id, input).await })
    };
    crate::harness::eventually("the second turn to queue", || async {
        h.runtime.status(t, agent.id).await.unwrap().turns_queued == 1
    })
    .await;
    // A new conversation is not held up by the busy one.
    let other = h.runtime.chat(t, agent.id, say("unrelated")).await.unwrap();
    assert_eq!(other.reply, "Unrelated answer.");
    assert!(!slow.is_finished());

    assert_eq!(slow.await.unwrap().unwrap().reply, "Slow answer.");
    assert_eq!(queued.await.unwrap().unwrap().reply, "Second answer.");
    // The queued turn saw the slow turn's messages.
    let last = h.model.requests().pop().unwrap();
    let contents: Vec<&str> = last.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        &contents[1..],
        &[
            "Hello",
            "Hi.",
            "slow question",
            "Slow answer.",
            "second question"
        ]
    );
}
