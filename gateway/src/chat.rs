//! `brain chat AGENT`: a terminal conversation with an agent, streamed token by token through
//! the same runtime the API uses.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use brain_agents::{TurnEvent, TurnInput};
use futures::StreamExt;

use crate::config::Config;

pub async fn terminal(config: &Config, tenant_slug: &str, agent_slug: &str) -> anyhow::Result<()> {
    let app = crate::serve::app(config, false).await?;
    let tenant = brain_auth::accounts::tenant_by_slug(&app.state.db, tenant_slug)
        .await
        .context("looking up the tenant")?
        .with_context(|| format!("no tenant `{tenant_slug}`"))?;
    let runtime = app.state.runtime.clone();
    let agent = runtime
        .get_agent_by_slug(tenant, agent_slug)
        .await
        .with_context(|| format!("no agent `{agent_slug}` in tenant `{tenant_slug}`"))?;
    println!(
        "Chatting with {} ({}) — {}. Empty line to quit.",
        agent.name,
        agent.model,
        agent.goal.as_str()
    );
    let mut conversation = None;
    let stdin = std::io::stdin();
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let input = TurnInput {
            message: line.trim().to_owned(),
            conversation_id: conversation,
            user_id: None,
        };
        let mut events = runtime.chat_stream(tenant, agent.id, input).await?;
        print!("{}> ", agent.slug.as_str());
        while let Some(event) = events.next().await {
            match event {
                TurnEvent::Token { text } => {
                    print!("{text}");
                    std::io::stdout().flush()?;
                }
                TurnEvent::ToolCall {
                    connector, action, ..
                } => print!("\n  [tool {connector}.{action}]"),
                TurnEvent::ToolResult {
                    status, summary, ..
                } => print!("\n  [{status:?}: {summary}]\n"),
                TurnEvent::Citation(c) => print!("\n  [source: {} p.{}]", c.title, c.page),
                TurnEvent::Done(result) => {
                    conversation = Some(result.conversation_id);
                    println!();
                }
                TurnEvent::Error { code, message } => {
                    println!();
                    bail!("{code}: {message}");
                }
            }
        }
    }
    runtime.shutdown().await;
    Ok(())
}
