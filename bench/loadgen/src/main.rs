//! Closed-loop MCP load client for bench/calls_per_second.py.
//!
//! C workers, each with ONE HTTP/1.1 keep-alive connection and ONE MCP session:
//! initialize -> notifications/initialized -> tools/call get_current_time in a loop, then
//! DELETE of the session.
//! All sessions are set up before the clock starts; then `warmup` seconds are run but not
//! counted, then `duration` seconds are measured. Every response is validated; a worker
//! stops at its first error. Prints one JSON summary line on stdout.
//!
//! rampart-bench-load --url http://127.0.0.1:PORT/mcp [--concurrency 8] [--warmup 2]
//!                    [--duration 10] [--threads 1]
//! Bearer token: env MCP_BENCH_TOKEN (kept off the command line).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const PROTOCOL: &str = "2025-11-25";

struct Opts {
    url: String,
    authority: String,
    path: String,
    concurrency: usize,
    warmup: f64,
    duration: f64,
    threads: usize,
    token: Option<String>,
}

fn parse_args() -> Result<Opts, String> {
    let mut url = None;
    let (mut concurrency, mut warmup, mut duration, mut threads) = (8usize, 2.0f64, 10.0f64, 1usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => url = Some(val()?),
            "--concurrency" => concurrency = val()?.parse().map_err(|e| format!("--concurrency: {e}"))?,
            "--warmup" => warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--duration" => duration = val()?.parse().map_err(|e| format!("--duration: {e}"))?,
            "--threads" => threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    };
    if !(1..=1024).contains(&concurrency) || !(1..=64).contains(&threads) {
        return Err("--concurrency must be 1..=1024 and --threads 1..=64".into());
    }
    if !(duration > 0.0 && duration <= 600.0 && (0.0..=60.0).contains(&warmup)) {
        return Err("--duration must be in (0, 600] and --warmup in [0, 60]".into());
    }
    let token = std::env::var("MCP_BENCH_TOKEN").ok().filter(|t| !t.is_empty());
    Ok(Opts { url, authority, path, concurrency, warmup, duration, threads, token })
}

struct Conn {
    tx: SendRequest<Full<Bytes>>,
    session: Option<String>,
    next_id: u64,
}

type Res<T> = Result<T, String>;

