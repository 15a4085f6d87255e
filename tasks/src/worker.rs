//! The Temporal connection and the worker that runs Brain's workflows and activities.
//!
//! The SDK's worker future is not `Send` (workflows live in a `LocalSet`), so it runs on a
//! thread of its own: on the process's tokio runtime in production (`brain serve`,
//! `brain serve worker`), or on a runtime of its own where a test must be able to kill it
//! mid-activity as a crash would.

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::{Worker, WorkerOptions};
use tokio::sync::oneshot;

use super::activities::TaskActivities;
use super::error::TaskError;
use super::workflows::{AgentTaskWorkflow, CrewRunWorkflow, RuleRunWorkflow};

/// Where Temporal is and which queue Brain's work goes to.
#[derive(Clone, Debug)]
pub struct TemporalSettings {
    /// `host:port` (or a full `http://host:port` URL) of the frontend.
    pub address: String,
    pub namespace: String,
    pub task_queue: String,
}

impl TemporalSettings {
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            namespace: "default".into(),
            task_queue: "brain-tasks".into(),
        }
    }
}

/// Connects a namespace-bound client.
pub async fn connect(settings: &TemporalSettings) -> Result<Client, TaskError> {
    let address = if settings.address.contains("://") {
        settings.address.clone()
    } else {
        format!("http://{}", settings.address)
    };
    let url = Url::from_str(&address)
        .map_err(|e| TaskError::Temporal(format!("TEMPORAL_ADDRESS `{address}`: {e}")))?;
    let connection = Connection::connect(
        ConnectionOptions::new(url)
            .identity(format!("brain@{}", std::process::id()))
            .connect_timeout(Duration::from_secs(5))
            .build(),
    )
    .await
    .map_err(|e| TaskError::Temporal(e.to_string()))?;
    Client::new(
        connection,
        ClientOptions::new(settings.namespace.clone()).build(),
    )
    .map_err(|e| TaskError::Temporal(e.to_string()))
}

type Shutdown = Box<dyn Fn() + Send + Sync>;

/// A running worker. Stop it with [`TaskWorker::shutdown`] (in-flight activities finish) or,
/// for one started with [`TaskWorker::start_isolated`], [`TaskWorker::kill`].
pub struct TaskWorker {
    shutdown: Shutdown,
    done: Option<oneshot::Receiver<()>>,
    /// Set for an isolated worker: ends its runtime at once.
    kill: Option<oneshot::Sender<()>>,
}

fn worker_options(queue: &str, activities: TaskActivities) -> Result<WorkerOptions, TaskError> {
    Ok(WorkerOptions::new(queue)
        .register_workflow::<AgentTaskWorkflow>()
        .map_err(|e| TaskError::Internal(e.to_string()))?
        .register_workflow::<RuleRunWorkflow>()
        .map_err(|e| TaskError::Internal(e.to_string()))?
        .register_workflow::<CrewRunWorkflow>()
        .map_err(|e| TaskError::Internal(e.to_string()))?
        .register_activities(activities)
        // Replaying a cached workflow onto another worker after a crash should not wait long.
        .sticky_queue_schedule_to_start_timeout(Duration::from_secs(3))
        .graceful_shutdown_period(Duration::from_secs(10))
        .build())
}

/// Builds and runs the worker on the current thread's runtime context, reporting its
/// shutdown handle (or why it could not start) through `ready`.
/// Builds a worker's activities inside the runtime that will run them.
pub type ActivitiesFactory =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<TaskActivities, TaskError>> + Send>;

async fn run_worker(
    settings: TemporalSettings,
    activities: ActivitiesFactory,
    ready: oneshot::Sender<Result<Shutdown, TaskError>>,
) {
    let started = async {
        let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
            .map_err(|e| TaskError::Temporal(e.to_string()))?;
        let client = connect(&settings).await?;
        let options = worker_options(&settings.task_queue, activities().await?)?;
        let worker = Worker::new(&runtime, client, options)
            .map_err(|e| TaskError::Temporal(e.to_string()))?;
        Ok::<_, TaskError>((runtime, worker))
    }
    .await;
    match started {
        Err(e) => {
            let _ = ready.send(Err(e));
        }
        Ok((_runtime, mut worker)) => {
            let handle = worker.shutdown_handle();
            let _ = ready.send(Ok(Box::new(handle)));
            if let Err(e) = worker.run().await {
                tracing::error!(error = %e, "the Temporal worker stopped with an error");
            }
        }
    }
}

impl TaskWorker {
    /// Starts a worker on the current tokio runtime (a dedicated thread drives it).
    pub async fn start(
        settings: TemporalSettings,
        activities: TaskActivities,
    ) -> Result<Self, TaskError> {
        let handle = tokio::runtime::Handle::current();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("temporal-worker".into())
            .spawn(move || {
                let factory: ActivitiesFactory =
                    Box::new(move || Box::pin(async move { Ok(activities) }));
                handle.block_on(run_worker(settings, factory, ready_tx));
                let _ = done_tx.send(());
            })
            .map_err(|e| TaskError::Internal(format!("worker thread: {e}")))?;
        let shutdown = ready_rx
            .await
            .map_err(|_| TaskError::Internal("the worker thread ended early".into()))??;
        Ok(Self {
            shutdown,
            done: Some(done_rx),
            kill: None,
        })
    }

    /// Starts a worker on a tokio runtime of its own, with activities built there, so
    /// [`TaskWorker::kill`] can drop it mid-activity the way a crashed process would.
    pub async fn start_isolated(
        settings: TemporalSettings,
        activities: ActivitiesFactory,
    ) -> Result<Self, TaskError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("temporal-worker-isolated".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ =
                            ready_tx.send(Err(TaskError::Internal(format!("worker runtime: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async {
                    tokio::select! {
                        () = run_worker(settings, activities, ready_tx) => {}
                        _ = kill_rx => {}
                    }
                });
                // Whatever still runs (activities mid-call) is abandoned, not awaited.
                runtime.shutdown_background();
                let _ = done_tx.send(());
            })
            .map_err(|e| TaskError::Internal(format!("worker thread: {e}")))?;
        let shutdown = ready_rx
            .await
            .map_err(|_| TaskError::Internal("the worker thread ended early".into()))??;
        Ok(Self {
            shutdown,
            done: Some(done_rx),
            kill: Some(kill_tx),
        })
    }

    /// Stops polling and waits (up to a minute) for running activities to finish.
    pub async fn shutdown(mut self) {
        (self.shutdown)();
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(60), done).await;
        }
    }

    /// Ends an isolated worker at once: in-flight activities and polls are abandoned mid-way,
    /// as in a crash. (A worker on the shared runtime is shut down instead.)
    pub async fn kill(mut self) {
        match self.kill.take() {
            Some(kill) => {
                let _ = kill.send(());
            }
            None => (self.shutdown)(),
        }
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(60), done).await;
        }
    }
}
