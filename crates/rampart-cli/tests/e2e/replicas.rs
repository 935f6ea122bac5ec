//! Three replicas on one PostgreSQL and one Redis behind HAProxy, configured by the
//! committed `deploy/haproxy.cfg` (round-robin, sessions kept on the replica that opened
//! them): load from several principals, stateless then in sessions, with one replica
//! killed (SIGKILL) mid-run. Zero failed calls but those in flight on the killed
//! replica (counted and printed); a per-principal quota holds across the replicas; a
//! revoked token is refused through every replica within 100 ms; afterwards the audit
//! log verifies and every acknowledged call has its record. The figures are printed for
//! docs/deploy.md. Needs `TEST_POSTGRES_URL`, `TEST_REDIS_URL` and `haproxy` (skipped
//! loudly without them, required under `TEST_REQUIRE_SERVICES=1`; .ci/run installs
//! haproxy).

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::security::postgres_database;
use crate::support::{Server, TempDir, call_tool_status, initialize_body, mcp_post, run};

/// How long each load phase runs.
const STATELESS: Duration = Duration::from_secs(8);
const SESSIONS: Duration = Duration::from_secs(12);
/// Concurrent clients per principal.
const WORKERS: usize = 4;
/// The quota of the `limited` principal on its tool, per minute.
const QUOTA: u64 = 30;

fn haproxy() -> Option<String> {
    let found = Command::new("sh").args(["-c", "command -v haproxy"]).output().ok()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    if path.is_empty() {
        assert!(
            std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "haproxy is required (TEST_REQUIRE_SERVICES=1); .ci/run installs it"
        );
        eprintln!("\n!!!!! SKIPPED: replicas test: haproxy is not installed !!!!!\n");
        return None;
    }
    Some(path)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// HAProxy with the committed configuration, its addresses from the environment, under
/// `timeout` (it stops by itself); stopped by PID when dropped: SIGTERM to `timeout`,
/// which passes it on (a SIGKILL would leave HAProxy running without it).
struct Balancer {
    child: Child,
    url: String,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn balancer(haproxy: &str, replicas: &[&Server]) -> Balancer {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy.cfg");
    let bind = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new("timeout");
    command
        .args(["300", haproxy, "-db", "-f"])
        .arg(&config)
        .env("RAMPART_LB_BIND", &bind)
        .env("RAMPART_LB_STATS_BIND", format!("127.0.0.1:{}", free_port()))
        // Every client of this test is 127.0.0.1: lift the per-IP limits.
        .env("RAMPART_LB_REQ_PER_IP_10S", "100000000")
        .env("RAMPART_LB_ERR_PER_IP_1M", "100000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (index, replica) in replicas.iter().enumerate() {
        command.env(format!("RAMPART_REPLICA_{}", index + 1), replica.base.trim_start_matches("http://"));
    }
    Balancer { child: command.spawn().expect("start haproxy"), url: format!("http://{bind}/mcp") }
}

/// What the clients saw, per principal.
#[derive(Default)]
struct Tally {
    limited: AtomicU64,
    /// Failed in flight: no answer, or the proxy's 502/503 for a request already sent.
    failed: AtomicU64,
    /// Sessions that had to be opened again (their replica died).
    reopened: AtomicU64,
    /// The JSON-RPC id of every call answered (each unique: its record carries it).
    acknowledged: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn answered(&self) -> u64 {
        self.acknowledged.lock().unwrap().len() as u64
    }
}

fn stateless_body(id: &str, tool: &str, arguments: &Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { "name": "replicas", "version": "0" },
        },
    }})
}

/// The `result` of a response body (JSON or one SSE event), or why not.
async fn result_of(response: reqwest::Response) -> Result<Value, String> {
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.text().await.map_err(|e| format!("body: {e}"))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {body}"));
    }
    crate::support::messages(&content_type, &body)
        .into_iter()
        .find_map(|message| message.get("result").cloned())
        .ok_or_else(|| format!("no result: {body}"))
}

