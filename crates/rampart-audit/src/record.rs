//! [`AuditRecord`]: an event with its place in the hash chain, and the canonical form
//! its hash covers.

use jiff::Timestamp;
use serde::{Deserialize, Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{AuditEvent, Decision, Outcome, event::format_time};

/// The `prev_hash` of the first record (seq 1): 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record: an [`AuditEvent`] sealed into the hash chain.
///
/// # The hash
/// `hash` is the lower-case hex SHA-256 of the record's **canonical form**: the UTF-8
/// bytes of one compact JSON object (no whitespace) holding every field except `hash`,
/// with object keys sorted by their UTF-8 bytes at every level (the record's own keys and
/// those inside `arguments`):
///
/// ```text
/// {"arguments":…,"decision":"allow","detail":null,"duration_us":1234,"method":"tools/call",
///  "outcome":"ok","prev_hash":"<64 hex>","principal":"token:ci","remote_addr":null,
///  "request_id":null,"seq":1,"session":null,"time":"2025-06-01T12:34:56.789Z",
///  "tool":"fs_read","transport":"stdio"}
/// ```
///
/// - absent optional fields are `null`, never omitted — except `toolbox`, `task` and
///   `trace_id`, added later, which are omitted when absent, so that the records written
///   before each existed keep their hash;
/// - `time` is RFC 3339 UTC with exactly three fractional digits;
/// - `duration_us` and `seq` are JSON integers (no floats among the record's own fields,
///   so every store reproduces them exactly);
/// - strings are escaped as serde_json writes them (`"`, `\` and control characters
///   only; other characters as UTF-8); numbers inside `arguments` as serde_json writes
///   them (shortest round-trip form for floats).
///
/// The record's serialized JSON ([`Serialize`]) is that same object with `"hash"` added in
/// its sorted place, so one JSONL line or database row (stored as text, not PostgreSQL
/// `jsonb`, which rewrites numbers) reproduces the hash. [`Deserialize`] refuses unknown
/// fields and any other time format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RecordWire")]
pub struct AuditRecord {
    /// Position in the chain: 1 for the first record, then contiguous.
    pub seq: u64,
    /// What happened.
    pub event: AuditEvent,
    /// The `hash` of record `seq - 1`; [`GENESIS_HASH`] for seq 1.
    pub prev_hash: String,
    /// Lower-case hex SHA-256 of the canonical form (above).
    pub hash: String,
}

impl AuditRecord {
    /// `event` as record `seq` after the record whose hash is `prev_hash`: truncates the
    /// event's time to whole milliseconds (the stored precision) and computes `hash`.
    pub fn seal(event: AuditEvent, seq: u64, prev_hash: impl Into<String>) -> Self {
        SealedRecord::seal(event, seq, prev_hash).into_record()
    }

    /// The canonical form the hash covers (see the type's docs).
    pub fn canonical_json(&self) -> String {
        self.canonical_json_and_split().0
    }

    /// The hash this record's content calls for: hex SHA-256 of [`Self::canonical_json`].
    pub fn compute_hash(&self) -> String {
        hex_sha256(self.canonical_json().as_bytes())
    }

    /// Whether `hash` matches the content (the record was not edited since it was
    /// sealed, or was edited and re-hashed, which only the next link reveals).
    pub fn is_intact(&self) -> bool {
        self.compute_hash() == self.hash
    }

    /// The serialized record on one line (no newline): what [`Serialize`] writes.
    pub fn json_line(&self) -> String {
        let (canonical, split) = self.canonical_json_and_split();
        with_hash(&canonical, split, &self.hash)
    }

    /// The canonical form, and the byte offset in it where the serialized form has
    /// `"hash":"…",` (after `duration_us`, the key before `hash` in sorted order): the two
    /// forms differ by that alone, so one serialization gives both.
    fn canonical_json_and_split(&self) -> (String, usize) {
        let mut json = Vec::with_capacity(512);
        // Compact JSON objects: `{"arguments":…,"duration_us":N}` then `{"method":…}`,
        // joined into one object. Writing into memory cannot fail (every key is a string).
        let _ = serde_json::to_writer(&mut json, &Wire { record: self, part: Part::BeforeHash });
        json.pop();
        json.push(b',');
        let split = json.len();
        let _ = serde_json::to_writer(&mut json, &Wire { record: self, part: Part::AfterHash });
        json.remove(split);
        // serde_json writes UTF-8; an empty string would fail verification loudly.
        (String::from_utf8(json).unwrap_or_default(), split)
    }
}

/// `canonical` with `"hash":"<hash>",` inserted at byte `split`.
fn with_hash(canonical: &str, split: usize, hash: &str) -> String {
    let (before, after) = canonical.split_at(split);
    let mut line = String::with_capacity(canonical.len() + hash.len() + 10);
    for part in [before, "\"hash\":", "\"", hash, "\",", after] {
        line.push_str(part);
    }
    line
}

/// Lower-case hex SHA-256 of `bytes` (the digest's own hex formatting, as
/// `rampart_auth::token_digest`).
fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

impl Serialize for AuditRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire { record: self, part: Part::Whole }.serialize(serializer)
    }
}

/// An [`AuditRecord`] with its serialized line ([`AuditRecord::json_line`]): what the
/// [`AuditLog`](crate::AuditLog)'s writer seals and hands to the sink. Sealing serializes
/// the record once, for both the hash and the line, instead of once for each: this runs
/// for every call. Read-only, so the line always matches the record.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedRecord {
    record: AuditRecord,
    line: String,
}

