//! The embedded local model against llama.cpp on the same GGUF and thread count: prompt
//! processing and decode tokens/s, time to first token, and the warm-prefix follow-up turn.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brain_agents::prompt::system_prompt;
use brain_agents::providers::local::{LocalConfig, LocalProvider, chatml_prompt, requantized_path};
use brain_agents::providers::{ChatMessage, ChatRequest, ChatRole, LlmProvider, ToolDefinition};
use brain_agents::spec::{AgentSpec, NewAgent};
use brain_auth::TenantId;

use super::rss;

/// Runs of the local-model comparison; medians are printed.
const LOCAL_RUNS: usize = 3;
/// Tokens decoded per turn.
const LOCAL_DECODE: u32 = 64;

/// The two tools the benchmark agent is offered: their schemas are part of its prompt.
fn agent_tools() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "wordpress__create_post".into(),
            description: "Create a draft post on the bakery's WordPress site.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "Post title"},
                    "content": {"type": "string", "description": "Post body, HTML allowed"}
                },
                "required": ["title", "content"]
            }),
        },
        ToolDefinition {
            name: "knowledge__search".into(),
            description: "Search the bakery's uploaded documents (menus, price lists, recipes)."
                .into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"]
            }),
        },
    ]
}

/// Turn 1 of a realistic agent conversation: the runtime's system prompt for a marketing
/// agent (role, goal, backstory) with two tools, and a request. `session` varies the first
/// line so that each run's first turn starts from a cold cache.
fn agent_turn(session: usize) -> (Vec<ChatMessage>, Vec<ToolDefinition>) {
    let tools = agent_tools();
    let agent = AgentSpec::unsaved(
        TenantId::new(),
        NewAgent {
            name: "Ada".into(),
            role: "the marketing assistant of Crumb & Co., a neighbourhood bakery".into(),
            goal: "write friendly, accurate posts and newsletters that bring people into the \
                   shop, and keep every claim true to the bakery's own documents"
                .into(),
            backstory: format!(
                "Session {session}. Crumb & Co. has baked in the same street since 1987: \
                 sourdough from a forty-year-old starter and seasonal tarts. The owners \
                 prefer a warm, plain tone, short paragraphs and a practical detail (hours, \
                 price). Never promise allergen-free products. When unsure about a fact, \
                 search the documents first."
            ),
            model: Some("local:default".into()),
            ..NewAgent::default()
        }
        .validate("local:default")
        .unwrap(),
    );
    let messages = vec![
        ChatMessage::system(system_prompt(&agent, &tools, &[])),
        ChatMessage::user(
            "Write the opening paragraph of a blog post announcing our spring sourdough \
             workshop: Saturday mornings in April, 9 to 12, 45 euros, six places, flour and \
             an apron included.",
        ),
    ];
    (messages, tools)
}

/// One side's numbers for one run.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
struct LocalRun {
    prompt_tokens: f64,
    pp_secs: f64,
    ttft_secs: f64,
    decode_tokens: f64,
    decode_secs: f64,
    turn2_prompt_tokens: f64,
    turn2_reused: f64,
    turn2_ttft_secs: f64,
}

