//! The crate dependency rules (ARCHITECTURE.md, SPEC §1), checked against `cargo metadata`.
//!
//! `gateway → tasks → {runtime, automation}`, `runtime → agents → {tools, knowledge} → auth`
//! and `automation → {tools, knowledge} → auth`, each arrow meaning "may depend on" (and so on
//! everything further down); `migrations` is usable by every crate that
//! touches the database; the gateway, as composition root, links the portal's server; the
//! portal reaches everything else over HTTP only; `types` (shared vocabulary, wasm-safe) is
//! usable by all and uses nothing but serde. ractor only in `runtime`; the Temporal SDK only in `tasks`; axum only in
//! `gateway`, `auth` and `portal`.

use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::Value;

/// Which workspace crates each crate may depend on (normal and dev dependencies alike).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "brain-gateway",
        &[
            "brain-tasks",
            "brain-automation",
            "brain-runtime",
            "brain-agents",
            "brain-tools",
            "brain-knowledge",
            "brain-auth",
            "brain-migrations",
            "brain-portal",
        ],
    ),
    (
        "brain-tasks",
        &[
            "brain-runtime",
            "brain-automation",
            "brain-agents",
            "brain-tools",
            "brain-knowledge",
            "brain-auth",
            "brain-migrations",
            "brain-types",
        ],
    ),
    (
        "brain-automation",
        &[
            "brain-tools",
            "brain-knowledge",
            "brain-auth",
            "brain-migrations",
            "brain-types",
        ],
    ),
    (
        "brain-runtime",
        &[
            "brain-agents",
            "brain-tools",
            "brain-knowledge",
            "brain-auth",
            "brain-migrations",
            "brain-types",
        ],
    ),
    (
        "brain-agents",
        &[
            "brain-tools",
            "brain-knowledge",
            "brain-auth",
            "brain-migrations",
            "brain-types",
        ],
    ),
    (
        "brain-tools",
        &["brain-auth", "brain-migrations", "brain-types"],
    ),
    (
        "brain-knowledge",
        &["brain-auth", "brain-migrations", "brain-types"],
    ),
    ("brain-auth", &["brain-migrations", "brain-types"]),
    ("brain-types", &[]),
    ("brain-migrations", &[]),
    ("brain-portal", &["brain-types"]),
    (
        "brain-evals",
        &[
            "brain-tasks",
            "brain-automation",
            "brain-runtime",
            "brain-agents",
            "brain-tools",
            "brain-knowledge",
            "brain-auth",
            "brain-migrations",
            "brain-types",
        ],
    ),
    ("brain-xtask", &[]),
];

/// The external crates `brain-types` may use (normal dependencies): it is compiled into the
/// portal's browser code too, so it stays free of I/O and server crates.
const TYPES_MAY_USE: &[&str] = &["serde"];

/// External crates confined to some workspace crates.
const CONFINED: &[(&str, &[&str])] = &[
    ("ractor", &["brain-runtime"]),
    // Only `tasks` knows Temporal: the actors and the automation domain stay free of it.
    ("temporalio-sdk", &["brain-tasks"]),
    ("temporalio-client", &["brain-tasks"]),
    ("temporalio-common", &["brain-tasks"]),
    ("temporalio-macros", &["brain-tasks"]),
    ("temporalio-workflow", &["brain-tasks"]),
    ("axum", &["brain-gateway", "brain-auth", "brain-portal"]),
    // The OpenAI wire types serve the gateway's OpenAI-compatible surface only.
    ("async-openai", &["brain-gateway"]),
];

#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub from: String,
    pub to: String,
    pub rule: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {} ({})", self.from, self.to, self.rule)
    }
}

/// Runs `cargo metadata` on the workspace at `root` and checks it.
pub fn check_workspace(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).context("parsing metadata")?;
    check(&metadata)
}

