//! Store tests against real databases: an SQLite file, and the PostgreSQL server named by
//! `TEST_POSTGRES_URL` (each test in a database of its own). Without that variable the
//! PostgreSQL half says loudly that it was skipped; with `TEST_REQUIRE_SERVICES=1` (CI)
//! it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn row(name: &str, digest: &str) -> TokenRow {
    TokenRow {
        id: format!("tok_{name}"),
        name: name.into(),
        digest: digest.into(),
        display_prefix: "rpt_abcd".into(),
        roles: vec!["reader".into()],
        created_at: 1_000,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

fn sqlite_store(name: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("rampart-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&Store::sqlite_url(&dir.join("nested"))).unwrap(), dir)
}

/// A fresh PostgreSQL database for one test, or `None` (skipped loudly).
async fn postgres_store(name: &str) -> Option<Store> {
    Some(Store::open(&postgres_url(name).await?).unwrap())
}

/// The URL of a fresh, empty PostgreSQL database for one test, or `None` (skipped loudly).
async fn postgres_url(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "TEST_POSTGRES_URL is required (TEST_REQUIRE_SERVICES=1)"
        );
        eprintln!("\n!!!!! SKIPPED: PostgreSQL half of {name}: TEST_POSTGRES_URL is not set !!!!!\n");
        return None;
    };
    install_default_drivers();
    let admin = AnyPoolOptions::new().max_connections(1).connect(&base).await.unwrap();
    let database = format!("rampart_test_{}_{name}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database}"))).execute(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&admin).await.unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{database}"))
}

async fn token_lifecycle(store: &Store) {
    store.insert_token(&row("ci", "d1")).await.unwrap();
    store.insert_token(&row("ops", "d2")).await.unwrap();
    let duplicate = store.insert_token(&row("ci", "d3")).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::Conflict(ref m) if m.contains("'ci'")), "{duplicate}");
    assert_eq!(store.token_by_digest("d1").await.unwrap().unwrap().name, "ci");
    assert!(store.token_by_digest("nope").await.unwrap().is_none());
    assert_eq!(store.token("tok_ops").await.unwrap().unwrap().digest, "d2");
    assert_eq!(store.token("ops").await.unwrap().unwrap().id, "tok_ops");
    assert_eq!(store.tokens().await.unwrap().len(), 2);
    assert_eq!(store.count_active_tokens(2_000).await.unwrap(), 2);
    assert!(store.revoke_token("tok_ci", 5_000).await.unwrap());
    assert!(!store.revoke_token("tok_ci", 6_000).await.unwrap(), "revoking twice is a no-op");
    assert_eq!(store.token("ci").await.unwrap().unwrap().revoked_at, Some(5_000));
    assert_eq!(store.count_active_tokens(7_000).await.unwrap(), 1);
    assert!(store.rotate_token("tok_ops", "d4", "rpt_wxyz").await.unwrap());
    assert!(store.token_by_digest("d2").await.unwrap().is_none(), "the old secret is gone");
    assert_eq!(store.token_by_digest("d4").await.unwrap().unwrap().name, "ops");
    assert!(!store.rotate_token("tok_ci", "d5", "x").await.unwrap(), "a revoked token cannot be rotated");
    store.touch_token("tok_ops", 9_000).await.unwrap();
    assert_eq!(store.token("ops").await.unwrap().unwrap().last_used_at, Some(9_000));
}

