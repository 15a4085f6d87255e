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
use std::time::{Duration, Instant};

use brain_agents::ProviderError;
use brain_agents::conversation::MemoryTurnStore;
use brain_agents::prompt::system_prompt;
use brain_agents::providers::scripted::{ScriptStep, ScriptedProvider};
use brain_agents::providers::{
    ChatMessage, ChatRequest, ChatRole, FinishReason, LlmProvider, ModelEvent, ModelStream,
    ToolCall,
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
    TenantLoad,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

// A module beside this file rather than `examples/local_model.rs`, which Cargo would take
// for an example of its own.
#[path = "runtime_bench/local_model.rs"]
mod local_model;

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
    if args.first().map(String::as_str) == Some("overhead") {
        // The per-turn overhead alone, e.g. to re-check it after a provider change.
        rt.block_on(turn_overhead());
        return;
    }
    if args.first().map(String::as_str) == Some("local") {
        rt.block_on(local_model::run());
        return;
    }
    rt.block_on(async {
        turn_overhead().await;
        delegation().await;
        memory();
        spawn_rate().await;
        local_model::run().await;
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

/// Times `runs` calls of `one`, keeping those after the first `warmup`.
async fn timed(runs: usize, warmup: usize, mut one: impl AsyncFnMut()) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(runs.saturating_sub(warmup));
    for i in 0..runs {
        let started = Instant::now();
        one().await;
        if i >= warmup {
            samples.push(started.elapsed());
        }
    }
    samples
}

fn hello() -> TurnInput {
    TurnInput {
        message: "hello".into(),
        ..TurnInput::default()
    }
}

/// Turns of a new agent `name` through the tree (handle → RuntimeSupervisor →
/// TenantSupervisor → AgentActor → task), with `turns` as the turn store.
async fn tree_turns(
    db: &TestDb,
    t: TenantId,
    model: Arc<dyn LlmProvider>,
    turns: Arc<dyn TurnStore>,
    name: &str,
    (runs, warmup): (usize, usize),
) -> Vec<Duration> {
    let handle = RuntimeHandle::start(deps(db, turns, model)).await.unwrap();
    let agent = handle.create_agent(t, agent_input(name)).await.unwrap();
    let samples = timed(runs, warmup, async || {
        handle.chat(t, agent.id, hello()).await.unwrap();
    })
    .await;
    handle.shutdown().await;
    samples
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
            ChatMessage::system(system_prompt(&agent_spec, &[], &[])),
            ChatMessage::user("hello"),
        ],
        tools: vec![],
        temperature: 0.7,
        max_tokens: 16,
    };
    let direct = timed(N + WARMUP, WARMUP, async || {
        model.complete(request.clone()).await.unwrap();
    })
    .await;

    // The turn loop alone (prompt, stream handling, in-memory persistence), no actors.
    let memory = MemoryTurnStore::default();
    let looped = timed(N + WARMUP, WARMUP, async || {
        let context = TurnContext {
            tenant: t,
            agent: &agent_spec,
            provider: model.clone(),
            tools: &NoTools,
            retriever: None,
            store: &memory,
            limits: TurnLimits::default(),
        };
        run_turn(context, hello(), None).await.unwrap();
    })
    .await;

    // Through the tree, with turns in memory.
    let in_memory = Arc::new(MemoryTurnStore::default());
    let tree = tree_turns(
        &db,
        t,
        model.clone(),
        in_memory,
        "Tree",
        (N + WARMUP, WARMUP),
    )
    .await;

    // The same with the turn committed to Postgres (what production does).
    let pg = Arc::new(PgTurnStore::new(db.app.clone()));
    let persisted = tree_turns(&db, t, model.clone(), pg, "Persisted", (600, 100)).await;

    print_turn_overhead(direct, looped, tree, persisted);
}

