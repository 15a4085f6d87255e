//! `brain`: serve the API, auth service and portal; migrate; create tenants.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use brain_gateway::config::Config;
use brain_gateway::seed;
use brain_gateway::serve::{self, Service};
use clap::{Parser, Subcommand};
use sqlx::{ConnectOptions, postgres::PgConnectOptions};

#[derive(Parser)]
#[command(name = "brain", version, about = "Brain: a multi-agent AI runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (:8000), auth service (:8009) and portal (:3003), or only one.
    Serve {
        #[arg(value_enum)]
        service: Option<Service>,
    },
    /// Apply pending database migrations (as BRAIN_MIGRATE_DATABASE_URL, else DATABASE_URL).
    Migrate,
    /// Create the demo tenant with its owner and three agents (does nothing if it exists).
    Seed,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Agent-quality evaluation suites (runs the `brain-eval` program built beside `brain`).
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Chat with an agent in the terminal (streams tokens; an empty line or Ctrl-D ends).
    Chat {
        /// The agent's slug.
        agent: String,
        /// The tenant's slug.
        #[arg(long, default_value = "demo")]
        tenant: String,
    },
    /// Ingest files (PDF, .txt, .md) into a knowledge collection, created if missing.
    Ingest {
        /// Files to ingest: PDF, .txt or .md.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The collection's name.
        #[arg(long)]
        collection: String,
        /// The tenant's slug.
        #[arg(long, default_value = "demo")]
        tenant: String,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Run suites (default: all) and write results.json, report.md and scores.svg.
    Run {
        suites: Vec<String>,
        /// `provider:model`, e.g. `local:default` or `openai:gpt-4o-mini`.
        #[arg(long)]
        model: Option<String>,
        /// Output folder (default `.brain/evals/`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chains and name the first broken link (exit status 1 if any).
    Verify {
        /// Only this tenant (slug or id); default: every tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and its owner; prints the owner's password once.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("brain: {e}");
            return ExitCode::from(2);
        }
    };
    // Lives until the runtime is gone, then sends the spans left.
    let _telemetry = brain_gateway::telemetry::init(&config);
    brain_gateway::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("brain: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brain: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { service } => {
            let services = match service {
                Some(one) => vec![one],
                None => Service::ALL.to_vec(),
            };
            serve::run(&config, &services).await
        }
        Command::Migrate => {
            let url = config.require_migrate_database_url()?;
            let pool = sqlx::PgPool::connect(url)
                .await
                .context("connecting to Postgres")?;
            brain_migrations::run(&pool).await.context("migrating")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed => {
            let mut conn = app_connection(&config).await?;
            match seed::demo(&mut conn).await? {
                Some(created) => println!(
                    "seeded tenant `demo` ({}): sign in as admin@demo.local with password {} \
                     (shown once)",
                    created.id, created.owner_password
                ),
                None => println!("tenant `demo` already exists; nothing to seed"),
            }
            Ok(())
        }
        Command::Eval {
            command: EvalCommand::Run { suites, model, out },
        } => eval(&suites, model.as_deref(), out.as_deref()),
        Command::Chat { agent, tenant } => {
            brain_gateway::chat::terminal(&config, &tenant, &agent).await
        }
        Command::Ingest {
            files,
            collection,
            tenant,
        } => brain_gateway::knowledge::ingest(&config, &files, &collection, &tenant).await,
        Command::Audit {
            command: AuditCommand::Verify { tenant },
        } => {
            if brain_gateway::audit::verify_chains(&config, tenant.as_deref()).await? {
                Ok(())
            } else {
                anyhow::bail!("the audit trail has been altered")
            }
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    slug,
                    name,
                    owner_email,
                },
        } => {
            let mut conn = app_connection(&config).await?;
            let new = seed::NewTenant {
                slug: &slug,
                name: &name,
                owner_email: &owner_email,
                owner_password: None,
            };
            let created = seed::create_tenant(&mut conn, &new).await?;
            println!(
                "created tenant `{slug}` ({}); owner {owner_email} password {} (shown once)",
                created.id, created.owner_password
            );
            Ok(())
        }
    }
}

/// The evals live in their own crate (nothing in Brain depends on them); `brain eval` runs
/// their program, built beside this one (`cargo build -p brain-evals`, or `cargo xtask eval`).
fn eval(
    suites: &[String],
    model: Option<&str>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let program = std::env::current_exe()
        .context("locating the brain executable")?
        .with_file_name("brain-eval");
    if !program.is_file() {
        anyhow::bail!(
            "{} is not built; run `cargo build -p brain-evals` (or use `cargo xtask eval`)",
            program.display()
        );
    }
    let mut command = std::process::Command::new(&program);
    command.args(suites);
    if let Some(model) = model {
        command.args(["--model", model]);
    }
    if let Some(out) = out {
        command.arg("--out").arg(out);
    }
    let status = command
        .status()
        .with_context(|| format!("running {}", program.display()))?;
    if status.success() {
        Ok(())
    } else {
        anyhow::bail!("the evaluation failed ({status})")
    }
}

async fn app_connection(config: &Config) -> anyhow::Result<sqlx::PgConnection> {
    let options: PgConnectOptions = config
        .require_database_url()?
        .parse()
        .context("DATABASE_URL")?;
    options
        .connect()
        .await
        .context("connecting to Postgres as the application role")
}
