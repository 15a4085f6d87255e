//! Run events against the real Redis: every watcher of an instance shares one reader
//! connection, each gets its own task's events in order (or only those after where it
//! resumed), and a watcher that falls behind is let go and resumes without loss.

use std::collections::HashMap;
use std::time::Duration;

use brain_migrations::testing::setting;
use brain_tasks::{ReadError, RunEvent, RunEventReader, RunEvents, TaskStatus};
use uuid::Uuid;

async fn run_events() -> (RunEvents, redis::aio::ConnectionManager) {
    let client = redis::Client::open(setting("REDIS_URL").unwrap()).unwrap();
    let manager = redis::aio::ConnectionManager::new(client.clone())
        .await
        .unwrap();
    (RunEvents::new(client, manager.clone()), manager)
}

fn status(task_id: Uuid, n: usize) -> RunEvent {
    let status = if n.is_multiple_of(2) {
        TaskStatus::Running
    } else {
        TaskStatus::Queued
    };
    RunEvent::Status { task_id, status }
}

/// Reads until `count` events came (or a read waited a few seconds for nothing).
async fn read(reader: &mut RunEventReader, count: usize) -> Vec<(String, RunEvent)> {
    let mut got = Vec::new();
    while got.len() < count {
        let events = reader.next(Duration::from_secs(5)).await.unwrap();
        if events.is_empty() {
            break;
        }
        got.extend(events);
    }
    got
}

/// Connections Redis has open under `name`.
async fn connections_named(redis: &mut redis::aio::ConnectionManager, name: &str) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(redis)
        .await
        .unwrap();
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == format!("name={name}")))
        .count()
}

#[tokio::test]
async fn sixty_watchers_share_one_redis_reader_and_each_gets_its_tasks_events() {
    let (events, mut redis) = run_events().await;
    let tasks: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    // Two events before anyone watches; watchers resuming after the first see only the second.
    for task in &tasks {
        events.publish(&[*task], &status(*task, 0)).await;
        events.publish(&[*task], &status(*task, 1)).await;
    }
    let mut first_ids = HashMap::new();
    for task in &tasks {
        let mut probe = events.subscribe(*task, None).await.unwrap();
        let seen = read(&mut probe, 2).await;
        assert_eq!(seen.len(), 2, "{seen:?}");
        first_ids.insert(*task, seen[0].0.clone());
    }

    let mut watchers = Vec::new();
    for (i, task) in tasks.iter().cycle().take(60).enumerate() {
        let after = (i % 2 == 1).then(|| first_ids[task].clone());
        watchers.push((
            *task,
            after.is_some(),
            events.subscribe(*task, after.as_deref()).await.unwrap(),
        ));
    }
    assert_eq!(
        connections_named(&mut redis, events.reader_name()).await,
        1,
        "one reader connection serves every watcher of the instance"
    );
    for task in &tasks {
        for n in 2..5 {
            events.publish(&[*task], &status(*task, n)).await;
        }
    }
    for (task, resumed, mut reader) in watchers {
        let want = if resumed { 4 } else { 5 };
        let got = read(&mut reader, want).await;
        let expected: Vec<RunEvent> = (if resumed { 1 } else { 0 }..5)
            .map(|n| status(task, n))
            .collect();
        let events: Vec<RunEvent> = got.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(events, expected, "watcher of {task} (resumed: {resumed})");
        let ids: Vec<&String> = got.iter().map(|(id, _)| id).collect();
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(ids.len(), sorted.len(), "no entry handed over twice");
        // Nothing more comes for this watcher.
        assert!(
            reader
                .next(Duration::from_millis(20))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_let_go_and_resumes_without_loss() {
    let (events, _) = run_events().await;
    let task = Uuid::new_v4();
    let mut slow = events.subscribe(task, None).await.unwrap();
    let total = brain_tasks::events::WATCHER_BUFFER + 200;
    for n in 0..total {
        events.publish(&[task], &status(task, n)).await;
    }
    // Give the reader time to fill the watcher's buffer and let it go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = Vec::new();
    let end = loop {
        match slow.next(Duration::from_secs(5)).await {
            Ok(batch) if batch.is_empty() => panic!("the watcher was neither fed nor let go"),
            Ok(batch) => got.extend(batch),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, ReadError::Lagged), "{end}");
    assert!(got.len() < total, "{} of {total}", got.len());

    // Resuming after the last id it saw brings the rest, in order.
    let last = got.last().unwrap().0.clone();
    let mut resumed = events.subscribe(task, Some(&last)).await.unwrap();
    got.extend(read(&mut resumed, total - got.len()).await);
    let all: Vec<RunEvent> = got.into_iter().map(|(_, e)| e).collect();
    let expected: Vec<RunEvent> = (0..total).map(|n| status(task, n)).collect();
    assert_eq!(all, expected);
}
