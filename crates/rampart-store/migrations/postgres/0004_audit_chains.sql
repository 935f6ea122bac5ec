-- PostgreSQL. Each writer of a deployment may keep a hash chain of its own (a replica of
-- a cluster, `[cluster]`), so that replicas never contend on one chain's head; `chain`
-- names it, '' is the default chain (single servers, `rampart token`). A record is
-- (chain, seq): sequence numbers are per chain.
ALTER TABLE audit_records ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_records DROP CONSTRAINT audit_records_pkey;
ALTER TABLE audit_records ADD PRIMARY KEY (chain, seq);
