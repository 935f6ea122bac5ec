//! The `audit_records` table: the hash-chained audit log, one row per record, with the
//! record's exact JSON so that verification re-hashes what was written.

use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Backend, Store, StoreError, conflict_or};

/// One stored audit record: the record's exact JSON, and the fields `audit search` filters
/// on, in columns of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The hash chain it belongs to: `""`, the default one, or a replica's (`[cluster]`
    /// on PostgreSQL: each replica keeps its own, so that none waits for another's head).
    pub chain: String,
    /// Sequence number within its chain (1-based, contiguous).
    pub seq: i64,
    /// Record time, Unix ms.
    pub time_ms: i64,
    /// Principal id.
    pub principal: String,
    /// Tool, prompt or resource.
    pub tool: Option<String>,
    /// The whole record, JSON, exactly as hashed (method, outcome and hash are in it).
    pub record: String,
}

/// A search over audit records; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this chain's records (`after_seq` then counts within it).
    pub chain: Option<String>,
    /// Several chains merged: ordered by time (each chain's records in its order), not by
    /// sequence number, which each chain counts on its own.
    pub by_time: bool,
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
    /// Newest first (for `tail`); otherwise in chain order (by time across chains).
    pub newest_first: bool,
}

fn from_row(row: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        chain: row.try_get("chain")?,
        seq: row.try_get("seq")?,
        time_ms: row.try_get("time_ms")?,
        principal: row.try_get("principal")?,
        tool: row.try_get("tool")?,
        record: row.try_get("record")?,
    })
}

const COLUMNS: &str = "seq, time_ms, principal, tool, record, chain";
/// Parameters per row of an INSERT: one per column.
const PARAMETERS_PER_ROW: usize = 6;
/// Most rows in one INSERT statement (SQLite allows 32766 parameters per statement,
/// PostgreSQL 65535).
const MAX_ROWS_PER_STATEMENT: usize = 512;

/// The INSERT statement for `rows` rows.
///
/// SQLite: the statement is compiled for the next power of two of `rows` and the rows
/// beyond are bound as NULL and filtered out, so that at most ten statement shapes exist
/// and each stays in the connection's statement cache (sqlx keeps 100): a statement
/// compiled for every batch size cost more than the rows it inserted. Anonymous `?`
/// placeholders, bound in order: sqlx looks each numbered one (`$n`) up by name, and
/// SQLite's name lookup is a linear scan, which made a batch of n rows cost O(n²).
///
/// PostgreSQL: `VALUES` with exactly `rows` rows and `$n` placeholders (the only kind it
/// takes); statements are compiled by the server.
fn insert_statement(backend: Backend, rows: usize) -> (String, usize) {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(64 + rows * 32);
    match backend {
        Backend::Sqlite => {
            let shape = rows.next_power_of_two();
            let _ = write!(sql, "INSERT INTO audit_records ({COLUMNS}) SELECT * FROM (VALUES ");
            for row in 0..shape {
                sql.push_str(if row == 0 { "(?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?)" });
            }
            // `column1` is seq: NULL only in padding rows (the column is NOT NULL).
            sql.push_str(") WHERE column1 IS NOT NULL");
            (sql, shape)
        }
        Backend::Postgres => {
            let _ = write!(sql, "INSERT INTO audit_records ({COLUMNS}) VALUES ");
            for row in 0..rows {
                sql.push_str(if row == 0 { "(" } else { ", (" });
                for column in 0..PARAMETERS_PER_ROW {
                    let separator = if column == 0 { "" } else { ", " };
                    let _ = write!(sql, "{separator}${}", row * PARAMETERS_PER_ROW + column + 1);
                }
                sql.push(')');
            }
            (sql, rows)
        }
    }
}

/// One INSERT of at most [`MAX_ROWS_PER_STATEMENT`] `rows` (at least one).
async fn insert_rows<'c>(
    backend: Backend,
    rows: Vec<AuditRow>,
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
) -> Result<(), StoreError> {
    let first = rows.first().map_or(0, |row| row.seq);
    let (sql, shape) = insert_statement(backend, rows.len());
    let padding = shape - rows.len();
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        query =
            query.bind(row.seq).bind(row.time_ms).bind(row.principal).bind(row.tool).bind(row.record).bind(row.chain);
    }
    for _ in 0..padding {
        query = query
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>);
    }
    query
        .execute(executor)
        .await
        .map_err(|e| conflict_or(e, || format!("audit records from {first} already exist (another writer?)")))?;
    Ok(())
}

