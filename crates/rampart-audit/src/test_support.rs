//! Helpers shared by the unit tests: events, chains and scratch directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering},
};

use serde_json::json;

use crate::{AuditEvent, AuditRecord, Decision, Outcome};

/// A plausible `tools/call` event; `n` varies the request id, time and arguments.
pub(crate) fn event(n: u64) -> AuditEvent {
    AuditEvent {
        time: jiff::Timestamp::from_millisecond(1_750_000_000_000 + i64::try_from(n).unwrap()).unwrap(),
        request_id: Some(format!("req-{n}")),
        session: Some("session-1".into()),
        principal: "token:ci".into(),
        transport: "streamable_http".into(),
        remote_addr: Some("127.0.0.1:50000".into()),
        method: "tools/call".into(),
        tool: Some("system_time".into()),
        toolbox: None,
        task: None,
        trace_id: None,
        arguments: json!({"timezone": "Europe/Paris", "n": n, "nested": {"b": 1.5, "a": [true, null]}}),
        decision: Decision::Allow,
        outcome: Outcome::Ok,
        detail: None,
        duration_us: 1_234 + n,
    }
}

/// A valid chain of `len` records, seq 1..=len.
pub(crate) fn chain(len: u64) -> Vec<AuditRecord> {
    let mut records: Vec<AuditRecord> = Vec::new();
    for seq in 1..=len {
        let prev_hash = records.last().map_or(crate::GENESIS_HASH.to_string(), |last| last.hash.clone());
        records.push(AuditRecord::seal(event(seq), seq, prev_hash));
    }
    records
}

/// `records` as a sink takes them.
pub(crate) fn sealed(records: &[AuditRecord]) -> Vec<crate::SealedRecord> {
    records.iter().cloned().map(Into::into).collect()
}

/// A fresh empty directory under the system temp dir, removed when dropped.
pub(crate) struct ScratchDir(pub(crate) PathBuf);

impl ScratchDir {
    pub(crate) fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!("rampart-audit-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
