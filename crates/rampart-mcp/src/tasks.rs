//! Tools called as tasks: the 2026-07-28 tasks extension (`io.modelcontextprotocol/tasks`,
//! SEP-2663). A `tools/call` from a client that declared the extension, for a tool that
//! may run long ([`TaskSupport`](rampart_core::TaskSupport)), is answered with a task handle once the call outlives
//! [`TaskSettings::answer_within`] (sooner, with its result); the call runs on through the
//! same pipeline (authorization, limits, the one audit record, now with
//! the task id) and the client polls `tasks/get` for its result, answers its questions
//! with `tasks/update` and stops it with `tasks/cancel`.
//!
//! rmcp's `TaskManager` keeps the tasks' states and results; this module adds what a
//! multi-principal server needs on top: each task is bound to the principal that created
//! it (anyone else is told it does not exist), a principal holds a bounded number of
//! tasks, results are kept for a bounded time, and a server shutting down cancels running
//! tasks so that each still gets its audit record.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use rampart_core::{CallContext, CallError, ClientPeer, LogLevel, Outcome, PeerError, Pipeline};
use rmcp::{
    ErrorData,
    model::{CallToolResult, ClientCapabilities, InputRequest, Task},
    task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    peer::declares,
    wire::{call_error, call_result, from_json},
};

/// How tasks are kept: `[limits] task_ttl_secs`, `tasks_per_principal`, `task_after_ms`.
#[derive(Debug, Clone, Copy)]
pub struct TaskSettings {
    /// How long a task stays observable after it was created (`ttlMs` on the wire); its
    /// result stays for up to this long again after it ends. A task still running when
    /// it elapses is stopped and reported failed.
    pub ttl: Duration,
    /// Tasks (running or kept) one principal may hold at once; beyond, calls are
    /// answered in their own response instead (0: no limit).
    pub per_principal: usize,
    /// The polling interval suggested to clients (`pollIntervalMs`).
    pub poll_interval: Duration,
    /// A call that ends within this long is answered in its own response, as if no task
    /// had been made (SEP-2663 "immediate result"): quick calls cost no polling, and
    /// clients that declare the extension without following tasks still get them.
    pub answer_within: Duration,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(900),
            per_principal: 64,
            poll_interval: Duration::from_millis(500),
            answer_within: Duration::from_millis(500),
        }
    }
}

/// One server's tasks, shared by every session's handler.
pub(crate) struct Tasks {
    manager: TaskManager,
    owners: Mutex<HashMap<String, Owner>>,
    settings: TaskSettings,
    /// Cancelled when the server shuts down: every running task is cancelled with it.
    shutdown: CancellationToken,
}

struct Owner {
    principal: String,
    /// When rmcp's manager has certainly dropped the task (created + 2 × TTL: expiry at
    /// most one TTL after creation, retention one TTL after the end).
    forgotten_at: Instant,
}

impl Tasks {
    pub(crate) fn new(settings: TaskSettings) -> Self {
        Self { manager: TaskManager::new(), owners: Mutex::default(), settings, shutdown: CancellationToken::new() }
    }

