//! The rule store against the real Postgres: round trips, validation, and tenant isolation
//! (filters and row-level security).

use brain_agents::AgentStore;
use brain_auth::TenantId;
use brain_auth::{Code, ErrorCode};
use brain_automation::rules::{
    RuleError, RuleInput, RulePatch, RuleStore, TriggerInput, TriggerKind,
};
use brain_migrations::testing::TestDb;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::new_agent;

struct Fixture {
    db: TestDb,
    rules: RuleStore,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDb::new().await.unwrap();
        let rules = RuleStore::new(db.app.clone());
        Self { db, rules }
    }

    async fn tenant(&self, slug: &str) -> TenantId {
        TenantId(
            sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id")
                .bind(slug)
                .fetch_one(&self.db.owner)
                .await
                .unwrap(),
        )
    }

    async fn agent(&self, tenant: TenantId, name: &str) -> Uuid {
        AgentStore::new(self.db.app.clone())
            .create(tenant, new_agent(name))
            .await
            .unwrap()
            .id
            .0
    }
}

fn rule(name: &str, event: &str) -> RuleInput {
    input(json!({
        "name": name,
        "trigger": {
            "event": event,
            "conditions": [{"field": "properties.lead_score", "op": "gt", "value": 50}]
        },
        "steps": [
            {"connector_action": {
                "connector": "slack",
                "action": "post_message",
                "args": {"channel": "C0123456789", "text": "Hot lead: {{ event.email }}"}
            }},
            {"approval": {"role": "admin"}}
        ]
    }))
}

fn input(value: Value) -> RuleInput {
    serde_json::from_value(value).unwrap()
}

fn patch(value: Value) -> RulePatch {
    serde_json::from_value(value).unwrap()
}

fn agent_rule(agent: Uuid) -> RuleInput {
    input(json!({
        "name": "Summarise",
        "trigger": {"event": "manual"},
        "steps": [{"agent_task": {"agent_id": agent, "input": "Summarise {{ event.text }}"}}]
    }))
}

#[track_caller]
fn assert_invalid(result: Result<impl std::fmt::Debug, RuleError>, expected_field: &str) -> String {
    match result {
        Err(RuleError::Validation(e)) => {
            assert_eq!(e.field, expected_field, "{}", e.message);
            e.message
        }
        other => panic!("expected a validation error on {expected_field}, got {other:?}"),
    }
}

