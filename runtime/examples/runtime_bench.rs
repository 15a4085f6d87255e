//! `cargo xtask bench runtime`: the agent runtime's costs, each printed against a baseline
//! measured in the same run.
//!
//! * per-turn framework overhead with a zero-latency scripted model (p50/p99), through the
//!   actor tree vs calling the provider directly (and vs the bare turn loop);
//! * memory per idle agent actor at 10k and 100k agents vs a bare ractor actor (each
//!   measured in a fresh child process, RSS from /proc);
//! * agent spawn rate, and cold (spawn + spec load) vs warm turns;
//! * delegation: one agent asking another (grant check, actor hops, the target's own turn,
//!   audit event) vs a single-agent turn;
//! * the embedded local model vs llama.cpp on the same GGUF and thread count: prompt
//!   processing and decode tokens/s, time to first token for an agent's ~400-token prompt,
//!   and how much sooner the follow-up turn starts when the cached prefix is reused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark may fail loudly

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use brain_agents::ProviderError;
use brain_agents::conversation::MemoryTurnStore;
use brain_agents::prompt::system_prompt;
use brain_agents::providers::local::{LocalConfig, LocalProvider, chatml_prompt, requantized_path};
use brain_agents::providers::scripted::{ScriptStep, ScriptedProvider};
use brain_agents::providers::{
    ChatMessage, ChatRequest, ChatRole, FinishReason, LlmProvider, ModelEvent, ModelStream,
    ToolCall, ToolDefinition,
};
use brain_agents::spec::{AgentSpec, Approval, DelegateGrant, NewAgent};
use brain_agents::tool::NoTools;
use brain_agents::turn::{TurnContext, TurnInput, TurnLimits};
use brain_agents::{AgentStore, PgTurnStore, ProviderRegistry, TurnStore, run_turn};
use brain_auth::TenantId;
use brain_migrations::testing::TestDb;
use brain_runtime::agent::{AgentActor, AgentArgs};
use brain_runtime::{
    DelegationRequest, NoToolSource, RuntimeConfig, RuntimeDeps, RuntimeHandle, RuntimeMetrics,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.first().map(String::as_str) == Some("memory") {
        // Child process: one memory measurement, printed as bytes per actor.
        let kind = args[1].clone();
        let n: usize = args[2].parse().unwrap();
        let per_actor = rt.block_on(memory_child(&kind, n));
        println!("{per_actor}");
        return;
    }
    if args.first().map(String::as_str) == Some("delegation") {
        // One section alone (`cargo run --example bench -p brain-runtime -- delegation`).
        rt.block_on(delegation());
        return;
    }
    if args.first().map(String::as_str) == Some("local") {
        rt.block_on(local_model());
        return;
    }
    rt.block_on(async {
        turn_overhead().await;
        delegation().await;
        memory();
        spawn_rate().await;
        local_model().await;
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn agent_input(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        role: "a benchmark agent".into(),
        goal: "answer instantly".into(),
        model: Some("scripted:default".into()),
        ..NewAgent::default()
    }
}

async fn tenant(db: &TestDb) -> TenantId {
    TenantId(
        sqlx::query_scalar(
            "INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap(),
    )
}

fn deps(db: &TestDb, turns: Arc<dyn TurnStore>, model: Arc<dyn LlmProvider>) -> RuntimeDeps {
    let registry = prometheus::Registry::new();
    RuntimeDeps {
        agents: AgentStore::new(db.app.clone()),
        turns,
        conversations: PgTurnStore::new(db.app.clone()),
        providers: ProviderRegistry::new().with("scripted", model),
        tools: Arc::new(NoToolSource),
        retriever: None,
        metrics: RuntimeMetrics::new(&registry).unwrap(),
        config: RuntimeConfig::default(),
    }
}

async fn turn_overhead() {
    const N: usize = 5_000;
    const WARMUP: usize = 500;
    println!("== per-turn framework overhead (zero-latency scripted model, {N} turns) ==");
    let db = TestDb::new().await.unwrap();
    let t = tenant(&db).await;
    let model = Arc::new(ScriptedProvider::repeating(ScriptStep::reply("ok")));

    // Baseline: the provider alone, with a request of the size a turn sends.
    let agent_spec = AgentStore::new(db.app.clone())
        .create(t, agent_input("Direct"))
        .await
        .unwrap();
    let request = ChatRequest {
        tenant: t,
        model: "default".into(),
        messages: vec![
            ChatMessage::system(brain_agents::prompt::system_prompt(&agent_spec, &[], &[])),
            ChatMessage::user("hello"),
        ],
        tools: vec![],
        temperature: 0.7,
        max_tokens: 16,
    };
    let mut direct = Vec::with_capacity(N);
    for i in 0..(N + WARMUP) {
        let started = Instant::now();
        model.complete(request.clone()).await.unwrap();
        if i >= WARMUP {
            direct.push(started.elapsed());
        }
    }

    // The turn loop alone (prompt, stream handling, in-memory persistence), no actors.
    let memory = MemoryTurnStore::default();
    let mut looped = Vec::with_capacity(N);
    for i in 0..(N + WARMUP) {
        let started = Instant::now();
        run_turn(
            TurnContext {
                tenant: t,
                agent: &agent_spec,
                provider: model.clone(),
                tools: &NoTools,
                retriever: None,
                store: &memory,
                limits: TurnLimits::default(),
            },
            TurnInput {
                message: "hello".into(),
                ..TurnInput::default()
            },
            None,
        )
        .await
        .unwrap();
        if i >= WARMUP {
            looped.push(started.elapsed());
        }
    }

    // Through the tree: handle → RuntimeSupervisor → TenantSupervisor → AgentActor → task.
    let handle = RuntimeHandle::start(deps(
        &db,
        Arc::new(MemoryTurnStore::default()),
        model.clone(),
    ))
    .await
    .unwrap();
    let agent = handle.create_agent(t, agent_input("Tree")).await.unwrap();
    let mut tree = Vec::with_capacity(N);
    for i in 0..(N + WARMUP) {
        let started = Instant::now();
        handle
            .chat(
                t,
                agent.id,
                TurnInput {
                    message: "hello".into(),
                    ..TurnInput::default()
                },
            )
            .await
            .unwrap();
        if i >= WARMUP {
            tree.push(started.elapsed());
        }
    }
    handle.shutdown().await;

    // The same with the turn committed to Postgres (what production does).
    let pg = RuntimeHandle::start(deps(
        &db,
        Arc::new(PgTurnStore::new(db.app.clone())),
        model.clone(),
    ))
    .await
    .unwrap();
    let pg_agent = pg.create_agent(t, agent_input("Persisted")).await.unwrap();
    let mut persisted = Vec::new();
    for i in 0..600 {
        let started = Instant::now();
        pg.chat(
            t,
            pg_agent.id,
            TurnInput {
                message: "hello".into(),
                ..TurnInput::default()
            },
        )
        .await
        .unwrap();
        if i >= 100 {
            persisted.push(started.elapsed());
        }
    }
    pg.shutdown().await;

    let (d50, d99) = summary(direct);
    let (l50, l99) = summary(looped);
    let (t50, t99) = summary(tree);
    let (p50, p99) = summary(persisted);
    println!(
        "  provider called directly (baseline)   p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(d50),
        us(d99)
    );
    println!(
        "  turn loop, no actors                   p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(l50),
        us(l99)
    );
    println!(
        "  full turn through the actor tree       p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(t50),
        us(t99)
    );
    println!(
        "  => framework overhead (tree − direct)  p50 {:>8.1} µs   p99 {:>8.1} µs   (goal p99 ≤ 1000 µs: {})",
        us(t50.saturating_sub(d50)),
        us(t99.saturating_sub(d99)),
        if t99.saturating_sub(d99) <= Duration::from_millis(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  => actor hops alone (tree − loop)      p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(t50.saturating_sub(l50)),
        us(t99.saturating_sub(l99))
    );
    println!(
        "  with the turn committed to Postgres    p50 {:>8.1} µs   p99 {:>8.1} µs   ({:.0}× the tree with in-memory turns at p50)",
        us(p50),
        us(p99),
        p50.as_secs_f64() / t50.as_secs_f64()
    );
}

/// A zero-latency model that asks `ask_<target>` once per turn, then answers.
struct Delegator {
    tool: String,
}

#[async_trait::async_trait]
impl LlmProvider for Delegator {
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ProviderError> {
        let answered = request
            .messages
            .last()
            .is_some_and(|m| m.role == ChatRole::Tool);
        let events = if answered {
            vec![
                Ok(ModelEvent::Token("ok".into())),
                Ok(ModelEvent::Finished(FinishReason::Stop)),
            ]
        } else {
            vec![
                Ok(ModelEvent::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: self.tool.clone(),
                    arguments: serde_json::json!({"question": "hello?"}),
                })),
                Ok(ModelEvent::Finished(FinishReason::ToolCalls)),
            ]
        };
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

async fn delegation() {
    const N: usize = 2_000;
    const WARMUP: usize = 200;
    println!("== delegation round trip (zero-latency scripted models, {N} each) ==");
    let db = TestDb::new().await.unwrap();
    let t = tenant(&db).await;
    let answer: Arc<dyn LlmProvider> =
        Arc::new(ScriptedProvider::repeating(ScriptStep::reply("ok")));
    let mut deps = deps(&db, Arc::new(MemoryTurnStore::default()), answer);
    deps.providers = deps.providers.with(
        "delegator",
        Arc::new(Delegator {
            tool: "ask_target".into(),
        }),
    );
    let handle = RuntimeHandle::start(deps).await.unwrap();
    let single = handle.create_agent(t, agent_input("Single")).await.unwrap();
    let target = handle.create_agent(t, agent_input("Target")).await.unwrap();
    let mut caller_input = agent_input("Caller");
    caller_input.model = Some("delegator:default".into());
    caller_input.delegates = vec![DelegateGrant {
        agent: target.id,
        approval: Approval::Never,
        max_calls_per_run: None,
    }];
    let caller = handle.create_agent(t, caller_input).await.unwrap();
    let input = || TurnInput {
        message: "hello".into(),
        ..TurnInput::default()
    };

    // Interleaved, so drift (autovacuum, the audit table growing) hits all three alike.
    let (mut turns, mut asks, mut delegating) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..(N + WARMUP) {
        let s = Instant::now();
        handle.chat(t, single.id, input()).await.unwrap();
        let turn = s.elapsed();
        let s = Instant::now();
        handle
            .delegate(t, DelegationRequest::new(caller.id, target.id, "hello?"))
            .await
            .unwrap();
        let ask = s.elapsed();
        let s = Instant::now();
        let result = handle.chat(t, caller.id, input()).await.unwrap();
        let whole = s.elapsed();
        assert_eq!(result.tool_calls.len(), 1);
        if i >= WARMUP {
            turns.push(turn);
            asks.push(ask);
            delegating.push(whole);
        }
    }
    handle.shutdown().await;
    let (s50, s99) = summary(turns);
    let (a50, a99) = summary(asks);
    let (d50, d99) = summary(delegating);
    println!(
        "  single-agent turn (baseline)               p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(s50),
        us(s99)
    );
    println!(
        "  one delegation (A asks B, B's whole turn)  p50 {:>8.1} µs   p99 {:>8.1} µs   ratio {:.2}× the single turn at p50",
        us(a50),
        us(a99),
        a50.as_secs_f64() / s50.as_secs_f64()
    );
    println!(
        "  => delegation round trip (ask − turn)      p50 {:>8.1} µs   p99 {:>8.1} µs   (grant read + actor hops + audit append)",
        us(a50.saturating_sub(s50)),
        us(a99.saturating_sub(s99))
    );
    println!(
        "  turn that delegates once (2 calls of A + B's turn) p50 {:>8.1} µs   p99 {:>8.1} µs   ratio {:.2}× the single turn at p50",
        us(d50),
        us(d99),
        d50.as_secs_f64() / s50.as_secs_f64()
    );
}

/// Resident set size of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

struct Bare;

impl Actor for Bare {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn spec(tenant: TenantId, i: usize) -> AgentSpec {
    AgentSpec::unsaved(
        tenant,
        agent_input(&format!("Agent {i}"))
            .validate("local:default")
            .unwrap(),
    )
}

/// Runs in a child process: spawns `n` idle actors of `kind` and reports RSS per actor.
async fn memory_child(kind: &str, n: usize) -> usize {
    // Deps whose pools never connect: idle agents do no IO.
    let url = "postgres://nobody@127.0.0.1:1/none";
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy(url)
        .unwrap();
    let registry = prometheus::Registry::new();
    let deps = Arc::new(RuntimeDeps {
        agents: AgentStore::new(pool.clone()),
        turns: Arc::new(MemoryTurnStore::default()),
        conversations: PgTurnStore::new(pool),
        providers: ProviderRegistry::new(),
        tools: Arc::new(NoToolSource),
        retriever: None,
        metrics: RuntimeMetrics::new(&registry).unwrap(),
        config: RuntimeConfig::default(),
    });
    let tenant = TenantId::new();
    let turns = Arc::new(AtomicUsize::new(0));
    let mut refs = Vec::with_capacity(n);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = rss();
    if kind == "agent" {
        // The spec is built inside the measurement: an idle agent costs its spec too.
        for i in 0..n {
            let spec = spec(tenant, i);
            let (actor, _) = Actor::spawn(
                None,
                AgentActor,
                AgentArgs {
                    tenant,
                    spec,
                    deps: Arc::clone(&deps),
                    tenant_turns: Arc::clone(&turns),
                    tenant_supervisor: None,
                },
            )
            .await
            .unwrap();
            refs.push(actor.get_cell());
        }
    } else {
        for _ in 0..n {
            let (actor, _) = Actor::spawn(None, Bare, ()).await.unwrap();
            refs.push(actor.get_cell());
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss();
    (after.saturating_sub(before)) / n
}

fn memory() {
    println!("== memory per idle actor (RSS growth in a fresh process) ==");
    let exe = std::env::current_exe().unwrap();
    let measure = |kind: &str, n: usize| -> usize {
        let out = std::process::Command::new(&exe)
            .args(["memory", kind, &n.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    for n in [10_000, 100_000] {
        let bare = measure("bare", n);
        let agent = measure("agent", n);
        println!(
            "  {n:>7} agents: AgentActor {:>6.1} KB/agent   bare ractor actor (baseline) {:>6.1} KB   ratio {:.2}×   (goal ≤ 16 KB: {})",
            agent as f64 / 1024.0,
            bare as f64 / 1024.0,
            agent as f64 / bare.max(1) as f64,
            if agent <= 16 * 1024 { "met" } else { "NOT met" }
        );
    }
}

async fn spawn_rate() {
    println!("== agent spawn rate ==");
    const N: usize = 20_000;
    let registry = prometheus::Registry::new();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let deps = Arc::new(RuntimeDeps {
        agents: AgentStore::new(pool.clone()),
        turns: Arc::new(MemoryTurnStore::default()),
        conversations: PgTurnStore::new(pool),
        providers: ProviderRegistry::new(),
        tools: Arc::new(NoToolSource),
        retriever: None,
        metrics: RuntimeMetrics::new(&registry).unwrap(),
        config: RuntimeConfig::default(),
    });
    let tenant = TenantId::new();
    let turns = Arc::new(AtomicUsize::new(0));
    let specs: Vec<AgentSpec> = (0..N).map(|i| spec(tenant, i)).collect();
    let started = Instant::now();
    let mut refs = Vec::with_capacity(N);
    for spec in specs {
        let (a, _) = Actor::spawn(
            None,
            AgentActor,
            AgentArgs {
                tenant,
                spec,
                deps: Arc::clone(&deps),
                tenant_turns: Arc::clone(&turns),
                tenant_supervisor: None,
            },
        )
        .await
        .unwrap();
        refs.push(a);
    }
    let agents_per_s = N as f64 / started.elapsed().as_secs_f64();
    for a in &refs {
        a.stop(None);
    }
    let started = Instant::now();
    let mut bare = Vec::with_capacity(N);
    for _ in 0..N {
        bare.push(Actor::spawn(None, Bare, ()).await.unwrap().0);
    }
    let bare_per_s = N as f64 / started.elapsed().as_secs_f64();
    for a in &bare {
        a.stop(None);
    }
    println!(
        "  AgentActor spawns {agents_per_s:>10.0}/s   bare ractor actor (baseline) {bare_per_s:>10.0}/s   ratio {:.2}",
        agents_per_s / bare_per_s
    );

    // Lazy activation through the tree: the first turn loads the spec and spawns the actor.
    const M: usize = 500;
    let db = TestDb::new().await.unwrap();
    let t = tenant_row(&db).await;
    let model: Arc<dyn LlmProvider> =
        Arc::new(ScriptedProvider::repeating(ScriptStep::reply("ok")));
    let handle = RuntimeHandle::start(deps_for(&db, model)).await.unwrap();
    let mut ids = Vec::with_capacity(M);
    for i in 0..M {
        ids.push(
            handle
                .create_agent(t, agent_input(&format!("Lazy {i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let input = || TurnInput {
        message: "hello".into(),
        ..TurnInput::default()
    };
    let mut cold = Vec::with_capacity(M);
    for id in &ids {
        let s = Instant::now();
        handle.chat(t, *id, input()).await.unwrap();
        cold.push(s.elapsed());
    }
    let mut warm = Vec::with_capacity(M);
    for id in &ids {
        let s = Instant::now();
        handle.chat(t, *id, input()).await.unwrap();
        warm.push(s.elapsed());
    }
    handle.shutdown().await;
    let (c50, c99) = summary(cold);
    let (w50, w99) = summary(warm);
    println!(
        "  first turn of {M} agents (spec read + spawn) p50 {:>7.1} µs p99 {:>7.1} µs   warm turn (baseline) p50 {:>7.1} µs p99 {:>7.1} µs   activation ≈ {:.1} µs",
        us(c50),
        us(c99),
        us(w50),
        us(w99),
        us(c50.saturating_sub(w50))
    );
}

async fn tenant_row(db: &TestDb) -> TenantId {
    tenant(db).await
}

fn deps_for(db: &TestDb, model: Arc<dyn LlmProvider>) -> RuntimeDeps {
    deps(db, Arc::new(MemoryTurnStore::default()), model)
}

/// Runs of the local-model comparison; medians are printed.
const LOCAL_RUNS: usize = 3;
/// Tokens decoded per turn.
const LOCAL_DECODE: u32 = 64;

/// Turn 1 of a realistic agent conversation: the runtime's system prompt for a marketing
/// agent (role, goal, backstory) with two tools, and a request. `session` varies the first
/// line so that each run's first turn starts from a cold cache.
fn agent_turn(session: usize) -> (Vec<ChatMessage>, Vec<ToolDefinition>) {
    let tools = vec![
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
    ];
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

async fn local_model() {
    println!(
        "== local model (Qwen2.5-Coder-0.5B-Instruct) vs llama.cpp: same GGUF, same threads, \
         greedy, an agent's turn and its follow-up =="
    );
    let Some(model) = std::env::var_os("BRAIN_LOCAL_MODEL") else {
        println!("  BRAIN_LOCAL_MODEL is not set; run through `cargo xtask bench runtime`");
        return;
    };
    let model = std::path::PathBuf::from(model);
    let threads = std::env::var("BRAIN_LOCAL_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
        ours.push(LocalRun {
            prompt_tokens: first.prefilled_tokens() as f64,
            pp_secs: first.prefill.as_secs_f64(),
            ttft_secs: first.time_to_first_token.as_secs_f64(),
            decode_tokens: first.decode_steps as f64,
            decode_secs: first.decode.as_secs_f64(),
            turn2_prompt_tokens: second.prompt_tokens as f64,
            turn2_reused: second.reused_tokens as f64,
            turn2_ttft_secs: second.time_to_first_token.as_secs_f64(),
        });
        prompts.push(serde_json::json!({"turn1": first_prompt, "turn2": second_prompt}));
    }
    drop(provider);
    let baseline = llama_cpp(&model, threads, &prompts);

    let ours_file = requantized_path(&model);
    let file = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    println!(
        "  threads {threads} on both sides; prompt {:.0} tokens; up to {LOCAL_DECODE} new tokens; median of {LOCAL_RUNS} runs; our load {:.1} s, {} MB",
        med(&ours, |r| r.prompt_tokens),
        load.as_secs_f64(),
        model_rss >> 20
    );
    let row = |name: &str, runs: &[LocalRun], weights: &str| {
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
    };
    row("ours", &ours, &format!("{} (Q8_0 copy)", file(&ours_file)));
    match baseline {
        Ok(llama) => {
            row(
                "llama.cpp",
                &llama,
                &format!("{} (as shipped)", file(&model)),
            );
            println!(
                "  ours / llama.cpp: pp {:.2}×   decode {:.2}× (goal ≥ 0.7×)   TTFT {:.2}× (llama.cpp's TTFT / ours)",
                med(&ours, LocalRun::pp) / med(&llama, LocalRun::pp),
                med(&ours, LocalRun::decode) / med(&llama, LocalRun::decode),
                med(&llama, |r| r.ttft_secs) / med(&ours, |r| r.ttft_secs),
            );
        }
        Err(e) => println!("  llama.cpp baseline unavailable: {e}"),
    }
    println!(
        "  warm prefix: turn 2 reaches its first token {:.1}× sooner than turn 1 (goal ≥ 3×)",
        med(&ours, |r| r.ttft_secs / r.turn2_ttft_secs)
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
