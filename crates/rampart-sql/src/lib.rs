//! The `sql` toolbox: named PostgreSQL, MySQL/MariaDB and SQLite databases for agents.
//!
//! Tools: `sql_list_databases`, `sql_list_tables`, `sql_describe_table`, `sql_query`
//! (read-only), and `sql_execute` (listed only when some database is `writable`). Every
//! tool that touches a database first asks the policy through
//! [`rampart_core::CallContext::authorize`] for [`rampart_core::Request::Database`] with
//! `read` or `read-write` access; this crate has no permission logic of its own.
//!
//! Read-only is enforced in layers, each of which would stop a write on its own in the
//! common cases, so that a gap in one is not a hole:
//!
//! 1. **Analysis** (`analyze.rs`): one statement, parsed for the database's dialect; only
//!    queries, EXPLAIN without ANALYZE, SHOW and DESCRIBE; nothing that writes or locks
//!    anywhere in the tree; no deny-listed function anywhere (FROM included). What runs is
//!    the statement re-rendered from the tree, capped with a LIMIT.
//! 2. **Protocol**: the statement is prepared and bound (PostgreSQL's extended protocol,
//!    MySQL's COM_STMT_PREPARE), which accept exactly one statement.
//! 3. **Transaction**: a READ ONLY transaction (SQLite: `query_only`, and a read-only
//!    file for databases not configured `writable`), always rolled back.
//! 4. **Limits**: a statement timeout enforced by the server (SQLite: a progress handler),
//!    a client-side deadline behind it, and rows streamed up to the cap.
//! 5. **Session hygiene**: connections are reset before they return to the pool, and
//!    closed instead when a call was cut short or wrote.
//!
//! The real boundary is the database's own: configure each database with a role that can
//! only SELECT (README).
//!
//! [`SqlToolbox::from_config`] builds the toolbox from the `[sql]` table as JSON (as
//! `rampart-config` keeps it), [`SqlToolbox::new`] from an [`SqlConfig`] (a
//! [`DatabaseConfig`] per database); inside a Tokio runtime, connecting to nothing yet,
//! and failing with an [`SqlConfigError`] naming the key.

mod analyze;
mod config;
mod engine;
mod metadata;
mod render;
mod toolbox;

pub use config::{DatabaseConfig, SqlConfig, SqlConfigError};
pub use toolbox::SqlToolbox;
