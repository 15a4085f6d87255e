//! The tools form's fields and the grants they stand for: the complete list `PUT
//! /v1/agents/{id}/tools` replaces the agent's grants with.
//!
//! MCP servers and remote agents are keyed by their place on the page (`s0`, `s0t2`, `a1`):
//! a slug could read as a list index, and a tool name could hold characters a key cannot.
//! Slugs and tool names travel as the fields' values.

#[cfg(any(feature = "ssr", test))]
use std::collections::HashMap;

#[cfg(any(feature = "ssr", test))]
use serde_json::{Value, json};

/// The key of the `i`-th MCP server on the page.
pub fn server_key(i: usize) -> String {
    format!("s{i}")
}

/// The key of the `j`-th tool of the `i`-th MCP server.
pub fn tool_key(i: usize, j: usize) -> String {
    format!("s{i}t{j}")
}

/// The key of the `i`-th remote agent on the page.
pub fn agent_key(i: usize) -> String {
    format!("a{i}")
}

/// The tools form as posted.
#[cfg(any(feature = "ssr", test))]
#[derive(Clone, Debug, Default)]
pub struct GrantsForm {
    /// Ticked connectors (`grants[<connector>]`).
    pub grants: HashMap<String, String>,
    /// Ticked actions (`actions[<connector>__<action>]`).
    pub actions: HashMap<String, String>,
    /// By connector: `always` or `never`.
    pub approval: HashMap<String, String>,
    /// By connector: the grant's limit per run, carried through unchanged.
    pub limit: HashMap<String, String>,
    /// By server key: its slug.
    pub mcp_slug: HashMap<String, String>,
    /// By tool key: the ticked tool's name.
    pub mcp_tools: HashMap<String, String>,
    /// By server key: `auto`, `always` or `never`.
    pub mcp_approval: HashMap<String, String>,
    /// By server key: the grant's limit per run, carried through unchanged.
    pub mcp_limit: HashMap<String, String>,
    /// By server key, for a grant of every tool (`*`): how many tools the page offered. With
    /// all of them still ticked the grant stays `*` (and so covers tools the server adds).
    pub mcp_all: HashMap<String, String>,
    /// By agent key: the ticked remote agent's slug.
    pub a2a: HashMap<String, String>,
    /// By agent key: `auto`, `always` or `never`.
    pub a2a_approval: HashMap<String, String>,
    /// By agent key: the grant's limit per run, carried through unchanged.
    pub a2a_limit: HashMap<String, String>,
    /// Grants the page did not offer (their source is disabled or gone), as JSON, kept.
    pub keep: HashMap<String, String>,
}

/// How many grants of each kind a save sent.
#[cfg(any(feature = "ssr", test))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantCounts {
    pub connectors: usize,
    pub servers: usize,
    pub agents: usize,
}

#[cfg(any(feature = "ssr", test))]
impl GrantsForm {
    /// Every grant the form stands for, and how many of each kind.
    pub fn body(&self) -> (Vec<Value>, GrantCounts) {
        let connectors = self.connector_grants();
        let servers = self.server_grants();
        let agents = self.agent_grants();
        let counts = GrantCounts {
            connectors: connectors.len(),
            servers: servers.len(),
            agents: agents.len(),
        };
        let mut kept: Vec<(&String, &String)> = self.keep.iter().collect();
        kept.sort();
        let kept = kept
            .into_iter()
            .filter_map(|(_, g)| serde_json::from_str::<Value>(g).ok());
        let grants = connectors
            .into_iter()
            .chain(servers)
            .chain(agents)
            .chain(kept)
            .collect();
        (grants, counts)
    }

    /// A ticked connector with no ticked action may use all of them.
    fn connector_grants(&self) -> Vec<Value> {
        let mut connectors: Vec<&String> = self.grants.keys().collect();
        connectors.sort();
        connectors
            .into_iter()
            .map(|connector| {
                let prefix = format!("{connector}__");
                let mut chosen: Vec<&str> = self
                    .actions
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .collect();
                chosen.sort_unstable();
                if chosen.is_empty() {
                    chosen.push("*");
                }
                let approval = match self.approval.get(connector).map(String::as_str) {
                    Some("always") => "always",
                    _ => "never",
                };
                let grant =
                    json!({"connector": connector, "actions": chosen, "approval": approval});
                with_limit(grant, self.limit.get(connector))
            })
            .collect()
    }

    /// A server with at least one ticked tool.
    fn server_grants(&self) -> Vec<Value> {
        places(&self.mcp_slug, 's')
            .into_iter()
            .filter_map(|(i, slug)| {
                let key = server_key(i);
                let mut ticked: Vec<(usize, &str)> = self
                    .mcp_tools
                    .iter()
                    .filter_map(|(k, name)| {
                        let (server, tool) = k.strip_prefix('s')?.split_once('t')?;
                        (server.parse::<usize>().ok()? == i)
                            .then_some((tool.parse::<usize>().ok()?, name.as_str()))
                    })
                    .collect();
                ticked.sort_unstable();
                let offered = self.mcp_all.get(&key).and_then(|n| n.parse::<usize>().ok());
                let tools: Vec<&str> = if offered == Some(ticked.len()) {
                    vec!["*"]
                } else {
                    ticked.into_iter().map(|(_, name)| name).collect()
                };
                if tools.is_empty() {
                    return None;
                }
                let approval = source_approval(self.mcp_approval.get(&key));
                let grant = json!({"mcp_server": slug, "tools": tools, "approval": approval});
                Some(with_limit(grant, self.mcp_limit.get(&key)))
            })
            .collect()
    }

