//! Durable work on Temporal: agent tasks (each model call and tool call an activity, tool
//! calls parked for approval where the grant says so), automation-rule runs, their Postgres
//! records, completion callbacks, and the worker that runs it all.

mod activities;
mod callback;
mod error;
pub mod events;
mod metrics;
pub mod model;
mod service;
mod store;
mod worker;
mod workflows;

pub use activities::{TaskActivities, TaskDeps};
pub use callback::signature as callback_signature;
pub use error::TaskError;
pub use events::{ReadError, RunEvent, RunEventReader, RunEvents};
pub use metrics::TaskMetrics;
pub use model::{StepTimeouts, StepView, TaskKind, TaskStatus, TaskView};
pub use service::{Approver, EventDelivery, NewCrewRun, NewTask, StartedTask, TaskService};
pub use store::{TaskFilter, TaskStore};
pub use worker::{ActivitiesFactory, TaskWorker, TemporalSettings, connect};
pub use workflows::{AgentTaskWorkflow, CrewRunWorkflow, RuleRunWorkflow};
