//! Run events: what a task's activities report as they go (steps, status, the end), on a
//! Redis stream per task (`task-events:{id}`), so an SSE client connected to any gateway
//! instance follows a run executed by any worker. Postgres stays the record; the stream is
//! for watching live and is capped and expires.
//!
//! Watching costs one Redis connection per instance, not one per watcher: a single reader
//! task blocks on `XREAD` over every watched stream at once and hands each entry to the
//! watchers of its stream. A new watcher wakes the reader through the instance's own wake-up
//! stream, so its stream is read at once whether the reader was blocked or about to block.
//! A watcher that falls [`WATCHER_BUFFER`] entries behind is let go ([`ReadError::Lagged`]);
//! it resumes after the last id it saw and loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::model::{StepRecord, TaskStatus};

/// Entries kept per task stream (`XADD … MAXLEN ~`).
const STREAM_MAXLEN: usize = 1000;
/// A finished run's stream is kept this long for late watchers.
const STREAM_TTL_SECS: i64 = 24 * 3600;
/// Longest one `XREAD` of the shared reader blocks.
const READ_BLOCK: Duration = Duration::from_secs(20);
/// Entries read per stream and round.
const READ_COUNT: usize = 100;
/// Entries a watcher may have waiting; one more and it is let go as lagging.
pub const WATCHER_BUFFER: usize = 256;
/// Waits between attempts to reconnect the shared reader.
const RECONNECT: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

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

/// Why a watcher stopped getting events.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It fell behind; it resumes after the last id it saw.
    #[error("the watcher fell behind the run's events")]
    Lagged,
    #[error("reading run events failed: {0}")]
    Redis(String),
}

fn key(task: Uuid) -> String {
    format!("task-events:{task}")
}

/// A Redis stream entry id: `<milliseconds>-<sequence>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct EntryId(u64, u64);

impl EntryId {
    fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Publishes and reads run events.
#[derive(Clone)]
pub struct RunEvents {
    client: redis::Client,
    publisher: redis::aio::ConnectionManager,
    hub: Arc<Hub>,
}

/// The watchers of this instance, by stream key, and its shared reader's identity.
struct Hub {
    /// The reader connection's client name; also names the wake-up stream.
    name: String,
    watchers: Mutex<HashMap<String, Vec<Watcher>>>,
    reading: AtomicBool,
}

struct Watcher {
    /// The last entry handed over (or resumed after).
    last: EntryId,
    tx: mpsc::Sender<Delivery>,
}

enum Delivery {
    Event(String, RunEvent),
    Failed(String),
}

impl RunEvents {
    pub fn new(client: redis::Client, publisher: redis::aio::ConnectionManager) -> Self {
        Self {
            client,
            publisher,
            hub: Arc::new(Hub {
                name: format!("brain-run-events-{}", Uuid::new_v4().simple()),
                watchers: Mutex::new(HashMap::new()),
                reading: AtomicBool::new(false),
            }),
        }
    }

