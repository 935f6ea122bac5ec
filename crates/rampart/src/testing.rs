//! Running a toolbox through the real server in a test: [`TestServer`] builds what
//! `rampart serve` builds (policy, limits, the audit log, the built-in toolboxes and
//! yours) from a `rampart.toml` text, in a temporary directory, and calls it as any
//! principal with any roles — no process, no port, no token.
//!
//! ```no_run
//! # use rampart::{async_trait, CallContext, Routes, ToolError, ToolRouter, ToolSpec, Toolbox};
//! # struct Greeter(ToolRouter<Greeter>);
//! # #[derive(serde::Deserialize, schemars::JsonSchema)]
//! # struct Name { name: String }
//! # async fn greet(_: &Greeter, a: Name, _: &CallContext) -> Result<String, ToolError> { Ok(format!("Hello, {}!", a.name)) }
//! # #[async_trait]
//! # impl Toolbox for Greeter {
//! #     fn name(&self) -> &str { "greeter" }
//! #     fn routes(&self) -> Option<Routes<'_>> { Some(self.0.bind(self)) }
//! # }
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use rampart::{Rampart, testing::TestServer};
//! use serde_json::json;
//!
//! let greeter = Greeter(ToolRouter::new().tool(ToolSpec::named("greet", "Greet someone."), greet));
//! let roles = "[roles.viewer]\ntools = [\"greet\"]\n";
//! let server = TestServer::start(Rampart::new().toolbox(greeter), roles).await?;
//!
//! let viewer = TestServer::caller("token:viewer", &["viewer"]);
//! let called = server.call(&viewer, "greet", json!({"name": "Ada"})).await?;
//! assert_eq!(called.output.to_text(), "Hello, Ada!");
//!
//! let nobody = TestServer::caller("token:nobody", &[]);
//! assert!(server.call(&nobody, "greet", json!({"name": "Ada"})).await.is_err());
//! assert_eq!(server.audit_records().last().unwrap()["decision"], "deny");
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rampart_config::{LoadOptions, load};
use rampart_core::{
    CallContext, CallError, Caller, ClientPeer, LogLevel, PeerError, Principal, PrincipalKind, PromptOutput,
    ResourceContents, ToolOutput, ToolSpec, Transport,
};
use rampart_server::{Built, ServerError};
use serde_json::{Map, Value, json};

use crate::Rampart;

/// The server `rampart serve` would build, without a listener: every call goes through
/// the one pipeline (authorization, limits, audit). Its store and audit log (JSON lines,
/// each record stored before the call returns) live in a temporary directory removed on
/// drop.
pub struct TestServer {
    built: Built,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}

/// What a call returned, and what the tool sent the client while it ran.
#[derive(Debug, Clone)]
pub struct Called {
    /// The result (`is_error` for a tool that failed, a denied scope included).
    pub output: ToolOutput,
    /// Each progress notification: (progress, total, message).
    pub progress: Vec<(f64, Option<f64>, Option<String>)>,
    /// Each log notification: (level, data).
    pub logs: Vec<(LogLevel, Value)>,
}

