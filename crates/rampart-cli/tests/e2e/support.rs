//! Starting the real binary and talking to it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// A `rampart serve` process on 127.0.0.1 with an OS-chosen port. It runs under
/// `timeout`, so it stops by itself even if the test process dies; dropping it sends
/// SIGTERM to its PID.
pub struct Server {
    child: Child,
    /// The server's data directory (its SQLite store), removed on drop.
    pub data: TempDir,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// `rampart serve --listen 127.0.0.1:0 ARGS...`, waiting for the banner.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Same, with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(TempDir::new("server-data"), args, env)
    }

    /// Same, with `data` as its data directory (to restart on the same store).
    pub fn start_in(data: TempDir, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new("timeout");
        command
            .args(["--signal=TERM", "600", BIN, "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RAMPART_AUTH_KEY")
            .env_remove("RAMPART_CONFIG")
            .env("RAMPART_LOG", "info")
            .env("RAMPART_DATA_DIR", &data.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let (child, stderr, banner) = spawn_collecting(command, "streamable HTTP at http");
        let url = banner
            .split("streamable HTTP at ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("banner names the URL")
            .to_owned();
        let base = url.trim_end_matches("/mcp").to_owned();
        Self { child, data, base, url, stderr }
    }

    /// The process id (of the `timeout` wrapper, which forwards signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process id of `rampart serve` itself, under the `timeout` wrapper (which
    /// forwards only the first signal it gets), for signals the server keeps running
    /// after (SIGHUP).
    pub fn server_pid(&self) -> u32 {
        let pid = self.pid();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children.split_whitespace().next().and_then(|child| child.parse().ok()).expect("rampart runs under timeout")
    }

    /// `rampart serve --insecure-no-auth ARGS...`: no authentication at all.
    pub fn open(args: &[&str]) -> Self {
        Self::start(&[&["--insecure-no-auth"], args].concat())
    }

    /// The first-run admin token the server printed.
    pub fn admin_token(&self) -> String {
        assert!(self.stderr_eventually_contains("rpt_"), "no first-run token: {}", self.stderr());
        let stderr = self.stderr();
        let start = stderr.find("rpt_").unwrap();
        stderr[start..].split_whitespace().next().unwrap().to_owned()
    }

    /// A new API token `name` with `role` (roles from `config` when given), made with
    /// `rampart token create` against this server's store.
    pub fn token(&self, name: &str, role: &str, config: Option<&std::path::Path>) -> String {
        let mut args = vec!["token", "create", "--name", name, "--role", role];
        let config = config.map(|c| c.to_str().unwrap().to_owned());
        if let Some(config) = &config {
            args.extend(["--config", config.as_str()]);
        }
        let (code, stdout, stderr) = self.cli(&args);
        assert_eq!(code, 0, "{stderr}");
        stdout.trim().to_owned()
    }

    /// Runs a CLI command against this server's store.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let dir = self.data.0.to_str().unwrap().to_owned();
        run(args, &[("RAMPART_DATA_DIR", &dir)], None)
    }

    /// Runs `rampart ARGS` against this server's data until its stdout satisfies `seen`
    /// (10 s at most), and returns the last run's (exit code, stdout, stderr). Audit records
    /// are stored a few milliseconds after the call is answered (asynchronous commit), so a
    /// read right after a call may run ahead of the writer.
    pub fn cli_until(&self, args: &[&str], seen: impl Fn(&str) -> bool) -> (i32, String, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.cli(args);
            if seen(&output.1) || std::time::Instant::now() > deadline {
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and hands back its data directory.
    pub fn stop(mut self) -> TempDir {
        let _ = self.terminate(15);
        let data = std::mem::replace(&mut self.data, TempDir(std::path::PathBuf::new()));
        drop(self);
        data
    }

    /// Sends SIGTERM and waits up to `seconds` for the exit status.
    pub fn terminate(&mut self, seconds: u64) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        for _ in 0..seconds * 20 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (10 s at most) until stderr contains `needle`; returns whether it did.
    pub fn stderr_eventually_contains(&self, needle: &str) -> bool {
        for _ in 0..200 {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Health check: the server still answers.
    pub async fn assert_alive(&self) {
        let body: serde_json::Value =
            reqwest::get(format!("{}/healthz", self.base)).await.expect("server answers").json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` with stderr piped, collects stderr in the background, and waits (20 s
/// at most) for a line containing `marker`, which it returns.
pub fn spawn_collecting(mut command: Command, marker: &str) -> (Child, Arc<Mutex<String>>, String) {
    let mut child = command.spawn().expect("spawn rampart");
    let stderr = child.stderr.take().expect("stderr piped");
    let collected = Arc::new(Mutex::new(String::new()));
    let (found, wait) = mpsc::channel();
    let sink = collected.clone();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
            // Only now: whoever waits for the marker then finds it in `collected` too.
            if line.contains(&wanted) {
                let _ = found.send(line);
            }
        }
    });
    match wait.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => (child, collected, line),
        Err(_) => {
            let _ = child.kill();
            panic!("no '{marker}' on stderr within 20 s; stderr:\n{}", collected.lock().unwrap());
        }
    }
}

thread_local! {
    /// The data home of the commands one test runs (see [`run`]).
    static DATA_HOME: TempDir = TempDir::new("data-home");
}

/// Runs the binary to completion with `args`, returning (exit code, stdout, stderr).
///
/// `XDG_DATA_HOME` is a directory of the calling test's own (one per test thread, removed
/// when it ends), unless `env` says otherwise: a command given no `RAMPART_DATA_DIR` then
/// finds its default data directory there, not in the home directory of whoever runs the
/// tests, shared with every other test (its SQLite store, audit signing key and
/// checkpoints).
pub fn run(args: &[&str], env: &[(&str, &str)], cwd: Option<&std::path::Path>) -> (i32, String, String) {
    let mut command = Command::new("timeout");
    command
        .args(["60", BIN])
        .args(args)
        .env("XDG_DATA_HOME", DATA_HOME.with(|home| home.0.clone()))
        .env_remove("RAMPART_AUTH_KEY")
        .env_remove("RAMPART_URL")
        .env_remove("RAMPART_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command.output().expect("run rampart");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `env RAMPART_DATA_DIR=<dir> rampart serve --transport stdio`, for clients that spawn
/// the server themselves.
pub fn stdio_command(data: &TempDir) -> Vec<String> {
    vec![
        "env".into(),
        format!("RAMPART_DATA_DIR={}", data.0.display()),
        "timeout".into(),
        "120".into(),
        BIN.into(),
        "serve".into(),
        "--transport".into(),
        "stdio".into(),
    ]
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rampart-e2e-{}-{name}-{n}-{}", std::process::id(), uuid_like()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// `Accept` and `Content-Type` as streamable HTTP requires (MCP 2025-11-25 §Transports).
pub fn mcp_post(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client.post(url).header("content-type", "application/json").header("accept", "application/json, text/event-stream")
}

/// The JSON-RPC messages in a response body, whether JSON or SSE (`data:` lines).
pub fn messages(content_type: &str, body: &str) -> Vec<serde_json::Value> {
    if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .filter(|data| !data.is_empty())
            .filter_map(|data| serde_json::from_str(data).ok())
            .collect()
    } else {
        serde_json::from_str(body).map(|v| vec![v]).unwrap_or_default()
    }
}

/// An initialize request body.
pub fn initialize_body(id: u64, version: &str) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": { "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "e2e", "version": "0" } }
    })
}

/// Opens a session with raw HTTP: initialize + notifications/initialized. Returns the
/// session id.
pub async fn open_session(client: &reqwest::Client, url: &str) -> String {
    let response = mcp_post(client, url).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = response.text().await.unwrap();
    let response = mcp_post(client, url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    session
}

/// Posts `body` on `session` and returns (status, JSON-RPC messages).
pub async fn post_in_session(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Vec<serde_json::Value>) {
    post_in_session_as(client, url, session, None, body).await
}

/// Like [`post_in_session`], with a bearer token.
pub async fn post_in_session_with(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Vec<serde_json::Value>) {
    post_in_session_as(client, url, session, Some(token), body).await
}

async fn post_in_session_as(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Vec<serde_json::Value>) {
    let mut request =
        mcp_post(client, url).header("mcp-session-id", session).header("mcp-protocol-version", "2025-11-25").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.text().await.unwrap();
    (status, messages(&content_type, &body))
}

/// Opens a session with `token` and calls `tool`; returns the JSON-RPC response message.
pub async fn call_tool(server: &Server, token: &str, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
    let (status, answer) = call_tool_status(&server.url, token, tool, arguments).await;
    assert!(!answer.is_null(), "no answer to tools/call (HTTP {status})");
    answer
}

/// Opens a session at `url` with `token` and calls `tool`: the HTTP status (of the
/// initialize request when it is refused, e.g. 401) and the JSON-RPC response (`null`
/// when refused).
pub async fn call_tool_status(
    url: &str,
    token: &str,
    tool: &str,
    arguments: serde_json::Value,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let init = mcp_post(&client, url).bearer_auth(token).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    if init.status() != 200 {
        return (init.status().as_u16(), serde_json::Value::Null);
    }
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = init.text().await;
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": tool, "arguments": arguments } });
    let (status, messages) = post_in_session_with(&client, url, &session, token, body.to_string()).await;
    let answer = messages.into_iter().find(|m| m.get("id") == Some(&serde_json::json!(2)));
    (status, answer.unwrap_or(serde_json::Value::Null))
}

/// Polls `condition` every 20 ms without blocking the test's runtime (a call it waits
/// for may run on it) until it holds; panics naming `what` after 10 s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 10 s: {what}");
}

/// Whether third-party clients must be present (CI) rather than skipped.
/// Whether this machine lacks a sandbox layer the exec toolbox needs (`rampart sandbox
/// check`); if so, says loudly that `what` is skipped.
pub fn sandbox_missing(what: &str) -> bool {
    let check = Command::new(BIN).args(["sandbox", "check"]).output().unwrap();
    if check.status.success() {
        return false;
    }
    skip(what, "this machine lacks a sandbox layer (rampart sandbox check)");
    true
}

pub fn clients_required() -> bool {
    std::env::var("MCP_TEST_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// Says loudly that a test was skipped, or fails when clients are required.
pub fn skip(what: &str, why: &str) {
    assert!(!clients_required(), "{what} is required (MCP_TEST_REQUIRE_CLIENTS=1) but {why}");
    eprintln!("\n!!!!! SKIPPED: {what}: {why}. Run the README test command to install it. !!!!!\n");
}