    /// The client name of this instance's one reader connection (`CLIENT LIST` shows it).
    pub fn reader_name(&self) -> &str {
        &self.hub.name
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

    /// A watcher of one task's stream, from its start or after the entry `after` (an id
    /// [`RunEventReader::next`] gave: a client resuming with `Last-Event-ID`). An `after`
    /// that is not a stream entry id reads from the start.
    pub async fn subscribe(
        &self,
        task: Uuid,
        after: Option<&str>,
    ) -> Result<RunEventReader, redis::RedisError> {
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        let last = after.and_then(EntryId::parse).unwrap_or_default();
        self.hub
            .lock()
            .entry(key(task))
            .or_default()
            .push(Watcher { last, tx });
        if !self.hub.reading.swap(true, Ordering::AcqRel) {
            tokio::spawn(read_loop(self.client.clone(), Arc::downgrade(&self.hub)));
        }
        // The reader reads the wake-up stream after the last entry it saw, so this wakes it
        // whether it is blocked already or just about to block.
        let mut redis = self.publisher.clone();
        redis::pipe()
            .cmd("XADD")
            .arg(self.hub.wake_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(16)
            .arg("*")
            .arg("w")
            .arg(1)
            .ignore()
            .cmd("EXPIRE")
            .arg(self.hub.wake_key())
            .arg(3600)
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        Ok(RunEventReader { rx })
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Watcher>>> {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_key(&self) -> String {
        format!("task-events-wake:{}", self.name)
    }

    /// Each watched stream with the id to read after (its least advanced watcher's);
    /// watchers that went away are dropped first.
    fn positions(&self) -> Vec<(String, EntryId)> {
        let mut watchers = self.lock();
        watchers.retain(|_, list| {
            list.retain(|w| !w.tx.is_closed());
            !list.is_empty()
        });
        watchers
            .iter()
            .filter_map(|(key, list)| Some((key.clone(), list.iter().map(|w| w.last).min()?)))
            .collect()
    }

    /// Hands a stream's new entries to its watchers, each only what it has not seen; a
    /// watcher whose buffer is full is let go (its channel closes).
    fn deliver(&self, key: &str, entries: &[(EntryId, String, Option<RunEvent>)]) {
        let mut watchers = self.lock();
        let Some(list) = watchers.get_mut(key) else {
            return;
        };
        list.retain_mut(|watcher| {
            let seen = watcher.last;
            for (id, raw, event) in entries.iter().filter(|(id, ..)| *id > seen) {
                watcher.last = *id;
                let Some(event) = event else { continue };
                if watcher
                    .tx
                    .try_send(Delivery::Event(raw.clone(), event.clone()))
                    .is_err()
                {
                    return false;
                }
            }
            true
        });
    }

    /// Ends every watcher with `error` (the reader lost Redis).
    fn fail_all(&self, error: &str) {
        for (_, list) in self.lock().drain() {
            for watcher in list {
                let _ = watcher.tx.try_send(Delivery::Failed(error.to_owned()));
            }
        }
    }
}

type XreadReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

/// The instance's one reader: `XREAD` over every watched stream plus the wake-up stream,
/// until the last [`RunEvents`] handle is gone.
async fn read_loop(client: redis::Client, hub: Weak<Hub>) {
    let mut woken = EntryId::default();
    let mut pause = RECONNECT.0;
    loop {
        let Some(name) = hub.upgrade().map(|h| h.name.clone()) else {
            return;
        };
        let mut connection = match connect(&client, &name).await {
            Ok(connection) => connection,
            Err(e) => {
                tracing::warn!(error = %e, "run event reader cannot connect");
                if let Some(hub) = hub.upgrade() {
                    hub.fail_all(&e.to_string());
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECONNECT.1);
                continue;
            }
        };
        pause = RECONNECT.0;
        loop {
            let (streams, wake_key) = match hub.upgrade() {
                Some(hub) => (hub.positions(), hub.wake_key()),
                None => return,
            };
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS");
            for (key, _) in &streams {
                read.arg(key);
            }
            read.arg(&wake_key);
            for (_, after) in &streams {
                read.arg(after.to_string());
            }
            read.arg(woken.to_string());
            let reply: XreadReply = match read.query_async(&mut connection).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::warn!(error = %e, "run event reader failed; reconnecting");
                    if let Some(hub) = hub.upgrade() {
                        hub.fail_all(&e.to_string());
                    }
                    break;
                }
            };
            let Some(hub) = hub.upgrade() else { return };
            for (key, entries) in reply.unwrap_or_default() {
                let entries: Vec<_> = entries
                    .into_iter()
                    .filter_map(|(raw, fields)| {
                        let id = EntryId::parse(&raw)?;
                        Some((id, raw, event_of(&fields)))
                    })
                    .collect();
                if key == wake_key {
                    woken = entries.iter().map(|(id, ..)| *id).max().unwrap_or(woken);
                } else {
                    hub.deliver(&key, &entries);
                }
            }
        }
    }
}

async fn connect(
    client: &redis::Client,
    name: &str,
) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
    // Reads block for up to READ_BLOCK, longer than a connection's default response
    // timeout allows.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(READ_BLOCK + Duration::from_secs(10)));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query_async::<()>(&mut connection)
        .await?;
    Ok(connection)
}

/// The event of an entry's fields (`[name, value, …]`; the event is under `event`).
fn event_of(fields: &[String]) -> Option<RunEvent> {
    fields
        .chunks(2)
        .find(|pair| pair.first().map(String::as_str) == Some("event"))
        .and_then(|pair| pair.get(1))
        .and_then(|data| serde_json::from_str(data).ok())
}

/// One watcher's events: the task's stream from where it started, then as they come.
pub struct RunEventReader {
    rx: mpsc::Receiver<Delivery>,
}

impl RunEventReader {
    /// The next events with their stream entry ids, waiting up to `wait` for some; empty
    /// when none came.
    pub async fn next(&mut self, wait: Duration) -> Result<Vec<(String, RunEvent)>, ReadError> {
        let first = match tokio::time::timeout(wait, self.rx.recv()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => return Err(ReadError::Lagged),
            Ok(Some(delivery)) => delivery,
        };
        let mut events = Vec::new();
        let mut delivery = Some(first);
        while let Some(next) = delivery {
            match next {
                Delivery::Event(id, event) => events.push((id, event)),
                Delivery::Failed(error) => return Err(ReadError::Redis(error)),
            }
            if events.len() >= READ_COUNT {
                break;
            }
            delivery = self.rx.try_recv().ok();
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::EntryId;

    #[test]
    fn entry_ids_parse_and_order_numerically() {
        let a = EntryId::parse("1700000000000-9").unwrap();
        let b = EntryId::parse("1700000000000-10").unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "1700000000000-10");
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "../../etc",
            "1-2-3",
            "99999999999999999999999-0",
        ] {
            assert_eq!(EntryId::parse(bad), None, "{bad}");
        }
    }
}
