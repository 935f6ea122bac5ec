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
    Some(Store::open(&format!("{prefix}/{database}")).unwrap())
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
    assert!(store.last_audit().await.unwrap().is_none());
    for seq in 1..=5 {
        let audit = AuditRow {
            seq,
            time_ms: 1_000 * seq,
            principal: if seq % 2 == 0 { "token:ci".into() } else { "local".into() },
            method: "tools/call".into(),
            tool: Some(if seq == 3 { "write_file".into() } else { "get_current_time".into() }),
            outcome: "ok".into(),
            record: format!("{{\"seq\":{seq}}}"),
            hash: format!("h{seq}"),
        };
        store.append_audit(&audit).await.unwrap();
    }
    let again = AuditRow { seq: 5, ..store.last_audit().await.unwrap().unwrap() };
    assert!(matches!(store.append_audit(&again).await.unwrap_err(), StoreError::Conflict(_)));
    assert_eq!(store.last_audit().await.unwrap().unwrap().seq, 5);
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

    let template = store.last_audit().await.unwrap().unwrap();
    let batch: Vec<AuditRow> = (6..=7).map(|seq| AuditRow { seq, ..template.clone() }).collect();
    store.append_audit_batch(batch.clone()).await.unwrap();
    assert_eq!(store.last_audit().await.unwrap().unwrap(), batch[1], "every column where it belongs");
    let clash: Vec<AuditRow> = (7..=8).map(|seq| AuditRow { seq, ..template.clone() }).collect();
    assert!(matches!(store.append_audit_batch(clash).await.unwrap_err(), StoreError::Conflict(_)));
    assert_eq!(store.last_audit().await.unwrap().unwrap().seq, 7, "a failed batch stores nothing");
}

#[tokio::test]
async fn sqlite_tokens_and_audit() {
    let (store, dir) = sqlite_store("both");
    token_lifecycle(&store).await;
    audit_rows(&store).await;
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
