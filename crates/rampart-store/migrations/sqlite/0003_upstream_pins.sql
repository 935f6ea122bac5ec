-- Portable SQL (SQLite and PostgreSQL). Trust on first use of upstream MCP servers'
-- tool definitions: the definition first seen (or last approved) of each tool.
CREATE TABLE IF NOT EXISTS upstream_pins (
    upstream    TEXT NOT NULL,     -- [upstreams.NAME]
    tool        TEXT NOT NULL,     -- the tool's name at the upstream
    fingerprint TEXT NOT NULL,     -- hex SHA-256 of the canonical definition
    definition  TEXT NOT NULL,     -- the pinned definition as JSON (for the diff)
    pinned_at   BIGINT NOT NULL,   -- Unix ms
    PRIMARY KEY (upstream, tool)
);