async fn audit_rows(store: &Store) {
    assert!(store.last_audit("").await.unwrap().is_none());
    for seq in 1..=5 {
        let audit = AuditRow {
            chain: String::new(),
            seq,
            time_ms: 1_000 * seq,
            principal: if seq % 2 == 0 { "token:ci".into() } else { "local".into() },
            tool: Some(if seq == 3 { "write_file".into() } else { "get_current_time".into() }),
            decision: "allow".into(),
            outcome: "ok".into(),
            record: format!("{{\"seq\":{seq}}}"),
        };
        store.append_audit(&audit).await.unwrap();
    }
    let again = AuditRow { seq: 5, ..store.last_audit("").await.unwrap().unwrap() };
    assert!(matches!(store.append_audit(&again).await.unwrap_err(), StoreError::Conflict(_)));
    assert_eq!(store.last_audit("").await.unwrap().unwrap().seq, 5);
    let seqs = |rows: Vec<AuditRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
    let all = AuditQuery { limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&all).await.unwrap()), [1, 2, 3, 4, 5]);
    let by_principal = AuditQuery { principal: Some("token:ci".into()), limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&by_principal).await.unwrap()), [2, 4]);
    let by_tool = AuditQuery { tool: Some("write_file".into()), limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&by_tool).await.unwrap()), [3]);
    let since = AuditQuery { since_ms: Some(4_000), limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&since).await.unwrap()), [4, 5]);
    let tail = AuditQuery { limit: 2, newest_first: true, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&tail).await.unwrap()), [5, 4]);
    let after = AuditQuery { after_seq: Some(3), limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&after).await.unwrap()), [4, 5]);

    let template = store.last_audit("").await.unwrap().unwrap();
    let batch: Vec<AuditRow> = (6..=7).map(|seq| AuditRow { seq, ..template.clone() }).collect();
    store.append_audit_batch(batch.clone()).await.unwrap();
    assert_eq!(store.last_audit("").await.unwrap().unwrap(), batch[1], "every column where it belongs");
    let clash: Vec<AuditRow> = (7..=8).map(|seq| AuditRow { seq, ..template.clone() }).collect();
    assert!(matches!(store.append_audit_batch(clash).await.unwrap_err(), StoreError::Conflict(_)));
    assert_eq!(store.last_audit("").await.unwrap().unwrap().seq, 7, "a failed batch stores nothing");
    let combined =
        AuditQuery { principal: Some("local".into()), since_ms: Some(2_000), limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&combined).await.unwrap()), [3, 5, 6, 7]);

    // Every batch size the writer can send, and beyond: SQLite pads each INSERT to a power
    // of two rows with NULLs that must not be stored; above 512 rows it takes several
    // statements, still all or none.
    let mut next = 8;
    for size in [1, 2, 3, 5, 127, 128, 129, 256, 511, 512, 513, 1_100] {
        let batch: Vec<AuditRow> = (next..next + size)
            .map(|seq| AuditRow { seq, time_ms: seq, record: format!("r{seq}"), ..template.clone() })
            .collect();
        store.append_audit_batch(batch).await.unwrap();
        next += size;
        let last = store.last_audit("").await.unwrap().unwrap();
        assert_eq!((last.seq, last.record.as_str()), (next - 1, format!("r{}", next - 1).as_str()), "batch of {size}");
    }
    let everything = AuditQuery { limit: 100_000, ..Default::default() };
    let stored = seqs(store.audit_records(&everything).await.unwrap());
    assert_eq!(stored, (1..next).collect::<Vec<_>>(), "contiguous, no padding row stored");
    // The batches' times (time_ms = seq) went back from record 7's: `since` still finds
    // exactly the records at or after the time, wherever they are in the chain.
    let since = AuditQuery { since_ms: Some(4_000), limit: 100, ..Default::default() };
    assert_eq!(seqs(store.audit_records(&since).await.unwrap()), [4, 5, 6, 7]);
    let since = AuditQuery { since_ms: Some(3_000), limit: 100, newest_first: true, ..Default::default() };
    let expected: Vec<i64> = (3_000..next).rev().chain([7, 6, 5, 4, 3]).collect();
    assert_eq!(seqs(store.audit_records(&since).await.unwrap()), expected[..100]);
    let straddling: Vec<AuditRow> = (next - 1..next + 599).map(|seq| AuditRow { seq, ..template.clone() }).collect();
    assert!(matches!(store.append_audit_batch(straddling).await.unwrap_err(), StoreError::Conflict(_)));
    let clash_at_end: Vec<AuditRow> = (next..next + 600)
        .map(|seq| AuditRow { seq: if seq == next + 599 { 1 } else { seq }, ..template.clone() })
        .collect();
    assert!(matches!(store.append_audit_batch(clash_at_end).await.unwrap_err(), StoreError::Conflict(_)));
    assert_eq!(store.last_audit("").await.unwrap().unwrap().seq, next - 1, "a failed large batch stores nothing");
}

