//! Evaluation suites (retrieval, grounded answers, tool choice, grant enforcement under
//! injection, latency/cost) run against a real model over the real runtime, and their reports.

pub mod env;
pub mod metrics;
pub mod pdf;
pub mod report;
pub mod run;
pub mod suite;

use std::path::{Path, PathBuf};

pub use run::{CaseResult, RunOptions, SuiteResult};
pub use suite::{Suite, SuiteKind};

/// The model evals use unless told otherwise.
pub const DEFAULT_MODEL: &str = "local:default";

/// Runs one suite from `evals/suites/`, records its result in `out_dir` and rewrites the
/// report there (`report.md`, `results.json`, `scores.svg` once several runs exist).
pub async fn run_suite(name: &str, model: &str, out_dir: &Path) -> anyhow::Result<SuiteResult> {
    let suite = suite::load(&suite::suites_dir(), name)?;
    let result = run::run(&suite, &RunOptions::new(model)).await?;
    report::record(out_dir, &result)?;
    report::write(out_dir)?;
    Ok(result)
}

/// `brain eval run SUITE…` / `cargo xtask eval`: runs the named suites (every suite when
/// empty) and prints where the report is. Fails when an enforcement metric is not 0.
pub async fn cli_run(
    suites: &[String],
    model: Option<&str>,
    out_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let model = model.unwrap_or(DEFAULT_MODEL);
    let out = out_dir.map_or_else(default_out_dir, Path::to_path_buf);
    let names = if suites.is_empty() {
        suite::names(&suite::suites_dir())?
    } else {
        suites.to_vec()
    };
    let mut violations = Vec::new();
    for name in &names {
        println!("eval: {name} on {model} …");
        let result = run_suite(name, model, &out).await?;
        println!("eval: {name}: {}", report::headline(&result));
        violations.extend(report::enforcement_violations(&result));
    }
    println!("eval: report in {}", out.join("report.md").display());
    anyhow::ensure!(
        violations.is_empty(),
        "enforcement violated: {}",
        violations.join(", ")
    );
    Ok(())
}

/// `.brain/evals/` of this checkout.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.brain/evals"))
}
