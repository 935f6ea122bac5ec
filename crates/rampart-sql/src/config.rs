//! The `[sql]` table of `rampart.toml`: named databases, each with a URL, an optional
//! credential from the environment, whether it may be written, a row cap and a statement
//! timeout. Unknown keys are errors that name the key.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::analyze::Dialect;

/// The `[sql]` table.
///
/// ```toml
/// [sql.databases.analytics]
/// url = "postgres://reader@127.0.0.1/analytics"   # or mysql://…, sqlite://path
/// password_env = "ANALYTICS_PASSWORD"               # optional
/// writable = false                                  # default false
/// max_rows = 1000                                   # default 1000
/// statement_timeout_ms = 5000                       # default 5000
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// Databases by name. The name is what tools take as `database`, what policy database
    /// scopes match, and what `/readyz` reports as `sql:NAME`.
    #[serde(default)]
    pub databases: BTreeMap<String, DatabaseConfig>,
}

/// One `[sql.databases.NAME]` table. Its `Debug` hides a password written into the URL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://` (or `postgresql://`), `mysql://` (or `mariadb://`) or `sqlite://PATH`.
    /// Keep the password out of it: use `password_env`.
    pub url: String,
    /// The environment variable holding the password, injected into the connection
    /// options at start-up (never into anything printed).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Whether `sql_execute` may write (still only for callers holding the database's
    /// read-write scope). Default `false`.
    #[serde(default)]
    pub writable: bool,
    /// The most rows a query returns; callers may ask for fewer. Default 1000.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// How long one statement may run, in milliseconds. Default 5000.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redacted_url(&self.url))
            .field("password_env", &self.password_env)
            .field("writable", &self.writable)
            .field("max_rows", &self.max_rows)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`.
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        _ => url.to_owned(),
    }
}

fn default_max_rows() -> u64 {
    1000
}

fn default_statement_timeout_ms() -> u64 {
    5000
}

/// The largest `max_rows` accepted.
const MAX_ROWS_LIMIT: u64 = 1_000_000;
/// The largest `statement_timeout_ms` accepted (one hour).
const TIMEOUT_LIMIT_MS: u64 = 3_600_000;

/// The `[sql]` table is invalid; every variant names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlConfigError {
    /// The table does not deserialize: an unknown key, a wrong type, a missing `url`.
    #[error("{key}: {message}")]
    Invalid {
        /// The dotted key, e.g. `sql.databases.analytics`.
        key: String,
        /// serde's message, e.g. "unknown field `writeable`, expected one of …".
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{key}: {message}")]
    Value {
        /// The dotted key, e.g. `sql.databases.analytics.max_rows`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// `password_env` names a variable that is not set.
    #[error("{key}: the environment variable {variable} is not set")]
    MissingPassword {
        /// The dotted key `sql.databases.NAME.password_env`.
        key: String,
        /// The variable's name.
        variable: String,
    },
}

impl SqlConfig {
    /// Reads the `[sql]` table (as JSON) and validates it.
    ///
    /// # Errors
    /// [`SqlConfigError`] naming the first offending key.
    pub fn from_value(value: Value) -> Result<Self, SqlConfigError> {
        let mut table = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(table) => table,
            other => return Err(invalid("sql", format!("expected a table, found {}", kind_of(&other)))),
        };
        let databases = table.remove("databases");
        if let Some(key) = table.keys().next() {
            return Err(invalid("sql", format!("unknown field `{key}`, expected `databases`")));
        }
        let databases = match databases {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(databases)) => databases,
            Some(other) => {
                return Err(invalid("sql.databases", format!("expected a table, found {}", kind_of(&other))));
            }
        };
        let mut config = Self::default();
        for (name, value) in databases {
            let key = format!("sql.databases.{name}");
            let database: DatabaseConfig =
                serde_json::from_value(value).map_err(|error| invalid(&key, error.to_string()))?;
            database.validate(&name, &key)?;
            config.databases.insert(name, database);
        }
        Ok(config)
    }
}

impl DatabaseConfig {
    fn validate(&self, name: &str, key: &str) -> Result<(), SqlConfigError> {
        let value_error =
            |field: &str, message: String| SqlConfigError::Value { key: format!("{key}{field}"), message };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(value_error("", "a database name may use only letters, digits, '_' and '-'".into()));
        }
        if !(1..=MAX_ROWS_LIMIT).contains(&self.max_rows) {
            return Err(value_error(".max_rows", format!("must be between 1 and {MAX_ROWS_LIMIT}")));
        }
        if !(1..=TIMEOUT_LIMIT_MS).contains(&self.statement_timeout_ms) {
            return Err(value_error(
                ".statement_timeout_ms",
                format!("must be between 1 and {TIMEOUT_LIMIT_MS} (one hour)"),
            ));
        }
        self.dialect().map_err(|message| value_error(".url", message))?;
        Ok(())
    }

    /// The dialect the URL's scheme names.
    ///
    /// # Errors
    /// A message when the scheme is none of the supported ones (the URL is not repeated:
    /// it may hold a password).
    pub(crate) fn dialect(&self) -> Result<Dialect, String> {
        let scheme = self.url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(Dialect::Postgres),
            Some("mysql" | "mariadb") => Ok(Dialect::MySql),
            Some("sqlite") => Ok(Dialect::Sqlite),
            _ => Err("unsupported database URL: use postgres://…, mysql://… or sqlite://PATH".into()),
        }
    }

    /// The password from `password_env`, if configured.
    ///
    /// # Errors
    /// [`SqlConfigError::MissingPassword`] when the variable is not set.
    pub(crate) fn password(&self, name: &str) -> Result<Option<String>, SqlConfigError> {
        let Some(variable) = &self.password_env else { return Ok(None) };
        match std::env::var(variable) {
            Ok(password) => Ok(Some(password)),
            Err(_) => Err(SqlConfigError::MissingPassword {
                key: format!("sql.databases.{name}.password_env"),
                variable: variable.clone(),
            }),
        }
    }
}

fn invalid(key: &str, message: String) -> SqlConfigError {
    SqlConfigError::Invalid { key: key.to_owned(), message }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_a_password_in_the_url() {
        let config: DatabaseConfig =
            serde_json::from_value(serde_json::json!({"url": "postgres://app:s3cret@db:5432/x?sslmode=require"}))
                .unwrap_or_else(|error| panic!("{error}"));
        let debug = format!("{config:?}");
        assert!(debug.contains("postgres://app:***@db:5432/x?sslmode=require"), "{debug}");
        assert!(!debug.contains("s3cret"));
        assert_eq!(redacted_url("sqlite:///data/a.db"), "sqlite:///data/a.db");
    }
}
