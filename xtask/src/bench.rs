//! `cargo xtask bench SUITE`: benchmarks that print ratios against baselines measured in
//! the same run. Each suite prepares what it needs (infrastructure, models, Python
//! baselines) and runs a benchmark binary built as `cargo xtask up` builds `brain`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::infra::{Env, Infra};
use crate::{models, workspace};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Suite {
    /// JWT and API-key verification per second on one core vs HS256 (`auth/examples/auth_bench.rs`).
    Auth,
    /// 60 s of authenticated load against an optimised Brain: throughput, p50/p99, errors, RSS,
    /// and an exact check of the API-key rate limiter (`gateway/examples/load.rs`).
    Load,
    /// Extraction, chunking, embeddings and pgvector retrieval (`knowledge/examples/knowledge_bench.rs`).
    Knowledge,
    /// Per-turn framework overhead, memory per idle agent, spawn rate and local-model
    /// tokens/s (`runtime/examples/runtime_bench.rs`); an MCP tool call through Brain vs the
    /// same server called directly (`tools/examples/mcp_bench.rs`).
    Runtime,
    /// Durable tasks on Temporal: start → complete latency and tasks/s with one worker, next
    /// to an empty workflow (`tasks/examples/tasks_bench.rs`).
    Tasks,
    /// One agent turn through a served Brain's HTTP API against the direct OpenAI client,
    /// LangGraph and CrewAI on one mock: added latency and server CPU per turn (the shared
    /// harness in `BRAIN_BASELINES_DIR`, default `../shared/baselines`; `http_turn.rs`).
    HttpTurn,
}

pub fn run(infra: &Infra, suite: Suite) -> anyhow::Result<()> {
    match suite {
        Suite::Auth => {
            let env = infra.up()?;
            cargo_bench_example(&workspace::root(), &env, "brain-auth", "auth_bench")
        }
        Suite::Knowledge => knowledge(infra),
        Suite::Load => crate::load::run(infra),
        Suite::HttpTurn => crate::http_turn::run(infra),
        Suite::Runtime => {
            let mut env = infra.up()?;
            let root = workspace::root();
            crate::chat_model::export(&root, &mut env)?;
            local_model_baseline(&root.join(".brain/bench"), &mut env)?;
            cargo_bench_example(&root, &env, "brain-runtime", "runtime_bench")?;
            // An MCP tool call through Brain vs the same server called directly.
            crate::portal::node_modules(&root, &mut env)?;
            cargo_bench_example(&root, &env, "brain-tools", "mcp_bench")
        }
        Suite::Tasks => {
            let env = infra.up()?;
            cargo_bench_example(&workspace::root(), &env, "brain-tasks", "tasks_bench")
        }
    }
}

/// The llama.cpp build the local model is measured against (PyPI has no binary wheel for it).
const LLAMA_CPP: &str = "llama-cpp-python==0.3.36";

/// llama.cpp through `llama-cpp-python`, built from source once into `.brain/bench/llama`,
/// and the thread count both sides of the local-model comparison use.
fn local_model_baseline(bench_dir: &Path, env: &mut Env) -> anyhow::Result<()> {
    let dir = bench_dir.join("llama");
    let marker = dir.join(".installed");
    if !marker.is_file() {
        crate::infra::ensure_apt("cmake", "cmake")?;
        crate::infra::ensure_apt("g++", "build-essential")?;
        println!(
            "bench: building {LLAMA_CPP} for the local-model baseline (first run only, several minutes)"
        );
        crate::python::pip_install(&dir, &[], &[LLAMA_CPP.to_owned()])?;
        std::fs::write(&marker, "")?;
    }
    env.insert(
        "BRAIN_BENCH_LLAMA_PYTHONPATH".into(),
        dir.display().to_string(),
    );
    // One thread count for both sides: llama.cpp's `n_threads`, our rayon pool, and the pool
    // candle's quantised kernels size once per process from CANDLE_NUM_THREADS.
    let threads = env
        .get("BRAIN_LOCAL_THREADS")
        .cloned()
        .or_else(|| std::env::var("BRAIN_LOCAL_THREADS").ok())
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    env.insert("BRAIN_LOCAL_THREADS".into(), threads.to_string());
    env.insert("CANDLE_NUM_THREADS".into(), threads.to_string());
    Ok(())
}