/// A store made by the first schema (migration 1 only, its audit table with the
/// `method`, `outcome` and `hash` columns) is upgraded on first use with nothing lost, and
/// the chain goes on from its last record.
async fn upgrade_from_first_schema(url: &str, backend: Backend) {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap();
    let mut connection = pool.acquire().await.unwrap();
    backend.migrator().run_direct(Some(1), &mut *connection, false).await.unwrap();
    for seq in 1..=2_i64 {
        sqlx::query(
            "INSERT INTO audit_records (seq, time_ms, principal, method, tool, outcome, record, hash) \
             VALUES ($1, $2, 'local', 'tools/call', 'fs_read', 'ok', $3, $4)",
        )
        .bind(seq)
        .bind(seq * 1_000)
        .bind(format!("r{seq}"))
        .bind(format!("h{seq}"))
        .execute(&mut *connection)
        .await
        .unwrap();
    }
    drop(connection);
    pool.close().await;

    let store = Store::open(url).unwrap();
    let stored = |seq: i64| AuditRow {
        chain: String::new(),
        seq,
        time_ms: seq * 1_000,
        principal: "local".into(),
        tool: Some("fs_read".into()),
        // Not JSON: the upgrade to the decision and outcome columns leaves them empty.
        decision: String::new(),
        outcome: String::new(),
        record: format!("r{seq}"),
    };
    let all = AuditQuery { limit: 10, ..Default::default() };
    assert_eq!(store.audit_records(&all).await.unwrap(), [stored(1), stored(2)]);
    store.append_audit(&stored(3)).await.unwrap();
    assert!(matches!(store.append_audit(&stored(2)).await.unwrap_err(), StoreError::Conflict(_)));
    let by_principal =
        AuditQuery { principal: Some("local".into()), limit: 10, newest_first: true, ..Default::default() };
    assert_eq!(store.audit_records(&by_principal).await.unwrap(), [stored(3), stored(2), stored(1)]);
    store.close().await;
}