impl TestServer {
    /// Builds the server from `config_toml` (a `rampart.toml`; no environment variable
    /// and no `.env` are read) with `rampart`'s toolboxes. The store and the audit log
    /// are set to the temporary directory; audit commit is synchronous.
    ///
    /// # Errors
    /// [`ServerError`] for a configuration that does not load or validate, or a toolbox
    /// that cannot be built.
    pub async fn start(rampart: Rampart, config_toml: &str) -> Result<Self, ServerError> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("rampart.toml");
        std::fs::write(&file, config_toml)?;
        let overrides = vec![
            ("store.data_dir", json!(dir.path())),
            ("audit.file", json!(dir.path().join("audit.jsonl"))),
            ("audit.synchronous", json!(true)),
        ];
        let options = LoadOptions { config_path: Some(file), overrides, dotenv: false, env: Some(Vec::new()) };
        let config = load(options.clone()).map_err(|error| ServerError::Config(error.to_string()))?;
        let built = rampart_server::build(&config.config, Transport::StreamableHttp, options, rampart.added).await?;
        Ok(Self { built, dir })
    }

    /// A caller authenticated as `id` (e.g. `token:alice`) with `roles`, over
    /// streamable HTTP.
    pub fn caller(id: &str, roles: &[&str]) -> Caller {
        let principal = Principal {
            id: id.to_owned(),
            kind: PrincipalKind::ApiToken,
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        };
        Caller { principal, transport: Transport::StreamableHttp, session: None, remote_addr: None }
    }

    /// Calls `tool` with `arguments` (a JSON object) as `caller`, through the pipeline,
    /// with a progress token, collecting what the tool sends the client.
    ///
    /// # Errors
    /// [`CallError`] as a client would get it: an unknown or forbidden tool (the same
    /// error), a refused admission.
    pub async fn call(&self, caller: &Caller, tool: &str, arguments: Value) -> Result<Called, CallError> {
        let peer = Arc::new(RecordingPeer::default());
        let context = self.context(caller, peer.clone()).with_progress_token(Some(json!("test")));
        let arguments = match arguments {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let output = self.built.pipeline.call_tool(tool, Some(arguments), &context).await?;
        let sent = peer.sent.lock().map(|sent| sent.clone()).unwrap_or_default();
        Ok(Called { output, progress: sent.progress, logs: sent.logs })
    }

    /// The tools `caller` sees.
    ///
    /// # Errors
    /// [`CallError`] when listing is refused (limits, audit down).
    pub async fn list_tools(&self, caller: &Caller) -> Result<Vec<ToolSpec>, CallError> {
        self.built.pipeline.list_tools(&self.context(caller, Arc::new(RecordingPeer::default()))).await
    }

    /// Reads the resource `uri` as `caller`.
    ///
    /// # Errors
    /// [`CallError`]: unknown or forbidden (the same error), or the toolbox's failure.
    pub async fn read_resource(&self, caller: &Caller, uri: &str) -> Result<Vec<ResourceContents>, CallError> {
        self.built.pipeline.read_resource(uri, &self.context(caller, Arc::new(RecordingPeer::default()))).await
    }

    /// Gets the prompt `name` with `arguments` as `caller`.
    ///
    /// # Errors
    /// [`CallError`]: unknown or forbidden (the same error), or missing arguments.
    pub async fn get_prompt(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<PromptOutput, CallError> {
        self.built.pipeline.get_prompt(name, arguments, &self.context(caller, Arc::new(RecordingPeer::default()))).await
    }

    /// Every audit record stored so far, oldest first (each a JSON object: `principal`,
    /// `method`, `tool`, `decision`, `outcome`, the redacted `arguments`, …).
    pub fn audit_records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    fn context(&self, caller: &Caller, peer: Arc<dyn ClientPeer>) -> CallContext {
        CallContext::new(caller.clone(), peer, self.built.pipeline.guard().clone())
    }
}

#[derive(Debug, Clone, Default)]
struct Sent {
    progress: Vec<(f64, Option<f64>, Option<String>)>,
    logs: Vec<(LogLevel, Value)>,
}

/// A client that keeps what it is sent and refuses requests (no sampling or elicitation).
#[derive(Debug, Default)]
struct RecordingPeer {
    sent: Mutex<Sent>,
}

#[async_trait]
impl ClientPeer for RecordingPeer {
    async fn notify_progress(&self, _: &Value, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.progress.push((progress, total, message));
        }
    }

    async fn log(&self, level: LogLevel, _: Option<&str>, data: Value) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.logs.push((level, data));
        }
    }

    async fn request(&self, _: &str, _: Value) -> Result<Value, PeerError> {
        Err(PeerError::Unsupported)
    }
}

/// A program built on Rampart (its binary, e.g. `env!("CARGO_BIN_EXE_my-server")`) run
/// as a user runs it: `serve` on a loopback port, `token create`, and its own command
/// line as the MCP client — for end-to-end tests of the whole program. Every command
/// runs under `timeout` with its own data directory (the store, the audit log).
#[derive(Debug)]
pub struct Program {
    binary: std::path::PathBuf,
    config: std::path::PathBuf,
    data: tempfile::TempDir,
}

