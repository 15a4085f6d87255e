//! `cargo xtask`: installs and runs Brain's local infrastructure, runs the tests, starts Brain.

mod bench;
mod chat_model;
mod depgraph;
mod http_turn;
mod infra;
mod load;
mod models;
mod peers;
mod portal;
mod python;
mod real_pdfs;
mod served;
mod sizes;
mod workspace;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::infra::Infra;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Brain's development tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Local infrastructure: Postgres+pgvector, Redis, OpenBao (Vault), Temporal.
    Infra {
        #[command(subcommand)]
        action: InfraAction,
    },
    /// Start the infrastructure, migrate, seed the demo tenant, then run `brain serve`.
    Up,
    /// Stop the infrastructure.
    Down,
    /// Start the infrastructure and run the whole test suite (nextest when installed).
    Test {
        /// Extra arguments for the test runner (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the crate dependency rules of ARCHITECTURE.md against `cargo metadata`, and the
    /// size limits (files, functions) against the sources.
    Deps,
    /// Run a benchmark suite (optimised build) and print ratios against baselines.
    Bench {
        #[arg(value_enum)]
        suite: bench::Suite,
    },
    /// Run eval suites (all when none named) against a model and write the report
    /// (`evals/src/bin/brain-eval.rs`).
    Eval {
        suites: Vec<String>,
        /// `provider:model`; default the local model.
        #[arg(long)]
        model: Option<String>,
        /// Output folder; default `.brain/evals/`.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Fetch and assemble the local chat model into `.brain/models/` (`up` and `test` do too).
    ChatModel,
    /// Build the portal's browser bundle and install what its browser tests need (`up` and
    /// `test` do too).
    Portal,
}

#[derive(Subcommand)]
enum InfraAction {
    Up,
    Down,
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    let infra = Infra::new(workspace::root())?;
    match task {
        Task::Infra {
            action: InfraAction::Up,
        } => infra.up().map(drop),
        Task::Infra {
            action: InfraAction::Down,
        }
        | Task::Down => infra.down(),
        Task::Infra {
            action: InfraAction::Status,
        } => infra.status(),
        Task::Up => up(&infra),
        Task::Test { args } => test(&infra, &args),
        Task::Bench { suite } => bench::run(&infra, suite),
        Task::ChatModel => {
            let path = chat_model::ensure(&workspace::root())?;
            println!("{}", path.display());
            Ok(())
        }
        Task::Eval { suites, model, out } => eval(&infra, &suites, model, out),
        Task::Portal => portal::prepare(&workspace::root(), &mut infra::Env::new(), true),
        Task::Deps => {
            let root = workspace::root();
            let violations = depgraph::check_workspace(&root)?;
            for v in &violations {
                eprintln!("forbidden: {v}");
            }
            let oversized = sizes::check_workspace(&root)?;
            for o in &oversized {
                eprintln!("too long: {o}");
            }
            if !violations.is_empty() || !oversized.is_empty() {
                bail!(
                    "{} dependency rule(s) broken, {} size limit(s) exceeded",
                    violations.len(),
                    oversized.len()
                )
            }
            println!(
                "dependency rules hold; no file over {} lines, no function over {}",
                sizes::MAX_FILE_LINES,
                sizes::MAX_FN_LINES
            );
            Ok(())
        }
    }
}

fn up(infra: &Infra) -> anyhow::Result<()> {
    let mut env = infra.up()?;
    let root = workspace::root();
    chat_model::export(&root, &mut env)?;
    models::export(&root, &mut env)?;
    portal::prepare(&root, &mut env, false)?;
    // The dev profile is the optimised one (Cargo.toml): the same build the tests spawn.
    workspace::cargo(
        &root,
        &["build", "--package", "brain-gateway", "--bin", "brain"],
    )?;
    let brain = workspace::target_dir(&root).join("debug/brain");
    let brain_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&brain);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    };
    for step in [&["migrate"][..], &["seed"][..]] {
        let status = brain_cmd(step)
            .status()
            .with_context(|| format!("running brain {step:?}"))?;
        if !status.success() {
            bail!("brain {} failed", step.join(" "));
        }
    }
    println!(
        "starting brain serve (Ctrl-C stops Brain; `cargo xtask down` stops the infrastructure)"
    );
    let mut serve = brain_cmd(&["serve"]);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Replace xtask so Ctrl-C goes to Brain alone and the infrastructure keeps running.
        let err = serve.exec();
        Err(err).context("starting brain serve")
    }
    #[cfg(not(unix))]
    {
        let status = serve.status().context("starting brain serve")?;
        if status.success() {
            Ok(())
        } else {
            bail!("brain serve exited with {status}")
        }
    }
}