/// Checks the declared dependencies of every workspace member in `metadata`.
pub fn check(metadata: &Value) -> anyhow::Result<Vec<Violation>> {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .context("metadata has no workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut violations = Vec::new();
    for package in metadata["packages"]
        .as_array()
        .context("metadata has no packages")?
    {
        let id = package["id"].as_str().unwrap_or_default();
        if !members.contains(&id) {
            continue;
        }
        let from = package["name"].as_str().unwrap_or_default();
        let allowed = ALLOWED
            .iter()
            .find(|(name, _)| *name == from)
            .map(|(_, allowed)| *allowed);
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let to = dependency["name"].as_str().unwrap_or_default();
            let internal = dependency["path"].is_string() || to.starts_with("brain-");
            if internal && to != from {
                match allowed {
                    None => violations.push(Violation {
                        from: from.to_owned(),
                        to: to.to_owned(),
                        rule: "crate has no place in the dependency rules",
                    }),
                    Some(allowed) if !allowed.contains(&to) => violations.push(Violation {
                        from: from.to_owned(),
                        to: to.to_owned(),
                        rule: "edge not allowed by the dependency direction",
                    }),
                    Some(_) => {}
                }
            }
            let normal = dependency["kind"].is_null();
            if from == "brain-types" && normal && !internal && !TYPES_MAY_USE.contains(&to) {
                violations.push(Violation {
                    from: from.to_owned(),
                    to: to.to_owned(),
                    rule: "brain-types stays wasm-safe: serde only",
                });
            }
            if let Some((_, owners)) = CONFINED.iter().find(|(name, _)| *name == to)
                && !owners.contains(&from)
            {
                violations.push(Violation {
                    from: from.to_owned(),
                    to: to.to_owned(),
                    rule: "crate is confined to other workspace crates",
                });
            }
        }
    }
    violations.dedup();
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn package(name: &str, deps: &[(&str, bool)]) -> Value {
        let dependencies: Vec<Value> = deps
            .iter()
            .map(|(dep, internal)| {
                if *internal {
                    json!({ "name": dep, "kind": null, "path": format!("/ws/{dep}") })
                } else {
                    json!({ "name": dep, "kind": null })
                }
            })
            .collect();
        json!({ "id": format!("{name} 0.0.0"), "name": name, "dependencies": dependencies })
    }

    fn metadata(packages: Vec<Value>) -> Value {
        let members: Vec<Value> = packages.iter().map(|p| p["id"].clone()).collect();
        json!({ "workspace_members": members, "packages": packages })
    }

    #[test]
    fn the_intended_graph_passes() {
        let fixture = metadata(vec![
            package(
                "brain-gateway",
                &[
                    ("brain-runtime", true),
                    ("brain-portal", true),
                    ("axum", false),
                ],
            ),
            package(
                "brain-runtime",
                &[("brain-agents", true), ("ractor", false)],
            ),
            package(
                "brain-agents",
                &[("brain-tools", true), ("brain-knowledge", true)],
            ),
            package("brain-tools", &[("brain-auth", true)]),
            package(
                "brain-knowledge",
                &[("brain-auth", true), ("brain-migrations", true)],
            ),
            package("brain-auth", &[("axum", false), ("serde", false)]),
            package("brain-portal", &[("axum", false)]),
        ]);
        assert_eq!(check(&fixture).unwrap(), vec![]);
    }

    #[test]
    fn forbidden_edges_are_reported() {
        let fixture = metadata(vec![
            // upward: a library depending on the composition root
            package("brain-runtime", &[("brain-gateway", true)]),
            // sideways between siblings
            package("brain-tools", &[("brain-knowledge", true)]),
            // upward: auth depending on agents
            package("brain-auth", &[("brain-agents", true)]),
            // the portal reaches the API over HTTP only
            package("brain-portal", &[("brain-runtime", true)]),
            // actors outside the runtime, HTTP framework in a domain crate
            package("brain-knowledge", &[("ractor", false), ("axum", false)]),
            // a library depending on the evals
            package("brain-agents", &[("brain-evals", true)]),
            // a crate nobody placed in the rules
            package("brain-extra", &[("brain-auth", true)]),
            // the shared types pulling in a server crate (serde is fine)
            package("brain-types", &[("serde", false), ("sqlx", false)]),
        ]);
        let found: Vec<(String, String)> = check(&fixture)
            .unwrap()
            .into_iter()
            .map(|v| (v.from, v.to))
            .collect();
        let expected = [
            ("brain-runtime", "brain-gateway"),
            ("brain-tools", "brain-knowledge"),
            ("brain-auth", "brain-agents"),
            ("brain-portal", "brain-runtime"),
            ("brain-knowledge", "ractor"),
            ("brain-knowledge", "axum"),
            ("brain-agents", "brain-evals"),
            ("brain-extra", "brain-auth"),
            ("brain-types", "sqlx"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn dev_dependencies_follow_the_same_rules() {
        let mut tools = package("brain-tools", &[]);
        tools["dependencies"] =
            json!([{ "name": "brain-gateway", "kind": "dev", "path": "/ws/gateway" }]);
        assert_eq!(check(&metadata(vec![tools])).unwrap().len(), 1);
    }

    #[test]
    fn this_workspace_keeps_the_rules() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let violations = check_workspace(&root).unwrap();
        assert!(violations.is_empty(), "{violations:#?}");
    }
}
