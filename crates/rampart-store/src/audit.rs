//! The `audit_records` table: the hash-chained audit log, one row per record, with the
//! record's exact JSON so that verification re-hashes what was written.

use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Backend, Store, StoreError, conflict_or};

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Sequence number (1-based, contiguous).
    pub seq: i64,
    /// Record time, Unix ms.
    pub time_ms: i64,
    /// Principal id.
    pub principal: String,
    /// MCP method (or `auth`).
    pub method: String,
    /// Tool, prompt or resource.
    pub tool: Option<String>,
    /// Outcome (`ok`, `denied`, …).
    pub outcome: String,
    /// The whole record, JSON.
    pub record: String,
    /// The record's hash, hex.
    pub hash: String,
}

/// A search over audit records; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Exact principal id.
    pub principal: Option<String>,
    /// Exact tool name.
    pub tool: Option<String>,
    /// Records at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// Records with a sequence number above this.
    pub after_seq: Option<i64>,
    /// At most this many (the newest when `newest_first`).
    pub limit: i64,
    /// Newest first (for `tail`); otherwise in chain order.
    pub newest_first: bool,
}

fn from_row(row: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        time_ms: row.try_get("time_ms")?,
        principal: row.try_get("principal")?,
        method: row.try_get("method")?,
        tool: row.try_get("tool")?,
        outcome: row.try_get("outcome")?,
        record: row.try_get("record")?,
        hash: row.try_get("hash")?,
    })
}

const COLUMNS: &str = "seq, time_ms, principal, method, tool, outcome, record, hash";

/// `INSERT INTO audit_records … VALUES (…), (…)` for `rows` rows of 8 parameters.
///
/// SQLite gets anonymous `?` placeholders, bound in order: sqlx looks each numbered one
/// (`$n`) up by name, and SQLite's name lookup is a linear scan, which made a batch of n
/// rows cost O(n²). PostgreSQL only takes `$n`.
fn insert_statement(backend: Backend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = format!("INSERT INTO audit_records ({COLUMNS}) VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..8 {
            let separator = if column == 0 { "" } else { ", " };
            match backend {
                Backend::Sqlite => {
                    let _ = write!(sql, "{separator}?");
                }
                Backend::Postgres => {
                    let _ = write!(sql, "{separator}${}", row * 8 + column + 1);
                }
            }
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Appends one record (a transaction of its own, committed before returning): a
    /// batch of one.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the sequence number exists (two writers).
    pub fn append_audit(
        &self,
        row: &AuditRow,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        self.append_audit_batch(vec![row.clone()])
    }

    /// Appends records in one multi-row INSERT: one statement, so all are stored or none,
    /// in one round trip (the audit writer batches what queued up while the previous
    /// write ran).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a sequence number exists (two writers).
    pub fn append_audit_batch(
        &self,
        rows: Vec<AuditRow>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let pool = this.ready().await?;
            let first = rows.first().map_or(0, |row| row.seq);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                // 8 parameters per row; SQLite allows 32766 and PostgreSQL 65535 per statement.
                let chunk: Vec<AuditRow> = rows.by_ref().take(512).collect();
                let sql = insert_statement(this.backend(), chunk.len());
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for row in chunk {
                    query = query
                        .bind(row.seq)
                        .bind(row.time_ms)
                        .bind(row.principal)
                        .bind(row.method)
                        .bind(row.tool)
                        .bind(row.outcome)
                        .bind(row.record)
                        .bind(row.hash);
                }
                query.execute(&pool).await.map_err(|e| {
                    conflict_or(e, || format!("audit records from {first} already exist (another writer?)"))
                })?;
            }
            Ok(())
        }
    }

    /// The record with the highest sequence number.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn last_audit(
        &self,
    ) -> impl std::future::Future<Output = Result<Option<AuditRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let pool = this.ready().await?;
            let row =
                sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM audit_records ORDER BY seq DESC LIMIT 1")))
                    .fetch_optional(&pool)
                    .await?;
            row.as_ref().map(from_row).transpose()
        }
    }

    /// Records matching `query`, in chain order (or newest first).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_records(
        &self,
        query: &AuditQuery,
    ) -> impl std::future::Future<Output = Result<Vec<AuditRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        let query = query.clone();
        async move {
            let pool = this.ready().await?;
            let order = if query.newest_first { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT {COLUMNS} FROM audit_records \
                 WHERE ($1 IS NULL OR principal = $1) AND ($2 IS NULL OR tool = $2) \
                   AND ($3 IS NULL OR time_ms >= $3) AND ($4 IS NULL OR seq > $4) \
                 ORDER BY seq {order} LIMIT $5"
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(query.principal.clone())
                .bind(query.tool.clone())
                .bind(query.since_ms)
                .bind(query.after_seq)
                .bind(query.limit.max(0))
                .fetch_all(&pool)
                .await?;
            rows.iter().map(from_row).collect()
        }
    }
}
