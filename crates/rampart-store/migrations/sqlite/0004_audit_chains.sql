-- SQLite. Each writer of a deployment may keep a hash chain of its own (a replica of a
-- cluster, `[cluster]`); `chain` names it, '' is the default chain. SQLite is one
-- machine's store, so only the default chain is written here and `seq` stays the rowid:
-- the column exists so that queries are the same for both back-ends.
ALTER TABLE audit_records ADD COLUMN chain TEXT NOT NULL DEFAULT '';