impl Conn {
    async fn open(o: &Opts) -> Res<Conn> {
        let stream = TcpStream::connect(&o.authority).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx, session: None, next_id: 0 })
    }

    async fn post(&mut self, o: &Opts, body: &Value) -> Res<(StatusCode, Option<String>, bool, Bytes)> {
        let mut req = Request::post(&o.path)
            .header("host", &o.authority)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(t) = &o.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?)))
            .map_err(|e| e.to_string())?;
        self.tx.ready().await.map_err(|e| format!("connection: {e}"))?;
        let resp = self.tx.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let h = resp.headers();
        let session = h.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let sse = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let closes = h.get("connection").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let body = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        if closes {
            return Err(format!("server closed the keep-alive connection (HTTP {status})"));
        }
        Ok((status, session, sse, body))
    }

    async fn request(&mut self, o: &Opts, method: &str, params: Value) -> Res<(Option<String>, Value)> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (status, session, sse, body) = self.post(o, &msg).await?;
        if status != StatusCode::OK {
            return Err(format!("{method}: HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
        }
        let mut found = None;
        let mut check = |v: Value| {
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                found = Some(v);
            }
        };
        if sse {
            for line in body.split(|&b| b == b'\n') {
                if let Some(p) = line.strip_prefix(b"data:") {
                    let p = p.trim_ascii();
                    if !p.is_empty() {
                        check(serde_json::from_slice(p).map_err(|e| format!("{method}: bad JSON: {e}"))?);
                    }
                }
            }
        } else {
            check(serde_json::from_slice(&body).map_err(|e| format!("{method}: bad JSON: {e}"))?);
        }
        let mut m = found.ok_or_else(|| format!("{method}: no response with id {id}"))?;
        match m.get_mut("result") {
            Some(r) => Ok((session, r.take())),
            None => Err(format!("{method}: JSON-RPC error {}", m.get("error").unwrap_or(&Value::Null))),
        }
    }

    async fn handshake(&mut self, o: &Opts) -> Res<()> {
        let params = json!({"protocolVersion": PROTOCOL, "capabilities": {},
                            "clientInfo": {"name": "rampart-bench-load", "version": "0"}});
        let (session, _) = self.request(o, "initialize", params).await?;
        self.session = session;
        let (status, _, _, body) = self.post(o, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
        if status != StatusCode::ACCEPTED && status != StatusCode::OK {
            return Err(format!("notifications/initialized: HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(())
    }

    /// Ends the session as a polite client does (DELETE), so that a long run of short
    /// sessions (bench/soak.py) does not pile up sessions waiting for their idle timeout.
    async fn close(&mut self, o: &Opts) -> Res<()> {
        let Some(session) = self.session.take() else { return Ok(()) };
        let mut req = Request::delete(&o.path).header("host", &o.authority).header("mcp-session-id", session);
        if let Some(t) = &o.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
        self.tx.ready().await.map_err(|e| format!("connection: {e}"))?;
        let resp = self.tx.send_request(req).await.map_err(|e| format!("DELETE: {e}"))?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if status.is_success() { Ok(()) } else { Err(format!("DELETE: HTTP {status}")) }
    }

    async fn call(&mut self, o: &Opts) -> Res<()> {
        let (_, r) = self
            .request(o, "tools/call", json!({"name": "get_current_time", "arguments": {"timezone": "UTC"}}))
            .await?;
        let ok = r.get("isError") == Some(&Value::Bool(false))
            && r.pointer("/structuredContent/timezone").and_then(Value::as_str) == Some("UTC");
        if ok { Ok(()) } else { Err(format!("tool error: {r}")) }
    }
}

struct WorkerResult {
    calls: u64,
    /// Every call answered, in the measured window or not (warm-up, the last one).
    answered: u64,
    lat_us: Vec<u32>,
    error: Option<String>,
}

async fn worker(o: &'static Opts, mut c: Conn, start: Instant, end: Instant) -> WorkerResult {
    let mut r = WorkerResult { calls: 0, answered: 0, lat_us: Vec::with_capacity(1 << 16), error: None };
    loop {
        let s = Instant::now();
        if s >= end {
            if let Err(e) = c.close(o).await {
                r.error = Some(e);
            }
            return r;
        }
        if let Err(e) = c.call(o).await {
            r.error = Some(e);
            return r;
        }
        r.answered += 1;
        let e = Instant::now();
        if s >= start && e <= end {
            r.calls += 1;
            r.lat_us.push((e - s).as_micros().min(u32::MAX as u128) as u32);
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k] as f64 / 1000.0
}

async fn run(o: &'static Opts) -> Value {
    // Phase 1: connections and sessions, before the clock starts.
    let mut conns = Vec::with_capacity(o.concurrency);
    for _ in 0..o.concurrency {
        let mut c = match Conn::open(o).await {
            Ok(c) => c,
            Err(e) => return json!({"errors": 1, "calls": 0, "first_error": e}),
        };
        if let Err(e) = c.handshake(o).await {
            return json!({"errors": 1, "calls": 0, "first_error": e});
        }
        conns.push(c);
    }
    // Phase 2: closed loop.
    let t0 = Instant::now();
    let start = t0 + Duration::from_secs_f64(o.warmup);
    let end = start + Duration::from_secs_f64(o.duration);
    let handles: Vec<_> = conns.into_iter().map(|c| tokio::spawn(worker(o, c, start, end))).collect();
    let (mut calls, mut answered, mut errors, mut first_error, mut lat) = (0u64, 0u64, 0u64, None, Vec::new());
    for h in handles {
        match tokio::time::timeout_at((end + Duration::from_secs(30)).into(), h).await {
            Ok(Ok(r)) => {
                calls += r.calls;
                answered += r.answered;
                lat.extend_from_slice(&r.lat_us);
                if let Some(e) = r.error {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(format!("worker panicked: {e}"));
            }
            Err(_) => {
                errors += 1;
                first_error.get_or_insert("worker did not finish 30 s after the end".to_string());
            }
        }
    }
    lat.sort_unstable();
    json!({
        "url": o.url, "concurrency": o.concurrency, "threads": o.threads,
        "calls": calls, "answered": answered, "errors": errors, "first_error": first_error,
        "duration_s": o.duration, "calls_per_second": calls as f64 / o.duration,
        "p50_ms": pct(&lat, 50.0), "p90_ms": pct(&lat, 90.0), "p99_ms": pct(&lat, 99.0),
        "max_ms": lat.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
    })
}

fn main() {
    let o: &'static Opts = match parse_args() {
        Ok(o) => Box::leak(Box::new(o)),
        Err(e) => {
            eprintln!("rampart-bench-load: {e}");
            std::process::exit(2);
        }
    };
    let rt = if o.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(o.threads).enable_all().build()
    }
    .expect("tokio runtime");
    let summary = rt.block_on(run(o));
    let failed = summary["errors"].as_u64() != Some(0);
    println!("{summary}");
    std::process::exit(if failed { 1 } else { 0 });
}