/// Python packages the knowledge baselines use, installed once into `.brain/bench/python`.
const PYTHON_BASELINES: &[&str] = &["pypdf", "pymupdf", "langchain-text-splitters"];

fn knowledge(infra: &Infra) -> anyhow::Result<()> {
    let mut env = infra.up()?;
    let root = workspace::root();
    models::export(&root, &mut env)?;
    let bench_dir = root.join(".brain/bench");
    let python_path = python_baselines(&bench_dir)?;
    env.insert(
        "BRAIN_BENCH_PYTHONPATH".into(),
        python_path.display().to_string(),
    );
    env.insert("BRAIN_BENCH_DIR".into(), bench_dir.display().to_string());
    env.insert(
        "BRAIN_BENCH_ST_PATH".into(),
        sentence_transformers(&bench_dir)?.display().to_string(),
    );
    let manuals = crate::real_pdfs::ensure(&bench_dir.join("pdfs"))?;
    let manuals = std::env::join_paths(&manuals)?
        .to_string_lossy()
        .into_owned();
    env.insert("BRAIN_BENCH_PDFS".into(), manuals.clone());
    cargo_bench_example(&root, &env, "brain-knowledge", "knowledge_bench")?;
    // The same manuals uploaded through a running Brain's API, then search at 10k chunks.
    let owner_db = env
        .get("BRAIN_MIGRATE_DATABASE_URL")
        .context("BRAIN_MIGRATE_DATABASE_URL is missing from .brain/env")?
        .clone();
    crate::served::run(
        &env,
        "knowledge_api",
        &[("BRAIN_RATE_LIMIT_TENANT_PER_MINUTE", "0")],
        |brain| {
            vec![
                ("BRAIN_BENCH_GATEWAY".into(), brain.gateway.clone()),
                ("BRAIN_BENCH_AUTH".into(), brain.auth.clone()),
                ("BRAIN_BENCH_PDFS".into(), manuals),
                ("BRAIN_BENCH_OWNER_DB".into(), owner_db),
            ]
        },
    )
}

/// sentence-transformers with torch (about 6 GB with torch's CUDA wheels, which PyPI's torch
/// depends on; they are unused here), installed once into `.brain/bench/st`.
fn sentence_transformers(bench_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = bench_dir.join("st");
    let marker = dir.join(".installed");
    if marker.is_file() {
        return Ok(dir);
    }
    println!(
        "bench: installing sentence-transformers + torch for the embedding baseline (first run only, ~6 GB)"
    );
    crate::python::pip_install(
        &dir,
        &["--only-binary=:all:"],
        &["sentence-transformers".to_owned(), "torch".to_owned()],
    )?;
    std::fs::write(&marker, "")?;
    Ok(dir)
}

fn python_baselines(bench_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = bench_dir.join("python");
    let marker = dir.join(".installed");
    if marker.is_file() {
        return Ok(dir);
    }
    println!("bench: installing Python baselines {PYTHON_BASELINES:?} (first run only)");
    let specs: Vec<String> = PYTHON_BASELINES.iter().map(|s| (*s).to_owned()).collect();
    crate::python::pip_install(&dir, &["--only-binary=:all:"], &specs)?;
    std::fs::write(&marker, "")?;
    Ok(dir)
}

/// Benchmarks measure the build users run: the dev profile, which is the optimised one
/// (Cargo.toml), as `cargo xtask up` builds it.
fn cargo_bench_example(root: &Path, env: &Env, package: &str, example: &str) -> anyhow::Result<()> {
    let status = Command::new("cargo")
        .args(["run", "--package", package, "--example", example])
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("benchmark {package}/{example} failed ({status})");
    }
    Ok(())
}
