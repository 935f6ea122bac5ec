-- Portable SQL: runs unchanged on SQLite and PostgreSQL (through sqlx's Any driver).
-- Times are Unix milliseconds (BIGINT); lists are JSON text.

CREATE TABLE IF NOT EXISTS api_tokens (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    digest         TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the whole token; the token itself is never stored
    display_prefix TEXT NOT NULL,          -- e.g. "rpt_AbCd", to recognise a token in listings
    roles          TEXT NOT NULL,          -- JSON array of role names
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    last_used_at   BIGINT,
    revoked_at     BIGINT
);

CREATE TABLE IF NOT EXISTS audit_records (
    seq        BIGINT PRIMARY KEY,        -- 1-based, contiguous: the hash chain's order
    time_ms    BIGINT NOT NULL,
    principal  TEXT NOT NULL,
    method     TEXT NOT NULL,
    tool       TEXT,
    outcome    TEXT NOT NULL,
    record     TEXT NOT NULL,             -- the whole record as JSON, exactly as hashed
    hash       TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_records_principal ON audit_records (principal, seq);
CREATE INDEX IF NOT EXISTS audit_records_tool ON audit_records (tool, seq);
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time_ms);