#[tokio::test]
async fn create_list_get_update_delete_round_trip() {
    let f = Fixture::new().await;
    let t = f.tenant("acme").await;

    let first = f
        .rules
        .create(t, rule("Hot leads", "hubspot.contact.updated"))
        .await
        .unwrap();
    assert_eq!(first.name, "Hot leads");
    assert!(first.enabled);
    assert_eq!(
        TriggerInput::from(first.trigger.clone()),
        rule("x", "hubspot.contact.updated").trigger
    );
    assert_eq!(first.steps.len(), 2);
    assert_eq!(first.created_at, first.updated_at);
    assert_eq!(first.id.get_version_num(), 7, "ids are time-ordered");

    let second = f
        .rules
        .create(t, rule("Orders", "shopify.orders/create"))
        .await
        .unwrap();
    let listed = f.rules.list(t).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![second.id, first.id],
        "newest first"
    );
    assert_eq!(f.rules.get(t, first.id).await.unwrap(), first);

    let updated = f
        .rules
        .update(
            t,
            first.id,
            patch(json!({"name": "Hot leads (paused)", "enabled": false})),
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Hot leads (paused)");
    assert!(!updated.enabled);
    assert_eq!(
        (&updated.trigger, &updated.steps),
        (&first.trigger, &first.steps)
    );
    assert_eq!(updated.created_at, first.created_at);
    assert!(updated.updated_at > first.updated_at);
    assert_eq!(f.rules.get(t, first.id).await.unwrap(), updated);

    let scheduled = f
        .rules
        .update(
            t,
            first.id,
            patch(json!({"trigger": {"event": "schedule", "cron": "0 8 * * SAT", "timezone": "Europe/Berlin"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        scheduled.trigger.kind,
        TriggerKind::Schedule {
            cron: "0 8 * * SAT".into(),
            timezone: Some("Europe/Berlin".into())
        }
    );
    assert!(
        !scheduled.enabled,
        "fields the patch leaves out keep their values"
    );

    let deleted = f.rules.delete(t, first.id).await.unwrap();
    assert_eq!(deleted, scheduled);
    assert!(matches!(
        f.rules.get(t, first.id).await,
        Err(RuleError::NotFound)
    ));
    assert!(matches!(
        f.rules.delete(t, first.id).await,
        Err(RuleError::NotFound)
    ));
    assert!(matches!(
        f.rules.update(t, first.id, RulePatch::default()).await,
        Err(RuleError::NotFound)
    ));
    assert_eq!(f.rules.list(t).await.unwrap(), vec![second]);
}

#[tokio::test]
async fn validation_errors_name_the_field_and_store_nothing() {
    let f = Fixture::new().await;
    let t = f.tenant("acme").await;

    let mut bad_cron = rule("Weekly", "schedule");
    bad_cron.trigger.conditions.clear();
    bad_cron.trigger.cron = Some("0 24 * * *".into());
    let message = assert_invalid(f.rules.create(t, bad_cron).await, "trigger.cron");
    assert_eq!(message, "hour: 24 is out of range 0-23");

    let mut no_cron = rule("Weekly", "schedule");
    no_cron.trigger.conditions.clear();
    assert_invalid(f.rules.create(t, no_cron).await, "trigger.cron");

    let unknown_action = input(json!({
        "name": "Fax",
        "trigger": {"event": "manual"},
        "steps": [{"connector_action": {"connector": "slack", "action": "send_fax", "args": {}}}]
    }));
    assert_invalid(
        f.rules.create(t, unknown_action).await,
        "steps.0.connector_action.action",
    );

    let bad_template = input(json!({
        "name": "Typo",
        "trigger": {"event": "manual"},
        "steps": [
            {"approval": {"role": "editor"}},
            {"connector_action": {"connector": "slack", "action": "post_message",
                "args": {"channel": "C1", "text": "{{ event.email"}}}
        ]
    }));
    assert_invalid(
        f.rules.create(t, bad_template).await,
        "steps.1.connector_action.args.text",
    );
    assert!(f.rules.list(t).await.unwrap().is_empty());

    // A patch is validated together with the stored rule, and a refused one changes nothing.
    let stored = f
        .rules
        .create(t, rule("Hot leads", "hubspot.contact.updated"))
        .await
        .unwrap();
    assert_invalid(
        f.rules
            .update(
                t,
                stored.id,
                patch(json!({"trigger": {"event": "schedule"}})),
            )
            .await,
        "trigger.cron",
    );
    assert_invalid(
        f.rules
            .update(t, stored.id, patch(json!({"name": ""})))
            .await,
        "name",
    );
    assert_invalid(
        f.rules
            .update(t, stored.id, patch(json!({"steps": []})))
            .await,
        "steps",
    );
    assert_eq!(f.rules.get(t, stored.id).await.unwrap(), stored);
}

#[tokio::test]
async fn agent_tasks_must_name_an_agent_of_the_same_tenant() {
    let f = Fixture::new().await;
    let a = f.tenant("acme").await;
    let b = f.tenant("globex").await;
    let acme_agent = f.agent(a, "Writer").await;

    let message = assert_invalid(
        f.rules.create(b, agent_rule(acme_agent)).await,
        "steps.0.agent_task.agent_id",
    );
    assert_eq!(message, "no such agent");
    assert_invalid(
        f.rules.create(a, agent_rule(Uuid::now_v7())).await,
        "steps.0.agent_task.agent_id",
    );

    let own = f.rules.create(a, agent_rule(acme_agent)).await.unwrap();
    assert_eq!(own.steps, agent_rule(acme_agent).steps);

    // Changing the steps re-checks the agents, at the index of the offending step.
    let b_rule = f
        .rules
        .create(b, rule("Hot leads", "hubspot.contact.updated"))
        .await
        .unwrap();
    let steps = json!([
        {"approval": {"role": "admin"}},
        {"agent_task": {"agent_id": acme_agent, "input": "Hello"}}
    ]);
    assert_invalid(
        f.rules
            .update(b, b_rule.id, patch(json!({"steps": steps})))
            .await,
        "steps.1.agent_task.agent_id",
    );
}

#[tokio::test]
async fn rules_of_one_tenant_do_not_exist_for_another() {
    let f = Fixture::new().await;
    let a = f.tenant("acme").await;
    let b = f.tenant("globex").await;
    let rule_a = f
        .rules
        .create(a, rule("Hot leads", "hubspot.contact.updated"))
        .await
        .unwrap();

    assert!(matches!(
        f.rules.get(b, rule_a.id).await,
        Err(RuleError::NotFound)
    ));
    assert!(matches!(
        f.rules
            .update(b, rule_a.id, patch(json!({"enabled": false})))
            .await,
        Err(RuleError::NotFound)
    ));
    assert!(matches!(
        f.rules.delete(b, rule_a.id).await,
        Err(RuleError::NotFound)
    ));
    assert!(f.rules.list(b).await.unwrap().is_empty());
    assert!(
        f.rules
            .enabled_for_event(b, "hubspot.contact.updated")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.rules.get(a, rule_a.id).await.unwrap(), rule_a);

    // Row-level security hides the row even from a query that forgets the tenant filter,
    // and refuses to write a row into another tenant.
    let mut tx = brain_migrations::begin_tenant(&f.db.app, b).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM rules")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 0);
    let err = RuleStore::create_in(&mut tx, a, rule("Smuggled", "manual"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    drop(tx);
    assert_eq!(f.rules.list(a).await.unwrap(), vec![rule_a]);
}

#[tokio::test]
async fn enabled_for_event_returns_only_enabled_rules_of_that_event() {
    let f = Fixture::new().await;
    let a = f.tenant("acme").await;
    let b = f.tenant("globex").await;
    let event = "hubspot.contact.updated";

    let first = f.rules.create(a, rule("First", event)).await.unwrap();
    let mut disabled = rule("Disabled", event);
    disabled.enabled = false;
    f.rules.create(a, disabled).await.unwrap();
    f.rules
        .create(a, rule("Orders", "shopify.orders/create"))
        .await
        .unwrap();
    f.rules
        .create(a, rule("Changes", "hubspot.contact.propertyChange"))
        .await
        .unwrap();
    f.rules
        .create(b, rule("Other tenant", event))
        .await
        .unwrap();
    let second = f.rules.create(a, rule("Second", event)).await.unwrap();

    let found = f.rules.enabled_for_event(a, event).await.unwrap();
    assert_eq!(found, vec![first.clone(), second.clone()], "oldest first");

    let paused = f
        .rules
        .update(a, first.id, patch(json!({"enabled": false})))
        .await
        .unwrap();
    assert!(!paused.enabled);
    assert_eq!(
        f.rules.enabled_for_event(a, event).await.unwrap(),
        vec![second]
    );

    let orders = f
        .rules
        .enabled_for_event(a, "shopify.orders/create")
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].name, "Orders");
    assert!(
        f.rules
            .enabled_for_event(a, "stripe.charge.succeeded")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_in_transaction_variants_roll_back_with_the_caller() {
    let f = Fixture::new().await;
    let t = f.tenant("acme").await;

    // The caller's next step (creating the Temporal schedule, say) failed: nothing is kept.
    let mut tx = f.rules.begin(t).await.unwrap();
    let created = RuleStore::create_in(&mut tx, t, rule("Hot leads", "hubspot.contact.updated"))
        .await
        .unwrap();
    assert_eq!(
        RuleStore::get_in(&mut tx, t, created.id).await.unwrap(),
        created
    );
    tx.rollback().await.unwrap();
    assert!(matches!(
        f.rules.get(t, created.id).await,
        Err(RuleError::NotFound)
    ));

    let mut tx = f.rules.begin(t).await.unwrap();
    let kept = RuleStore::create_in(&mut tx, t, rule("Hot leads", "hubspot.contact.updated"))
        .await
        .unwrap();
    let changed = RuleStore::update_in(&mut tx, t, kept.id, patch(json!({"name": "Renamed"})))
        .await
        .unwrap();
    assert!(
        changed.updated_at > kept.updated_at,
        "a change in the same transaction shows"
    );
    tx.commit().await.unwrap();
    assert_eq!(f.rules.get(t, kept.id).await.unwrap(), changed);

    let mut tx = f.rules.begin(t).await.unwrap();
    let deleted = RuleStore::delete_in(&mut tx, t, kept.id).await.unwrap();
    assert_eq!(deleted, changed);
    tx.rollback().await.unwrap();
    assert_eq!(f.rules.get(t, kept.id).await.unwrap(), changed);

    let mut tx = f.rules.begin(t).await.unwrap();
    RuleStore::update_in(&mut tx, t, kept.id, patch(json!({"enabled": false})))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(f.rules.get(t, kept.id).await.unwrap().enabled);
}
