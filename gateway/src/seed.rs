//! Creating tenants from the command line, and the demo tenant `cargo xtask up` seeds.
//!
//! Runs as the application role inside the new tenant, so RLS checks these writes too.

use brain_auth::{Role, TenantId, password};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("a tenant with slug `{0}` already exists")]
    TenantExists(String),
    #[error(transparent)]
    Auth(#[from] brain_auth::AuthError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Rule(#[from] brain_automation::rules::RuleError),
    #[error(transparent)]
    Crew(#[from] brain_automation::crews::CrewError),
}

pub struct NewTenant<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub owner_email: &'a str,
    /// `None`: generate one and return it (shown once, never stored in the clear).
    pub owner_password: Option<&'a str>,
}

pub struct CreatedTenant {
    pub id: TenantId,
    pub owner_id: Uuid,
    pub owner_password: String,
}

impl std::fmt::Debug for CreatedTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTenant")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .finish_non_exhaustive()
    }
}

/// The demo agents: (name, slug, role, goal, backstory, temperature).
const DEMO_AGENTS: [(&str, &str, &str, &str, &str, f32); 3] = [
    (
        "Marketing Strategist",
        "marketing-strategist",
        "Marketing Strategist",
        "Turn business goals into campaign plans with clear channels, budgets and KPIs",
        "A senior strategist who has planned campaigns for agencies and in-house teams, \
         and who always ties a plan back to numbers the team can measure.",
        0.7,
    ),
    (
        "Content Creator",
        "content-creator",
        "Content Creator",
        "Write on-brand posts, emails and landing-page copy that convert",
        "A copywriter who follows the brand-voice guide to the letter and drafts content \
         ready for review.",
        0.9,
    ),
    (
        "Data Analyst",
        "data-analyst",
        "Data Analyst",
        "Explain campaign and sales numbers and recommend what to change",
        "An analyst who reads ad, CRM and shop data, states the facts first and flags \
         anything that looks wrong.",
        0.2,
    ),
];

/// Creates a tenant and its owner in one transaction.
pub async fn create_tenant(
    conn: &mut PgConnection,
    new: &NewTenant<'_>,
) -> Result<CreatedTenant, SeedError> {
    let mut tx = conn.begin().await?;
    let created = insert_tenant(&mut tx, new).await?;
    tx.commit().await?;
    Ok(created)
}

/// Inserts tenant + owner inside the caller's transaction and enters the new tenant.
async fn insert_tenant(
    tx: &mut PgConnection,
    new: &NewTenant<'_>,
) -> Result<CreatedTenant, SeedError> {
    let id = TenantId::new();
    let owner_id = Uuid::now_v7();
    let owner_password = new
        .owner_password
        .map_or_else(password::generate, str::to_owned);
    let hash = password::hash(&owner_password)?;
    brain_migrations::set_tenant(&mut *tx, id).await?;
    let inserted = sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)")
        .bind(id.0)
        .bind(new.slug)
        .bind(new.name)
        .execute(&mut *tx)
        .await;
    if let Err(e) = inserted {
        // Other tenants' rows are invisible under RLS, so a taken slug shows up only here.
        let unique = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "23505");
        return Err(if unique {
            SeedError::TenantExists(new.slug.to_owned())
        } else {
            e.into()
        });
    }
    sqlx::query("INSERT INTO users (id, tenant_id, email, password_hash) VALUES ($1, $2, $3, $4)")
        .bind(owner_id)
        .bind(id.0)
        .bind(new.owner_email.to_lowercase())
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(id.0)
        .bind(owner_id)
        .bind(Role::Owner.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(CreatedTenant {
        id,
        owner_id,
        owner_password,
    })
}

