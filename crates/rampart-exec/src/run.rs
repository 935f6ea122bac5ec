//! One run of a sandboxed process: spawn, feed stdin, capture stdout and stderr up to the
//! cap (counting and dropping the rest, so memory stays bounded), stream complete lines
//! to the client while it runs, and end it — by its own exit, the wall-clock timeout, the
//! client's cancellation, the end of its session, or the call being dropped — always by
//! ending the whole process tree.

use std::convert::Infallible;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rampart_core::{CallContext, LogLevel};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

/// How long the reaper gets to end the tree after SIGTERM before it is killed itself.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long output is still read after the process ended (the pipes close as soon as the
/// last process of the tree is gone; without a PID namespace an escaped one may keep them).
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// How often captured lines are sent to the client while a run goes on.
const STREAM_INTERVAL: Duration = Duration::from_millis(500);
/// The most text one notification carries, bytes.
const STREAM_BATCH_BYTES: usize = 16 * 1024;

/// stdout or stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One stream's capture, shared by its reader and the streaming loop.
#[derive(Debug, Default)]
struct Capture {
    kept: Vec<u8>,
    dropped: u64,
    /// Bytes of `kept` already sent as notifications.
    streamed: usize,
}

type Shared = Arc<Mutex<Capture>>;

fn lock(capture: &Shared) -> std::sync::MutexGuard<'_, Capture> {
    capture.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one stream produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Output {
    /// The kept text (lossy UTF-8), ending with `…[truncated N bytes]` when cut.
    pub(crate) text: String,
    /// Whether bytes were dropped.
    pub(crate) truncated: bool,
}

impl Output {
    fn of(capture: &Shared) -> Self {
        let capture = lock(capture);
        let mut text = String::from_utf8_lossy(&capture.kept).into_owned();
        if capture.dropped > 0 {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("…[truncated {} bytes]", capture.dropped));
        }
        Self { text, truncated: capture.dropped > 0 }
    }
}

/// How a run ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: Option<ExitStatus>,
    pub(crate) timed_out: bool,
    pub(crate) duration: Duration,
    pub(crate) stdout: Output,
    pub(crate) stderr: Output,
}

impl Finished {
    /// The exit code, when the program exited.
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// The signal that killed the program, when one did.
    pub(crate) fn signal(&self) -> Option<i32> {
        self.status.and_then(|status| status.signal())
    }
}

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The process could not be started (the sandbox's setup failed, or exec).
    #[error("could not start the program in the sandbox: {0}")]
    Spawn(std::io::Error),
    /// The client cancelled, or the session ended; the tree was killed.
    #[error("cancelled")]
    Cancelled,
}

/// What to run and its limits.
pub(crate) struct Run<'a> {
    pub(crate) command: tokio::process::Command,
    pub(crate) stdin: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) max_output_bytes: usize,
    pub(crate) context: &'a CallContext,
    /// Cancelled when the session ends.
    pub(crate) session: CancellationToken,
}

/// The process tree of a run, by its reaper (see `spawn`). Dropping it while the run
/// goes on (the call's future was dropped) ends the tree in the background.
struct Tree {
    child: Option<Child>,
    pid: Option<Pid>,
}

impl Tree {
    fn new(child: Child) -> Self {
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
        Self { child: Some(child), pid }
    }

    /// Waits for the program to exit on its own.
    async fn wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.wait().await.ok();
        self.child = None;
        status
    }

    /// Ends the tree: SIGTERM to the reaper, which SIGKILLs the program's process group
    /// (and, with it, its PID namespace) and exits as the program did; SIGKILL to the
    /// reaper if it does not within [`STOP_GRACE`] (the program then dies of its
    /// parent-death signal).
    async fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // The reaper is unreaped (tokio has not waited for it), so its pid is still ours.
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                });
            }
            // Without a runtime: kill the reaper; its death kills the program.
            Err(_) => {
                let _ = child.start_kill();
            }
        }
    }
}

