//! The statuses and kinds of durable tasks and their steps, as stored, as the API shows them
//! and as the portal reads them.

use serde::{Deserialize, Serialize};

/// `as_str` and `parse` between a status or kind and its snake_case name (as stored and as
/// the API shows it), `Display` as that name, and comparison with it.
macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &[$ty] = &[$($ty::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some($ty::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
}

named!(TaskStatus {
    Queued => "queued",
    Running => "running",
    AwaitingApproval => "awaiting_approval",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl TaskStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Agent,
    Crew,
    Rule,
}

named!(TaskKind {
    Agent => "agent",
    Crew => "crew",
    Rule => "rule",
});

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// One model call.
    Llm,
    /// One tool call of an agent.
    Tool,
    /// A human decision a workflow waits for.
    Approval,
    /// A rule's connector action.
    Action,
    /// A rule's agent task (a child task).
    AgentTask,
}

named!(StepKind {
    Llm => "llm",
    Tool => "tool",
    Approval => "approval",
    Action => "action",
    AgentTask => "agent_task",
});

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Succeeded,
    Failed,
    AwaitingApproval,
    Approved,
    Rejected,
    Cancelled,
}

named!(StepStatus {
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    AwaitingApproval => "awaiting_approval",
    Approved => "approved",
    Rejected => "rejected",
    Cancelled => "cancelled",
});

impl StepStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, StepStatus::Running | StepStatus::AwaitingApproval)
    }
}

/// Where a task's completion callback stands: `pending` once the task ended, then
/// `delivered`, or `failed` when its retries ran out or the receiver refused it for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Pending,
    Delivered,
    Failed,
}

named!(CallbackStatus {
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for status in [
            TaskStatus::Queued,
            TaskStatus::AwaitingApproval,
            TaskStatus::Cancelled,
        ] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
            let json = format!("\"{status}\"");
            assert_eq!(serde_json::from_str::<TaskStatus>(&json).unwrap(), status);
        }
        assert_eq!(StepKind::parse("agent_task"), Some(StepKind::AgentTask));
        assert!(StepStatus::Approved == "approved" && StepStatus::Approved.is_final());
        assert!(TaskStatus::parse("paused").is_none());
    }
}
