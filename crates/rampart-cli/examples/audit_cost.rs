//! What one audit record costs the server, in CPU: events shaped like the benchmark's
//! `tools/call` records go through the real [`AuditLog`] (asynchronous commit, group commit)
//! into the real store sink (SQLite in a temporary directory, or `RAMPART_DATABASE_URL`),
//! at a paced rate so that batches have the size they have under load.
//!
//! ```sh
//! cargo run --release -p rampart-cli --example audit_cost -- [RECORDS] [RATE_PER_S]
//! ```
//!
//! Prints `audit_cpu_us_per_record=X`: the process's CPU time (user + system, every
//! thread: the enqueueing task, the writer task, the SQLite worker thread) divided by the
//! number of records, measured after a warm-up. Run it a few times; on an idle machine it
//! varies by a few per cent, far less than end-to-end calls per second.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use rampart_audit::{AuditEvent, AuditLog, Decision, FailurePolicy, Outcome, Redactor};
use rampart_server::StoreSink;
use rampart_store::Store;

// As in the server binary: the allocator changes the figure.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (fields 14 and 15 of stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn event(redactor: &Redactor, session: &str, i: u64) -> AuditEvent {
    AuditEvent {
        time: Timestamp::now(),
        request_id: None,
        session: Some(session.to_owned()),
        principal: "token:bench".into(),
        transport: "streamable_http".into(),
        remote_addr: Some(format!("127.0.0.1:{}", 40000 + i % 8)),
        method: "tools/call".into(),
        tool: Some("get_current_time".into()),
        toolbox: None,
        task: None,
        trace_id: None,
        arguments: serde_json::json!({"timezone": "UTC"}),
        decision: Decision::Allow,
        outcome: Outcome::Ok,
        detail: None,
        duration_us: 40 + i % 17,
    }
    .redacted(redactor)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(Ok(200_000), |a| a.parse())?;
    let rate: u64 = args.next().map_or(Ok(15_000), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("rampart-audit-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = std::env::var("RAMPART_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.join("rampart.db").display()));
    let store = Store::open(&url)?;
    store.ready().await?;
    let log = Arc::new(AuditLog::start(Arc::new(StoreSink::new(store)), 4096, FailurePolicy::FailClosed).await?);
    let redactor = Redactor::new(Vec::<String>::new());
    let session = format!("{:032x}", std::process::id());

    // Paced in ticks of 1 ms: `rate / 1000` records each.
    let per_tick = (rate / 1000).max(1);
    let warm_up = records / 10;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let (mut start_cpu, mut start_wall) = (0.0, std::time::Instant::now());
    let mut sent = 0;
    while sent < warm_up + records {
        tick.tick().await;
        for _ in 0..per_tick {
            if sent == warm_up {
                log.drain(Duration::from_secs(5)).await?;
                start_cpu = cpu_seconds();
                start_wall = std::time::Instant::now();
            }
            log.record(event(&redactor, &session, sent)).await?;
            sent += 1;
        }
    }
    log.drain(Duration::from_secs(5)).await?;
    let cpu = cpu_seconds() - start_cpu;
    let wall = start_wall.elapsed().as_secs_f64();
    // The pacing loop itself (a timer tick per ms) is part of the figure; it is small.
    println!("records={records} rate_per_s={:.0} wall_s={wall:.2}", records as f64 / wall);
    println!("audit_cpu_us_per_record={:.2}", cpu * 1e6 / records as f64);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
