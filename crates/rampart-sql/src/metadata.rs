//! `sql_list_tables` and `sql_describe_table`: fixed catalog queries per engine, run on the
//! same read-only path as agents' queries (READ ONLY transaction, timeout, row cap) with the
//! names bound as parameters, and their rows shaped into the tools' results.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::{
    analyze::Dialect,
    engine::{Limits, Pool},
};

/// Tables listed at most (more sets `truncated`).
const MAX_TABLES: usize = 10_000;

/// One table or view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct TableEntry {
    /// Schema (PostgreSQL), database (MySQL) or attached database (SQLite, `main`).
    pub(crate) schema: String,
    /// Table name.
    pub(crate) name: String,
    /// `table`, `view`, `materialized view`, `foreign table`, `virtual`…
    pub(crate) kind: String,
}

/// Tables of one schema (or all user schemas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct TableList {
    /// The database's configured name.
    pub(crate) database: String,
    /// Tables and views, by schema then name.
    pub(crate) tables: Vec<TableEntry>,
    /// Whether more tables exist than listed.
    pub(crate) truncated: bool,
}

/// One column of a described table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct ColumnDescription {
    /// Column name.
    pub(crate) name: String,
    /// Declared type, e.g. `character varying(40)`, `int(11)`, `TEXT`.
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    /// Whether it accepts NULL.
    pub(crate) nullable: bool,
    /// The default expression, if any.
    pub(crate) default: Option<String>,
    /// Whether it belongs to the primary key.
    pub(crate) primary_key: bool,
}

/// One index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct IndexDescription {
    /// Index name.
    pub(crate) name: String,
    /// Indexed columns in order (an expression's text for expression indexes).
    pub(crate) columns: Vec<String>,
    /// Whether it enforces uniqueness.
    pub(crate) unique: bool,
    /// Whether it is the primary key's.
    pub(crate) primary: bool,
}

/// One foreign key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct ForeignKeyDescription {
    /// Constraint name (SQLite has none: `fk_N`).
    pub(crate) name: String,
    /// Referencing columns.
    pub(crate) columns: Vec<String>,
    /// Referenced table.
    pub(crate) references_table: String,
    /// Referenced columns (empty when SQLite leaves them implicit: the primary key).
    pub(crate) references_columns: Vec<String>,
}

/// A table's structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct TableDescription {
    /// The database's configured name.
    pub(crate) database: String,
    /// The table's schema.
    pub(crate) schema: String,
    /// The table's name.
    pub(crate) table: String,
    /// Columns in order.
    pub(crate) columns: Vec<ColumnDescription>,
    /// Primary key columns in key order (empty when none).
    pub(crate) primary_key: Vec<String>,
    /// Indexes by name.
    pub(crate) indexes: Vec<IndexDescription>,
    /// Foreign keys by name.
    pub(crate) foreign_keys: Vec<ForeignKeyDescription>,
}

/// Lists tables and views of `schema`, or of every user schema.
///
/// # Errors
/// The database's error.
pub(crate) async fn list_tables(
    pool: &Pool,
    database: &str,
    schema: Option<&str>,
    limits: Limits,
) -> Result<TableList, sqlx::Error> {
    let sql = match pool.dialect() {
        Dialect::Postgres => {
            "SELECT n.nspname::text, c.relname::text, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' \
             WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND CASE WHEN $1::text IS NULL THEN \
             n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
             AND n.nspname NOT LIKE 'pg\\_temp%' ELSE n.nspname = $1::text END ORDER BY 1, 2"
        }
        Dialect::MySql => {
            "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CASE table_type \
             WHEN 'BASE TABLE' THEN 'table' WHEN 'VIEW' THEN 'view' WHEN 'SYSTEM VIEW' THEN 'view' \
             ELSE LOWER(table_type) END FROM information_schema.tables \
             WHERE table_schema = COALESCE(?, DATABASE()) ORDER BY 1, 2"
        }
        Dialect::Sqlite => {
            "SELECT schema, name, type FROM pragma_table_list WHERE (?1 IS NULL OR schema = ?1) \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND type IN ('table', 'view', 'virtual') \
             ORDER BY schema = 'temp', schema, name"
        }
    };
    let limits = Limits { max_rows: MAX_TABLES, ..limits };
    let result = pool.read(sql, &[optional(schema)], limits).await?;
    let tables = result
        .rows
        .iter()
        .map(|row| TableEntry { schema: text(row, 0), name: text(row, 1), kind: text(row, 2) })
        .collect();
    Ok(TableList { database: database.to_owned(), tables, truncated: result.truncated })
}

