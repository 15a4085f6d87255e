//! Programs that come from Debian's packages: found on PATH, else installed with apt-get.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use super::process;

/// The path of `binary`, installing `package` first when it is missing.
pub fn ensure(binary: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(found) = which(binary) {
        return Ok(found);
    }
    if !process::is_root() {
        bail!("{binary} is missing; install it with `sudo apt-get install -y {package}`");
    }
    println!("infra: installing {package} with apt (first run only)");
    process::run(Command::new("apt-get").args(["update", "-qq"]))?;
    process::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            // Keeps the package's init script from starting a system-wide service.
            .env("RUNLEVEL", "1"),
    )?;
    which(binary).with_context(|| format!("{binary} is still not on PATH after apt-get install"))
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
