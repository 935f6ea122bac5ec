-- PostgreSQL. `method`, `outcome` and `hash` are gone from the audit table: the record's
-- JSON holds them, and nothing searches by them. (The SQLite twin of this migration also
-- makes seq the rowid; here `seq BIGINT PRIMARY KEY` is the table's key already.)
ALTER TABLE audit_records DROP COLUMN method, DROP COLUMN outcome, DROP COLUMN hash;
