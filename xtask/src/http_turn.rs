//! `cargo xtask bench http-turn`: one agent turn through a served Brain's HTTP API, next to
//! the direct OpenAI client, LangGraph and CrewAI on the same mock, in the same run.
//!
//! The harness is the shared one (`BRAIN_BASELINES_DIR`, default `../shared/baselines` beside
//! the workspace), used in place: its `run_all.sh` starts the OpenAI mock, runs every
//! framework and, through `EXTRA_BENCH`, its `turn_brain.py` against our server. This module
//! prepares the Python side, serves Brain wired to the mock and the harness's fake Slack, and
//! prints Brain's added latency and server CPU per turn against the goals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::infra::Infra;
use crate::{served, workspace};

/// The port `run_all.sh` starts the OpenAI mock on (its `PORT`).
const MOCK_PORT: u16 = 18080;
/// The port `turn_brain.py` serves its fake Slack on (its `BRAIN_FAKE_SLACK_PORT`).
const FAKE_SLACK_PORT: u16 = 18766;
/// Timed turns per script and run, unless `BRAIN_BENCH_TURNS` says otherwise.
const DEFAULT_TURNS: &str = "200";
/// Runs of each script; the table shows the median over them.
const REPEATS: &str = "2";
/// The goals the issue sets for Brain, in ms per turn.
const GOAL_ADDED_MS: f64 = 1.0;
const GOAL_SERVER_CPU_MS: f64 = 0.5;

pub fn run(infra: &Infra) -> anyhow::Result<()> {
    let harness = harness_dir()?;
    let mut env = infra.up()?;
    let root = workspace::root();
    // As `cargo xtask up` runs Brain: the embedding model set, though a turn never loads it.
    crate::models::export(&root, &mut env)?;
    let bench_dir = root.join(".brain/bench");
    let python = venv(&bench_dir.join("baselines-venv"), &harness)?;
    let out = bench_dir.join("http-turn");
    let server_env = server_env();
    let server_env: Vec<(&str, &str)> = server_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let brain = served::start(&env, &server_env)?;
    run_harness(&harness, &python, &brain, &out)?;
    drop(brain);
    let rows = read_results(&out)?;
    print_report(&rows)
}

/// The shared harness folder, checked to be the harness.
fn harness_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("BRAIN_BASELINES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace::root().join("../shared/baselines"),
    };
    if !dir.join("run_all.sh").is_file() || !dir.join("turn_brain.py").is_file() {
        bail!(
            "the agent-turn harness (run_all.sh, turn_brain.py) is not in {}; set \
             BRAIN_BASELINES_DIR to its folder",
            dir.display()
        );
    }
    Ok(dir)
}

/// A virtualenv with the harness's pinned `requirements.txt`; returns its python. A marker
/// holding the requirements it was installed from makes this a no-op until the pins change.
fn venv(dir: &Path, harness: &Path) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin/python");
    let requirements = harness.join("requirements.txt");
    let pins = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == pins) {
        return Ok(python);
    }
    println!(
        "bench: installing the agent-turn baselines (LangGraph, CrewAI, openai) into {} (first run only, several minutes)",
        dir.display()
    );
    let system_python = crate::python::python();
    run_ok(
        Command::new(&system_python).args(["-m", "venv"]).arg(dir),
        "python -m venv",
    )?;
    run_ok(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r requirements.txt",
    )?;
    std::fs::write(&marker, pins).with_context(|| format!("writing {}", marker.display()))?;
    Ok(python)
}

