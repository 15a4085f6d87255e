//! Task metrics: `brain_tasks_started_total{kind}`, `brain_tasks_finished_total{kind, status}`
//! and `brain_task_tool_calls_total{connector, action, outcome}`.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct TaskMetrics {
    pub started: IntCounterVec,
    pub finished: IntCounterVec,
    pub tool_calls: IntCounterVec,
}

impl TaskMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            started: IntCounterVec::new(
                Opts::new(
                    "brain_tasks_started_total",
                    "Durable tasks started, by kind",
                ),
                &["kind"],
            )?,
            finished: IntCounterVec::new(
                Opts::new(
                    "brain_tasks_finished_total",
                    "Durable tasks ended, by kind and final status",
                ),
                &["kind", "status"],
            )?,
            tool_calls: IntCounterVec::new(
                Opts::new(
                    "brain_task_tool_calls_total",
                    "Tool calls made by durable tasks, by outcome",
                ),
                &["connector", "action", "outcome"],
            )?,
        };
        registry.register(Box::new(m.started.clone()))?;
        registry.register(Box::new(m.finished.clone()))?;
        registry.register(Box::new(m.tool_calls.clone()))?;
        Ok(m)
    }
}