/// A `serve` of a [`Program`], stopped (SIGTERM to its PID) when dropped.
#[derive(Debug)]
pub struct Serving {
    child: std::process::Child,
    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// What a command printed: its exit status (0 success, 1 the tool reported an error,
/// 2 a usage, connection or protocol error), stdout and stderr.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output (data; JSON under `--json`).
    pub stdout: String,
    /// Standard error (notes, errors).
    pub stderr: String,
}

impl Output {
    /// stdout as JSON (`null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or(Value::Null)
    }
}

impl Program {
    /// `binary` with the configuration file `config`, in a new data directory.
    ///
    /// # Errors
    /// When the temporary directory cannot be made.
    pub fn new(binary: impl Into<std::path::PathBuf>, config: impl Into<std::path::PathBuf>) -> std::io::Result<Self> {
        Ok(Self { binary: binary.into(), config: config.into(), data: tempfile::tempdir()? })
    }

    /// Runs `PROGRAM ARGS` (at most 60 s) with the data directory and configuration set
    /// through `RAMPART_DATA_DIR` and `RAMPART_CONFIG`.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn run(&self, args: &[&str]) -> std::io::Result<Output> {
        let output = std::process::Command::new("timeout")
            .arg("60")
            .arg(&self.binary)
            .args(args)
            .env("RAMPART_DATA_DIR", self.data.path())
            .env("RAMPART_CONFIG", &self.config)
            .env_remove("RAMPART_URL")
            .env_remove("RAMPART_TOKEN")
            .output()?;
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        Ok(Output {
            code: output.status.code().unwrap_or(-1),
            stdout: text(output.stdout),
            stderr: text(output.stderr),
        })
    }

    /// `PROGRAM serve --listen 127.0.0.1:0` (stopped after `seconds` at most), once its
    /// banner names the endpoint.
    ///
    /// # Errors
    /// When it cannot start or exits before serving (its stderr is in the error).
    pub fn serve(&self, seconds: u32) -> std::io::Result<Serving> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("timeout")
            .args(["--signal=TERM", &seconds.to_string()])
            .arg(&self.binary)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RAMPART_DATA_DIR", self.data.path())
            .env("RAMPART_CONFIG", &self.config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr"))?;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut seen = String::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return Err(std::io::Error::other(format!("the server stopped before serving:\n{seen}")));
            };
            if let Some(rest) = line.split("streamable HTTP at ").nth(1) {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
            seen.push_str(&line);
            seen.push('\n');
        };
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Serving { child, url })
    }

    /// A new API token `name` with `role` (`PROGRAM token create`).
    ///
    /// # Errors
    /// When the command fails (its stderr is in the error).
    pub fn token(&self, name: &str, role: &str) -> std::io::Result<String> {
        let output = self.run(&["token", "create", "--name", name, "--role", role])?;
        if output.code != 0 {
            return Err(std::io::Error::other(output.stderr));
        }
        Ok(output.stdout.trim().to_owned())
    }

    /// Calls `tool` with `arguments` on `serving` with `token`, through the program's own
    /// client (`PROGRAM call TOOL --args JSON --json`).
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn call(&self, serving: &Serving, token: &str, tool: &str, arguments: &Value) -> std::io::Result<Output> {
        let arguments = arguments.to_string();
        self.run(&["call", tool, "--args", &arguments, "--url", &serving.url, "--token", token, "--json"])
    }

    /// The audit records of `principal` (e.g. `token:alice`), waiting up to 10 s until
    /// `until` holds for them (records are stored a few milliseconds after the answer).
    ///
    /// # Errors
    /// When `audit search` fails.
    pub fn audit(&self, principal: &str, until: impl Fn(&[Value]) -> bool) -> std::io::Result<Vec<Value>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let output = self.run(&["audit", "search", "--principal", principal, "--json"])?;
            if output.code != 0 {
                return Err(std::io::Error::other(output.stderr));
            }
            let records: Vec<Value> = match output.json() {
                Value::Array(records) => records,
                _ => output.stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect(),
            };
            if until(&records) || std::time::Instant::now() > deadline {
                return Ok(records);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