/// What `brain serve` needs to take part: the mock as its OpenAI endpoint, the harness's
/// fake Slack as Slack's, and no tenant rate limit (a run is hundreds of turns a second).
fn server_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "OPENAI_BASE_URL",
            format!("http://127.0.0.1:{MOCK_PORT}/v1"),
        ),
        ("OPENAI_API_KEY", "x".to_owned()),
        (
            "BRAIN_CONNECTOR_ENDPOINTS",
            format!("slack=http://127.0.0.1:{FAKE_SLACK_PORT}"),
        ),
        ("BRAIN_RATE_LIMIT_TENANT_PER_MINUTE", "0".to_owned()),
        // The fake Slack listens on loopback.
        ("BRAIN_EGRESS_ALLOW", "127.0.0.0/8".to_owned()),
        ("BRAIN_EGRESS_ALLOW_HTTP", "true".to_owned()),
        // Every LLM call looks for the tenant's own OpenAI key in Vault; the bench tenant has
        // none, and vaultrs logs each 404 as three ERROR lines, which would bury the table.
        ("BRAIN_LOG", "warn,vaultrs=off,rustify=off".to_owned()),
    ]
}

/// Runs `run_all.sh`: the mock, the Python frameworks, then `turn_brain.py` against `brain`
/// (as `EXTRA_BENCH`), each `REPEATS` times, writing one JSON per run into `out`.
fn run_harness(
    harness: &Path,
    python: &Path,
    brain: &served::Served,
    out: &Path,
) -> anyhow::Result<()> {
    let turn_brain = harness.join("turn_brain.py");
    // run_all.sh splits EXTRA_BENCH on whitespace.
    let extra_bench = format!("{} {}", python.display(), turn_brain.display());
    ensure!(
        extra_bench.split_whitespace().count() == 2,
        "the harness cannot run `{extra_bench}`: a path has whitespace in it"
    );
    let turns = std::env::var("BRAIN_BENCH_TURNS").unwrap_or_else(|_| DEFAULT_TURNS.to_owned());
    run_ok(
        Command::new("bash")
            .arg(harness.join("run_all.sh"))
            .env("PY", python)
            .env("PORT", MOCK_PORT.to_string())
            .env("N", &turns)
            .env("REPEATS", REPEATS)
            .env("OUT_DIR", out)
            .env("EXTRA_BENCH", extra_bench)
            .env("BRAIN_GW", &brain.gateway)
            .env("BRAIN_AUTH", &brain.auth)
            .env("BRAIN_PID", brain.pid.to_string())
            .env("BRAIN_FAKE_SLACK_PORT", FAKE_SLACK_PORT.to_string()),
        "the agent-turn harness (run_all.sh)",
    )
}

/// Runs `command`, failing with `what` when it cannot start or exits non-zero.
fn run_ok(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// One framework's runs combined as the harness's `summarize.py` combines them: the median
/// of each metric over the runs.
struct Row {
    framework: String,
    runs: usize,
    turn_p50: f64,
    turn_p99: f64,
    /// Turn time minus two raw HTTP calls to the mock, timed in the same process.
    overhead_p50: f64,
    /// Client CPU per turn; for Brain the harness adds the server's.
    cpu_ms: Option<f64>,
    server_cpu_ms: Option<f64>,
}

/// Reads every result JSON in `out` (schema: the harness's `summarize.py`), one row per
/// framework, in the order of `ORDER` then by name.
fn read_results(out: &Path) -> anyhow::Result<Vec<Row>> {
    let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let entries = std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let run: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let framework = run["framework"]
            .as_str()
            .with_context(|| format!("{}: no `framework`", path.display()))?
            .to_owned();
        runs.entry(framework).or_default().push(run);
    }
    let mut rows = runs
        .into_iter()
        .map(|(framework, runs)| row(framework, &runs))
        .collect::<anyhow::Result<Vec<_>>>()?;
    rows.sort_by_key(|r| {
        ORDER
            .iter()
            .position(|(name, _)| *name == r.framework)
            .unwrap_or(ORDER.len())
    });
    for needed in [DIRECT, BRAIN] {
        ensure!(
            rows.iter().any(|r| r.framework == needed),
            "the harness wrote no `{needed}` result; see the .stderr files in {}",
            out.display()
        );
    }
    Ok(rows)
}

/// The frameworks' names in the result files, and how the table calls them.
const ORDER: &[(&str, &str)] = &[
    (DIRECT, "direct openai client"),
    (BRAIN, "Brain (HTTP, persisted, audited)"),
    (LANGGRAPH, "LangGraph"),
    ("crewai", "CrewAI"),
];
const DIRECT: &str = "direct-openai";
const BRAIN: &str = "brain";
const LANGGRAPH: &str = "langgraph";