/// Seeds the `demo` tenant (owner `admin@demo.local`) with the three demo agents.
/// Returns `None` when it already exists: the password is printed only the first time.
pub async fn demo(conn: &mut PgConnection) -> Result<Option<CreatedTenant>, SeedError> {
    let new = NewTenant {
        slug: "demo",
        name: "Demo",
        owner_email: "admin@demo.local",
        owner_password: None,
    };
    let mut tx = conn.begin().await?;
    let created = match insert_tenant(&mut tx, &new).await {
        Ok(created) => created,
        Err(SeedError::TenantExists(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut ids = std::collections::HashMap::new();
    for (name, slug, role, goal, backstory, temperature) in DEMO_AGENTS {
        let id = Uuid::now_v7();
        ids.insert(slug, id);
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, name, slug, role, goal, backstory, temperature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(created.id.0)
        .bind(name)
        .bind(slug)
        .bind(role)
        .bind(goal)
        .bind(backstory)
        .bind(temperature)
        .execute(&mut *tx)
        .await?;
    }
    if let (Some(strategist), Some(creator), Some(analyst)) = (
        ids.get("marketing-strategist"),
        ids.get("content-creator"),
        ids.get("data-analyst"),
    ) {
        brain_automation::rules::RuleStore::create_in(
            &mut tx,
            created.id,
            weekend_report(*analyst),
        )
        .await?;
        brain_automation::crews::CrewStore::create_in(
            &mut tx,
            created.id,
            campaign_crew(*strategist, *creator, *analyst),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some(created))
}

/// The demo's crew: the Marketing Strategist manages the Content Creator and the Data Analyst.
pub fn campaign_crew(
    strategist: Uuid,
    creator: Uuid,
    analyst: Uuid,
) -> brain_automation::crews::CrewInput {
    use brain_automation::crews::{CrewInput, CrewTask, Process};
    CrewInput {
        name: "Campaign crew".to_owned(),
        members: vec![creator, analyst],
        process: Process::Hierarchical,
        manager_agent_id: Some(strategist),
        tasks: vec![
            CrewTask {
                description: "Review the latest campaign numbers and say what worked and what \
                              did not"
                    .to_owned(),
                expected_output: "Three findings, each with the number behind it".to_owned(),
                agent_id: Some(analyst),
            },
            CrewTask {
                description: "Draft the next campaign's launch post from the findings".to_owned(),
                expected_output: "A post of at most 150 words, on brand".to_owned(),
                agent_id: Some(creator),
            },
        ],
    }
}

/// The demo's example rule, disabled until someone connects Google Ads and WordPress and
/// turns it on: every Saturday at 08:00 (UTC) fetch last week's Google Ads campaign metrics,
/// have the Data Analyst summarise them, and save the summary as a WordPress draft.
pub fn weekend_report(analyst: Uuid) -> brain_automation::rules::RuleInput {
    use brain_automation::rules::{
        AgentTaskStep, ConnectorActionStep, RuleInput, Step, TriggerInput,
    };
    RuleInput {
        name: "Weekend report".to_owned(),
        enabled: false,
        trigger: TriggerInput {
            event: "schedule".to_owned(),
            cron: Some("0 8 * * 6".to_owned()),
            timezone: None,
            conditions: Vec::new(),
        },
        steps: vec![
            Step::ConnectorAction(ConnectorActionStep {
                connector: "google-ads".to_owned(),
                action: "get_campaign_metrics".to_owned(),
                args: serde_json::json!({"during": "LAST_7_DAYS"}),
            }),
            Step::AgentTask(AgentTaskStep {
                agent_id: analyst,
                input: "Write the weekend report on last week's Google Ads campaigns: what \
                        went well, what did not, and what to change next week. The campaign \
                        metrics (cost in micros): {{ steps.0.output | tojson }}"
                    .to_owned(),
            }),
            Step::ConnectorAction(ConnectorActionStep {
                connector: "wordpress".to_owned(),
                action: "create_post".to_owned(),
                args: serde_json::json!({
                    "title": "Weekend report",
                    "content": "{{ steps.1.output }}",
                    "status": "draft",
                }),
            }),
        ],
    }
}
