//! [`ExecToolbox`]: the tools `run_command` and `run_script`, their arguments and result,
//! and one call as parse → look up → authorize → lease scratch → sandboxed run → result.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rampart_core::{
    CallContext, Request, Routes, TaskSupport, ToolAnnotations, ToolError, ToolOutput, ToolRouter, ToolSpec, Toolbox,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ExecConfig, ExecConfigError};
use crate::run::{self, Finished, Run, RunError};
use crate::sandbox::{Launch, Layer, Sandbox, SandboxReport};
use crate::scratch::{Lease, ScratchDirs};

/// How often idle scratch directories are looked for, at most.
const SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// Allowlisted programs and scripts run in the layered sandbox (see the crate docs).
#[derive(Debug, Clone)]
pub struct ExecToolbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    programs: BTreeMap<String, PathBuf>,
    interpreters: BTreeMap<String, PathBuf>,
    timeout_s: u64,
    max_output_bytes: usize,
    sandbox: Sandbox,
    scratch: Arc<ScratchDirs>,
    tools: ToolRouter<Inner>,
}

impl ExecToolbox {
    /// The toolbox for the `[exec]` table of `rampart.toml`, given as JSON.
    ///
    /// # Errors
    /// [`ExecConfigError`] naming the key: an unknown or mistyped key, a relative,
    /// missing, setuid or privilege-changing program, a layer of `exec.require` this
    /// machine does not enforce, a scratch root that cannot be prepared.
    pub fn from_config(value: Value) -> Result<Self, ExecConfigError> {
        Self::new(&ExecConfig::from_value(value)?)
    }

