//! Suites as data: `evals/suites/NAME.json`, each with the documents it needs and its cases.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Which harness runs a suite and which metrics it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteKind {
    Retrieval,
    Grounded,
    ToolChoice,
    Injection,
    Latency,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Suite {
    pub name: String,
    pub kind: SuiteKind,
    #[serde(default)]
    pub description: String,
    /// PDFs the harness generates: page `i + 1` shows `pages[i]`.
    #[serde(default)]
    pub documents: Vec<DocumentSpec>,
    pub cases: Vec<Case>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DocumentSpec {
    pub name: String,
    pub pages: Vec<String>,
}

/// Where an injected instruction reaches the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// In the text of a PDF the agent retrieves from (the suite's documents).
    Pdf,
    /// In the platform's answer to a granted tool call.
    ToolResult,
    /// In a webhook-like JSON payload the user pastes.
    Webhook,
    /// In the user message itself.
    User,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Case {
    pub id: String,
    /// The user message (or the search query for retrieval).
    pub prompt: String,
    /// Part of the CI smoke subset.
    #[serde(default)]
    pub smoke: bool,
    /// Expected document (by name) and pages holding the answer.
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub pages: Vec<u32>,
    /// A phrase the grounded reply must contain (case-insensitive).
    #[serde(default)]
    pub key_phrase: Option<String>,
    /// `connector:action` grants of the agent that answers this case.
    #[serde(default)]
    pub grants: Vec<String>,
    /// The tool (`connector__action`) the prompt needs; `None` means no tool.
    #[serde(default)]
    pub expect_tool: Option<String>,
    /// For injection cases: where the instruction arrives (the pattern is in `prompt`,
    /// the documents or the fake platform's answer).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// A short name of the injection pattern, for the report.
    #[serde(default)]
    pub pattern: Option<String>,
    /// For `tool_result` cases: what the platform answers to the granted call.
    #[serde(default)]
    pub tool_result: Option<String>,
}

/// `evals/suites/` of this checkout.
pub fn suites_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/suites"))
}

pub fn load(dir: &Path, name: &str) -> anyhow::Result<Suite> {
    let path = dir.join(format!("{name}.json"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Suite names in `dir`, sorted.
pub fn names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}
