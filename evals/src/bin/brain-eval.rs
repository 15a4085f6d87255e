//! `brain-eval [SUITE…] [--model provider:model] [--out DIR]`: what `cargo xtask eval` runs.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut suites = Vec::new();
    let mut model = None;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model" => model = args.next(),
            "--out" => out = args.next().map(PathBuf::from),
            _ => suites.push(arg),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("brain-eval: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(brain_evals::cli_run(
        &suites,
        model.as_deref(),
        out.as_deref(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brain-eval: {e:#}");
            ExitCode::FAILURE
        }
    }
}
