-- SQLite. The decision and outcome indexes keep only the records a search for them looks
-- for: calls that were not allowed, calls that did not end `ok`. Nearly every record is an
-- allowed call that ended ok, and each full index cost every append a B-tree insert
-- (~0.6 µs of the writer's CPU per record, bench/README.md); such a record now touches
-- neither. A search for `decision = 'deny'` names the index's condition too
-- (`decision <> 'allow'`), so that SQLite may use it; one for `allow` or `ok` walks the
-- records in chain order, nearly all of which match.
DROP INDEX audit_records_decision;
DROP INDEX audit_records_outcome;
CREATE INDEX audit_records_decision ON audit_records (decision) WHERE decision <> 'allow';
CREATE INDEX audit_records_outcome ON audit_records (outcome) WHERE outcome <> 'ok';