impl LocalRun {
    fn pp(&self) -> f64 {
        self.prompt_tokens / self.pp_secs
    }
    fn decode(&self) -> f64 {
        self.decode_tokens / self.decode_secs
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of one number over the runs.
fn med(runs: &[LocalRun], f: impl Fn(&LocalRun) -> f64) -> f64 {
    median(runs.iter().map(f).collect())
}

/// `BRAIN_LOCAL_THREADS`, else every core.
fn local_threads() -> usize {
    std::env::var("BRAIN_LOCAL_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The whole section: our side on the model `BRAIN_LOCAL_MODEL` names, then llama.cpp on
/// the same prompts, then the report.
pub async fn run() {
    println!(
        "== local model (Qwen2.5-Coder-0.5B-Instruct) vs llama.cpp: same GGUF, same threads, \
         greedy, an agent's turn and its follow-up =="
    );
    let Some(model) = std::env::var_os("BRAIN_LOCAL_MODEL") else {
        println!("  BRAIN_LOCAL_MODEL is not set; run through `cargo xtask bench runtime`");
        return;
    };
    let model = PathBuf::from(model);
    let threads = local_threads();
    let provider = LocalProvider::new(LocalConfig {
        threads,
        ..LocalConfig::new(&model)
    });
    let (load, rss_before) = (Instant::now(), rss());
    provider.warm_up().await.unwrap();
    let (load, model_rss) = (load.elapsed(), rss().saturating_sub(rss_before));

    let mut ours = Vec::new();
    let mut prompts = Vec::new();
    for session in 0..LOCAL_RUNS {
        let (run, prompt) = agent_conversation(&provider, session).await;
        ours.push(run);
        prompts.push(prompt);
    }
    drop(provider);
    let baseline = llama_cpp(&model, threads, &prompts);
    print_local_model(&model, threads, (load, model_rss), &ours, baseline);
}

/// An agent's turn and its follow-up on our provider: the run's numbers, and both turns'
/// prompts as text for llama.cpp.
async fn agent_conversation(
    provider: &LocalProvider,
    session: usize,
) -> (LocalRun, serde_json::Value) {
    let (mut messages, tools) = agent_turn(session);
    let request = |messages: &[ChatMessage]| ChatRequest {
        tenant: TenantId::new(),
        model: "default".into(),
        messages: messages.to_vec(),
        tools: tools.clone(),
        temperature: 0.0,
        max_tokens: LOCAL_DECODE,
    };
    let first_prompt = chatml_prompt(&messages, &tools);
    let reply = provider.complete(request(&messages)).await.unwrap();
    let first = provider.last_generation().unwrap();
    messages.push(ChatMessage {
        role: ChatRole::Assistant,
        content: reply.content,
        tool_calls: reply.tool_calls,
        tool_call_id: None,
    });
    messages.push(ChatMessage::user(
        "Good. Now two lines for the newsletter that point to the post.",
    ));
    let second_prompt = chatml_prompt(&messages, &tools);
    provider.complete(request(&messages)).await.unwrap();
    let second = provider.last_generation().unwrap();
    let run = LocalRun {
        prompt_tokens: first.prefilled_tokens() as f64,
        pp_secs: first.prefill.as_secs_f64(),
        ttft_secs: first.time_to_first_token.as_secs_f64(),
        decode_tokens: first.decode_steps as f64,
        decode_secs: first.decode.as_secs_f64(),
        turn2_prompt_tokens: second.prompt_tokens as f64,
        turn2_reused: second.reused_tokens as f64,
        turn2_ttft_secs: second.time_to_first_token.as_secs_f64(),
    };
    (
        run,
        serde_json::json!({"turn1": first_prompt, "turn2": second_prompt}),
    )
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The report: settings, one row per side, and the ratios. `(load, model_rss)`: our model's
/// load time and resident size.
fn print_local_model(
    model: &Path,
    threads: usize,
    (load, model_rss): (Duration, usize),
    ours: &[LocalRun],
    baseline: Result<Vec<LocalRun>, String>,
) {
    let ours_file = requantized_path(model);
    println!(
        "  threads {threads} on both sides; prompt {:.0} tokens; up to {LOCAL_DECODE} new tokens; median of {LOCAL_RUNS} runs; our load {:.1} s, {} MB",
        med(ours, |r| r.prompt_tokens),
        load.as_secs_f64(),
        model_rss >> 20
    );
    print_local_row(
        "ours",
        ours,
        &format!("{} (Q8_0 copy)", file_name(&ours_file)),
    );
    match baseline {
        Ok(llama) => {
            print_local_row(
                "llama.cpp",
                &llama,
                &format!("{} (as shipped)", file_name(model)),
            );
            println!(
                "  ours / llama.cpp: pp {:.2}×   decode {:.2}× (goal ≥ 0.7×)   TTFT {:.2}× (llama.cpp's TTFT / ours)",
                med(ours, LocalRun::pp) / med(&llama, LocalRun::pp),
                med(ours, LocalRun::decode) / med(&llama, LocalRun::decode),
                med(&llama, |r| r.ttft_secs) / med(ours, |r| r.ttft_secs),
            );
        }
        Err(e) => println!("  llama.cpp baseline unavailable: {e}"),
    }
    println!(
        "  warm prefix: turn 2 reaches its first token {:.1}× sooner than turn 1 (goal ≥ 3×)",
        med(ours, |r| r.ttft_secs / r.turn2_ttft_secs)
    );
}

fn print_local_row(name: &str, runs: &[LocalRun], weights: &str) {
    println!(
        "  {name:<10} pp {:>6.1} tok/s   decode {:>5.1} tok/s ({:.0} steps)   TTFT {:>6.0} ms   turn 2 TTFT {:>5.0} ms ({:.0} of {:.0} prompt tokens reused, {:.1}× faster)   [{weights}]",
        med(runs, LocalRun::pp),
        med(runs, LocalRun::decode),
        med(runs, |r| r.decode_tokens),
        med(runs, |r| r.ttft_secs) * 1e3,
        med(runs, |r| r.turn2_ttft_secs) * 1e3,
        med(runs, |r| r.turn2_reused),
        med(runs, |r| r.turn2_prompt_tokens),
        med(runs, |r| r.ttft_secs / r.turn2_ttft_secs),
    );
}

/// llama.cpp (`llama-cpp-python`) on the same prompts: a cold turn 1 measured like ours,
/// then turn 2 reusing its cache's common prefix, as llama-cpp-python's `generate` does.
const LLAMA_SCRIPT: &str = r#"
import json, sys, time
from llama_cpp import Llama

job = json.load(sys.stdin)
llm = Llama(model_path=job["model"], n_threads=job["threads"], n_threads_batch=job["threads"],
            n_ctx=2048, verbose=False)

def greedy():
    return llm.sample(temp=0.0, top_k=1)

def run(turn1, turn2):
    llm.reset()
    start = time.perf_counter()
    tokens = llm.tokenize(turn1.encode(), add_bos=False, special=True)
    pp_start = time.perf_counter()
    llm.eval(tokens)
    pp = time.perf_counter() - pp_start
    token = greedy()
    ttft = time.perf_counter() - start
    steps, decode_start = 0, time.perf_counter()
    for _ in range(job["decode"] - 1):
        llm.eval([token])
        steps += 1
        token = greedy()
    decode = time.perf_counter() - decode_start
    start = time.perf_counter()
    tokens2 = llm.tokenize(turn2.encode(), add_bos=False, special=True)
    cached = list(llm.input_ids[: llm.n_tokens])
    keep = 0
    while keep < min(len(cached), len(tokens2) - 1) and cached[keep] == tokens2[keep]:
        keep += 1
    llm.n_tokens = keep
    llm.eval(tokens2[keep:])
    greedy()
    ttft2 = time.perf_counter() - start
    return {"prompt_tokens": len(tokens), "pp_secs": pp, "ttft_secs": ttft,
            "decode_tokens": steps, "decode_secs": decode,
            "turn2_prompt_tokens": len(tokens2), "turn2_reused": keep, "turn2_ttft_secs": ttft2}

print(json.dumps([run(p["turn1"], p["turn2"]) for p in job["prompts"]]))
"#;

fn llama_cpp(
    model: &std::path::Path,
    threads: usize,
    prompts: &[serde_json::Value],
) -> Result<Vec<LocalRun>, String> {
    use std::io::Write;
    let python_path = std::env::var("BRAIN_BENCH_LLAMA_PYTHONPATH").map_err(
        |_| "BRAIN_BENCH_LLAMA_PYTHONPATH is not set (`cargo xtask bench runtime` installs it)",
    )?;
    let job = serde_json::json!({
        "model": model, "threads": threads, "decode": LOCAL_DECODE, "prompts": prompts,
    });
    let mut child = std::process::Command::new(
        std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned()),
    )
    .args(["-c", LLAMA_SCRIPT])
    .env("PYTHONPATH", python_path)
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .map_err(|e| format!("running python: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(job.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("the llama.cpp script failed ({})", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("reading its output: {e}"))
}