fn print_turn_overhead(
    direct: Vec<Duration>,
    looped: Vec<Duration>,
    tree: Vec<Duration>,
    persisted: Vec<Duration>,
) {
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

    // Interleaved, so drift (autovacuum, the audit table growing) hits all three alike.
    let (mut turns, mut asks, mut delegating) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..(N + WARMUP) {
        let s = Instant::now();
        handle.chat(t, single.id, hello()).await.unwrap();
        let turn = s.elapsed();
        let s = Instant::now();
        handle
            .delegate(t, DelegationRequest::new(caller.id, target.id, "hello?"))
            .await
            .unwrap();
        let ask = s.elapsed();
        let s = Instant::now();
        let result = handle.chat(t, caller.id, hello()).await.unwrap();
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

/// Deps whose pools never connect: idle agents do no IO.
fn unconnected_deps() -> Arc<RuntimeDeps> {
    let url = "postgres://nobody@127.0.0.1:1/none";
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy(url)
        .unwrap();
    let registry = prometheus::Registry::new();
    Arc::new(RuntimeDeps {
        agents: AgentStore::new(pool.clone()),
        turns: Arc::new(MemoryTurnStore::default()),
        conversations: PgTurnStore::new(pool),
        providers: ProviderRegistry::new(),
        tools: Arc::new(NoToolSource),
        retriever: None,
        metrics: RuntimeMetrics::new(&registry).unwrap(),
        config: RuntimeConfig::default(),
    })
}

/// An `AgentActor` outside the tree (no tenant supervisor).
async fn spawn_agent(
    tenant: TenantId,
    spec: AgentSpec,
    deps: &Arc<RuntimeDeps>,
    load: &Arc<TenantLoad>,
) -> ActorRef<<AgentActor as Actor>::Msg> {
    let (actor, _) = Actor::spawn(
        None,
        AgentActor,
        AgentArgs {
            tenant,
            spec,
            deps: Arc::clone(deps),
            tenant_load: Arc::clone(load),
            tenant_supervisor: None,
        },
    )
    .await
    .unwrap();
    actor
}

/// Runs in a child process: spawns `n` idle actors of `kind` and reports RSS per actor.
async fn memory_child(kind: &str, n: usize) -> usize {
    let deps = unconnected_deps();
    let tenant = TenantId::new();
    let load = Arc::new(TenantLoad::default());
    let mut refs = Vec::with_capacity(n);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = rss();
    if kind == "agent" {
        // The spec is built inside the measurement: an idle agent costs its spec too.
        for i in 0..n {
            let actor = spawn_agent(tenant, spec(tenant, i), &deps, &load).await;
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
    actor_spawn_rates().await;
    lazy_activation().await;
}

/// `AgentActor` spawns per second against bare ractor actors.
async fn actor_spawn_rates() {
    const N: usize = 20_000;
    let deps = unconnected_deps();
    let tenant = TenantId::new();
    let load = Arc::new(TenantLoad::default());
    let specs: Vec<AgentSpec> = (0..N).map(|i| spec(tenant, i)).collect();
    let started = Instant::now();
    let mut refs = Vec::with_capacity(N);
    for spec in specs {
        refs.push(spawn_agent(tenant, spec, &deps, &load).await);
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
}

/// Lazy activation through the tree: the first turn loads the spec and spawns the actor.
async fn lazy_activation() {
    const M: usize = 500;
    let db = TestDb::new().await.unwrap();
    let t = tenant(&db).await;
    let model: Arc<dyn LlmProvider> =
        Arc::new(ScriptedProvider::repeating(ScriptStep::reply("ok")));
    let handle = RuntimeHandle::start(deps(&db, Arc::new(MemoryTurnStore::default()), model))
        .await
        .unwrap();
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
    let mut cold = Vec::with_capacity(M);
    for id in &ids {
        let s = Instant::now();
        handle.chat(t, *id, hello()).await.unwrap();
        cold.push(s.elapsed());
    }
    let mut warm = Vec::with_capacity(M);
    for id in &ids {
        let s = Instant::now();
        handle.chat(t, *id, hello()).await.unwrap();
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