    fn agent_grants(&self) -> Vec<Value> {
        places(&self.a2a, 'a')
            .into_iter()
            .map(|(i, slug)| {
                let key = agent_key(i);
                let approval = source_approval(self.a2a_approval.get(&key));
                let grant = json!({"a2a_agent": slug, "approval": approval});
                with_limit(grant, self.a2a_limit.get(&key))
            })
            .collect()
    }
}

/// `(place, value)` of the keys `{prefix}{n}`, by place.
#[cfg(any(feature = "ssr", test))]
fn places(map: &HashMap<String, String>, prefix: char) -> Vec<(usize, &str)> {
    let mut found: Vec<(usize, &str)> = map
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.parse().ok()?, v.as_str())))
        .collect();
    found.sort_unstable();
    found
}

/// An MCP server's or remote agent's approval: `auto` unless `always` or `never` was chosen.
#[cfg(any(feature = "ssr", test))]
fn source_approval(choice: Option<&String>) -> &'static str {
    match choice.map(String::as_str) {
        Some("always") => "always",
        Some("never") => "never",
        _ => "auto",
    }
}

#[cfg(any(feature = "ssr", test))]
fn with_limit(mut grant: Value, limit: Option<&String>) -> Value {
    if let Some(n) = limit.and_then(|l| l.trim().parse::<u32>().ok()) {
        grant["max_calls_per_run"] = json!(n);
    }
    grant
}

/// What a save granted, in words.
#[cfg(any(feature = "ssr", test))]
pub fn saved_message(counts: GrantCounts) -> String {
    let parts: Vec<String> = [
        (counts.connectors, "connector"),
        (counts.servers, "MCP server"),
        (counts.agents, "remote agent"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
    .collect();
    if parts.is_empty() {
        "Tools saved: nothing granted.".to_owned()
    } else {
        format!("Tools saved: {} granted.", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_becomes_every_grant_of_the_agent() {
        let form = GrantsForm {
            grants: map(&[("wordpress", "on"), ("hubspot", "on")]),
            actions: map(&[("hubspot__create_contact", "on"), ("slack__post", "on")]),
            approval: map(&[("hubspot", "always"), ("wordpress", "never")]),
            limit: map(&[("wordpress", "5")]),
            // s0: two tools of three ticked; s1: a `*` grant still whole; s2: a `*` grant with
            // one tool unticked; s3: nothing ticked.
            mcp_slug: map(&[
                ("s0", "crm"),
                ("s1", "docs"),
                ("s2", "files"),
                ("s3", "idle"),
            ]),
            mcp_tools: map(&[
                ("s0t2", "search"),
                ("s0t0", "echo"),
                ("s1t0", "read"),
                ("s1t1", "list"),
                ("s2t0", "open"),
            ]),
            mcp_approval: map(&[("s0", "never"), ("s1", "bogus"), ("s2", "always")]),
            mcp_limit: map(&[("s0", "3"), ("s1", "")]),
            mcp_all: map(&[("s1", "2"), ("s2", "2")]),
            a2a: map(&[("a1", "planner")]),
            a2a_approval: map(&[("a1", "always"), ("a0", "never")]),
            a2a_limit: map(&[("a1", "2")]),
            keep: map(&[(
                "k0",
                r#"{"mcp_server":"off","tools":["*"],"approval":"auto"}"#,
            )]),
        };
        let (body, counts) = form.body();
        assert_eq!(
            Value::Array(body),
            json!([
                {"connector": "hubspot", "actions": ["create_contact"], "approval": "always"},
                {"connector": "wordpress", "actions": ["*"], "approval": "never",
                 "max_calls_per_run": 5},
                {"mcp_server": "crm", "tools": ["echo", "search"], "approval": "never",
                 "max_calls_per_run": 3},
                {"mcp_server": "docs", "tools": ["*"], "approval": "auto"},
                {"mcp_server": "files", "tools": ["open"], "approval": "always"},
                {"a2a_agent": "planner", "approval": "always", "max_calls_per_run": 2},
                {"mcp_server": "off", "tools": ["*"], "approval": "auto"},
            ])
        );
        assert_eq!(
            counts,
            GrantCounts {
                connectors: 2,
                servers: 3,
                agents: 1
            }
        );
        assert_eq!(
            saved_message(counts),
            "Tools saved: 2 connectors, 3 MCP servers, 1 remote agent granted."
        );
    }

    #[test]
    fn an_empty_form_grants_nothing() {
        let (body, counts) = GrantsForm::default().body();
        assert!(body.is_empty());
        assert_eq!(saved_message(counts), "Tools saved: nothing granted.");
    }
}
