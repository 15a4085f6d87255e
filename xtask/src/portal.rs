//! The portal's browser side: what building it needs (the `wasm32-unknown-unknown` target and
//! `wasm-bindgen-cli` at the exact version in Cargo.lock, installed into `.brain/tools/`), the
//! bundle itself (`<target>/portal-site/pkg/brain_portal{.js,_bg.wasm}`, rebuilt only when the
//! portal's sources change), the API reference's viewer (Swagger UI from npm's
//! `swagger-ui-dist`, copied into `<target>/portal-site/docs/`, where the gateway serves
//! `/docs` from), and what its browser tests need (Debian's Chromium, `playwright-core` and
//! the OpenAPI validator `@apidevtools/swagger-parser` from npm in `.brain/node/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::infra;

/// Where `brain serve` finds the bundle (read by `brain_portal::PortalConfig`).
pub const SITE_ROOT_ENV: &str = "BRAIN_PORTAL_SITE_ROOT";
/// Where the browser tests find `playwright-core` (a `node_modules` folder).
pub const NODE_MODULES_ENV: &str = "BRAIN_PORTAL_NODE_MODULES";
/// The browser the tests drive.
pub const CHROMIUM_ENV: &str = "BRAIN_CHROMIUM";

/// The npm packages Brain uses, installed together (a later `npm install --no-save` would
/// prune the packages an earlier one installed).
const NODE_PACKAGES: &[(&str, &str)] = &[
    ("playwright-core", "1.65.1"),
    ("swagger-ui-dist", "5.36.0"),
    ("@apidevtools/swagger-parser", "13.1.0"),
    // The reference MCP server, a tool source for the MCP tests (`mcp-server-everything`).
    ("@modelcontextprotocol/server-everything", "2026.8.31"),
];
/// What the gateway's `/docs` page loads (`brain_gateway::openapi::DOCS_ASSETS`).
const DOCS_ASSETS: &[&str] = &["swagger-ui.css", "swagger-ui-bundle.js"];
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The size-optimised profile of the browser build (workspace Cargo.toml).
const WASM_PROFILE: &str = "portal-wasm";

/// Installs what is missing, builds the bundle when the sources changed, and records the
/// settings in `env` and `.brain/env`.
pub fn prepare(
    root: &Path,
    env: &mut BTreeMap<String, String>,
    browser: bool,
) -> anyhow::Result<()> {
    let site = build(root)?;
    let modules = ensure_node_packages(root)?;
    docs_assets(&modules, &site)?;
    let mut settings = vec![(SITE_ROOT_ENV, site.display().to_string())];
    if browser {
        let chromium = infra::ensure_apt("chromium", "chromium")?;
        infra::ensure_apt("chromedriver", "chromium-driver")?;
        settings.push((CHROMIUM_ENV, chromium.display().to_string()));
        settings.push((NODE_MODULES_ENV, modules.display().to_string()));
    }
    for (key, value) in settings {
        record(root, key, &value)?;
        env.insert(key.to_owned(), value);
    }
    Ok(())
}

/// The npm packages alone (no portal build), e.g. the reference MCP server for a benchmark.
pub fn node_modules(root: &Path, env: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    let modules = ensure_node_packages(root)?.display().to_string();
    record(root, NODE_MODULES_ENV, &modules)?;
    env.insert(NODE_MODULES_ENV.to_owned(), modules);
    Ok(())
}

/// Copies Swagger UI's stylesheet and bundle into `<site>/docs/` when they differ.
fn docs_assets(modules: &Path, site: &Path) -> anyhow::Result<()> {
    let docs = site.join("docs");
    std::fs::create_dir_all(&docs)?;
    for file in DOCS_ASSETS {
        let from = modules.join("swagger-ui-dist").join(file);
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        let to = docs.join(file);
        if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&to, bytes).with_context(|| format!("writing {}", to.display()))?;
        }
    }
    Ok(())
}

/// Keeps `KEY=value` in `.brain/env`, so tests run by hand find it too.
pub(crate) fn record(root: &Path, key: &str, value: &str) -> anyhow::Result<()> {
    let env_file = root.join(".brain/env");
    let text = std::fs::read_to_string(&env_file).unwrap_or_default();
    let line = format!("{key}={value}");
    if text.lines().any(|l| l == line) {
        return Ok(());
    }
    let mut kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{key}=")))
        .map(|l| format!("{l}\n"))
        .collect();
    kept.push_str(&line);
    kept.push('\n');
    std::fs::create_dir_all(root.join(".brain"))?;
    std::fs::write(&env_file, kept).with_context(|| format!("writing {}", env_file.display()))
}