    /// The owners of the tasks rmcp's manager may still hold, the others dropped.
    fn live_owners(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<String, Owner>> {
        let mut owners = self.owners.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        owners.retain(|_, owner| owner.forgotten_at > now);
        owners
    }

    /// The principal that created `task`, while it is kept.
    pub(crate) fn owner(&self, task: &str) -> Option<String> {
        self.live_owners(Instant::now()).get(task).map(|owner| owner.principal.clone())
    }

    /// Runs tool `name` as a task for the caller of `context`: its result when the call
    /// ends within [`TaskSettings::answer_within`], else the task's handle. `None` when
    /// the caller already holds as many tasks as allowed (the call is then to be answered
    /// in its own response).
    pub(crate) async fn run(
        &self,
        pipeline: Arc<Pipeline>,
        name: String,
        arguments: Option<serde_json::Map<String, Value>>,
        context: CallContext,
        capabilities: Option<ClientCapabilities>,
    ) -> Option<Started> {
        let (done, ended) = tokio::sync::oneshot::channel();
        let request = context.cancellation.clone();
        let task = self.start(pipeline, name, arguments, context, capabilities, done)?;
        tokio::select! {
            ended = tokio::time::timeout(self.settings.answer_within, ended) => match ended {
                Ok(Ok(result)) => Some(Started::Answered(result)),
                _ => Some(Started::Task(task)),
            },
            // The client gave up on the call before it had the task's id: nobody could
            // follow the task, so it is cancelled.
            () = request.cancelled() => {
                let _ = self.manager.cancel_task(&task.task_id);
                Some(Started::Task(task))
            }
        }
    }

    /// Starts tool `name` as a task for the caller of `context`, or returns `None` when
    /// the caller already holds as many tasks as allowed. The task is observable with
    /// `tasks/get` before this returns; `done` gets the call's result if it completes.
    fn start(
        &self,
        pipeline: Arc<Pipeline>,
        name: String,
        arguments: Option<serde_json::Map<String, Value>>,
        context: CallContext,
        capabilities: Option<ClientCapabilities>,
        done: tokio::sync::oneshot::Sender<CallToolResult>,
    ) -> Option<Task> {
        let principal = context.caller.principal.id.clone();
        // Counted and registered under one lock: concurrent calls cannot overshoot the
        // limit, and a `tasks/get` racing the answer finds the owner.
        let now = Instant::now();
        let mut owners = self.live_owners(now);
        let held = owners.values().filter(|owner| owner.principal == principal).count();
        if self.settings.per_principal != 0 && held >= self.settings.per_principal {
            tracing::info!(%principal, tool = %name, held, "task limit reached; the call is answered in its response");
            return None;
        }
        let ttl_ms = u64::try_from(self.settings.ttl.as_millis()).unwrap_or(u64::MAX);
        let options = TaskOptions::new()
            .with_ttl_ms(ttl_ms)
            .with_poll_interval_ms(u64::try_from(self.settings.poll_interval.as_millis()).unwrap_or(1000));
        let shutdown = self.shutdown.clone();
        // The request's span (see `trace::request_span`) goes on with the call.
        let span = if crate::trace::exporting() { tracing::Span::current() } else { tracing::Span::none() };
        let task = self.manager.spawn(options, move |task| {
            let cancellation = shutdown.child_token();
            let peer: Arc<dyn ClientPeer> = Arc::new(TaskPeer {
                task: task.clone(),
                inner: context.peer(),
                capabilities,
                next_key: AtomicU64::new(1),
            });
            let context = context
                .with_task(task.task_id())
                .with_cancellation(cancellation.clone())
                .with_progress_token(Some(json!(task.task_id())))
                .with_peer(peer);
            Box::pin(
                async move {
                    let result = run(pipeline, name, arguments, context, task, cancellation).await;
                    if let Ok(result) = &result {
                        let _ = done.send(result.clone());
                    }
                    result
                }
                .instrument(span),
            )
        });
        owners
            .insert(task.task_id.clone(), Owner { principal, forgotten_at: now + self.settings.ttl.saturating_mul(2) });
        Some(task)
    }

    pub(crate) fn manager(&self) -> &TaskManager {
        &self.manager
    }

    /// Cancels every running task (server shutdown): each ends as cancelled, with its
    /// audit record, while the server drains.
    pub(crate) fn cancel_all(&self) {
        self.shutdown.cancel();
    }
}

/// What [`Tasks::run`] made of a call.
pub(crate) enum Started {
    /// The call ended quickly: its result, for the call's own response.
    Answered(CallToolResult),
    /// The call runs on as this task.
    Task(Task),
}

/// The task's work: the pipeline call, cancelled by `tasks/cancel` or shutdown, its
/// outcome mapped to the task's end state (SEP-2663 "Error semantics": a tool's own
/// error completes the task with `isError`; a server fault fails it).
async fn run(
    pipeline: Arc<Pipeline>,
    name: String,
    arguments: Option<serde_json::Map<String, Value>>,
    context: CallContext,
    task: TaskContext,
    cancellation: CancellationToken,
) -> Result<CallToolResult, TaskExit> {
    let call = pipeline.call_tool_recorded(&name, arguments, &context);
    tokio::pin!(call);
    let result = tokio::select! {
        result = &mut call => result,
        () = task.cancelled() => {
            cancellation.cancel();
            call.await
        }
    };
    match result {
        Ok((output, Outcome::Error)) => {
            let message = output.to_text();
            Err(TaskExit::Error(ErrorData::internal_error(message, None)))
        }
        Ok((output, _)) => call_result(output).map_err(TaskExit::Error),
        Err(CallError::Cancelled) => Err(TaskExit::Cancelled),
        Err(error) => Err(TaskExit::Error(call_error(error))),
    }
}

/// The client as a task's call sees it: its questions (elicitation, sampling, roots)
/// become the task's `inputRequests`, answered with `tasks/update`; its progress becomes
/// the task's status message; logs go to the session, if it is still there.
struct TaskPeer {
    task: TaskContext,
    inner: Arc<dyn ClientPeer>,
    /// What the client declared in the request that created the task.
    capabilities: Option<ClientCapabilities>,
    next_key: AtomicU64,
}

#[async_trait]
impl ClientPeer for TaskPeer {
    async fn notify_progress(&self, _token: &Value, progress: f64, total: Option<f64>, message: Option<String>) {
        let amount = match total {
            Some(total) if total > 0.0 => format!("{:.0}%", 100.0 * progress / total),
            _ => format!("{progress}"),
        };
        self.task.set_status_message(match message {
            Some(message) => format!("{amount}: {message}"),
            None => amount,
        });
    }

