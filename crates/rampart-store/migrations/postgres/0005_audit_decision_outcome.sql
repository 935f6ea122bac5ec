-- PostgreSQL. A record's decision and outcome in columns of their own, each with an index,
-- so that a search for denied calls (the console's Audit page) reads the matching rows
-- instead of every record's JSON. Like `principal` and `tool`, they are copies of the
-- sealed record's fields, written by the server, and `audit verify` checks them against
-- it.
--
-- Existing rows get them from their record's text by pattern, not by a cast to json: a
-- row that is not JSON would make the cast, and the whole migration, fail (PostgreSQL 15
-- cannot test for valid JSON without an exception). A record's keys are sorted and
-- `arguments` is the only one that holds an object, so the last `"decision":"…"` in the
-- text is the record's own (one inside a string value has its quotes escaped). A row
-- whose record has none keeps ''.
--
-- The indexes end with time_ms: searches over several chains (replicas') go by time.
ALTER TABLE audit_records
    ADD COLUMN decision TEXT NOT NULL DEFAULT '',
    ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
UPDATE audit_records
    SET decision = COALESCE(substring(record from '^.*"decision":"([a-z_]+)"'), ''),
        outcome = COALESCE(substring(record from '^.*"outcome":"([a-z_]+)"'), '');
CREATE INDEX audit_records_decision ON audit_records (decision, time_ms);
CREATE INDEX audit_records_outcome ON audit_records (outcome, time_ms);