fn count(tally: &Tally, id: &str, result: Result<Value, String>) {
    match result {
        Ok(result) if result["isError"] == false => tally.acknowledged.lock().unwrap().push(id.to_owned()),
        Ok(result) if result.to_string().contains("rate limited") => {
            tally.limited.fetch_add(1, Ordering::Relaxed);
        }
        Ok(other) => panic!("a tool error: {other}"),
        Err(_) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn stateless_worker(
    url: String,
    token: String,
    tool: &'static str,
    until: Instant,
    tally: Arc<Tally>,
    worker: String,
) {
    let client = reqwest::Client::new();
    let mut calls = 0;
    while Instant::now() < until {
        calls += 1;
        let id = format!("{worker}-stateless-{calls}");
        let body = stateless_body(&id, tool, &arguments(tool));
        let sent = mcp_post(&client, &url)
            .bearer_auth(&token)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .json(&body)
            .send()
            .await;
        let result = match sent {
            Ok(response) => result_of(response).await,
            Err(error) => Err(error.to_string()),
        };
        count(&tally, &id, result);
    }
}

fn arguments(tool: &str) -> Value {
    match tool {
        "convert_time" => json!({ "source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo" }),
        _ => json!({ "timezone": "UTC" }),
    }
}

/// Opens a session through the balancer; its id.
async fn open_session(client: &reqwest::Client, url: &str, token: &str) -> Option<String> {
    let init = mcp_post(client, url).bearer_auth(token).json(&initialize_body(1, "2025-11-25")).send().await.ok()?;
    let session = init.headers().get("mcp-session-id")?.to_str().ok()?.to_owned();
    let _ = init.text().await;
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let sent = mcp_post(client, url).bearer_auth(token).header("mcp-session-id", &session).json(&note).send().await;
    sent.ok().map(|_| session)
}

async fn session_worker(
    url: String,
    token: String,
    tool: &'static str,
    until: Instant,
    tally: Arc<Tally>,
    worker: String,
) {
    let client = reqwest::Client::new();
    let mut session = None;
    let mut calls = 0;
    while Instant::now() < until {
        let Some(current) = session.clone() else {
            session = open_session(&client, &url, &token).await;
            continue;
        };
        calls += 1;
        let id = format!("{worker}-session-{calls}");
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": { "name": tool, "arguments": arguments(tool) } });
        let sent = mcp_post(&client, &url)
            .bearer_auth(&token)
            .header("mcp-session-id", &current)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
            .await;
        match sent {
            // The session's replica is gone: another answers that it does not know the
            // session, before running anything. Open a new one, as MCP clients do.
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                tally.reopened.fetch_add(1, Ordering::Relaxed);
                session = None;
            }
            Ok(response) => {
                let result = result_of(response).await;
                if result.is_err() {
                    session = None;
                }
                count(&tally, &id, result);
            }
            Err(error) => {
                session = None;
                count(&tally, &id, Err(error.to_string()));
            }
        }
    }
}

/// Runs every principal's workers against the balancer until `length` has passed; with
/// `kill`, SIGKILLs that process `after` into the phase.
async fn phase(
    url: &str,
    tokens: &BTreeMap<&'static str, String>,
    sessions: bool,
    length: Duration,
    kill: Option<(u32, Duration)>,
    tallies: &BTreeMap<&'static str, Arc<Tally>>,
) {
    let until = Instant::now() + length;
    let mut workers = Vec::new();
    for (principal, token) in tokens {
        let tool = if *principal == "limited" { "convert_time" } else { "get_current_time" };
        for worker in 0..WORKERS {
            let (url, token, tally) = (url.to_owned(), token.clone(), tallies[principal].clone());
            let worker = format!("{principal}-{worker}");
            workers.push(if sessions {
                tokio::spawn(session_worker(url, token, tool, until, tally, worker))
            } else {
                tokio::spawn(stateless_worker(url, token, tool, until, tally, worker))
            });
        }
    }
    if let Some((pid, after)) = kill {
        tokio::time::sleep(after).await;
        let killed = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        assert!(killed.success(), "SIGKILL replica {pid}");
    }
    for worker in workers {
        worker.await.unwrap();
    }
}

/// How many records of answered tool calls each JSON-RPC id has, in the store at `url`.
fn records_per_request(url: &str) -> BTreeMap<String, u64> {
    let sql = "SELECT record::json->>'request_id', count(*) FROM audit_records \
               WHERE tool IN ('get_current_time', 'convert_time') AND record::json->>'outcome' = 'ok' GROUP BY 1";
    let output = Command::new("psql").args([url, "-At", "-F", "|", "-c", sql]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('|'))
        .map(|(id, count)| (id.to_owned(), count.parse().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_haproxy_lose_only_the_calls_in_flight_on_a_killed_one() {
    let Some(haproxy) = haproxy() else { return };
    let Some(redis) = std::env::var("TEST_REDIS_URL").ok().or_else(|| {
        assert!(std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"), "TEST_REDIS_URL is required");
        eprintln!("\n!!!!! SKIPPED: replicas test: TEST_REDIS_URL is not set !!!!!\n");
        None
    }) else {
        return;
    };
    let Some(database) = postgres_database("replicas") else { return };
    let dir = TempDir::new("replicas");
    let config = dir.0.join("rampart.toml");
    let namespace = format!("rampart-e2e-replicas-{}", std::process::id());
    std::fs::write(
        &config,
        format!(
            "[cluster]\nredis_url = \"{redis}\"\nnamespace = \"{namespace}\"\n\n\
             # Every acknowledged call's record is stored before its answer: a replica killed\n\
             # mid-run loses no acknowledged record.\n[audit]\nsynchronous = true\n\n\
             [limits]\ncalls_per_minute = 0\nfailed_auth_per_minute = 0\n\
             tools = {{ convert_time = {{ calls = {QUOTA}, period_secs = 60 }} }}\n"
        ),
    )
    .unwrap();
    let env = [("RAMPART_DATABASE_URL", database.as_str())];
    let args = ["--config", config.to_str().unwrap()];
    let replicas: Vec<Server> = (0..3).map(|_| Server::start_with_env(&args, &env)).collect();
    let balancer = balancer(&haproxy, &replicas.iter().collect::<Vec<_>>());
    let probe = reqwest::Client::new();
    let ready = format!("{}/readyz", balancer.url.trim_end_matches("/mcp"));
    let started = Instant::now();
    while probe.get(&ready).send().await.map(|r| r.status()).ok() != Some(reqwest::StatusCode::OK) {
        assert!(started.elapsed() < Duration::from_secs(20), "HAProxy did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token_env = [("RAMPART_DATABASE_URL", database.as_str()), ("RAMPART_CONFIG", config.to_str().unwrap())];
    let token = |name: &str, role: &str| {
        let (code, stdout, stderr) = run(&["token", "create", "--name", name, "--role", role], &token_env, None);
        assert_eq!(code, 0, "{stderr}");
        stdout.trim().to_owned()
    };
    let tokens: BTreeMap<&'static str, String> =
        ["alice", "bob", "carol", "limited"].into_iter().map(|name| (name, token(name, "reader"))).collect();
    let tallies: BTreeMap<&'static str, Arc<Tally>> = tokens.keys().map(|name| (*name, Arc::default())).collect();

    // Stateless (2026-07-28) requests, then sessions; the third replica dies 3 s into them.
    phase(&balancer.url, &tokens, false, STATELESS, None, &tallies).await;
    let victim = replicas[2].server_pid();
    phase(&balancer.url, &tokens, true, SESSIONS, Some((victim, Duration::from_secs(3))), &tallies).await;

    let mut figures = Vec::new();
    let (mut failed_in_all, mut reopened_in_all) = (0, 0);
    for (principal, tally) in &tallies {
        let (answered, limited, failed, reopened) = (
            tally.answered(),
            tally.limited.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            tally.reopened.load(Ordering::Relaxed),
        );
        failed_in_all += failed;
        reopened_in_all += reopened;
        figures.push(format!("{principal}: {answered} answered, {limited} rate-limited, {failed} failed in flight, {reopened} sessions reopened"));
    }
    eprintln!("replicas: {}", figures.join("; "));
    // Only calls in flight on the killed replica may fail: at most one per client.
    let clients = (tokens.len() * WORKERS) as u64;
    assert!(failed_in_all <= clients, "{failed_in_all} failed calls for {clients} clients: {figures:?}");
    // Sessions stay on their replica (the balancer learns each session's replica from
    // the answer to `initialize`): only those of the killed replica are opened again.
    assert!(reopened_in_all <= clients, "{reopened_in_all} sessions reopened for {clients} clients: {figures:?}");
    // The quota holds across the replicas: 30 a minute, over 20 s of load: the burst of
    // 30, then one each 2 s.
    let limited = &tallies["limited"];
    let admitted = limited.answered();
    let window = (STATELESS + SESSIONS).as_secs() * QUOTA / 60;
    assert!(admitted <= QUOTA + window + 1, "{admitted} admitted with {QUOTA} a minute across 3 replicas");
    assert!(limited.limited.load(Ordering::Relaxed) > 0);

    // A token revoked through the balancer is refused through every replica left within
    // 100 ms.
    let admin = token("ops", "admin");
    let doomed = token("doomed", "reader");
    for _ in 0..6 {
        assert_eq!(call_tool_status(&balancer.url, &doomed, "system_health", json!({})).await.0, 200);
    }
    let (status, revoked) =
        call_tool_status(&balancer.url, &admin, "admin_token_revoke", json!({"id": "doomed"})).await;
    assert_eq!(status, 200, "{revoked}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..6 {
        assert_eq!(call_tool_status(&balancer.url, &doomed, "system_health", json!({})).await.0, 401);
    }

    // Every acknowledged call has its record (a call that failed in flight may have one
    // too: it ran, and its answer was lost with the replica).
    drop(balancer);
    let mut replicas = replicas;
    let first = replicas.remove(0).stop();
    drop(replicas);
    // Exactly one record per answered call, found by its unique id; besides, at most the
    // calls that failed in flight (ran, answer lost), and none recorded twice.
    let recorded = records_per_request(&database);
    let mut acknowledged = std::collections::BTreeSet::new();
    for tally in tallies.values() {
        acknowledged.extend(tally.acknowledged.lock().unwrap().iter().cloned());
    }
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !recorded.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} answered calls without a record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<(&String, &u64)> = recorded.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let unanswered = recorded.keys().filter(|id| !acknowledged.contains(*id)).count() as u64;
    assert!(
        unanswered <= failed_in_all,
        "{unanswered} records of calls not answered, {failed_in_all} failed in flight"
    );
    eprintln!(
        "replicas: {} answered calls, each recorded exactly once; {unanswered} records of calls lost in flight",
        acknowledged.len()
    );
    let data = first.0.to_str().unwrap().to_owned();
    let verify_env = [("RAMPART_DATABASE_URL", database.as_str()), ("RAMPART_DATA_DIR", data.as_str())];
    let (code, report, stderr) = run(&["audit", "verify", "--json"], &verify_env, None);
    assert_eq!(code, 0, "{report}{stderr}");
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    // Each replica wrote a hash chain of its own (the command line, the default one).
    let chains = report["chains"].as_array().unwrap_or_else(|| panic!("{report}"));
    let replica_chains = chains.iter().filter(|chain| chain["chain"] != "").count();
    assert_eq!(replica_chains, 3, "{report}");
    eprintln!("replicas: audit log of {} records in {} chains verifies", report["records"], chains.len());

    // The first replica's checkpoints name its chain: deleting that chain whole is caught.
    let checkpoints = std::fs::read_to_string(first.0.join("audit-checkpoints.jsonl")).unwrap();
    let last: Value = serde_json::from_str(checkpoints.lines().last().unwrap()).unwrap();
    let chain = last["chain"].as_str().unwrap_or_else(|| panic!("a replica's checkpoint names its chain: {last}"));
    crate::security::psql(&database, &format!("DELETE FROM audit_records WHERE chain = '{chain}'"));
    let (code, report, _) = run(&["audit", "verify", "--json"], &verify_env, None);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(chain), "the report names the chain: {report}");
}
