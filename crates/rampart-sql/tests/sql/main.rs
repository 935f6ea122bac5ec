//! The `sql` toolbox against the real PostgreSQL, MariaDB and SQLite on this machine
//! (`TEST_POSTGRES_URL`, `TEST_MYSQL_URL`; SQLite files in the temp directory). Each test
//! works in a schema, database or file of its own, so the tests run in parallel.
//!
//! `attacks`: statements that must not write, each refused with a clear message, and on
//! PostgreSQL the tables' write counters unchanged after each. `tools`: what agents use,
//! on all three engines. `config`: configuration errors, permissions, readiness.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod attacks;
mod config;
mod support;
mod tools;
