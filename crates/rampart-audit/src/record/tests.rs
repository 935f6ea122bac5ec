//! The canonical form, the hash, and the serialized shape of a record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::test_support::event;

#[test]
fn canonical_form_and_hash_are_stable() {
    // If this changes, every stored log stops verifying: change it only with a migration.
    // The same bytes and hash come out of Python's
    // `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
    let mut event = event(1);
    event.arguments = json!({"z": 1, "a": {"y": "é\n", "b": 0.1}});
    let record = AuditRecord::seal(event, 1, GENESIS_HASH);
    assert_eq!(
        record.canonical_json(),
        concat!(
            r#"{"arguments":{"a":{"b":0.1,"y":"é\n"},"z":1},"decision":"allow","detail":null,"duration_us":1235,"#,
            r#""method":"tools/call","outcome":"ok","#,
            r#""prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""principal":"token:ci","remote_addr":"127.0.0.1:50000","request_id":"req-1","seq":1,"#,
            r#""session":"session-1","time":"2025-06-15T15:06:40.001Z","tool":"system_time","#,
            r#""transport":"streamable_http"}"#,
        )
    );
    assert_eq!(record.hash, "6e641c7057aebaf3540d678c036386b769b95cec281e8a3f43010de5af7b2da0");
    assert_eq!(record.hash, format!("{:x}", Sha256::digest(record.canonical_json().as_bytes())));
}

