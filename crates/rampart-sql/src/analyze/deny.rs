//! The function deny-list: names checked wherever a function is called (expressions, FROM,
//! LATERAL, CALL), after schema qualification, quoting and case are stripped.
//!
//! Two lists. [`HOST`] reaches past the database: the server's files, other hosts, other
//! sessions, server administration; denied in every call, `sql_execute` included, because a
//! database write grant is not a grant on the machine. [`SIDE_EFFECTS`] changes database or
//! session state (sequences, locks, notifications, settings, dynamic SQL) or only burns
//! time; denied in read-only calls. A trailing `*` matches a prefix.
//!
//! The list is a layer, not the boundary: the READ ONLY transaction stops what it misses
//! that writes, and a database role that can only SELECT is the real boundary (README).
//! `pg_sleep` is deliberately absent: the statement timeout ends it.

/// Functions that reach files, the network, processes, other sessions or server control.
pub(super) const HOST: &[&str] = &[
    // PostgreSQL: server files (pg_read_server_files, adminpack) and large-object file IO.
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_*",
    "pg_stat_file",
    "pg_file_*",
    "pg_logdir_ls",
    "pg_current_logfile",
    "lo_import",
    "lo_export",
    // PostgreSQL: other hosts (dblink, and the queries it runs outside this transaction).
    "dblink*",
    // PostgreSQL: other sessions and server control.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_reload_conf",
    "pg_rotate_logfile*",
    "pg_promote",
    "pg_switch_wal",
    "pg_switch_xlog",
    "pg_create_restore_point",
    "pg_backup_*",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_*",
    "pg_xlog_replay_*",
    "pg_create_*",
    "pg_drop_replication_slot",
    "pg_copy_*",
    "pg_replication_origin_*",
    "pg_replication_slot_advance",
    "pg_logical_slot_*",
    "pg_log_backend_memory_contexts",
    // MySQL / MariaDB: server files, UDFs that run programs, replication waits.
    "load_file",
    "sys_exec",
    "sys_eval",
    "sys_get",
    "sys_set",
    "lib_mysqludf_*",
    "master_pos_wait",
    "source_pos_wait",
    "master_gtid_wait",
    "wait_for_executed_gtid_set",
    "wait_until_sql_thread_after_gtids",
    // SQLite: extensions and the CLI's file functions (fileio, zipfile).
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fsdir",
    "zipfile",
    "fts3_tokenizer",
];

/// Functions that change database or session state, run dynamic SQL, or only wait.
pub(super) const SIDE_EFFECTS: &[&str] = &[
    // PostgreSQL: settings, sequences, transaction ids, locks, notifications.
    "set_config",
    "nextval",
    "setval",
    "txid_*",
    "pg_current_xact_id",
    "pg_advisory_*",
    "pg_try_advisory_*",
    "pg_notify",
    "pg_export_snapshot",
    "pg_logical_emit_message",
    "pg_stat_reset*",
    "pg_stat_statements_reset",
    "pg_import_system_collations",
    "pg_prewarm",
    "brin_summarize*",
    "brin_desummarize*",
    "gin_clean_pending_list",
    "lo_*",
    // PostgreSQL: functions that run a query given as text.
    "query_to_xml*",
    "query_to_xmlschema",
    "cursor_to_xml*",
    "ts_stat",
    // MySQL / MariaDB (and MariaDB sequences): locks, session values, waits.
    "lastval",
    "get_lock",
    "release_lock",
    "release_all_locks",
    "last_insert_id",
    "sleep",
    "benchmark",
];

/// SQLite table-valued functions that reach files even when named without arguments.
pub(super) const FILE_TABLES: &[&str] = &["fsdir", "zipfile"];

/// Whether `name` (lower case, unqualified) is on [`HOST`], or also on [`SIDE_EFFECTS`]
/// when `read_only`.
pub(super) fn is_denied(name: &str, read_only: bool) -> bool {
    let lists: &[&[&str]] = if read_only { &[HOST, SIDE_EFFECTS] } else { &[HOST] };
    lists.iter().flat_map(|list| list.iter()).any(|pattern| matches(pattern, name))
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}
