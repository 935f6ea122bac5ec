//! The fixture every test starts from: a temporary directory holding the scratch root, a
//! world-readable and world-writable directory outside it (so that only the sandbox, not
//! file permissions, keeps the programs out) with a secret in it; a toolbox over the
//! test machine's `/bin/sh`, `python3` and coreutils; a guard that records what the
//! toolbox asked and refuses what a test says; and a peer that records notifications.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rampart_core::{
    Admission, CallContext, CallRecord, Caller, ClientPeer, Denied, Guard, LogLevel, PeerError, Refusal, Request,
    ToolError, ToolOutput, Toolbox,
};
use rampart_exec::{ExecToolbox, Layer, SandboxReport};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the file outside scratch holds; no output may ever contain it.
pub(crate) const SECRET: &str = "TOP-SECRET-7f3a";

/// Allows every tool; refuses the listed command names; records every resource asked about.
#[derive(Default)]
pub(crate) struct TestGuard {
    deny: Vec<String>,
    pub(crate) asked: Mutex<Vec<Request<'static>>>,
}

impl TestGuard {
    pub(crate) fn denying(names: &[&str]) -> Self {
        Self { deny: names.iter().map(|n| (*n).to_owned()).collect(), asked: Mutex::default() }
    }
}

#[async_trait]
impl Guard for TestGuard {
    fn authorize(&self, _: &Caller, request: &Request<'_>) -> Result<(), Denied> {
        if matches!(request, Request::Tool { .. }) {
            return Ok(());
        }
        self.asked.lock().unwrap().push(request.clone().into_owned());
        match request {
            Request::Command { name } if self.deny.iter().any(|denied| denied == name) => {
                Err(Denied { missing: format!("command '{name}'") })
            }
            _ => Ok(()),
        }
    }
    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<Admission, Refusal> {
        Ok(Admission::default())
    }
    async fn record(&self, _: CallRecord) -> Result<(), Refusal> {
        Ok(())
    }
}

/// One notification the toolbox sent.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    pub(crate) text: String,
    pub(crate) at: Instant,
}

/// Records progress and log notifications.
#[derive(Default)]
pub(crate) struct RecordingPeer {
    pub(crate) progress: Mutex<Vec<Notification>>,
    pub(crate) logs: Mutex<Vec<Notification>>,
}

#[async_trait]
impl ClientPeer for RecordingPeer {
    async fn notify_progress(&self, _: &Value, _: f64, _: Option<f64>, message: Option<String>) {
        let text = message.unwrap_or_default();
        self.progress.lock().unwrap().push(Notification { text, at: Instant::now() });
    }
    async fn log(&self, _: LogLevel, _: Option<&str>, data: Value) {
        self.logs.lock().unwrap().push(Notification { text: data.to_string(), at: Instant::now() });
    }
    async fn request(&self, _: &str, _: Value) -> Result<Value, PeerError> {
        Err(PeerError::Unsupported)
    }
}

/// The structured result of `run_command` and `run_script`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunResult {
    pub(crate) exit_code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) timed_out: bool,
    pub(crate) duration_ms: u64,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) stdout_truncated: bool,
    pub(crate) stderr_truncated: bool,
}

/// `base/` holds `scratch/` (the scratch root) and `outside/` (mode 0777, with a 0644
/// `secret.txt`).
pub(crate) struct Fixture {
    _temp: tempfile::TempDir,
    pub(crate) base: PathBuf,
    pub(crate) scratch_root: PathBuf,
    pub(crate) outside: PathBuf,
    pub(crate) toolbox: ExecToolbox,
    pub(crate) guard: Arc<TestGuard>,
    pub(crate) peer: Arc<RecordingPeer>,
    pub(crate) report: SandboxReport,
}

/// The programs every fixture allows.
pub(crate) fn programs() -> Value {
    json!({
        "sh": "/bin/sh",
        "python3": "/usr/bin/python3",
        "cat": "/bin/cat",
        "echo": "/bin/echo",
        "env": "/usr/bin/env",
        "sleep": "/bin/sleep",
        "ls": "/bin/ls",
        "id": "/usr/bin/id",
        "pwd": "/bin/pwd",
    })
}

