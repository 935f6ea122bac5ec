-- SQLite. A record's decision and outcome in columns of their own, each with an index, so
-- that a search for denied calls (the console's Audit page) reads the matching rows
-- instead of every record's JSON. Like `principal` and `tool`, they are copies of the
-- sealed record's fields, written by the server, and `audit verify` checks them against
-- it. Existing rows get them from their record; a row whose record is not JSON keeps ''.
-- The indexes carry the rowid (seq), so a search by decision reads in chain order.
ALTER TABLE audit_records ADD COLUMN decision TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_records ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
UPDATE audit_records
    SET decision = COALESCE(json_extract(record, '$.decision'), ''),
        outcome = COALESCE(json_extract(record, '$.outcome'), '')
    WHERE json_valid(record);
CREATE INDEX audit_records_decision ON audit_records (decision);
CREATE INDEX audit_records_outcome ON audit_records (outcome);
