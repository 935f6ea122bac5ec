-- SQLite only. The audit table as the writer's hot path wants it:
-- * `seq INTEGER PRIMARY KEY` makes the sequence number the rowid: rows are stored in
--   chain order in the table's own B-tree. `BIGINT PRIMARY KEY` (0001) is not a rowid
--   alias in SQLite, so every insert also went into a separate unique index on seq.
-- * `method`, `outcome` and `hash` are gone: the record's JSON holds them, and nothing
--   searches by them. The columns left are the ones `audit search` filters on.
-- * Secondary indexes carry the rowid (seq) already, so (principal) orders by seq.
CREATE TABLE audit_records_lean (
    seq        INTEGER PRIMARY KEY,       -- 1-based, contiguous: the hash chain's order
    time_ms    INTEGER NOT NULL,
    principal  TEXT NOT NULL,
    tool       TEXT,
    record     TEXT NOT NULL              -- the whole record as JSON, exactly as hashed
);
INSERT INTO audit_records_lean (seq, time_ms, principal, tool, record)
    SELECT seq, time_ms, principal, tool, record FROM audit_records ORDER BY seq;
DROP TABLE audit_records;
ALTER TABLE audit_records_lean RENAME TO audit_records;
CREATE INDEX audit_records_principal ON audit_records (principal);
CREATE INDEX audit_records_tool ON audit_records (tool);
CREATE INDEX audit_records_time ON audit_records (time_ms);