/// The SELECT for `query` after `prefix` (empty, or e.g. `EXPLAIN QUERY PLAN `), its
/// parameters bound. Only the filters `query` gives are in the SQL, so that the database
/// can use the index on the column (`($1 IS NULL OR principal = $1)` made every search a
/// scan).
///
/// `since` also bounds seq by the first record at or after that time, found through the
/// time index: asked for `time_ms >= $n ORDER BY seq`, SQLite rather walks the table in
/// seq order from the first record (1.8 s on 1.3 million rows). No record at or after the
/// time comes before that one, so the bound drops nothing; the `time_ms` filter stays for
/// records after it whose clock went back. (`+seq`: with `MIN(seq)` SQLite again walks
/// the table in seq order, looking for the first match.)
pub(crate) fn search_statement(
    prefix: &str,
    query: AuditQuery,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    use std::fmt::Write as _;
    enum Parameter {
        Text(String),
        Integer(i64),
    }
    /// A filter's SQL for its parameter number.
    type Condition = fn(usize) -> String;
    /// A filter, and its parameter when the query gives it.
    type Filter = (Condition, Option<Parameter>);
    let by_time = query.by_time;
    let filters: [Filter; 5] = [
        (|n| format!("chain = ${n}"), query.chain.map(Parameter::Text)),
        (|n| format!("principal = ${n}"), query.principal.map(Parameter::Text)),
        (|n| format!("tool = ${n}"), query.tool.map(Parameter::Text)),
        (
            |n| format!("time_ms >= ${n} AND seq >= (SELECT MIN(+seq) FROM audit_records WHERE time_ms >= ${n})"),
            query.since_ms.map(Parameter::Integer),
        ),
        (|n| format!("seq > ${n}"), query.after_seq.map(Parameter::Integer)),
    ];
    let given: Vec<(Condition, Parameter)> =
        filters.into_iter().filter_map(|(condition, parameter)| Some((condition, parameter?))).collect();
    let mut sql = format!("{prefix}SELECT {COLUMNS} FROM audit_records");
    for (index, (condition, _)) in given.iter().enumerate() {
        let keyword = if index == 0 { "WHERE" } else { "AND" };
        let _ = write!(sql, " {keyword} {}", condition(index + 1));
    }
    let order = if query.newest_first { "DESC" } else { "ASC" };
    // One chain: its order. Several: by time, each chain's records in its order.
    let by = if by_time { format!("time_ms {order}, chain {order}, seq {order}") } else { format!("seq {order}") };
    let _ = write!(sql, " ORDER BY {by} LIMIT ${}", given.len() + 1);
    let mut statement = sqlx::query(AssertSqlSafe(sql));
    for (_, parameter) in given {
        statement = match parameter {
            Parameter::Text(text) => statement.bind(text),
            Parameter::Integer(integer) => statement.bind(integer),
        };
    }
    statement.bind(query.limit.max(0))
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

    /// Appends records, all stored or none: one multi-row INSERT in one round trip for up
    /// to 512 rows (the audit writer sends at most 512, what queued up while the previous
    /// write ran), a transaction of several above.
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
            if rows.len() <= MAX_ROWS_PER_STATEMENT {
                return insert_rows(this.backend(), rows, &pool).await;
            }
            let mut transaction = pool.begin().await?;
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk = rows.by_ref().take(MAX_ROWS_PER_STATEMENT).collect();
                insert_rows(this.backend(), chunk, &mut *transaction).await?;
            }
            transaction.commit().await?;
            Ok(())
        }
    }

    /// The record of `chain` with the highest sequence number.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn last_audit(
        &self,
        chain: &str,
    ) -> impl std::future::Future<Output = Result<Option<AuditRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        let chain = chain.to_owned();
        async move {
            let pool = this.ready().await?;
            let sql = format!("SELECT {COLUMNS} FROM audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(chain).fetch_optional(&pool).await?;
            row.as_ref().map(from_row).transpose()
        }
    }

    /// The chains that hold records, default (`""`) first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_chains(&self) -> impl std::future::Future<Output = Result<Vec<String>, StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let pool = this.ready().await?;
            let rows = sqlx::query("SELECT DISTINCT chain FROM audit_records ORDER BY chain").fetch_all(&pool).await?;
            rows.iter().map(|row| row.try_get::<String, _>("chain").map_err(StoreError::from)).collect()
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
            let rows = search_statement("", query).fetch_all(&pool).await?;
            rows.iter().map(from_row).collect()
        }
    }
}