fn row(framework: String, runs: &[Value]) -> anyhow::Result<Row> {
    let metric = |path: &[&str]| {
        median(
            runs.iter()
                .filter_map(|run| path.iter().fold(run, |v, key| &v[key]).as_f64())
                .collect(),
        )
    };
    let required = |path: &[&str]| {
        metric(path).with_context(|| format!("{framework}: no {} in its results", path.join(".")))
    };
    let overhead = median(
        runs.iter()
            .filter_map(|run| {
                Some(run["turn_ms"]["p50"].as_f64()? - run["probe_pair_ms"]["p50"].as_f64()?)
            })
            .collect(),
    )
    .with_context(|| format!("{framework}: no turn_ms.p50 or probe_pair_ms.p50"))?;
    Ok(Row {
        turn_p50: required(&["turn_ms", "p50"])?,
        turn_p99: required(&["turn_ms", "p99"])?,
        overhead_p50: overhead,
        cpu_ms: metric(&["client_cpu_ms_per_turn"]),
        server_cpu_ms: metric(&["server_cpu_ms_per_turn"]),
        runs: runs.len(),
        framework,
    })
}

/// The median as Python's `statistics.median` takes it (the mean of the middle two).
fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    match xs.len() {
        0 => None,
        n if n % 2 == 1 => Some(xs[mid]),
        _ => Some((xs[mid - 1] + xs[mid]) / 2.0),
    }
}

/// The table, then Brain against its goals and against LangGraph.
fn print_report(rows: &[Row]) -> anyhow::Result<()> {
    let direct = find(rows, DIRECT).context("no direct-openai row")?;
    let brain = find(rows, BRAIN).context("no brain row")?;
    let added = |r: &Row| r.turn_p50 - direct.turn_p50;
    let opt = |x: Option<f64>| x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}"));
    println!();
    println!("http-turn: one agent turn (LLM → tool → LLM) on one mock; medians over runs");
    println!(
        "{:<34} {:>4} {:>11} {:>11} {:>15} {:>13} {:>11} {:>18}",
        "framework",
        "runs",
        "turn p50 ms",
        "turn p99 ms",
        "overhead p50 ms",
        "+ms vs direct",
        "CPU ms/turn",
        "server CPU ms/turn"
    );
    for r in rows {
        let label = ORDER
            .iter()
            .find(|(name, _)| *name == r.framework)
            .map_or(r.framework.as_str(), |(_, label)| label);
        println!(
            "{label:<34} {:>4} {:>11.2} {:>11.2} {:>15.2} {:>+13.2} {:>11} {:>18}",
            r.runs,
            r.turn_p50,
            r.turn_p99,
            r.overhead_p50,
            added(r),
            opt(r.cpu_ms),
            opt(r.server_cpu_ms),
        );
    }
    println!(
        "overhead = turn − two raw HTTP calls to the mock; +ms vs direct = turn p50 − the direct \
         client's; Brain's CPU = client + server"
    );
    println!();
    let server_cpu = brain
        .server_cpu_ms
        .context("brain: no server_cpu_ms_per_turn (BRAIN_PID not seen by turn_brain.py?)")?;
    let langgraph = match find(rows, LANGGRAPH) {
        Some(lg) => format!(
            "LangGraph added {:.2} ms → ratio {:.2}",
            added(lg),
            added(lg) / added(brain)
        ),
        None => "LangGraph: no result".to_owned(),
    };
    println!(
        "Brain added latency p50 {:.2} ms (goal ≤ {GOAL_ADDED_MS:.1} ms: {}), server CPU {server_cpu:.2} \
         ms/turn (goal ≤ {GOAL_SERVER_CPU_MS:.1} ms: {}), {langgraph}",
        added(brain),
        verdict(added(brain) <= GOAL_ADDED_MS),
        verdict(server_cpu <= GOAL_SERVER_CPU_MS),
    );
    Ok(())
}

fn find<'a>(rows: &'a [Row], framework: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.framework == framework)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}