/// The version of `wasm-bindgen` in Cargo.lock (pinned with `=` in the workspace manifest).
fn locked_wasm_bindgen(root: &Path) -> anyhow::Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_owned());
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (the portal's browser build needs the wasm32 target)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    println!("portal: adding the {WASM_TARGET} target (first run only)");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// `.brain/tools/bin/wasm-bindgen` at the locked version. Installed without `--locked`: the
/// CLI's own lockfile pins crates the registry no longer serves (NOTES.md).
fn ensure_wasm_bindgen(root: &Path) -> anyhow::Result<PathBuf> {
    let version = locked_wasm_bindgen(root)?;
    let tools = root.join(".brain/tools");
    let binary = tools.join("bin/wasm-bindgen");
    let current = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if current.as_deref() == Some(&format!("wasm-bindgen {version}")) {
        return Ok(binary);
    }
    println!(
        "portal: installing wasm-bindgen-cli {version} into .brain/tools (first run only, ~3 min)"
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["install", "--force", "--root"])
        .arg(&tools)
        .args(["wasm-bindgen-cli", "--version", &version])
        .status()
        .context("running cargo install wasm-bindgen-cli")?;
    if !status.success() {
        bail!("cargo install wasm-bindgen-cli {version} failed ({status})");
    }
    Ok(binary)
}

/// A digest of everything the bundle is built from, and of where (see below).
fn source_digest(root: &Path, wasm_bindgen: &str) -> anyhow::Result<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.join("portal/src"), root.join("portal/style")];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.push(root.join("portal/Cargo.toml"));
    files.push(root.join("Cargo.lock"));
    files.push(root.join("Cargo.toml"));
    files.sort();
    let mut hash = Sha256::new();
    hash.update(wasm_bindgen.as_bytes());
    // Leptos names server functions after the crate's absolute path (`CARGO_MANIFEST_DIR`):
    // a bundle built in another checkout calls endpoints this server does not have, so a
    // target directory shared between checkouts (CI's cache) must not reuse it.
    hash.update(root.to_string_lossy().as_bytes());
    for file in files {
        hash.update(
            file.strip_prefix(root)
                .unwrap_or(&file)
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Builds the browser bundle into `<target>/portal-site/pkg/` unless it is up to date;
/// returns the site root.
pub fn build(root: &Path) -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let wasm_bindgen = ensure_wasm_bindgen(root)?;
    let target = crate::workspace::target_dir(root);
    let site = target.join("portal-site");
    let pkg = site.join("pkg");
    let name = "brain_portal";
    let stamp = site.join(".digest");
    let digest = source_digest(root, &locked_wasm_bindgen(root)?)?;
    let built = pkg.join(format!("{name}.js")).is_file()
        && pkg.join(format!("{name}_bg.wasm")).is_file()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest);
    if built {
        return Ok(site);
    }
    println!("portal: building the browser bundle");
    let target_dir = target.join("portal-wasm");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "rustc",
            "--package",
            "brain-portal",
            "--lib",
            "--crate-type",
            "cdylib",
            "--target",
            WASM_TARGET,
            "--features",
            "hydrate",
            "--profile",
            WASM_PROFILE,
            "--locked",
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(root)
        .status()
        .context("building the portal's browser bundle")?;
    if !status.success() {
        bail!("the portal's browser build failed ({status})");
    }
    let wasm = target_dir
        .join(WASM_TARGET)
        .join(WASM_PROFILE)
        .join(format!("{name}.wasm"));
    std::fs::create_dir_all(&pkg)?;
    run(Command::new(&wasm_bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            name,
            "--out-dir",
        ])
        .arg(&pkg)
        .arg(&wasm))?;
    std::fs::write(&stamp, &digest)?;
    Ok(site)
}

/// [`NODE_PACKAGES`] in `.brain/node/node_modules` (`playwright-core` downloads no browser of
/// its own: it drives Debian's Chromium).
fn ensure_node_packages(root: &Path) -> anyhow::Result<PathBuf> {
    let prefix = root.join(".brain/node");
    let modules = prefix.join("node_modules");
    let installed = |name: &str, version: &str| {
        std::fs::read_to_string(modules.join(name).join("package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["version"] == version)
    };
    if NODE_PACKAGES.iter().all(|(n, v)| installed(n, v)) {
        return Ok(modules);
    }
    let specs: Vec<String> = NODE_PACKAGES
        .iter()
        .map(|(n, v)| format!("{n}@{v}"))
        .collect();
    println!("portal: installing {} with npm", specs.join(", "));
    std::fs::create_dir_all(&prefix)?;
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
        ])
        .arg(&prefix)
        .args(&specs))?;
    Ok(modules)
}

/// Runs `command`, failing with its output when it exits non-zero.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