/// Aborts a task when dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `run` to its end.
///
/// # Errors
/// [`RunError::Spawn`] when the process cannot start, [`RunError::Cancelled`].
pub(crate) async fn run(mut run: Run<'_>) -> Result<Finished, RunError> {
    let started = Instant::now();
    let mut child = run.command.spawn().map_err(RunError::Spawn)?;
    let (stdout, stderr) = (Shared::default(), Shared::default());
    let readers = [
        child.stdout.take().map(|pipe| Task(tokio::spawn(capture(pipe, stdout.clone(), run.max_output_bytes)))),
        child.stderr.take().map(|pipe| Task(tokio::spawn(capture(pipe, stderr.clone(), run.max_output_bytes)))),
    ];
    let _writer = child.stdin.take().map(|mut pipe| {
        let bytes = run.stdin.take().unwrap_or_default();
        // A program that exits without reading its input is not an error.
        Task(tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
        }))
    });
    let mut tree = Tree::new(child);
    let streams = [(Stream::Stdout, stdout.clone()), (Stream::Stderr, stderr.clone())];
    let ended = tokio::select! {
        status = tree.wait() => Ended::Exited(status),
        () = tokio::time::sleep(run.timeout) => Ended::TimedOut,
        () = run.context.cancellation.cancelled() => Ended::Cancelled,
        () = run.session.cancelled() => Ended::Cancelled,
        never = stream_lines(&streams, run.context) => match never {},
    };
    let (status, timed_out) = match ended {
        Ended::Exited(status) => (status, false),
        Ended::TimedOut => (tree.stop().await, true),
        Ended::Cancelled => {
            tree.stop().await;
            return Err(RunError::Cancelled);
        }
    };
    let duration = started.elapsed();
    let drained = tokio::time::Instant::now() + DRAIN_GRACE;
    for mut reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout_at(drained, &mut reader.0).await;
    }
    Ok(Finished { status, timed_out, duration, stdout: Output::of(&stdout), stderr: Output::of(&stderr) })
}

enum Ended {
    Exited(Option<ExitStatus>),
    TimedOut,
    Cancelled,
}

/// Reads `pipe` to its end, keeping the first `max` bytes and counting the rest.
async fn capture(mut pipe: impl AsyncRead + Unpin, shared: Shared, max: usize) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let mut capture = lock(&shared);
        let room = max.saturating_sub(capture.kept.len()).min(read);
        capture.kept.extend_from_slice(&buffer[..room]);
        capture.dropped += (read - room) as u64;
    }
}

/// Every [`STREAM_INTERVAL`], sends the complete lines captured since the last time as a
/// progress notification (when the client asked for progress) and a log notification.
async fn stream_lines(streams: &[(Stream, Shared); 2], context: &CallContext) -> Infallible {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + STREAM_INTERVAL, STREAM_INTERVAL);
    let mut sent_total = 0u64;
    loop {
        ticks.tick().await;
        for (stream, shared) in streams {
            let Some(text) = take_lines(shared) else { continue };
            sent_total += text.len() as u64;
            context.progress(sent_total as f64, None, Some(format!("[{}] {text}", stream.name()))).await;
            context.log(LogLevel::Info, Some("exec"), json!({ "stream": stream.name(), "text": text })).await;
        }
    }
}

/// The complete lines of `shared` not yet streamed, up to [`STREAM_BATCH_BYTES`].
fn take_lines(shared: &Shared) -> Option<String> {
    let mut capture = lock(shared);
    let start = capture.streamed;
    let pending = capture.kept.get(start..)?;
    let window = &pending[..pending.len().min(STREAM_BATCH_BYTES)];
    let end = window.iter().rposition(|b| *b == b'\n').map(|i| i + 1).or_else(|| {
        // A line longer than a batch goes in pieces.
        (window.len() == STREAM_BATCH_BYTES).then_some(window.len())
    })?;
    let text = String::from_utf8_lossy(&window[..end]).into_owned();
    capture.streamed = start + end;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(kept: &str, dropped: u64) -> Shared {
        Arc::new(Mutex::new(Capture { kept: kept.as_bytes().to_vec(), dropped, streamed: 0 }))
    }

    #[test]
    fn truncation_is_marked() {
        assert_eq!(Output::of(&shared("abc", 0)), Output { text: "abc".into(), truncated: false });
        assert_eq!(Output::of(&shared("abc", 7)).text, "abc\n…[truncated 7 bytes]");
        assert_eq!(Output::of(&shared("abc\n", 7)).text, "abc\n…[truncated 7 bytes]");
    }

    #[test]
    fn only_complete_lines_are_streamed() {
        let capture = shared("one\ntwo\nthr", 0);
        assert_eq!(take_lines(&capture).as_deref(), Some("one\ntwo\n"));
        assert_eq!(take_lines(&capture), None);
        lock(&capture).kept.extend_from_slice(b"ee\n");
        assert_eq!(take_lines(&capture).as_deref(), Some("three\n"));
    }
}
