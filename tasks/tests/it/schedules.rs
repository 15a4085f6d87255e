//! Schedule rules as Temporal schedules: created with the rule, gone with it.

use std::time::Duration;

use brain_automation::rules::RuleInput;
use brain_migrations::testing::setting;
use serde_json::json;

use crate::tasks::Tasks;

fn temporal_cli(args: &[&str]) -> std::process::Output {
    let cli = setting("BRAIN_TEMPORAL_CLI").expect("BRAIN_TEMPORAL_CLI (written by cargo xtask)");
    std::process::Command::new(cli)
        .args(args)
        .args(["--address", &setting("TEMPORAL_ADDRESS").unwrap()])
        .args(["--namespace", "default"])
        .output()
        .unwrap()
}

/// Whether Temporal holds a schedule with this id, read from the schedule itself (strongly
/// consistent, unlike `schedule list`).
fn temporal_has_schedule(id: &str) -> bool {
    let out = temporal_cli(&["schedule", "describe", "--schedule-id", id]);
    if out.status.success() {
        return true;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.to_lowercase().contains("not found"),
        "temporal schedule describe failed: {stderr}"
    );
    false
}

/// Waits until `temporal schedule list` shows (or no longer shows) the schedule. The list reads
/// Temporal's visibility store, which trails a create or delete by up to a few seconds.
async fn listed_eventually(id: &str, wanted: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut listed = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let out = temporal_cli(&["schedule", "list", "--output", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        listed = items
            .iter()
            .filter_map(|i| i.get("scheduleId").or_else(|| i.get("schedule_id")))
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if listed.iter().any(|l| l == id) == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "`temporal schedule list` never {} {id}: {listed:?}",
        if wanted { "showed" } else { "dropped" }
    );
}

#[tokio::test]
async fn a_schedule_rule_appears_in_temporal_and_disappears_when_deleted() {
    let t = Tasks::new().await;
    let rule: RuleInput = serde_json::from_value(json!({
        "name": "Weekly digest",
        "trigger": {"event": "schedule", "cron": "0 8 * * 6"},
        "steps": [{"connector_action": {"connector": "hubspot", "action": "create_contact",
                    "args": {"email": "digest@example.com"}}}],
    }))
    .unwrap();
    let rule = t.service.create_rule(t.tenant, rule).await.unwrap();
    let id = format!("rule-{}", rule.id);
    assert!(temporal_has_schedule(&id));
    listed_eventually(&id, true).await;

    // Disabling removes it; enabling brings it back.
    let patch = serde_json::from_value(json!({"enabled": false})).unwrap();
    t.service
        .update_rule(t.tenant, rule.id, patch)
        .await
        .unwrap();
    assert!(!temporal_has_schedule(&id));
    let patch = serde_json::from_value(json!({"enabled": true})).unwrap();
    t.service
        .update_rule(t.tenant, rule.id, patch)
        .await
        .unwrap();
    assert!(temporal_has_schedule(&id));

    t.service.delete_rule(t.tenant, rule.id).await.unwrap();
    assert!(!temporal_has_schedule(&id));
    listed_eventually(&id, false).await;
}
