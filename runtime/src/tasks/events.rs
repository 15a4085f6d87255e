//! Run events: what a task's activities report as they go (steps, status, the end), on a
//! Redis stream per task (`task-events:{id}`), so an SSE client connected to any gateway
//! instance follows a run executed by any worker. Postgres stays the record; the stream is
//! for watching live and is capped and expires.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{StepRecord, TaskStatus};

/// Entries kept per task stream (`XADD … MAXLEN ~`).
const STREAM_MAXLEN: usize = 1000;
/// A finished run's stream is kept this long for late watchers.
const STREAM_TTL_SECS: i64 = 24 * 3600;
/// Longest a blocking read may wait for Redis; [`RunEventReader::next`] waits less.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One event of a run. `task_id` names the task it happened in (a crew run's stream also
/// carries its members' child tasks' events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    Step { task_id: Uuid, step: StepRecord },
    Status { task_id: Uuid, status: TaskStatus },
    Done { task_id: Uuid, status: TaskStatus },
}

impl RunEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::Step { .. } => "step",
            RunEvent::Status { .. } => "status",
            RunEvent::Done { .. } => "done",
        }
    }
}

fn key(task: Uuid) -> String {
    format!("task-events:{task}")
}

/// Publishes and reads run events.
#[derive(Clone)]
pub struct RunEvents {
    client: redis::Client,
    publisher: redis::aio::ConnectionManager,
}

impl RunEvents {
    pub fn new(client: redis::Client, publisher: redis::aio::ConnectionManager) -> Self {
        Self { client, publisher }
    }

    /// Appends `event` to the streams of `tasks`. Losing an event only delays what a
    /// watcher sees (Postgres has the truth), so failures are logged, not returned.
    pub async fn publish(&self, tasks: &[Uuid], event: &RunEvent) {
        let Ok(data) = serde_json::to_string(event) else {
            return;
        };
        let mut pipe = redis::pipe();
        for task in tasks {
            pipe.cmd("XADD")
                .arg(key(*task))
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAXLEN)
                .arg("*")
                .arg("event")
                .arg(&data)
                .ignore()
                .cmd("EXPIRE")
                .arg(key(*task))
                .arg(STREAM_TTL_SECS)
                .ignore();
        }
        let mut redis = self.publisher.clone();
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(error = %e, "run event not published");
        }
    }

    /// A reader of one task's stream, on a connection of its own (reads block), from the
    /// start of the stream or after the entry `after` (an id [`RunEventReader::next`] gave:
    /// a client resuming with `Last-Event-ID`). An `after` that is not a stream entry id
    /// reads from the start.
    pub async fn subscribe(
        &self,
        task: Uuid,
        after: Option<&str>,
    ) -> Result<RunEventReader, redis::RedisError> {
        // Reads block for up to their wait, longer than a connection's default response
        // timeout allows.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(READ_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(RunEventReader {
            connection,
            key: key(task),
            last: after.filter(|id| is_entry_id(id)).unwrap_or("0").to_owned(),
        })
    }
}

/// Reads a task's events from the start of its stream, then as they come.
pub struct RunEventReader {
    connection: redis::aio::MultiplexedConnection,
    key: String,
    last: String,
}

/// A Redis stream entry id: `<milliseconds>-<sequence>`.
fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.len() <= 20
            && seq.len() <= 20
            && ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
    })
}

type XreadReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

impl RunEventReader {
    /// The next events with their stream entry ids, waiting up to `wait` for some; empty
    /// when none came.
    pub async fn next(
        &mut self,
        wait: Duration,
    ) -> Result<Vec<(String, RunEvent)>, redis::RedisError> {
        let wait = wait.min(READ_TIMEOUT / 2);
        let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let reply: XreadReply = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(millis)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(&self.last)
            .query_async(&mut self.connection)
            .await?;
        let mut events = Vec::new();
        for (_, entries) in reply.unwrap_or_default() {
            for (id, fields) in entries {
                self.last.clone_from(&id);
                // Fields come as [name, value, …]; the event is under `event`.
                let mut pairs = fields.chunks(2);
                if let Some(event) = pairs
                    .find(|p| p.first().map(String::as_str) == Some("event"))
                    .and_then(|p| p.get(1))
                    .and_then(|data| serde_json::from_str::<RunEvent>(data).ok())
                {
                    events.push((id, event));
                }
            }
        }
        Ok(events)
    }
}