/// The fixture's `[exec]` table for `scratch_root`, before `adjust`.
pub(crate) fn base_config(scratch_root: &Path) -> Value {
    json!({
        "programs": programs(),
        "interpreters": { "python3": "/usr/bin/python3", "bash": "/bin/bash", "sh": "/bin/sh" },
        // Each layer's tests check the report and say SKIPPED when it is missing.
        "require": [],
        "timeout_s": 30,
        "max_output_bytes": 65536,
        "limits": { "cpu_s": 10, "memory_mb": 512, "file_size_mb": 8, "open_files": 64, "processes": 32 },
        "scratch_root": scratch_root,
    })
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with(|_| {})
    }

    /// A fixture whose `[exec]` table is the base one changed by `adjust`.
    pub(crate) fn with(adjust: impl FnOnce(&mut Value)) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(temp.path()).unwrap();
        // Traversable by the sandbox's user, as /tmp/rampart-scratch would be.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let scratch_root = base.join("scratch");
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
        std::fs::set_permissions(outside.join("secret.txt"), std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut config = base_config(&scratch_root);
        adjust(&mut config);
        let toolbox = ExecToolbox::from_config(config).unwrap();
        let report = ExecToolbox::check_sandbox();
        Self { _temp: temp, base, scratch_root, outside, toolbox, guard: Arc::default(), peer: Arc::default(), report }
    }

    pub(crate) fn guard(mut self, guard: TestGuard) -> Self {
        self.guard = Arc::new(guard);
        self
    }

    /// Whether this machine enforces `layer`; says loudly that `test` is skipped if not.
    pub(crate) fn enforces(&self, layer: Layer, test: &str) -> bool {
        if self.report.is_available(layer) {
            return true;
        }
        let why = self.report.detail(layer).unwrap_or("unavailable");
        eprintln!("SKIPPED {test}: the {layer} layer is not available on this machine ({why})");
        false
    }

    pub(crate) fn context(&self, session: Option<&str>) -> CallContext {
        let mut caller = Caller::stdio();
        caller.session = session.map(str::to_owned);
        CallContext::new(caller, self.peer.clone(), self.guard.clone())
            .with_progress_token(Some(json!("test-progress")))
    }

    pub(crate) async fn call_in(
        &self,
        session: Option<&str>,
        tool: &str,
        arguments: Value,
    ) -> Result<ToolOutput, ToolError> {
        let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
        self.toolbox.call_tool(tool, arguments, &self.context(session)).await
    }

    pub(crate) async fn call(&self, tool: &str, arguments: Value) -> Result<ToolOutput, ToolError> {
        self.call_in(None, tool, arguments).await
    }

    /// Runs `program args…` and returns its result, whether it failed or not.
    pub(crate) async fn run(&self, program: &str, args: &[&str]) -> RunResult {
        self.run_in(None, program, args).await
    }

    pub(crate) async fn run_in(&self, session: Option<&str>, program: &str, args: &[&str]) -> RunResult {
        let output = self
            .call_in(session, "run_command", json!({ "program": program, "args": args }))
            .await
            .unwrap_or_else(|error| panic!("{program} {args:?}: {error}"));
        result(&output)
    }

    /// Runs `sh -c script`.
    pub(crate) async fn sh(&self, script: &str) -> RunResult {
        self.run("sh", &["-c", script]).await
    }

    /// Runs a python3 script given as code.
    pub(crate) async fn python(&self, code: &str) -> RunResult {
        self.python_with(code, json!({})).await
    }

    pub(crate) async fn python_with(&self, code: &str, extra: Value) -> RunResult {
        let mut arguments = json!({ "program": "python3", "args": ["-c", code] });
        for (key, value) in extra.as_object().unwrap() {
            arguments[key] = value.clone();
        }
        let output = self.call("run_command", arguments).await.unwrap_or_else(|error| panic!("python3: {error}"));
        result(&output)
    }
}

/// The structured result of a run.
pub(crate) fn result(output: &ToolOutput) -> RunResult {
    let structured = output.structured_content.clone().unwrap_or_else(|| panic!("no structured content: {output:?}"));
    serde_json::from_value(structured).unwrap()
}

/// All text blocks of `output`, joined.
pub(crate) fn text(output: &ToolOutput) -> String {
    output
        .content
        .iter()
        .filter_map(|c| match c {
            rampart_core::Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fresh marker to find a test's processes by in `/proc`.
pub(crate) fn marker() -> String {
    format!("rampart-marker-{}", uuid::Uuid::new_v4().simple())
}

/// Pids of live (not zombie) processes whose command line contains `marker`.
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if !String::from_utf8_lossy(&cmdline).contains(marker) {
            continue;
        }
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
        if !zombie {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `limit` for no process to carry `marker`; the survivors otherwise.
pub(crate) async fn survivors_after(marker: &str, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let alive = processes_with(marker);
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills leftovers so that a failing test does not leave sleepers behind.
pub(crate) fn kill_all(pids: &[u32]) {
    for pid in pids {
        let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
}

/// The scratch directory of `session`, as the sandboxed program sees it.
pub(crate) async fn scratch_of(f: &Fixture, session: &str) -> PathBuf {
    let result = f.run_in(Some(session), "pwd", &[]).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    PathBuf::from(result.stdout.trim())
}