/// Describes `table` (`name` or `schema.name`); `None` when there is no such table.
///
/// # Errors
/// The database's error.
pub(crate) async fn describe_table(
    pool: &Pool,
    database: &str,
    table: &str,
    limits: Limits,
) -> Result<Option<TableDescription>, sqlx::Error> {
    let limits = Limits { max_rows: MAX_TABLES, ..limits };
    match pool.dialect() {
        Dialect::Postgres => postgres::describe(pool, database, table, limits).await,
        Dialect::MySql => mysql::describe(pool, database, table, limits).await,
        Dialect::Sqlite => sqlite::describe(pool, database, table, limits).await,
    }
}

fn optional(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |value| Value::String(value.to_owned()))
}

/// `schema.table` → (Some(schema), table); `table` → (None, table).
fn split_name(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

fn text(row: &[Value], index: usize) -> String {
    match row.get(index) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn optional_text(row: &[Value], index: usize) -> Option<String> {
    match row.get(index) {
        Some(Value::Null) | None => None,
        _ => Some(text(row, index)),
    }
}

/// Booleans as PostgreSQL returns them and as MySQL and SQLite return them (0/1).
fn flag(row: &[Value], index: usize) -> bool {
    match row.get(index) {
        Some(Value::Bool(value)) => *value,
        Some(Value::Number(number)) => number.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// A JSON array of names (PostgreSQL's `json_agg`).
fn names(row: &[Value], index: usize) -> Vec<String> {
    match row.get(index) {
        Some(Value::Array(items)) => items.iter().map(|item| text(std::slice::from_ref(item), 0)).collect(),
        _ => Vec::new(),
    }
}

/// Builds the description from column rows (name, type, nullable, default, key position)
/// and grouped indexes and foreign keys.
fn description(
    database: &str,
    (schema, table): (String, String),
    columns: &[Vec<Value>],
    indexes: Vec<IndexDescription>,
    foreign_keys: Vec<ForeignKeyDescription>,
) -> TableDescription {
    let mut keyed: Vec<(i64, String)> = columns
        .iter()
        .filter_map(|row| match row.get(4) {
            Some(Value::Number(n)) => n.as_i64().filter(|&p| p > 0).map(|p| (p, text(row, 0))),
            Some(Value::Bool(true)) => Some((0, text(row, 0))),
            _ => None,
        })
        .collect();
    keyed.sort();
    let primary_key_index = indexes.iter().find(|index| index.primary).map(|index| index.columns.clone());
    let primary_key = primary_key_index.unwrap_or_else(|| keyed.into_iter().map(|(_, name)| name).collect());
    let columns = columns
        .iter()
        .map(|row| ColumnDescription {
            name: text(row, 0),
            type_name: text(row, 1),
            nullable: flag(row, 2),
            default: optional_text(row, 3),
            primary_key: primary_key.contains(&text(row, 0)),
        })
        .collect();
    TableDescription { database: database.to_owned(), schema, table, columns, primary_key, indexes, foreign_keys }
}

/// Groups (name, …, column) rows into one entry per name, in order.
fn group_by_name(rows: &[Vec<Value>]) -> BTreeMap<String, Vec<&Vec<Value>>> {
    let mut groups: BTreeMap<String, Vec<&Vec<Value>>> = BTreeMap::new();
    for row in rows {
        groups.entry(text(row, 0)).or_default().push(row);
    }
    groups
}

mod postgres {
    //! PostgreSQL's catalogs; the name resolves like in a query (`to_regclass`: search
    //! path, quoting, `schema.table`).

    use super::*;

    const RESOLVE: &str = "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)";
    const COLUMNS: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                           pg_get_expr(d.adbin, d.adrelid), false FROM pg_attribute a \
                           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                           WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
                           ORDER BY a.attnum";
    const INDEXES: &str = "SELECT i.relname::text, ix.indisunique, ix.indisprimary, \
                           (SELECT json_agg(COALESCE(a.attname::text, pg_get_indexdef(ix.indexrelid, k.o::int, true)) \
                           ORDER BY k.o) FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o) \
                           LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.n) \
                           FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
                           WHERE ix.indrelid = to_regclass($1) ORDER BY 1";
    const FOREIGN_KEYS: &str = "SELECT con.conname::text, \
                           (SELECT json_agg(a.attname::text ORDER BY k.o) FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
                           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n), \
                           con.confrelid::regclass::text, \
                           (SELECT json_agg(a.attname::text ORDER BY k.o) FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
                           JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) \
                           FROM pg_constraint con WHERE con.conrelid = to_regclass($1) AND con.contype = 'f' ORDER BY 1";

    pub(super) async fn describe(
        pool: &Pool,
        database: &str,
        table: &str,
        limits: Limits,
    ) -> Result<Option<TableDescription>, sqlx::Error> {
        let params = [Value::String(table.to_owned())];
        let resolved = pool.read(RESOLVE, &params, limits).await?;
        let Some(name) = resolved.rows.first().map(|row| (text(row, 0), text(row, 1))) else { return Ok(None) };
        let columns = pool.read(COLUMNS, &params, limits).await?.rows;
        let indexes = pool
            .read(INDEXES, &params, limits)
            .await?
            .rows
            .iter()
            .map(|row| IndexDescription {
                name: text(row, 0),
                unique: flag(row, 1),
                primary: flag(row, 2),
                columns: names(row, 3),
            })
            .collect();
        let foreign_keys = pool
            .read(FOREIGN_KEYS, &params, limits)
            .await?
            .rows
            .iter()
            .map(|row| ForeignKeyDescription {
                name: text(row, 0),
                columns: names(row, 1),
                references_table: text(row, 2),
                references_columns: names(row, 3),
            })
            .collect();
        Ok(Some(description(database, name, &columns, indexes, foreign_keys)))
    }
}

mod mysql {
    //! MySQL's information_schema; `db.table` or a table of the connection's database.

    use super::*;

    const COLUMNS: &str = "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), is_nullable = 'YES', \
                           CAST(column_default AS CHAR), column_key = 'PRI', CAST(table_schema AS CHAR) \
                           FROM information_schema.columns \
                           WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? ORDER BY ordinal_position";
    const INDEXES: &str = "SELECT CAST(index_name AS CHAR), non_unique = 0, CAST(column_name AS CHAR) \
                           FROM information_schema.statistics \
                           WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
                           ORDER BY index_name, seq_in_index";
    const FOREIGN_KEYS: &str = "SELECT CAST(constraint_name AS CHAR), CAST(column_name AS CHAR), \
                           CAST(CONCAT(referenced_table_schema, '.', referenced_table_name) AS CHAR), \
                           CAST(referenced_column_name AS CHAR) FROM information_schema.key_column_usage \
                           WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
                           AND referenced_table_name IS NOT NULL ORDER BY constraint_name, ordinal_position";

    pub(super) async fn describe(
        pool: &Pool,
        database: &str,
        table: &str,
        limits: Limits,
    ) -> Result<Option<TableDescription>, sqlx::Error> {
        let (schema, name) = split_name(table);
        let params = [optional(schema), Value::String(name.to_owned())];
        let columns = pool.read(COLUMNS, &params, limits).await?.rows;
        let Some(first) = columns.first() else { return Ok(None) };
        let resolved = (text(first, 5), name.to_owned());
        let index_rows = pool.read(INDEXES, &params, limits).await?.rows;
        let indexes = group_by_name(&index_rows)
            .into_iter()
            .map(|(name, rows)| IndexDescription {
                primary: name == "PRIMARY",
                unique: rows.first().is_some_and(|row| flag(row, 1)),
                columns: rows.iter().map(|row| text(row, 2)).collect(),
                name,
            })
            .collect();
        let key_rows = pool.read(FOREIGN_KEYS, &params, limits).await?.rows;
        let foreign_keys = group_by_name(&key_rows)
            .into_iter()
            .map(|(name, rows)| ForeignKeyDescription {
                references_table: rows.first().map(|row| text(row, 2)).unwrap_or_default(),
                columns: rows.iter().map(|row| text(row, 1)).collect(),
                references_columns: rows.iter().map(|row| text(row, 3)).collect(),
                name,
            })
            .collect();
        Ok(Some(description(database, resolved, &columns, indexes, foreign_keys)))
    }
}

mod sqlite {
    //! SQLite's table-valued pragmas; `schema.table` names an attached database, `main`
    //! by default.

    use super::*;

    /// An `INTEGER PRIMARY KEY` is the rowid, never NULL, though `notnull` says 0.
    const COLUMNS: &str = "SELECT name, type, \"notnull\" = 0 AND NOT (pk = 1 AND upper(type) = 'INTEGER' \
                           AND (SELECT count(*) FROM pragma_table_info(?1, ?2) WHERE pk > 0) = 1), \
                           dflt_value, pk FROM pragma_table_info(?1, ?2) ORDER BY cid";
    const INDEXES: &str = "SELECT il.name, il.\"unique\", il.origin = 'pk', ii.name \
                           FROM pragma_index_list(?1, ?2) il JOIN pragma_index_info(il.name, ?2) ii \
                           ORDER BY il.name, ii.seqno";
    const FOREIGN_KEYS: &str = "SELECT 'fk_' || id, \"from\", \"table\", \"to\" \
                           FROM pragma_foreign_key_list(?1, ?2) ORDER BY id, seq";

    pub(super) async fn describe(
        pool: &Pool,
        database: &str,
        table: &str,
        limits: Limits,
    ) -> Result<Option<TableDescription>, sqlx::Error> {
        let (schema, name) = split_name(table);
        let schema = schema.unwrap_or("main");
        let params = [Value::String(name.to_owned()), Value::String(schema.to_owned())];
        let columns = pool.read(COLUMNS, &params, limits).await?.rows;
        if columns.is_empty() {
            return Ok(None);
        }
        let index_rows = pool.read(INDEXES, &params, limits).await?.rows;
        let indexes = group_by_name(&index_rows)
            .into_iter()
            .map(|(name, rows)| IndexDescription {
                unique: rows.first().is_some_and(|row| flag(row, 1)),
                primary: rows.first().is_some_and(|row| flag(row, 2)),
                columns: rows
                    .iter()
                    .map(|row| optional_text(row, 3).unwrap_or_else(|| "<expression>".into()))
                    .collect(),
                name,
            })
            .collect();
        let key_rows = pool.read(FOREIGN_KEYS, &params, limits).await?.rows;
        let foreign_keys = group_by_name(&key_rows)
            .into_iter()
            .map(|(name, rows)| ForeignKeyDescription {
                references_table: rows.first().map(|row| text(row, 2)).unwrap_or_default(),
                columns: rows.iter().map(|row| text(row, 1)).collect(),
                references_columns: rows.iter().filter_map(|row| optional_text(row, 3)).collect(),
                name,
            })
            .collect();
        let resolved = (schema.to_owned(), name.to_owned());
        Ok(Some(description(database, resolved, &columns, indexes, foreign_keys)))
    }
}