#[tokio::test]
async fn sqlite_upgrade_from_first_schema() {
    let (_, dir) = sqlite_store("upgrade");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    upgrade_from_first_schema(&format!("{}?mode=rwc", Store::sqlite_url(&dir.join("nested"))), Backend::Sqlite).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_upgrade_from_first_schema() {
    let Some(url) = postgres_url("upgrade").await else { return };
    upgrade_from_first_schema(&url, Backend::Postgres).await;
}

/// Ten records of one chain for the search filters (`time_ms` 1000 × seq, but record 6's
/// clock went back to 2500): (seq, principal, tool, decision, outcome, time_ms).
const SEARCHED: [(i64, &str, &str, &str, &str, i64); 10] = [
    (1, "a", "t1", "allow", "ok", 1_000),
    (2, "b", "t1", "allow", "ok", 2_000),
    (3, "a", "t2", "deny", "denied", 3_000),
    (4, "b", "t2", "allow", "tool_error", 4_000),
    (5, "a", "t1", "allow", "ok", 5_000),
    (6, "b", "t1", "deny", "denied", 2_500),
    (7, "a", "t2", "allow", "ok", 7_000),
    (8, "b", "t1", "deny", "refused", 8_000),
    (9, "a", "t1", "allow", "ok", 9_000),
    (10, "a", "t2", "allow", "tool_error", 10_000),
];

/// The search filters the console's Audit page adds (decision, outcome, until) and
/// keyset pagination, alone and combined, in chain order and by time.
async fn audit_search_filters(store: &Store) {
    let rows: Vec<AuditRow> = SEARCHED
        .iter()
        .map(|&(seq, principal, tool, decision, outcome, time_ms)| AuditRow {
            chain: String::new(),
            seq,
            time_ms,
            principal: principal.into(),
            tool: Some(tool.into()),
            decision: decision.into(),
            outcome: outcome.into(),
            record: format!("r{seq}"),
        })
        .collect();
    store.append_audit_batch(rows.clone()).await.unwrap();
    let search = |query: AuditQuery| {
        let store = store.clone();
        async move {
            let query = AuditQuery { limit: if query.limit == 0 { 100 } else { query.limit }, ..query };
            store.audit_records(&query).await.unwrap().iter().map(|row| row.seq).collect::<Vec<_>>()
        }
    };
    let text = |value: &str| Some(value.to_owned());
    let cases: Vec<(AuditQuery, Vec<i64>)> = vec![
        (AuditQuery { decision: text("deny"), ..Default::default() }, vec![3, 6, 8]),
        (AuditQuery { outcome: text("denied"), ..Default::default() }, vec![3, 6]),
        (AuditQuery { decision: text("deny"), outcome: text("refused"), ..Default::default() }, vec![8]),
        (AuditQuery { principal: text("a"), decision: text("allow"), ..Default::default() }, vec![1, 5, 7, 9, 10]),
        (AuditQuery { tool: text("t2"), outcome: text("tool_error"), ..Default::default() }, vec![4, 10]),
        (AuditQuery { decision: text("maybe"), ..Default::default() }, vec![]),
        // Record 6 (time 2500) is at or before 3000 although it comes after record 5.
        (AuditQuery { until_ms: Some(3_000), ..Default::default() }, vec![1, 2, 3, 6]),
        (AuditQuery { since_ms: Some(2_500), until_ms: Some(5_000), ..Default::default() }, vec![3, 4, 5, 6]),
        (AuditQuery { until_ms: Some(999), ..Default::default() }, vec![]),
        (
            AuditQuery { decision: text("deny"), until_ms: Some(3_000), newest_first: true, ..Default::default() },
            vec![6, 3],
        ),
        (AuditQuery { newest_first: true, limit: 3, ..Default::default() }, vec![10, 9, 8]),
        (AuditQuery { newest_first: true, limit: 3, before: Some(rows[7].key()), ..Default::default() }, vec![7, 6, 5]),
        (AuditQuery { by_time: true, newest_first: true, limit: 4, ..Default::default() }, vec![10, 9, 8, 7]),
        (
            AuditQuery {
                by_time: true,
                newest_first: true,
                limit: 4,
                before: Some(rows[6].key()),
                ..Default::default()
            },
            vec![5, 4, 3, 6],
        ),
        (
            AuditQuery {
                by_time: true,
                newest_first: true,
                principal: text("b"),
                before: Some(rows[3].key()),
                ..Default::default()
            },
            vec![6, 2],
        ),
    ];
    for (query, expected) in cases {
        let described = format!("{query:?}");
        assert_eq!(search(query).await, expected, "{described}");
    }

    // Page after page, each from the last record of the one before, in both orders: every
    // record once.
    for by_time in [false, true] {
        for decision in [None, text("allow")] {
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let query = AuditQuery {
                    by_time,
                    newest_first: true,
                    limit: 3,
                    decision: decision.clone(),
                    before: before.take(),
                    ..Default::default()
                };
                let page = store.audit_records(&query).await.unwrap();
                let Some(last) = page.last() else { break };
                before = Some(last.key());
                seen.extend(page.iter().map(|row| row.seq));
            }
            let mut expected: Vec<(i64, i64)> = SEARCHED
                .iter()
                .filter(|r| decision.as_deref().is_none_or(|d| d == r.3))
                .map(|r| (if by_time { r.5 } else { r.0 }, r.0))
                .collect();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            let expected: Vec<i64> = expected.into_iter().map(|(_, seq)| seq).collect();
            assert_eq!(seen, expected, "by_time {by_time}, decision {decision:?}");
        }
    }

    assert_eq!(store.audit_record("", 6).await.unwrap().as_ref(), Some(&rows[5]), "every column where it belongs");
    assert!(store.audit_record("", 11).await.unwrap().is_none());
    assert!(store.audit_record("other", 6).await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_audit_search_filters() {
    let (store, dir) = sqlite_store("filters");
    audit_search_filters(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_audit_search_filters() {
    let Some(store) = postgres_store("filters").await else { return };
    audit_search_filters(&store).await;
}

/// A record as the server stores it (keys sorted), whose arguments hold keys named like the
/// record's own.
fn stored_record(seq: i64, decision: &str, outcome: &str) -> String {
    format!(
        "{{\"arguments\":{{\"decision\":\"deny\",\"nested\":{{\"outcome\":\"error\"}}}},\"decision\":\"{decision}\",\
         \"detail\":\"said \\\"decision\\\":\\\"deny\\\"\",\"duration_us\":5,\"hash\":\"h{seq}\",\
         \"method\":\"tools/call\",\"outcome\":\"{outcome}\",\"prev_hash\":\"p\",\"principal\":\"local\",\
         \"remote_addr\":null,\"request_id\":null,\"seq\":{seq},\"session\":null,\
         \"time\":\"2025-06-01T12:00:00.000Z\",\"tool\":\"fs_read\",\"transport\":\"stdio\"}}"
    )
}

/// A store whose records predate the decision and outcome columns gets them from each
/// record on upgrade (a record that is not JSON: empty), and searches find them.
async fn upgrade_to_decision_columns(url: &str, backend: Backend) {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap();
    let mut connection = pool.acquire().await.unwrap();
    backend.migrator().run_direct(Some(4), &mut *connection, false).await.unwrap();
    let records = [stored_record(1, "allow", "ok"), stored_record(2, "deny", "denied"), "not json".to_owned()];
    for record in &records[..2] {
        let parsed: serde_json::Value = serde_json::from_str(record).unwrap();
        assert_eq!(parsed["arguments"]["decision"], "deny", "a key the upgrade must not take for the record's");
    }
    for (seq, record) in (1_i64..).zip(records) {
        sqlx::query(
            "INSERT INTO audit_records (seq, time_ms, principal, tool, record) VALUES ($1, $2, 'local', 'fs_read', $3)",
        )
        .bind(seq)
        .bind(seq * 1_000)
        .bind(record)
        .execute(&mut *connection)
        .await
        .unwrap();
    }
    drop(connection);
    pool.close().await;

    let store = Store::open(url).unwrap();
    let all = AuditQuery { limit: 10, ..Default::default() };
    let columns: Vec<(String, String)> =
        store.audit_records(&all).await.unwrap().into_iter().map(|row| (row.decision, row.outcome)).collect();
    let expected = [("allow", "ok"), ("deny", "denied"), ("", "")].map(|(d, o)| (d.to_owned(), o.to_owned()));
    assert_eq!(columns, expected);
    let denied = AuditQuery { decision: Some("deny".into()), limit: 10, ..Default::default() };
    assert_eq!(store.audit_records(&denied).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    store.close().await;
}

#[tokio::test]
async fn sqlite_upgrade_to_decision_columns() {
    let (_, dir) = sqlite_store("upgrade-decision");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    let url = format!("{}?mode=rwc", Store::sqlite_url(&dir.join("nested")));
    upgrade_to_decision_columns(&url, Backend::Sqlite).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_upgrade_to_decision_columns() {
    let Some(url) = postgres_url("upgrade_decision").await else { return };
    upgrade_to_decision_columns(&url, Backend::Postgres).await;
}

/// `audit search` filters use the indexes on SQLite (a filter written as
/// `($1 IS NULL OR principal = $1)` scanned the whole table).
#[tokio::test]
async fn sqlite_searches_use_the_indexes() {
    let (store, dir) = sqlite_store("plan");
    let pool = store.ready().await.unwrap();
    let cases = [
        (AuditQuery { principal: Some("token:ci".into()), ..Default::default() }, "audit_records_principal"),
        (AuditQuery { tool: Some("fs_read".into()), newest_first: true, ..Default::default() }, "audit_records_tool"),
        (AuditQuery { since_ms: Some(5), ..Default::default() }, "audit_records_time"),
        (AuditQuery { until_ms: Some(5), newest_first: true, ..Default::default() }, "audit_records_time"),
        (
            AuditQuery { decision: Some("deny".into()), newest_first: true, ..Default::default() },
            "audit_records_decision",
        ),
        (AuditQuery { outcome: Some("denied".into()), ..Default::default() }, "audit_records_outcome"),
        // The principal's index, not the decision's, which narrows a search less.
        (
            AuditQuery { principal: Some("token:ci".into()), decision: Some("deny".into()), ..Default::default() },
            "audit_records_principal",
        ),
        (
            AuditQuery { decision: Some("deny".into()), outcome: Some("denied".into()), ..Default::default() },
            "audit_records_outcome",
        ),
        // Left out of the partial indexes: nearly every record matches, read in chain order.
        (AuditQuery { decision: Some("allow".into()), ..Default::default() }, "SCAN audit_records"),
        (AuditQuery { outcome: Some("ok".into()), newest_first: true, ..Default::default() }, "SCAN audit_records"),
    ];
    for (query, index) in cases {
        let query = AuditQuery { limit: 10, ..query };
        let plan: Vec<String> = audit::search_statement("EXPLAIN QUERY PLAN ", query)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
            .collect();
        assert!(plan.iter().any(|step| step.contains(index)), "{index}: {plan:?}");
        if index != "audit_records_decision" {
            assert!(!plan.iter().any(|step| step.contains("audit_records_decision")), "{index}: {plan:?}");
        }
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "read in order, not sorted: {plan:?}");
    }
    // An allowed call that ended ok, nearly every record, is in neither index: appending
    // it writes no page of theirs (migration 0006).
    let partial: Vec<(String, i64)> = sqlx::query_as("SELECT name, partial FROM pragma_index_list('audit_records')")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|(name, _): &(String, i64)| name == "audit_records_decision" || name == "audit_records_outcome")
        .collect();
    assert_eq!(partial.len(), 2, "{partial:?}");
    assert!(partial.iter().all(|(_, partial)| *partial == 1), "{partial:?}");
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn pin_rows(store: &Store) {
    let pin = |tool: &str, fingerprint: &str| PinRow {
        upstream: "everything".into(),
        tool: tool.into(),
        fingerprint: fingerprint.into(),
        definition: format!("{{\"name\":\"{tool}\"}}"),
        pinned_at: 1,
    };
    store.save_pin(&pin("echo", "f1")).await.unwrap();
    store.save_pin(&pin("add", "f2")).await.unwrap();
    store.save_pin(&PinRow { upstream: "other".into(), ..pin("echo", "f9") }).await.unwrap();
    store.save_pin(&pin("echo", "f3")).await.unwrap();
    let pins = store.pins("everything").await.unwrap();
    assert_eq!(
        pins.iter().map(|p| (p.tool.as_str(), p.fingerprint.as_str())).collect::<Vec<_>>(),
        [("add", "f2"), ("echo", "f3")],
        "an approval replaces the pin, per upstream"
    );
    assert!(store.pins("nobody").await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_tokens_and_audit() {
    let (store, dir) = sqlite_store("both");
    token_lifecycle(&store).await;
    audit_rows(&store).await;
    pin_rows(&store).await;
    store.ping().await.unwrap();
    store.close().await;
    let reopened = Store::open(&Store::sqlite_url(&dir.join("nested"))).unwrap();
    assert_eq!(reopened.tokens().await.unwrap().len(), 2, "data survives a reopen; migrations are idempotent");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_tokens_and_audit() {
    let Some(store) = postgres_store("both").await else { return };
    assert_eq!(store.backend(), Backend::Postgres);
    token_lifecycle(&store).await;
    audit_rows(&store).await;
    pin_rows(&store).await;
    store.ping().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_fails_operations_not_opening() {
    let store = Store::open("postgres://nobody:hunter2@127.0.0.1:1/nothing").unwrap();
    assert_eq!(store.display_url(), "postgres://nobody:***@127.0.0.1:1/nothing");
    let error = store.ping().await.unwrap_err().to_string();
    assert!(error.contains("unavailable") && !error.contains("hunter2"), "{error}");
}

#[test]
fn unsupported_urls_are_refused() {
    assert!(matches!(Store::open("mysql://x/y").unwrap_err(), StoreError::UnsupportedUrl(_)));
}

/// Migration 1 exists once per back-end and must stay byte-identical in both: stores that
/// applied it before the split know it by its checksum.
#[test]
fn the_first_migration_is_the_same_for_both_back_ends() {
    assert_eq!(
        include_bytes!("../migrations/sqlite/0001_tokens_and_audit.sql").as_slice(),
        include_bytes!("../migrations/postgres/0001_tokens_and_audit.sql").as_slice()
    );
    assert_eq!(SQLITE_MIGRATOR.migrations[0].checksum, POSTGRES_MIGRATOR.migrations[0].checksum);
}

/// Replicas on one PostgreSQL write chains of their own: the same sequence numbers in
/// two chains, each chain's head its own, a conflict only within a chain, searches merged
/// by time or kept to one chain.
#[tokio::test]
async fn postgres_keeps_a_chain_per_writer() {
    let Some(store) = postgres_store("chains").await else { return };
    let row = |chain: &str, seq: i64, time_ms: i64| AuditRow {
        chain: chain.into(),
        seq,
        time_ms,
        principal: format!("token:{chain}"),
        tool: Some("get_current_time".into()),
        decision: "allow".into(),
        outcome: "ok".into(),
        record: format!("{chain}{seq}"),
    };
    store.append_audit_batch(vec![row("a", 1, 1_000), row("a", 2, 3_000)]).await.unwrap();
    store.append_audit_batch(vec![row("b", 1, 2_000), row("b", 2, 4_000), row("b", 3, 5_000)]).await.unwrap();
    store.append_audit(&row("", 1, 6_000)).await.unwrap();
    assert!(matches!(store.append_audit(&row("a", 2, 7_000)).await.unwrap_err(), StoreError::Conflict(_)));
    assert_eq!(store.last_audit("a").await.unwrap().unwrap().seq, 2);
    assert_eq!(store.last_audit("b").await.unwrap().unwrap().seq, 3);
    assert_eq!(store.last_audit("").await.unwrap().unwrap().record, "1");
    assert!(store.last_audit("c").await.unwrap().is_none());
    assert_eq!(store.audit_chains().await.unwrap(), ["", "a", "b"]);
    let records = |rows: Vec<AuditRow>| rows.iter().map(|r| r.record.clone()).collect::<Vec<_>>();
    let merged = AuditQuery { limit: 100, by_time: true, ..Default::default() };
    assert_eq!(records(store.audit_records(&merged).await.unwrap()), ["a1", "b1", "a2", "b2", "b3", "1"]);
    let one = AuditQuery { chain: Some("b".into()), after_seq: Some(1), limit: 100, ..Default::default() };
    assert_eq!(records(store.audit_records(&one).await.unwrap()), ["b2", "b3"]);
    let newest = AuditQuery { limit: 2, newest_first: true, by_time: true, ..Default::default() };
    assert_eq!(records(store.audit_records(&newest).await.unwrap()), ["1", "b3"]);

    // Keyset pages over several chains: records of one millisecond in two chains go by
    // chain, then seq, and no page loses or repeats one.
    store.append_audit_batch(vec![row("a", 3, 9_000), row("a", 4, 9_000)]).await.unwrap();
    store.append_audit(&row("b", 4, 9_000)).await.unwrap();
    let (mut paged, mut before) = (Vec::new(), None);
    loop {
        let query = AuditQuery { limit: 2, newest_first: true, by_time: true, before, ..Default::default() };
        let page = store.audit_records(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.key());
        paged.extend(records(page));
    }
    assert_eq!(paged, ["b4", "a4", "a3", "1", "b3", "b2", "a2", "b1", "a1"]);
}
