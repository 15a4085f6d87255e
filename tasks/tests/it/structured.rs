//! Agent tasks with an `output_schema`: the agent is asked for JSON, an answer that does not
//! fit is sent back with what was wrong, the output carries the checked value, and a task
//! whose answers never fit fails with `invalid_model_output` — on the real Temporal worker.

use brain_agents::providers::ChatRole;
use brain_agents::providers::scripted::ScriptStep;
use brain_auth::{Code, ErrorCode};
use brain_tasks::{NewTask, StartedTask, TaskError, TaskView};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::tasks::Tasks;

fn greeting() -> Value {
    json!({"type": "object", "properties": {"greeting": {"type": "string"}},
           "required": ["greeting"], "additionalProperties": false})
}

async fn start(t: &Tasks, agent: Uuid, schema: Value) -> Result<StartedTask, TaskError> {
    t.service
        .start_agent_task(
            t.tenant,
            agent,
            NewTask {
                input: "Greet Ada".into(),
                idempotency_key: None,
                callback_url: None,
                output_schema: Some(schema),
            },
        )
        .await
}

/// A task of `agent` with the greeting schema, its model answering `replies`, until it
/// reaches `status`.
async fn run(t: &Tasks, agent: Uuid, replies: &[&str], status: &str) -> TaskView {
    t.model.push(replies.iter().map(|r| ScriptStep::reply(*r)));
    let worker = t.worker().await;
    let id = start(t, agent, greeting()).await.unwrap().task_id;
    let task = t.wait(id, status, |task| task.status == status).await;
    worker.shutdown().await;
    task
}

/// The last user message of each model request.
fn asked(t: &Tasks) -> Vec<String> {
    t.model
        .requests()
        .iter()
        .map(|r| {
            r.messages
                .iter()
                .rev()
                .find(|m| m.role == ChatRole::User)
                .map(|m| m.content.clone())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn a_task_answer_that_does_not_fit_is_sent_back_and_the_checked_json_kept() {
    let t = Tasks::new().await;
    let agent = t.agent(vec![]).await;
    let replies = ["Hello Ada!", "```json\n{\"greeting\": \"Hello Ada\"}\n```"];
    let task = run(&t, agent, &replies, "succeeded").await;
    let output = task.output.unwrap();
    assert_eq!(output["json"], json!({"greeting": "Hello Ada"}));
    assert_eq!(output["reply"], r#"{"greeting":"Hello Ada"}"#);
    let asked = asked(&t);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].starts_with("Greet Ada") && asked[0].contains("JSON Schema"));
    assert!(
        asked[1].starts_with("That answer cannot be used: the answer is not valid JSON"),
        "{}",
        asked[1]
    );
}

#[tokio::test]
async fn answers_that_never_fit_fail_the_task_and_a_bad_schema_is_refused() {
    let t = Tasks::new().await;
    let agent = t.agent(vec![]).await;
    let replies = [
        "{\"greeting\": 1}",
        "{\"greeting\": 2}",
        "{\"greeting\": 3}",
    ];
    let task = run(&t, agent, &replies, "failed").await;
    let error = task.error.unwrap();
    assert!(
        error.starts_with("invalid_model_output: after 3 answers"),
        "{error}"
    );
    assert!(error.contains("/greeting"), "{error}");
    assert_eq!(t.model.requests().len(), 3);

    let refused = start(&t, agent, json!({"type": "no-such-type"}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ValidationFailed);
    assert!(refused.to_string().contains("output_schema"), "{refused}");
}

#[tokio::test]
async fn a_task_whose_steps_run_out_after_an_answer_was_sent_back_fails_as_unusable() {
    let t = Tasks::new().await;
    let agent = t.agent(vec![]).await;
    // Four refused calls, then two answers that do not fit: the sixth step is the last.
    let refused_call = || ScriptStep::call("wordpress__create_post", json!({"title": "Hi"}));
    t.model.push((0..4).map(|_| refused_call()));
    t.model.push([
        ScriptStep::reply("Hello Ada!"),
        ScriptStep::reply("{\"greeting\": 2}"),
    ]);
    let worker = t.worker().await;
    let id = start(&t, agent, greeting()).await.unwrap().task_id;
    let task = t.wait(id, "failed", |task| task.status == "failed").await;
    worker.shutdown().await;
    let error = task.error.unwrap();
    assert!(
        error.starts_with("invalid_model_output: after 2 answers"),
        "{error}"
    );
    assert!(error.contains("/greeting"), "{error}");
    assert_eq!(t.model.requests().len(), 6);
}
