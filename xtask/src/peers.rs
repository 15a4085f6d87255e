//! The official SDKs Brain's protocol tests talk to, from the registries: PyPI packages
//! installed with pip into `.brain/python/` (no virtualenv: `pip install --target`, so only
//! the machine's Python and pip are needed), once per set of pins.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

/// Where the tests find the packages (a directory for `PYTHONPATH`).
pub const PYTHONPATH_ENV: &str = "BRAIN_PEERS_PYTHONPATH";

/// The pinned packages: the official OpenAI SDK drives `/v1/chat/completions`, `/v1/models`
/// and `/v1/responses`; the official MCP SDK's client connects to `/mcp`; the official A2A
/// SDK (with its HTTP server) talks to published agents and serves a remote one.
const PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("openai", "3.63.0"),
    ("mcp", "2.3.0"),
    ("a2a-sdk[http-server]", "1.3.0"),
];

/// Installs the pinned packages when they changed and records where they are in `env` and
/// `.brain/env`.
pub fn prepare(root: &Path, env: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    let dir = root.join(".brain/python");
    let pins: Vec<String> = PYTHON_PACKAGES
        .iter()
        .map(|(name, version)| format!("{name}=={version}"))
        .collect();
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(pins.join("\n").as_str()) {
        println!("peers: installing {} with pip", pins.join(", "));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        crate::python::pip_install(&dir, &[], &pins)?;
        std::fs::write(&marker, pins.join("\n"))
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    let value = dir.display().to_string();
    crate::portal::record(root, PYTHONPATH_ENV, &value)?;
    env.insert(PYTHONPATH_ENV.to_owned(), value);
    Ok(())
}