#[test]
fn serialized_record_is_the_canonical_form_plus_hash() {
    let record = AuditRecord::seal(event(3), 3, "ab".repeat(32));
    let line = serde_json::to_string(&record).unwrap();
    let without_hash = line.replace(&format!(r#""hash":"{}","#, record.hash), "");
    assert_eq!(without_hash, record.canonical_json());
}

#[test]
fn json_round_trip_keeps_the_hash() {
    let mut event = event(2);
    event.arguments = json!({"floats": [0.1, 1e300, 5e-324, 123456.789, -0.0], "big": u64::MAX, "neg": -7});
    event.detail = Some("missing permission: tool fs_write".into());
    let record = AuditRecord::seal(event, 2, GENESIS_HASH);
    let line = serde_json::to_string(&record).unwrap();
    let back: AuditRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back, record);
    assert!(back.is_intact());
    assert_eq!(serde_json::to_string(&back).unwrap(), line);
}

#[test]
fn argument_key_order_does_not_change_the_hash() {
    let mut first = event(1);
    let mut second = event(1);
    first.arguments = serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": 3}}"#).unwrap();
    second.arguments = serde_json::from_str(r#"{"a": {"c": 3, "d": 2}, "b": 1}"#).unwrap();
    assert_eq!(AuditRecord::seal(first, 1, GENESIS_HASH).hash, AuditRecord::seal(second, 1, GENESIS_HASH).hash);
}

#[test]
fn every_field_is_covered_by_the_hash() {
    type Edit = fn(&mut AuditRecord);
    let edits: &[(&str, Edit)] = &[
        ("seq", |r| r.seq += 1),
        ("prev_hash", |r| r.prev_hash = "1".repeat(64)),
        ("time", |r| r.event.time = r.event.time.checked_add(jiff::SignedDuration::from_millis(1)).unwrap()),
        ("request_id", |r| r.event.request_id = None),
        ("session", |r| r.event.session = Some("other".into())),
        ("principal", |r| r.event.principal = "token:admin".into()),
        ("transport", |r| r.event.transport = "stdio".into()),
        ("remote_addr", |r| r.event.remote_addr = None),
        ("method", |r| r.event.method = "tools/list".into()),
        ("tool", |r| r.event.tool = Some("fs_write".into())),
        ("arguments", |r| r.event.arguments["n"] = json!(99)),
        ("decision", |r| r.event.decision = Decision::Deny),
        ("outcome", |r| r.event.outcome = Outcome::Denied),
        ("detail", |r| r.event.detail = Some("x".into())),
        ("duration_us", |r| r.event.duration_us += 1),
    ];
    for (field, edit) in edits {
        let mut record = AuditRecord::seal(event(1), 1, GENESIS_HASH);
        assert!(record.is_intact());
        edit(&mut record);
        assert!(!record.is_intact(), "editing {field} went unnoticed");
    }
}

#[test]
fn seal_truncates_time_to_milliseconds() {
    let mut event = event(1);
    event.time = "2025-06-01T12:34:56.789999999Z".parse().unwrap();
    let record = AuditRecord::seal(event, 1, GENESIS_HASH);
    assert_eq!(record.event.time, "2025-06-01T12:34:56.789Z".parse::<jiff::Timestamp>().unwrap());
    let back: AuditRecord = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
    assert_eq!(back, record);
}

#[test]
fn time_format_table() {
    let cases = [
        ("2025-06-01T12:34:56.789Z", Ok("2025-06-01T12:34:56.789Z")),
        ("2025-06-01T12:34:56.000Z", Ok("2025-06-01T12:34:56.000Z")),
        ("2025-06-01T12:34:56Z", Err(())),
        ("2025-06-01T12:34:56.7Z", Err(())),
        ("2025-06-01T12:34:56.7891Z", Err(())),
        ("2025-06-01T14:34:56.789+02:00", Err(())),
        ("2025-06-01 12:34:56.789Z", Err(())),
        ("yesterday", Err(())),
    ];
    for (text, expected) in cases {
        let parsed = parse_time_for_test(text);
        assert_eq!(parsed.as_deref().map_err(|_| ()), expected, "{text}");
    }
}

fn parse_time_for_test(text: &str) -> Result<String, String> {
    crate::parse_time(text).map(crate::format_time)
}

#[test]
fn deserialization_is_strict() {
    let line = serde_json::to_value(AuditRecord::seal(event(1), 1, GENESIS_HASH)).unwrap();
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit)] = &[
        ("unknown field", |v| v["note"] = json!("approved")),
        ("missing field", |v| drop(v.as_object_mut().unwrap().remove("principal"))),
        ("time without milliseconds", |v| v["time"] = json!("2025-06-15T15:06:40Z")),
        ("unknown decision", |v| v["decision"] = json!("maybe")),
        ("unknown outcome", |v| v["outcome"] = json!("fine")),
        ("float duration", |v| v["duration_us"] = json!(1.5)),
    ];
    for (what, edit) in cases {
        let mut value = line.clone();
        edit(&mut value);
        assert!(serde_json::from_value::<AuditRecord>(value).is_err(), "{what} was accepted");
    }
    assert!(serde_json::from_value::<AuditRecord>(line).is_ok());
}

