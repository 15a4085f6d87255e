//! Crashes: a panicking turn restarts its agent, keeps committed turns, never touches other
//! tenants, and repeated failures mark the agent degraded.

use brain_agents::providers::scripted::ScriptStep;
use brain_agents::spec::{AgentHealth, AgentPatch};
use brain_agents::{AgentError, TurnInput};
use brain_runtime::RuntimeError;

use crate::harness::{Harness, eventually, say};

#[tokio::test]
async fn a_panicking_turn_restarts_the_agent_with_its_conversation_intact() {
    let h = Harness::new(vec![
        ScriptStep::reply("Remembered."),
        ScriptStep::Panic("injected".into()),
        ScriptStep::reply("You said pineapple."),
    ])
    .await;
    let t = h.tenant("acme").await;
    let agent = h.agent(t, "Fragile").await;
    let first = h
        .runtime
        .chat(t, agent.id, say("The code word is pineapple."))
        .await
        .unwrap();
    let continue_with = |message: &str| TurnInput {
        message: message.into(),
        conversation_id: Some(first.conversation_id),
        ..TurnInput::default()
    };

    let err = h
        .runtime
        .chat(t, agent.id, continue_with("crash now"))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::TurnCrashed));
    eventually("the supervisor to restart the agent", || async {
        h.metric("brain_agent_actor_restarts_total") == 1.0
    })
    .await;
    let status = h.runtime.status(t, agent.id).await.unwrap();
    assert!(status.running);
    assert_eq!(status.health, AgentHealth::Active);
    assert_eq!(status.recent_restarts, 1);

    let third = h
        .runtime
        .chat(t, agent.id, continue_with("What was the code word?"))
        .await
        .unwrap();
    assert_eq!(third.reply, "You said pineapple.");
    let seen = &h.model.requests()[2].messages;
    assert_eq!(seen[1].content, "The code word is pineapple.");
    assert_eq!(seen[2].content, "Remembered.");
    let stored = h
        .runtime
        .list_messages(t, first.conversation_id)
        .await
        .unwrap();
    let contents: Vec<&str> = stored.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        contents,
        vec![
            "The code word is pineapple.",
            "Remembered.",
            "What was the code word?",
            "You said pineapple."
        ],
        "the crashed turn left nothing behind"
    );
}

#[tokio::test]
async fn one_tenants_crashing_agent_degrades_alone() {
    // max_restarts is 2: the third failure in the window degrades the agent.
    let h = Harness::new(vec![]).await;
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    let fragile = h.agent(acme, "Fragile").await;
    let steady = h.agent(other, "Steady").await;

    for round in 0..3 {
        h.model.push([ScriptStep::Panic(format!("crash {round}"))]);
        let err = h
            .runtime
            .chat(acme, fragile.id, say("crash"))
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::TurnCrashed), "{err:?}");
        // Meanwhile the other tenant's agent works.
        h.model.push([ScriptStep::reply("fine")]);
        let ok = h
            .runtime
            .chat(other, steady.id, say("hello"))
            .await
            .unwrap();
        assert_eq!(ok.reply, "fine");
        if round < 2 {
            eventually("a restart", || async {
                h.runtime
                    .status(acme, fragile.id)
                    .await
                    .is_ok_and(|s| s.running)
            })
            .await;
        }
    }

    eventually("the agent to be marked degraded", || async {
        h.runtime
            .get_agent(acme, fragile.id)
            .await
            .is_ok_and(|a| a.status == AgentHealth::Degraded)
    })
    .await;
    let err = h
        .runtime
        .chat(acme, fragile.id, say("hello?"))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Agent(AgentError::Degraded)));
    let status = h.runtime.status(acme, fragile.id).await.unwrap();
    assert_eq!(status.health, AgentHealth::Degraded);
    assert!(!status.running);
    assert_eq!(h.metric("brain_agent_actor_restarts_total"), 2.0);

    // The other tenant never noticed.
    let steady_status = h.runtime.status(other, steady.id).await.unwrap();
    assert_eq!(steady_status.health, AgentHealth::Active);
    assert_eq!(steady_status.recent_restarts, 0);
    assert_eq!(h.runtime.running_tenants().await.unwrap(), 2);

    // An admin's fix returns the agent to service.
    let patch = AgentPatch {
        backstory: Some("calmer now".into()),
        ..AgentPatch::default()
    };
    let fixed = h
        .runtime
        .update_agent(acme, fragile.id, patch, None)
        .await
        .unwrap();
    assert_eq!(fixed.status, AgentHealth::Active);
    h.model.push([ScriptStep::reply("back")]);
    let back = h
        .runtime
        .chat(acme, fragile.id, say("are you there?"))
        .await
        .unwrap();
    assert_eq!(back.reply, "back");
}
