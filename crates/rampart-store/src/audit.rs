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
    /// What policy decided: `allow` or `deny` (`""`: a row the schema's upgrade could not
    /// read it from).
    pub decision: String,
    /// How the request ended: `ok`, `denied`, `tool_error`… (`""` as for `decision`).
    pub outcome: String,
    /// The whole record, JSON, exactly as hashed (method and hash are in it).
    pub record: String,
}

impl AuditRow {
    /// Its place in a search's order ([`AuditQuery::before`]).
    pub fn key(&self) -> AuditKey {
        AuditKey { time_ms: self.time_ms, chain: self.chain.clone(), seq: self.seq }
    }
}

/// A record's place in the order of a search, for keyset pagination: a page goes on
/// from the last record of the previous one ([`AuditQuery::before`]), which costs the
/// same on the thousandth page as on the first (an `OFFSET` reads every skipped row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditKey {
    /// The record's time, Unix ms.
    pub time_ms: i64,
    /// Its chain.
    pub chain: String,
    /// Its sequence number in that chain.
    pub seq: i64,
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
    /// Exact decision (`allow`, `deny`).
    pub decision: Option<String>,
    /// Exact outcome (`ok`, `denied`, `tool_error`…).
    pub outcome: Option<String>,
    /// Records at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// Records at or before this time, Unix ms.
    pub until_ms: Option<i64>,
    /// Records with a sequence number above this.
    pub after_seq: Option<i64>,
    /// Records that come before this one in the search's order, for the next page of a
    /// newest-first search (keyset pagination: give the last record's [`AuditRow::key`]).
    /// In chain order a lower `seq`; merged by time an earlier `(time_ms, chain, seq)`.
    pub before: Option<AuditKey>,
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
        decision: row.try_get("decision")?,
        outcome: row.try_get("outcome")?,
        record: row.try_get("record")?,
    })
}

const COLUMNS: &str = "seq, time_ms, principal, tool, record, chain, decision, outcome";
/// Parameters per row of an INSERT: one per column.
const PARAMETERS_PER_ROW: usize = 8;
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
                sql.push_str(if row == 0 { "(?, ?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?, ?)" });
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
        query = query
            .bind(row.seq)
            .bind(row.time_ms)
            .bind(row.principal)
            .bind(row.tool)
            .bind(row.record)
            .bind(row.chain)
            .bind(row.decision)
            .bind(row.outcome);
    }
    for _ in 0..padding {
        query = query.bind(None::<i64>).bind(None::<i64>);
        for _ in 2..PARAMETERS_PER_ROW {
            query = query.bind(None::<String>);
        }
    }
    query
        .execute(executor)
        .await
        .map_err(|e| conflict_or(e, || format!("audit records from {first} already exist (another writer?)")))?;
    Ok(())
}

/// A value bound to a placeholder of a search.
enum Parameter {
    Text(String),
    Integer(i64),
}

/// The `WHERE` clause of a search as it is built, and the parameters its placeholders
/// (`$1`, `$2`… in order) stand for.
#[derive(Default)]
struct Conditions {
    sql: String,
    parameters: Vec<Parameter>,
}

impl Conditions {
    /// Binds `parameter` to the next placeholder, and returns it.
    fn bind(&mut self, parameter: Parameter) -> String {
        self.parameters.push(parameter);
        format!("${}", self.parameters.len())
    }

    /// Adds `condition` (which must not contain a top-level `OR`).
    fn and(&mut self, condition: &str) {
        self.sql.push_str(if self.sql.is_empty() { " WHERE " } else { " AND " });
        self.sql.push_str(condition);
    }

    /// `column = $n`, or `column || '' = $n` when `use_index` is false: the same
    /// condition, which no index can serve.
    fn equals(&mut self, column: &str, value: Option<String>, use_index: bool) {
        self.equals_indexed_apart_from(column, value, use_index, None);
    }

    /// [`Self::equals`] on a column whose index leaves out the rows holding `common`
    /// (SQLite's partial indexes on `decision` and `outcome`): for another value, the
    /// index's own condition `column <> 'common'` is added, implied by the equality but
    /// needed for SQLite to see that the index covers the search.
    fn equals_indexed_apart_from(
        &mut self,
        column: &str,
        value: Option<String>,
        use_index: bool,
        common: Option<&'static str>,
    ) {
        let Some(value) = value else { return };
        let partial = common.filter(|common| use_index && value != *common);
        let placeholder = self.bind(Parameter::Text(value));
        let column = if use_index { column.to_owned() } else { format!("{column} || ''") };
        self.and(&format!("{column} = {placeholder}"));
        if let Some(common) = partial {
            self.and(&format!("{column} <> '{common}'"));
        }
    }
}