impl SealedRecord {
    /// As [`AuditRecord::seal`], with the line.
    pub fn seal(mut event: AuditEvent, seq: u64, prev_hash: impl Into<String>) -> Self {
        event.time = crate::event::truncate_to_ms(event.time);
        let mut record = AuditRecord { seq, event, prev_hash: prev_hash.into(), hash: String::new() };
        let (canonical, split) = record.canonical_json_and_split();
        record.hash = hex_sha256(canonical.as_bytes());
        let line = with_hash(&canonical, split, &record.hash);
        Self { record, line }
    }

    /// The record.
    pub fn record(&self) -> &AuditRecord {
        &self.record
    }

    /// The serialized record on one line, without newline: exactly what a sink stores.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The record, without its line.
    pub fn into_record(self) -> AuditRecord {
        self.record
    }
}

impl std::ops::Deref for SealedRecord {
    type Target = AuditRecord;

    fn deref(&self) -> &AuditRecord {
        &self.record
    }
}

/// A record as it is (even one edited after sealing, which is how tests forge them),
/// with its line serialized.
impl From<AuditRecord> for SealedRecord {
    fn from(record: AuditRecord) -> Self {
        let line = record.json_line();
        Self { record, line }
    }
}

/// Which of a record's keys [`Wire`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Every key, `hash` included: the serialized record.
    Whole,
    /// The keys that sort before `hash`.
    BeforeHash,
    /// The keys that sort after `hash`.
    AfterHash,
}

/// Some of a record's keys (see [`Part`]) as one JSON object, in sorted order. Written
/// field by field, without an intermediate `Value`: this runs for every call.
struct Wire<'a> {
    record: &'a AuditRecord,
    part: Part,
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record;
        let event = &record.event;
        let (before, hash, after) = match self.part {
            Part::Whole => (true, true, true),
            Part::BeforeHash => (true, false, false),
            Part::AfterHash => (false, false, true),
        };
        let toolbox = event.toolbox.as_ref().filter(|_| after);
        let task = event.task.as_ref().filter(|_| after);
        let trace_id = event.trace_id.as_ref().filter(|_| after);
        let len = 4 * usize::from(before)
            + usize::from(hash)
            + 11 * usize::from(after)
            + usize::from(toolbox.is_some())
            + usize::from(task.is_some())
            + usize::from(trace_id.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        // In sorted key order (a test checks it): serializers keep the order written.
        if before {
            map.serialize_entry("arguments", &Sorted(&event.arguments))?;
            map.serialize_entry("decision", event.decision.as_str())?;
            map.serialize_entry("detail", &event.detail)?;
            map.serialize_entry("duration_us", &event.duration_us)?;
        }
        if hash {
            map.serialize_entry("hash", &record.hash)?;
        }
        if after {
            map.serialize_entry("method", &event.method)?;
            map.serialize_entry("outcome", event.outcome.as_str())?;
            map.serialize_entry("prev_hash", &record.prev_hash)?;
            map.serialize_entry("principal", &event.principal)?;
            map.serialize_entry("remote_addr", &event.remote_addr)?;
            map.serialize_entry("request_id", &event.request_id)?;
            map.serialize_entry("seq", &record.seq)?;
            map.serialize_entry("session", &event.session)?;
            // Only when set, as `toolbox`.
            if let Some(task) = task {
                map.serialize_entry("task", task)?;
            }
            map.serialize_entry("time", &format_time(event.time))?;
            map.serialize_entry("tool", &event.tool)?;
            // Only when set: records written before the field existed keep their hash.
            if let Some(toolbox) = toolbox {
                map.serialize_entry("toolbox", toolbox)?;
            }
            // Only when set, as `toolbox`.
            if let Some(trace_id) = trace_id {
                map.serialize_entry("trace_id", trace_id)?;
            }
            map.serialize_entry("transport", &event.transport)?;
        }
        map.end()
    }
}

/// A JSON value serialized with the keys of every object, at every depth, in sorted
/// order (by UTF-8 bytes).
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(members) => {
                let mut members: Vec<(&String, &Value)> = members.iter().collect();
                members.sort_by_key(|(key, _)| *key);
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, member) in members {
                    map.serialize_entry(key, &Sorted(member))?;
                }
                map.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(serializer),
        }
    }
}

/// The serialized shape of a record, flat and closed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordWire {
    seq: u64,
    #[serde(with = "crate::event::time_ms")]
    time: Timestamp,
    request_id: Option<String>,
    session: Option<String>,
    principal: String,
    transport: String,
    remote_addr: Option<String>,
    method: String,
    tool: Option<String>,
    #[serde(default)]
    toolbox: Option<String>,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    arguments: Value,
    decision: Decision,
    outcome: Outcome,
    detail: Option<String>,
    duration_us: u64,
    prev_hash: String,
    hash: String,
}

impl From<RecordWire> for AuditRecord {
    fn from(wire: RecordWire) -> Self {
        Self {
            seq: wire.seq,
            event: AuditEvent {
                time: wire.time,
                request_id: wire.request_id,
                session: wire.session,
                principal: wire.principal,
                transport: wire.transport,
                remote_addr: wire.remote_addr,
                method: wire.method,
                tool: wire.tool,
                toolbox: wire.toolbox,
                task: wire.task,
                trace_id: wire.trace_id,
                arguments: wire.arguments,
                decision: wire.decision,
                outcome: wire.outcome,
                detail: wire.detail,
                duration_us: wire.duration_us,
            },
            prev_hash: wire.prev_hash,
            hash: wire.hash,
        }
    }
}

#[cfg(test)]
mod tests;
