//! The `api_tokens` table. Only a SHA-256 digest of each token is stored.

use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Store, StoreError, conflict_or};

/// One API token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Stable id, e.g. `tok_1a2B3c4D5e6F`.
    pub id: String,
    /// Unique human name, e.g. `ci`.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub digest: String,
    /// The token's first characters, e.g. `rpt_AbCd`.
    pub display_prefix: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Last successful use, Unix ms (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Revocation time, Unix ms.
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, digest, display_prefix, roles, created_at, expires_at, last_used_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<TokenRow, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        digest: row.try_get("digest")?,
        display_prefix: row.try_get("display_prefix")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("api_tokens.roles: {e}")))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Inserts a new token.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken.
    pub fn insert_token(
        &self,
        token: &TokenRow,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let this = self.clone();
        let token = token.clone();
        async move {
            let pool = this.ready().await?;
            let roles = serde_json::to_string(&token.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO api_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )))
            .bind(token.id.clone())
            .bind(token.name.clone())
            .bind(token.digest.clone())
            .bind(token.display_prefix.clone())
            .bind(roles)
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(token.last_used_at)
            .bind(token.revoked_at)
            .execute(&pool)
            .await
            .map_err(|e| conflict_or(e, || format!("a token named '{}' already exists", token.name)))?;
            Ok(())
        }
    }

    /// The token with this digest, revoked or not.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn token_by_digest(
        &self,
        digest: &str,
    ) -> impl std::future::Future<Output = Result<Option<TokenRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        let digest = digest.to_owned();
        async move {
            let pool = this.ready().await?;
            let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens WHERE digest = $1")))
                .bind(digest.to_owned())
                .fetch_optional(&pool)
                .await?;
            row.as_ref().map(from_row).transpose()
        }
    }

    /// The token whose id or name is `key`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn token(
        &self,
        key: &str,
    ) -> impl std::future::Future<Output = Result<Option<TokenRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        let key = key.to_owned();
        async move {
            let pool = this.ready().await?;
            let row =
                sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1 OR name = $2")))
                    .bind(key.to_owned())
                    .bind(key.to_owned())
                    .fetch_optional(&pool)
                    .await?;
            row.as_ref().map(from_row).transpose()
        }
    }

    /// All tokens, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn tokens(&self) -> impl std::future::Future<Output = Result<Vec<TokenRow>, StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let pool = this.ready().await?;
            let rows = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id")))
                .fetch_all(&pool)
                .await?;
            rows.iter().map(from_row).collect()
        }
    }

    /// Number of tokens that are neither revoked nor expired at `now_ms`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn count_active_tokens(
        &self,
        now_ms: i64,
    ) -> impl std::future::Future<Output = Result<i64, StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let pool = this.ready().await?;
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(now_ms)
            .fetch_one(&pool)
            .await?;
            Ok(row.try_get("n")?)
        }
    }

    /// Revokes token `id` at `now_ms`; `false` when there is no such unrevoked token.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn revoke_token(
        &self,
        id: &str,
        now_ms: i64,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'static {
        let this = self.clone();
        let id = id.to_owned();
        async move {
            let pool = this.ready().await?;
            let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(id.to_owned())
                .execute(&pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }
    }

    /// Replaces token `id`'s secret (rotation): new digest and prefix, same name and
    /// roles; `false` when there is no such unrevoked token.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn rotate_token(
        &self,
        id: &str,
        digest: &str,
        display_prefix: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'static {
        let this = self.clone();
        let id = id.to_owned();
        let digest = digest.to_owned();
        let display_prefix = display_prefix.to_owned();
        async move {
            let pool = this.ready().await?;
            let done = sqlx::query(
                "UPDATE api_tokens SET digest = $1, display_prefix = $2, last_used_at = NULL WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(digest.to_owned())
            .bind(display_prefix.to_owned())
            .bind(id.to_owned())
            .execute(&pool)
            .await?;
            Ok(done.rows_affected() == 1)
        }
    }

    /// Records a use of token `id` at `now_ms`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn touch_token(
        &self,
        id: &str,
        now_ms: i64,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let this = self.clone();
        let id = id.to_owned();
        async move {
            let pool = this.ready().await?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(id.to_owned())
                .execute(&pool)
                .await?;
            Ok(())
        }
    }
}