/// The SELECT for `query` after `prefix` (empty, or e.g. `EXPLAIN QUERY PLAN `), its
/// parameters bound. Only the filters `query` gives are in the SQL, so that the database
/// can use the index on the column (`($1 IS NULL OR principal = $1)` made every search a
/// scan).
///
/// In chain order, `since` and `until` also bound seq by the first and the last record of
/// the time window, found in one pass over the time index's entries for the window (the
/// `bounds` of a `WITH`): asked for `time_ms >= $n ORDER BY seq`, SQLite rather walks the
/// table in seq order from the first record (1.8 s on 1.3 million rows). No record of the
/// window lies outside those bounds, so they drop nothing; the `time_ms` filters stay for
/// the records between them whose clock went back. (`+seq`: with `MIN(seq)` SQLite again
/// walks the table in seq order, looking for the first match.) The pass costs tens of ns
/// per record of the window (bench/README.md). Merged by time, the time index serves the
/// window and the order at once, and no bound is needed.
///
/// `decision` and `outcome` hold a few values each, so their indexes find a record of a
/// rare value fast but narrow a search little: when a more selective filter is given too
/// (principal or tool; outcome over decision), theirs is written so that no index serves
/// it, and the database walks the other filter's index instead of guessing between them
/// (without statistics, SQLite takes every equality as equally selective). On SQLite
/// their indexes leave out `allow` and `ok` (migration 0006), so a search for another
/// value names that condition too.
pub(crate) fn search_statement(
    prefix: &str,
    query: AuditQuery,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    let mut conditions = Conditions::default();
    let selective = query.principal.is_some() || query.tool.is_some();
    let outcome_indexed = !selective;
    let decision_indexed = !selective && query.outcome.is_none();
    conditions.equals("chain", query.chain, true);
    conditions.equals("principal", query.principal, true);
    conditions.equals("tool", query.tool, true);
    conditions.equals_indexed_apart_from("outcome", query.outcome, outcome_indexed, Some("ok"));
    conditions.equals_indexed_apart_from("decision", query.decision, decision_indexed, Some("allow"));
    let mut window = Vec::new();
    if let Some(since) = query.since_ms {
        let n = conditions.bind(Parameter::Integer(since));
        window.push(format!("time_ms >= {n}"));
    }
    if let Some(until) = query.until_ms {
        let n = conditions.bind(Parameter::Integer(until));
        window.push(format!("time_ms <= {n}"));
    }
    let window = window.join(" AND ");
    let mut with = String::new();
    if !window.is_empty() {
        conditions.and(&window);
        if !query.by_time {
            with = format!(
                "WITH bounds AS MATERIALIZED (SELECT MIN(+seq) AS lo, MAX(+seq) AS hi FROM audit_records WHERE {window}) "
            );
            conditions.and("seq >= (SELECT lo FROM bounds) AND seq <= (SELECT hi FROM bounds)");
        }
    }
    if let Some(after) = query.after_seq {
        let n = conditions.bind(Parameter::Integer(after));
        conditions.and(&format!("seq > {n}"));
    }
    if let Some(key) = query.before {
        if query.by_time {
            let time = conditions.bind(Parameter::Integer(key.time_ms));
            let chain = conditions.bind(Parameter::Text(key.chain));
            let seq = conditions.bind(Parameter::Integer(key.seq));
            // `(time_ms, chain, seq) < (…)`, with its first column alone in front for the
            // time index.
            conditions.and(&format!(
                "time_ms <= {time} AND (time_ms < {time} OR chain < {chain} OR (chain = {chain} AND seq < {seq}))"
            ));
        } else {
            let seq = conditions.bind(Parameter::Integer(key.seq));
            conditions.and(&format!("seq < {seq}"));
        }
    }
    let order = if query.newest_first { "DESC" } else { "ASC" };
    // One chain: its order. Several: by time, each chain's records in its order.
    let by =
        if query.by_time { format!("time_ms {order}, chain {order}, seq {order}") } else { format!("seq {order}") };
    let limit = conditions.bind(Parameter::Integer(query.limit.max(0)));
    let sql =
        format!("{prefix}{with}SELECT {COLUMNS} FROM audit_records{} ORDER BY {by} LIMIT {limit}", conditions.sql);
    let mut statement = sqlx::query(AssertSqlSafe(sql));
    for parameter in conditions.parameters {
        statement = match parameter {
            Parameter::Text(text) => statement.bind(text),
            Parameter::Integer(integer) => statement.bind(integer),
        };
    }
    statement
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

    /// Record `seq` of `chain`, if it exists.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_record(
        &self,
        chain: &str,
        seq: i64,
    ) -> impl std::future::Future<Output = Result<Option<AuditRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        let chain = chain.to_owned();
        async move {
            let pool = this.ready().await?;
            let sql = format!("SELECT {COLUMNS} FROM audit_records WHERE chain = $1 AND seq = $2");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(chain).bind(seq).fetch_optional(&pool).await?;
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
