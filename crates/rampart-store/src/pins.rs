//! The `upstream_pins` table: for each upstream MCP server, the tool definitions pinned
//! on first use (or last approved), so that a changed definition is noticed.

use sqlx::{Row, any::AnyRow};

use crate::{Store, StoreError};

/// One pinned tool definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRow {
    /// `[upstreams.NAME]`.
    pub upstream: String,
    /// The tool's name at the upstream.
    pub tool: String,
    /// Hex SHA-256 of the canonical definition.
    pub fingerprint: String,
    /// The definition as JSON text.
    pub definition: String,
    /// When it was pinned or approved, Unix ms.
    pub pinned_at: i64,
}

fn from_row(row: &AnyRow) -> Result<PinRow, StoreError> {
    Ok(PinRow {
        upstream: row.try_get("upstream")?,
        tool: row.try_get("tool")?,
        fingerprint: row.try_get("fingerprint")?,
        definition: row.try_get("definition")?,
        pinned_at: row.try_get("pinned_at")?,
    })
}

impl Store {
    /// Every pin of `upstream`, by tool name.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn pins(
        &self,
        upstream: &str,
    ) -> impl std::future::Future<Output = Result<Vec<PinRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        let upstream = upstream.to_owned();
        async move {
            let pool = this.ready().await?;
            let rows = sqlx::query(
                "SELECT upstream, tool, fingerprint, definition, pinned_at FROM upstream_pins WHERE upstream = $1 \
                 ORDER BY tool",
            )
            .bind(upstream)
            .fetch_all(&pool)
            .await?;
            rows.iter().map(from_row).collect()
        }
    }

    /// Inserts or replaces the pin of `pin.tool` (one statement: a pin is never half
    /// written).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn save_pin(&self, pin: &PinRow) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let this = self.clone();
        let pin = pin.clone();
        async move {
            let pool = this.ready().await?;
            sqlx::query(
                "INSERT INTO upstream_pins (upstream, tool, fingerprint, definition, pinned_at) VALUES ($1, $2, $3, \
                 $4, $5) ON CONFLICT (upstream, tool) DO UPDATE SET fingerprint = excluded.fingerprint, definition = \
                 excluded.definition, pinned_at = excluded.pinned_at",
            )
            .bind(pin.upstream)
            .bind(pin.tool)
            .bind(pin.fingerprint)
            .bind(pin.definition)
            .bind(pin.pinned_at)
            .execute(&pool)
            .await?;
            Ok(())
        }
    }
}
