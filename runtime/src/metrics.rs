//! The runtime's Prometheus metrics, registered into a registry the caller owns.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Turns, latency, tokens, tool calls, restarts and mailbox depth.
#[derive(Clone)]
pub struct RuntimeMetrics {
    /// `brain_agent_turns_total{outcome="ok|error|crashed"}`.
    pub turns: IntCounterVec,
    pub turn_latency: Histogram,
    /// `brain_agent_tokens_total{direction="in|out"}`.
    pub tokens: IntCounterVec,
    /// `brain_agent_tool_calls_total{connector, action, outcome="ok|error|rejected"}`.
    pub tool_calls: IntCounterVec,
    /// `brain_agent_delegations_total{outcome="ok|delegation_cycle|…"}`, one per hop.
    pub delegations: IntCounterVec,
    /// `brain_model_fallbacks_total{reason="model_rate_limited|model_error"}`: model calls
    /// that moved on to one of an agent's fallback models.
    pub model_fallbacks: IntCounterVec,
    pub actor_restarts: IntCounter,
    /// Messages sent to agent actors and not yet handled, summed over all agents.
    pub mailbox_depth: IntGauge,
    pub agents_running: IntGauge,
    pub tenants_running: IntGauge,
}

impl RuntimeMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            turns: IntCounterVec::new(
                Opts::new("brain_agent_turns_total", "Agent turns by outcome"),
                &["outcome"],
            )?,
            turn_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "brain_agent_turn_duration_seconds",
                    "Wall time of an agent turn, model and tool calls included",
                )
                .buckets(vec![
                    0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                ]),
            )?,
            tokens: IntCounterVec::new(
                Opts::new("brain_agent_tokens_total", "Model tokens by direction"),
                &["direction"],
            )?,
            tool_calls: IntCounterVec::new(
                Opts::new(
                    "brain_agent_tool_calls_total",
                    "Tool calls by connector, action and outcome",
                ),
                &["connector", "action", "outcome"],
            )?,
            delegations: IntCounterVec::new(
                Opts::new(
                    "brain_agent_delegations_total",
                    "Delegations between agents by outcome (ok or the refusal/failure code)",
                ),
                &["outcome"],
            )?,
            model_fallbacks: IntCounterVec::new(
                Opts::new(
                    "brain_model_fallbacks_total",
                    "Model calls that moved on to a fallback model, by why the model was left",
                ),
                &["reason"],
            )?,
            actor_restarts: IntCounter::new(
                "brain_agent_actor_restarts_total",
                "Agent actors restarted by their tenant supervisor",
            )?,
            mailbox_depth: IntGauge::new(
                "brain_agent_mailbox_depth",
                "Messages queued for agent actors, summed over all agents",
            )?,
            agents_running: IntGauge::new("brain_agent_actors", "Agent actors running")?,
            tenants_running: IntGauge::new(
                "brain_tenant_supervisors",
                "Tenant supervisors running",
            )?,
        };
        registry.register(Box::new(m.turns.clone()))?;
        registry.register(Box::new(m.turn_latency.clone()))?;
        registry.register(Box::new(m.tokens.clone()))?;
        registry.register(Box::new(m.tool_calls.clone()))?;
        registry.register(Box::new(m.delegations.clone()))?;
        registry.register(Box::new(m.model_fallbacks.clone()))?;
        registry.register(Box::new(m.actor_restarts.clone()))?;
        registry.register(Box::new(m.mailbox_depth.clone()))?;
        registry.register(Box::new(m.agents_running.clone()))?;
        registry.register(Box::new(m.tenants_running.clone()))?;
        Ok(m)
    }
}

/// Counts one running actor in a gauge for as long as it lives: dropped with the actor's
/// state on every exit path (stop, failure, kill), where `post_stop` is not always called.
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