    /// The toolbox for `config`: validates it, probes the sandbox layers (refusing when a
    /// required one is missing) and prepares the scratch root. Inside a tokio runtime, a
    /// task deletes idle scratch directories every few minutes.
    ///
    /// # Errors
    /// As [`ExecToolbox::from_config`].
    pub fn new(config: &ExecConfig) -> Result<Self, ExecConfigError> {
        config.validate()?;
        let report = Self::check_sandbox();
        config.check_required(&report)?;
        let sandbox = Sandbox::new(config, report).map_err(|error| ExecConfigError::LayerUnavailable {
            layers: vec![Layer::Seccomp],
            detail: error.to_string(),
        })?;
        let owner = nix::unistd::geteuid().is_root().then_some((sandbox.report.uid, sandbox.report.gid));
        let idle = Duration::from_secs(config.scratch_idle_s);
        let scratch = ScratchDirs::new(&config.scratch_root, owner, idle)
            .map_err(|source| ExecConfigError::Scratch { path: config.scratch_root.clone(), source })?;
        let scratch = Arc::new(scratch);
        sweep_in_background(Arc::downgrade(&scratch), idle);
        let inner = Inner {
            programs: config.programs.clone(),
            interpreters: config.interpreters.clone(),
            timeout_s: config.timeout_s,
            max_output_bytes: config.max_output_bytes,
            sandbox,
            scratch,
            tools: Inner::tools(config),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Which sandbox layers this machine enforces, for `rampart sandbox check`. Each layer
    /// is tried in a child process exactly as a run would set it up.
    pub fn check_sandbox() -> SandboxReport {
        SandboxReport::probe()
    }

    /// The layers this toolbox found when it started.
    pub fn sandbox_report(&self) -> &SandboxReport {
        &self.inner.sandbox.report
    }

    /// Ends MCP session `session`: its running calls are cancelled (their process trees
    /// killed) and its scratch directory deleted. Unknown sessions are ignored. Blocks
    /// while deleting; call it from a blocking thread if the directory may be large.
    pub fn end_session(&self, session: &str) {
        self.inner.scratch.end_session(session);
    }

    /// Ends every session, as [`ExecToolbox::end_session`] does each (for server
    /// shutdown). Blocks while deleting.
    pub fn end_all_sessions(&self) {
        self.inner.scratch.end_all_sessions();
    }

    /// Deletes the scratch directories of sessions idle longer than
    /// `exec.scratch_idle_s` (and leftovers of earlier servers); returns how many. Runs on
    /// its own every few minutes inside a tokio runtime.
    pub fn expire_idle(&self) -> usize {
        self.inner.scratch.expire_idle()
    }
}

/// Calls `expire_idle` periodically while the toolbox lives, when there is a runtime.
fn sweep_in_background(scratch: Weak<ScratchDirs>, idle: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let period = (idle / 4).clamp(Duration::from_secs(1), SWEEP_INTERVAL);
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            let Some(scratch) = scratch.upgrade() else { return };
            let _ = tokio::task::spawn_blocking(move || scratch.expire_idle()).await;
        }
    });
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunCommandArguments {
    /// The name of an allowed program (listed in the tool's description); not a path.
    program: String,
    /// Arguments, given to the program exactly as they are: there is no shell, so quotes,
    /// `$`, `;`, `|` and `*` are ordinary characters.
    #[serde(default)]
    args: Vec<String>,
    /// Working directory, relative to the scratch directory or absolute inside it.
    /// Default: the scratch directory.
    cwd: Option<String>,
    /// Text written to the program's standard input, which is then closed. Default: none
    /// (end of file at once).
    stdin: Option<String>,
    /// Wall-clock limit in seconds; at most the server's limit, which is the default.
    timeout_s: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunScriptArguments {
    /// The interpreter, one of those listed in the tool's description.
    language: String,
    /// The script's source code.
    code: String,
    /// Wall-clock limit in seconds; at most the server's limit, which is the default.
    timeout_s: Option<u64>,
}

/// The structured result of both tools.
#[derive(Debug, Serialize, JsonSchema)]
struct RunResult {
    /// The exit code, when the program exited (not killed by a signal).
    exit_code: Option<i32>,
    /// The signal that killed the program, e.g. 9.
    signal: Option<i32>,
    /// The signal's name, e.g. `SIGKILL`.
    signal_name: Option<String>,
    /// Whether the wall-clock limit ended the run (its process tree was killed).
    timed_out: bool,
    /// Wall-clock duration, milliseconds.
    duration_ms: u64,
    /// Standard output (lossy UTF-8), ending with `…[truncated N bytes]` when cut.
    stdout: String,
    /// Standard error, likewise.
    stderr: String,
    /// Whether stdout was cut at the server's output limit.
    stdout_truncated: bool,
    /// Whether stderr was cut.
    stderr_truncated: bool,
}

impl RunResult {
    fn new(finished: Finished) -> Self {
        let signal = finished.signal();
        Self {
            exit_code: finished.code(),
            signal,
            signal_name: signal.map(signal_name),
            timed_out: finished.timed_out,
            duration_ms: u64::try_from(finished.duration.as_millis()).unwrap_or(u64::MAX),
            stdout_truncated: finished.stdout.truncated,
            stderr_truncated: finished.stderr.truncated,
            stdout: finished.stdout.text,
            stderr: finished.stderr.text,
        }
    }

    /// The readable rendering: how it ended, then both streams.
    fn render(&self, timeout_s: u64) -> String {
        let ended = match (self.timed_out, self.exit_code, &self.signal_name) {
            (true, _, _) => format!("timed out after {timeout_s} s; the process tree was killed"),
            (false, Some(code), _) => format!("exit code {code}"),
            (false, None, Some(name)) => format!("killed by {name} (signal {})", self.signal.unwrap_or_default()),
            (false, None, None) => "ended without a status".to_owned(),
        };
        let stream = |name: &str, text: &str| {
            if text.is_empty() { format!("--- {name}: (empty)") } else { format!("--- {name} ---\n{text}") }
        };
        format!(
            "{ended} ({} ms)\n{}\n{}",
            self.duration_ms,
            stream("stdout", &self.stdout),
            stream("stderr", &self.stderr)
        )
    }
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

/// What one call runs, once looked up and authorized.
struct Job {
    /// The name the policy was asked about.
    name: String,
    program: PathBuf,
    args: Vec<String>,
    script: Option<String>,
    cwd: Option<String>,
    stdin: Option<String>,
    timeout_s: Option<u64>,
}

impl Inner {
    /// The tools; their descriptions name the configured programs, interpreters and limits.
    fn tools(config: &ExecConfig) -> ToolRouter<Self> {
        let network = if config.network { "network access allowed" } else { "no network" };
        let sandbox = format!(
            "It runs in a sandbox: {network}; read access to system directories only; a scratch directory \
             (the working directory and HOME) that persists between calls of this session; limits of {} s \
             wall clock, {} bytes of output per stream; never as root.",
            config.timeout_s, config.max_output_bytes
        );
        let command = format!(
            "Run an allowed program with arguments, directly (no shell: no pipes, globbing or variable \
             expansion). Allowed programs: {}. {sandbox} A non-zero exit is reported as an error with the output.",
            names(&config.programs)
        );
        let script = format!(
            "Run a script: the code is saved to a file in the scratch directory and run by the interpreter. \
             Languages: {}. {sandbox}",
            names(&config.interpreters)
        );
        let annotations = ToolAnnotations::write().destructive(true).open_world(config.network);
        ToolRouter::new()
            .tool(
                ToolSpec::named("run_command", &command)
                    .title("Run Command")
                    .output::<RunResult>()
                    .annotations(annotations.clone())
                    .task_support(TaskSupport::Optional),
                Self::run_command,
            )
            .tool(
                ToolSpec::named("run_script", &script)
                    .title("Run Script")
                    .output::<RunResult>()
                    .annotations(annotations)
                    .task_support(TaskSupport::Optional),
                Self::run_script,
            )
    }

    async fn run_command(
        &self,
        arguments: RunCommandArguments,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let program = self.programs.get(&arguments.program).ok_or_else(|| {
            ToolError::InvalidArguments(format!(
                "'{}' is not an allowed program; allowed: {}",
                arguments.program,
                names(&self.programs)
            ))
        })?;
        let job = Job {
            name: arguments.program,
            program: program.clone(),
            args: arguments.args,
            script: None,
            cwd: arguments.cwd,
            stdin: arguments.stdin,
            timeout_s: arguments.timeout_s,
        };
        self.execute(job, context).await
    }

    async fn run_script(&self, arguments: RunScriptArguments, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let program = self.interpreters.get(&arguments.language).ok_or_else(|| {
            ToolError::InvalidArguments(format!(
                "'{}' is not a configured interpreter; configured: {}",
                arguments.language,
                names(&self.interpreters)
            ))
        })?;
        let job = Job {
            name: arguments.language,
            program: program.clone(),
            args: Vec::new(),
            script: Some(arguments.code),
            cwd: None,
            stdin: None,
            timeout_s: arguments.timeout_s,
        };
        self.execute(job, context).await
    }

    fn timeout(&self, requested: Option<u64>) -> Result<u64, ToolError> {
        match requested {
            None => Ok(self.timeout_s),
            Some(0) => Err(ToolError::InvalidArguments("timeout_s must be at least 1".into())),
            Some(asked) if asked > self.timeout_s => Err(ToolError::InvalidArguments(format!(
                "timeout_s {asked} exceeds the server's limit of {} s (exec.timeout_s)",
                self.timeout_s
            ))),
            Some(asked) => Ok(asked),
        }
    }

    /// Authorizes `job`, then runs it in the session's scratch directory; a non-zero exit is
    /// an error result carrying the output.
    async fn execute(&self, job: Job, context: &CallContext) -> Result<ToolOutput, ToolError> {
        context.authorize(&Request::command(job.name.as_str()))?;
        let timeout_s = self.timeout(job.timeout_s)?;
        if job.args.iter().chain(job.cwd.iter()).any(|text| text.contains('\0')) {
            return Err(ToolError::InvalidArguments("arguments and cwd must not contain NUL bytes".into()));
        }
        let lease = self
            .scratch
            .acquire(context.caller.session.as_deref())
            .map_err(|error| ToolError::Internal(format!("making the scratch directory: {error}")))?;
        let result = self.run_in(&lease, job, timeout_s, context).await;
        lease.release().await;
        let result = RunResult::new(result?);
        let text = result.render(timeout_s);
        let failed = result.exit_code != Some(0);
        let mut output = ToolOutput::structured(&result, text)?;
        output.is_error = failed;
        Ok(output)
    }

    async fn run_in(
        &self,
        lease: &Lease,
        job: Job,
        timeout_s: u64,
        context: &CallContext,
    ) -> Result<Finished, ToolError> {
        let scratch = lease.path();
        let cwd = working_directory(scratch, job.cwd.as_deref())?;
        let mut args: Vec<OsString> = job.args.iter().map(OsString::from).collect();
        let script = match &job.script {
            Some(code) => {
                let path = write_script(scratch, code)?;
                args.push(path.clone().into_os_string());
                Some(path)
            }
            None => None,
        };
        let launch = Launch { program: &job.program, args, scratch, cwd, timeout_s, stdin: job.stdin.is_some() };
        let command = self.sandbox.command(&launch).map_err(|error| ToolError::Internal(error.to_string()))?;
        let outcome = run::run(Run {
            command,
            stdin: job.stdin.map(String::into_bytes),
            timeout: Duration::from_secs(timeout_s),
            max_output_bytes: self.max_output_bytes,
            context,
            session: lease.ended.clone(),
        })
        .await;
        if let Some(script) = script {
            let _ = std::fs::remove_file(script);
        }
        outcome.map_err(|error| match error {
            RunError::Cancelled => ToolError::Cancelled,
            RunError::Spawn(_) => ToolError::Failed(error.to_string()),
        })
    }
}

/// `name, name, …`.
fn names(map: &BTreeMap<String, PathBuf>) -> String {
    if map.is_empty() { "none".to_owned() } else { map.keys().cloned().collect::<Vec<_>>().join(", ") }
}

/// The run's working directory: `cwd` resolved (links followed) inside `scratch`.
fn working_directory(scratch: &Path, cwd: Option<&str>) -> Result<PathBuf, ToolError> {
    let scratch = std::fs::canonicalize(scratch)
        .map_err(|error| ToolError::Internal(format!("resolving the scratch directory: {error}")))?;
    let Some(cwd) = cwd else { return Ok(scratch) };
    let refused = || {
        ToolError::InvalidArguments(format!(
            "cwd '{cwd}' is not an existing directory inside the scratch directory {}",
            scratch.display()
        ))
    };
    let resolved = std::fs::canonicalize(scratch.join(cwd)).map_err(|_| refused())?;
    if resolved.starts_with(&scratch) && resolved.is_dir() { Ok(resolved) } else { Err(refused()) }
}

/// Writes `code` to a fresh, unguessable file in `scratch` (never through an existing
/// name: the directory belongs to the sandboxed programs).
fn write_script(scratch: &Path, code: &str) -> Result<PathBuf, ToolError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = scratch.join(format!(".rampart-script-{}", uuid::Uuid::new_v4().simple()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut file| file.write_all(code.as_bytes()))
        .map_err(|error| ToolError::Internal(format!("writing the script: {error}")))?;
    Ok(path)
}

#[async_trait]
impl Toolbox for ExecToolbox {
    fn name(&self) -> &str {
        "exec"
    }

    fn session_closed(&self, session: &str) {
        self.end_session(session);
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.inner.tools.bind(&self.inner))
    }
}