#[test]
fn keys_are_written_in_sorted_order_at_every_level() {
    let mut event = event(4);
    event.arguments = json!({"b": [{"y": 1, "x": 2}], "a": null, "é": 1, "Z": 0});
    let record = AuditRecord::seal(event, 4, GENESIS_HASH);
    let value: Value = serde_json::from_str(&record.json_line()).unwrap();
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "the record's own keys");
    assert_eq!(keys.len(), 16);
    assert!(record.json_line().starts_with(r#"{"arguments":{"Z":0,"a":null,"b":[{"x":2,"y":1}],"é":1},"#));
    // Any serializer gets the same shape (here serde_json's Value).
    assert_eq!(serde_json::to_value(&record).unwrap(), value);
}

#[test]
fn a_sealed_record_line_is_the_serialized_record() {
    let mut event = event(5);
    // Keys that also appear among the record's own, inside the arguments and the detail:
    // the line's `hash` goes after the record's own `duration_us`, nowhere else.
    event.arguments = json!({"duration_us": 1, "method": {"hash": "x"}, "zz": "\"method\":"});
    event.detail = Some(r#","hash":"forged","#.into());
    let sealed = SealedRecord::seal(event.clone(), 5, "cd".repeat(32));
    let record = AuditRecord::seal(event, 5, "cd".repeat(32));
    assert_eq!(sealed.record(), &record);
    assert_eq!(sealed.line(), serde_json::to_string(&record).unwrap());
    assert_eq!(sealed.line(), record.json_line());
    let back: AuditRecord = serde_json::from_str(sealed.line()).unwrap();
    assert!(back.is_intact());
    assert_eq!(back, record);
    // A record edited after sealing gets its own line, not the sealed one.
    let mut edited = record.clone();
    edited.event.principal = "token:admin".into();
    let forged = SealedRecord::from(edited.clone());
    assert_eq!(forged.line(), serde_json::to_string(&edited).unwrap());
    assert!(!serde_json::from_str::<AuditRecord>(forged.line()).unwrap().is_intact());
}

#[test]
fn the_toolbox_is_hashed_in_key_order_when_set_and_absent_otherwise() {
    let mut event = event(4);
    event.toolbox = Some("upstream:github".into());
    let record = AuditRecord::seal(event, 4, GENESIS_HASH);
    let canonical = record.canonical_json();
    assert!(
        canonical.contains(r#""tool":"system_time","toolbox":"upstream:github","transport":"streamable_http"}"#),
        "{canonical}"
    );
    let line = serde_json::to_string(&record).unwrap();
    let back: AuditRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back, record);
    assert!(back.is_intact(), "the toolbox is covered by the hash and read back");
    let mut tampered = back.clone();
    tampered.event.toolbox = Some("upstream:other".into());
    assert!(!tampered.is_intact(), "editing the toolbox breaks the hash");
    let without = AuditRecord::seal(crate::test_support::event(4), 4, GENESIS_HASH);
    assert!(!without.canonical_json().contains("toolbox"), "records without one keep their old form");
}

#[test]
fn the_task_is_hashed_in_key_order_when_set_and_absent_otherwise() {
    let mut event = event(5);
    event.task = Some("7c1e4bb0-task".into());
    let record = AuditRecord::seal(event, 5, GENESIS_HASH);
    let canonical = record.canonical_json();
    assert!(canonical.contains(r#""session":"session-1","task":"7c1e4bb0-task","time":"#), "{canonical}");
    let line = serde_json::to_string(&record).unwrap();
    let back: AuditRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back, record);
    assert!(back.is_intact(), "the task is covered by the hash and read back");
    let mut tampered = back.clone();
    tampered.event.task = None;
    assert!(!tampered.is_intact(), "removing the task breaks the hash");
    let without = AuditRecord::seal(crate::test_support::event(5), 5, GENESIS_HASH);
    assert!(!without.canonical_json().contains("\"task\""), "records without one keep their old form");
}

#[test]
fn the_trace_id_is_hashed_in_key_order_when_set_and_absent_otherwise() {
    let mut event = event(6);
    event.toolbox = Some("upstream:github".into());
    event.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    let record = AuditRecord::seal(event, 6, GENESIS_HASH);
    let canonical = record.canonical_json();
    assert!(
        canonical.contains(concat!(
            r#""toolbox":"upstream:github","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","#,
            r#""transport":"streamable_http"}"#
        )),
        "{canonical}"
    );
    let line = serde_json::to_string(&record).unwrap();
    let value: Value = serde_json::from_str(&line).unwrap();
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert!(keys.is_sorted(), "{keys:?}");
    let back: AuditRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back, record);
    assert!(back.is_intact(), "the trace id is covered by the hash and read back");
    let mut tampered = back.clone();
    tampered.event.trace_id = Some("00000000000000000000000000000001".into());
    assert!(!tampered.is_intact(), "editing the trace id breaks the hash");
    tampered.event.trace_id = None;
    assert!(!tampered.is_intact(), "removing the trace id breaks the hash");
    let without = AuditRecord::seal(crate::test_support::event(6), 6, GENESIS_HASH);
    // (and so their hash: `canonical_form_and_hash_are_stable` pins one)
    assert!(!without.canonical_json().contains("trace_id"), "records without one keep their old form");
}