/// Wall-clock time per phase, printed when the phases are done (or one failed).
struct Phases {
    started: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            done: Vec::new(),
        }
    }

    fn run<T>(
        &mut self,
        name: &'static str,
        phase: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let started = std::time::Instant::now();
        let result = phase();
        self.done.push((name, started.elapsed()));
        result
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        println!("xtask test: time per phase");
        for (name, took) in &self.done {
            println!("{:>8.1}s  {name}", took.as_secs_f64());
        }
        println!("{:>8.1}s  total", self.started.elapsed().as_secs_f64());
    }
}

fn test(infra: &Infra, args: &[String]) -> anyhow::Result<()> {
    let mut phases = Phases::new();
    let root = workspace::root();
    let mut env = phases.run("infrastructure", || {
        let env = infra.up()?;
        infra.postgres().drop_test_databases()?;
        // The observability test runs a real Prometheus and promtool against deploy/.
        infra::ensure_apt("promtool", "prometheus")?;
        Ok(env)
    })?;
    phases.run("local models", || {
        chat_model::export(&root, &mut env)?;
        models::export(&root, &mut env)
    })?;
    // The portal's browser tests: its bundle, Chromium and playwright-core.
    phases.run("portal bundle and browser", || {
        portal::prepare(&root, &mut env, true)
    })?;
    // The official SDKs the protocol tests drive Brain with.
    phases.run("protocol peers", || peers::prepare(&root, &mut env))?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    // Libraries, binaries and test targets; the benchmark examples are built by `cargo xtask
    // bench` (and checked by clippy), not by every test run.
    let targets = ["--workspace", "--lib", "--bins", "--tests"];
    phases.run("build the tests", || {
        workspace::cargo(
            &root,
            &[&["test", "--no-run", "--locked"][..], &targets[..]].concat(),
        )
    })?;
    phases.run("run the tests", || {
        let mut cmd = Command::new("cargo");
        if nextest {
            cmd.args(["nextest", "run", "--no-fail-fast"]);
        } else {
            println!("cargo-nextest not found; using cargo test");
            cmd.args(["test", "--no-fail-fast"]);
        }
        cmd.args(targets)
            .args(args)
            .current_dir(&root)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let status = cmd.status().context("running the test runner")?;
        if !status.success() {
            bail!("tests failed ({status})");
        }
        Ok(())
    })
}

/// `cargo xtask eval`: the infrastructure and both local models, then the evals binary.
fn eval(
    infra: &Infra,
    suites: &[String],
    model: Option<String>,
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let mut env = infra.up()?;
    let root = workspace::root();
    models::export(&root, &mut env)?;
    chat_model::export(&root, &mut env)?;
    let mut args: Vec<String> = ["run", "-p", "brain-evals", "--bin", "brain-eval", "--"]
        .map(str::to_owned)
        .to_vec();
    args.extend(suites.iter().cloned());
    if let Some(model) = model {
        args.extend(["--model".to_owned(), model]);
    }
    let out = out.unwrap_or_else(|| root.join(".brain/evals"));
    args.extend(["--out".to_owned(), out.display().to_string()]);
    let status = std::process::Command::new("cargo")
        .args(&args)
        .current_dir(&root)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()?;
    anyhow::ensure!(status.success(), "evals failed ({status})");
    Ok(())
}