    async fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        self.inner.log(level, logger, data).await;
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        match declares(self.capabilities.as_ref(), method) {
            None => return Err(PeerError::Refused(format!("'{method}' cannot be asked during a task"))),
            Some(false) => return Err(PeerError::Unsupported),
            Some(true) => {}
        }
        let request: InputRequest = from_json(json!({ "method": method, "params": params }))
            .map_err(|_| PeerError::Refused(format!("'{method}' is not a request a task can make")))?;
        let key = format!("input-{}", self.next_key.fetch_add(1, Ordering::Relaxed));
        match self.task.request_input(key, request).await {
            Ok(answer) => Ok(answer),
            Err(TaskExit::Cancelled) => Err(PeerError::Transport("the task was cancelled".into())),
            Err(TaskExit::Error(error)) => Err(PeerError::Transport(error.message.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rampart_core::{
        Caller, NullPeer, OpenGuard, Principal, PrincipalKind, TaskSupport, ToolError, ToolOutput, ToolSpec, Toolbox,
    };
    use rmcp::model::TaskStatus;
    use serde_json::Map;

    use super::*;

    /// One tool that runs until cancelled.
    struct Forever;

    #[async_trait]
    impl Toolbox for Forever {
        fn name(&self) -> &str {
            "forever"
        }

        async fn tools(&self) -> Vec<ToolSpec> {
            vec![
                ToolSpec::with_schema("forever", "Runs until cancelled", Map::new())
                    .task_support(TaskSupport::Optional),
            ]
        }

        async fn call_tool(&self, _: &str, _: Map<String, Value>, _: &CallContext) -> Result<ToolOutput, ToolError> {
            std::future::pending().await
        }
    }

    fn context_of(principal: &str) -> CallContext {
        let principal = Principal { id: principal.into(), kind: PrincipalKind::ApiToken, roles: vec![] };
        CallContext::new(Caller::local(principal), Arc::new(NullPeer), Arc::new(OpenGuard))
    }

    async fn status(tasks: &Tasks, task: &Task) -> TaskStatus {
        tasks.manager().get_task(&task.task_id).unwrap().status()
    }

    #[tokio::test]
    async fn a_principal_holds_a_bounded_number_of_tasks_and_shutdown_cancels_them() {
        let pipeline = Pipeline::builder(Arc::new(OpenGuard)).toolbox(Arc::new(Forever)).build().await.unwrap();
        let settings =
            TaskSettings { per_principal: 2, answer_within: Duration::from_millis(10), ..TaskSettings::default() };
        let tasks = Tasks::new(settings);
        let start = async |principal: &str| {
            tasks.run(pipeline.clone(), "forever".into(), None, context_of(principal), None).await.map(|started| {
                match started {
                    Started::Task(task) => task,
                    Started::Answered(result) => panic!("answered: {result:?}"),
                }
            })
        };
        let first = start("token:alice").await.unwrap();
        let second = start("token:alice").await.unwrap();
        assert!(start("token:alice").await.is_none(), "a third task for alice is refused");
        let other = start("token:bob").await.expect("bob has his own allowance");
        assert_eq!(tasks.owner(&first.task_id).as_deref(), Some("token:alice"));
        assert_eq!(tasks.owner(&other.task_id).as_deref(), Some("token:bob"));
        assert_eq!(tasks.owner("no-such-task"), None);
        assert_eq!(status(&tasks, &second).await, TaskStatus::Working);

        tasks.cancel_all();
        for task in [&first, &second, &other] {
            for _ in 0..200 {
                if status(&tasks, task).await != TaskStatus::Working {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(status(&tasks, task).await, TaskStatus::Cancelled, "{}", task.task_id);
        }
    }
}
