//! Rampart's store: API tokens, audit records and upstream tool pins, through sqlx.
//!
//! One code path for both back-ends: the embedded SQLite database (a file in the data
//! directory; the default, no external service) and PostgreSQL (`RAMPART_DATABASE_URL=
//! postgres://…`). Queries are portable SQL run through sqlx's `Any` driver; migrations
//! (`migrations/sqlite`, `migrations/postgres`, embedded at build time) are applied on
//! first use.
//!
//! The connection is lazy: the server starts while PostgreSQL is down, `/readyz` reports
//! the store as degraded, and the first operation after it comes back connects and
//! migrates.
//!
//! - [`Store`]: [`Store::open`] a URL (`sqlite://PATH`, `postgres://…`), then one method
//!   per operation; those on rows return a `Send + 'static` future (it owns a pool
//!   handle), which a caller can spawn.
//! - Tokens ([`TokenRow`], table `api_tokens`): digests and metadata only, never a token.
//! - Audit records ([`AuditRow`], table `audit_records`): each record's exact JSON plus the
//!   columns [`AuditQuery`] filters on; sealing and verifying are `rampart-audit`'s, the
//!   mapping between the two `rampart-server`'s.
//! - Upstream pins ([`PinRow`], table `upstream_pins`): the gateway's pinned tool
//!   definitions.
//! - [`StoreError`]: what failed, with the URL's password masked ([`redact_url`]).

mod audit;
mod pins;
mod tokens;

use std::{path::Path, time::Duration};

use sqlx::{
    AnyPool,
    any::{AnyPoolOptions, install_default_drivers},
};
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::Mutex;

pub use audit::{AuditKey, AuditQuery, AuditRow};
pub use pins::PinRow;
pub use tokens::TokenRow;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// Connecting or migrating failed (the database is down or refuses us).
    #[error("database {url} unavailable: {source}")]
    Unavailable {
        /// The URL without credentials.
        url: String,
        /// The sqlx error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("database {url}: migration failed: {source}")]
    Migrate {
        /// The URL without credentials.
        url: String,
        /// The migration error.
        source: sqlx::migrate::MigrateError,
    },
    /// A unique constraint: the name or key already exists.
    #[error("{0}")]
    Conflict(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value does not parse (e.g. a roles column that is not a JSON array).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// The store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    display_url: String,
    migrated: Arc<AtomicBool>,
    migrating: Arc<Mutex<()>>,
}

/// Migrations per back-end (`migrations/sqlite`, `migrations/postgres`): the first is the
/// same portable SQL in both (byte for byte: sqlx checks applied migrations by checksum);
/// later ones may use what only one of them has (SQLite's rowid tables).
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Backend {
    fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATOR,
            Self::Postgres => &POSTGRES_MIGRATOR,
        }
    }
}

/// The URL with any password replaced by `***`, for logs and `/readyz`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// The default SQLite URL for a data directory: `sqlite://DIR/rampart.db`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("rampart.db").display())
    }

    /// Opens the store lazily: no connection is made until the first operation.
    ///
    /// For SQLite the file (and its directory) is created if missing, with WAL journaling
    /// (`synchronous = NORMAL`: a committed record survives a crash of the process, not
    /// necessarily a power loss).
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`], [`StoreError::DataDir`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let mut connect_url = url.to_owned();
        if backend == Backend::Sqlite {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|source| StoreError::DataDir { path: parent.display().to_string(), source })?;
            }
            if !connect_url.contains("mode=") {
                connect_url.push_str(if connect_url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5)).max_connections(8);
        if backend == Backend::Sqlite {
            options = options.after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *connection).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *connection).await?;
                    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *connection).await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect_lazy(&connect_url)
            .map_err(|source| StoreError::Unavailable { url: redact_url(url), source })?;
        Ok(Self {
            pool,
            backend,
            display_url: redact_url(url),
            migrated: Default::default(),
            migrating: Default::default(),
        })
    }

    /// Which back-end this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, password masked.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    /// Connects and applies pending migrations (once per process); returns the pool.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Migrate`].
    pub async fn ready(&self) -> Result<AnyPool, StoreError> {
        if self.migrated.load(Ordering::Acquire) {
            return Ok(self.pool.clone());
        }
        let _one_at_a_time = self.migrating.lock().await;
        if !self.migrated.load(Ordering::Acquire) {
            let mut connection = self
                .pool
                .acquire()
                .await
                .map_err(|source| StoreError::Unavailable { url: self.display_url.clone(), source })?;
            // `run_direct` rather than `run`: `run` is generic over `Acquire<'a>`, which makes
            // every future awaiting it fail rustc's higher-ranked `Send` check (sqlx's own
            // comment on `run_direct` says as much).
            self.backend
                .migrator()
                .run_direct(None, &mut *connection, false)
                .await
                .map_err(|source| StoreError::Migrate { url: self.display_url.clone(), source })?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(self.pool.clone())
    }

    /// A round trip to the database, for `/readyz`.
    ///
    /// # Errors
    /// [`StoreError`] when the database is unreachable.
    pub fn ping(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let pool = this.ready().await?;
            sqlx::query("SELECT 1").execute(&pool).await?;
            Ok(())
        }
    }

    /// Closes the pool (waits for connections to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn conflict_or(error: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Query(error),
    }
}

#[cfg(test)]
mod tests;
