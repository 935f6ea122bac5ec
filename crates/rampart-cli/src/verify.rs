//! `rampart audit verify`, `audit checkpoint` and `audit public-key`: the audit log
//! checked against its chain, its stored columns and its signed checkpoints, and the
//! signed head an operator keeps elsewhere.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rampart_audit::{
    AuditRecord, ChainHead, Checkpoint, CheckpointError, CheckpointPublicKey, CheckpointSigner, JsonlRecords, Verifier,
    VerifySummary, public_key_path, verify_checkpoints,
};
use rampart_config::Config;
use rampart_server::{RowProblem, check_columns, push_row, record_from_row};
use rampart_store::AuditQuery;
use serde_json::{Value, json};

use crate::{
    admin::AuditSource,
    output::{Report, Status, View},
};

/// Rows read per query while verifying the store.
const PAGE: i64 = 1000;

/// The checkpoints a verification uses: which file, which public key, and what they said.
#[derive(Debug)]
struct CheckpointCheck {
    file: PathBuf,
    /// `None`: there is no checkpoint file (at the configured place), nothing to check.
    public_key: Option<(PathBuf, CheckpointPublicKey)>,
    checked: usize,
}

impl CheckpointCheck {
    /// What the text output says about the checkpoints once the log verified.
    fn describe(&self, summary: &VerifySummary) -> String {
        let Some((path, key)) = &self.public_key else {
            return format!(
                "checkpoints: none checked: no checkpoint file at {} (truncation and re-chaining are not detectable without one)",
                self.file.display()
            );
        };
        let mut line = format!(
            "checkpoints: {} signed checkpoint{} in {} checked with public key {} (key id {})",
            self.checked,
            if self.checked == 1 { "" } else { "s" },
            self.file.display(),
            path.display(),
            key.key_id()
        );
        if summary.confirmed > 0 {
            line.push_str(&format!("; the last covers record {}", summary.confirmed));
            let uncovered = summary.last.seq.saturating_sub(summary.confirmed);
            if uncovered > 0 {
                let records = if uncovered == 1 { "record" } else { "records" };
                line.push_str(&format!(" ({uncovered} {records} after it not covered yet)"));
            }
        }
        line
    }

    fn to_json(&self, summary: Option<&VerifySummary>) -> Value {
        let (public_key, key_id) = match &self.public_key {
            Some((path, key)) => (json!(path), json!(key.key_id())),
            None => (Value::Null, Value::Null),
        };
        json!({
            "file": self.file,
            "public_key": public_key,
            "key_id": key_id,
            "checked": self.checked,
            "last_checkpoint_seq": summary.map(|s| s.confirmed),
        })
    }
}

/// Which checkpoint file and public key to use: the flags, else the configured ones. A
/// configured checkpoint file that does not exist means no checkpoints; a named one that
/// does not exist is an error (when read).
///
/// # Errors
/// A checkpoint file without its public key, or a public key that cannot be read.
fn checkpoint_check(
    config: &Config,
    checkpoints: Option<PathBuf>,
    public_key: Option<PathBuf>,
) -> anyhow::Result<CheckpointCheck> {
    let named = checkpoints.is_some();
    let file = checkpoints.unwrap_or_else(|| config.audit_checkpoints());
    if !named && !file.exists() {
        return Ok(CheckpointCheck { file, public_key: None, checked: 0 });
    }
    let path = public_key.unwrap_or_else(|| public_key_path(&config.audit_signing_key()));
    if !path.exists() {
        anyhow::bail!(
            "checkpoint file {} needs its public key, and there is none at {}: pass --public-key FILE \
             (`rampart audit public-key` prints it where the signing key is)",
            file.display(),
            path.display()
        );
    }
    let key = CheckpointPublicKey::load(&path)?;
    Ok(CheckpointCheck { file, public_key: Some((path, key)), checked: 0 })
}

/// `rampart audit verify`: 0 intact, 1 tampered (or a checkpoint refused), 2 the log or
/// the checkpoints cannot be read.
pub(crate) async fn verify(
    config: &Config,
    source: &AuditSource,
    checkpoints: Option<PathBuf>,
    public_key: Option<PathBuf>,
) -> anyhow::Result<Report> {
    let mut check = checkpoint_check(config, checkpoints, public_key)?;
    let mut verified = Vec::new();
    if let Some((_, key)) = &check.public_key {
        match verify_checkpoints(&check.file, key) {
            Ok(checkpoints) => {
                check.checked = checkpoints.len();
                verified = checkpoints;
            }
            Err(error @ CheckpointError::Io { .. }) => return Err(error.into()),
            Err(refused) => return Ok(report(&check, Err(Problem::Checkpoints(refused.to_string())))),
        }
    }
    // Every chain of the store, and every chain a checkpoint names: a chain deleted whole
    // is one its checkpoints say existed.
    let mut chains = crate::admin::chains(source).await?;
    for checkpoint in &verified {
        if !chains.iter().any(|chain| chain == checkpoint.chain()) {
            chains.push(checkpoint.chain().to_owned());
        }
    }
    let mut summaries = Vec::new();
    for chain in chains {
        let mut verifier = Verifier::new().with_checkpoints(verified.iter().filter(|c| c.chain() == chain).cloned());
        let outcome = match verify_records(source, &chain, &mut verifier).await? {
            Ok(()) => verifier.finish().map_err(|error| Problem::Log(in_chain(&chain, &error.to_string()))),
            Err(problem) => Err(Problem::Log(in_chain(&chain, &problem))),
        };
        match outcome {
            Ok(summary) => summaries.push((chain, summary)),
            Err(problem) => return Ok(report(&check, Err(problem))),
        }
    }
    Ok(report_chains(&check, summaries))
}

/// `problem`, naming the chain when it is not the default one.
fn in_chain(chain: &str, problem: &str) -> String {
    if chain.is_empty() { problem.to_owned() } else { format!("chain {chain}: {problem}") }
}

/// The report of a log that verified: the default chain's figures as before, and each
/// chain's when there are several (a cluster's replicas).
fn report_chains(check: &CheckpointCheck, mut summaries: Vec<(String, VerifySummary)>) -> Report {
    if summaries.len() <= 1 {
        let Some((_, summary)) = summaries.pop() else {
            return report(check, Err(Problem::Log("no chain to verify".into())));
        };
        return report(check, Ok(summary));
    }
    let records: u64 = summaries.iter().map(|(_, summary)| summary.records).sum();
    let each: Vec<Value> = summaries
        .iter()
        .map(|(chain, summary)| {
            json!({
                "chain": chain,
                "records": summary.records,
                "last_seq": summary.last.seq,
                "last_hash": summary.last.hash,
                "last_checkpoint_seq": summary.confirmed,
            })
        })
        .collect();
    let data = json!({ "intact": true, "records": records, "chains": each, "checkpoints": check.to_json(None) });
    let mut text = format!("audit log intact: {records} records in {} hash chains\n", summaries.len());
    for (chain, summary) in &summaries {
        let name = if chain.is_empty() { "(default)" } else { chain.as_str() };
        text.push_str(&format!(
            "  {name}: {} records, last seq {} hash {}; {}\n",
            summary.records,
            summary.last.seq,
            summary.last.hash,
            check.describe(summary)
        ));
    }
    Report::lines(vec![data], View::Text(text))
}

/// Why a verification failed.
enum Problem {
    /// The log was tampered with.
    Log(String),
    /// A checkpoint was refused (bad signature, malformed line) before the log was read.
    Checkpoints(String),
}

/// Feeds every record of `source` to `verifier`, with the store's columns. The outer
/// error: the log cannot be read; the inner one: the first problem found.
async fn verify_records(
    source: &AuditSource,
    chain: &str,
    verifier: &mut Verifier,
) -> anyhow::Result<Result<(), String>> {
    match source {
        AuditSource::File(path) => {
            for record in JsonlRecords::open(path)? {
                if let Err(error) = verifier.push(&record?) {
                    return Ok(Err(error.to_string()));
                }
            }
        }
        AuditSource::Store(store) => {
            let mut after = 0;
            loop {
                let query = AuditQuery {
                    chain: Some(chain.to_owned()),
                    after_seq: Some(after),
                    limit: PAGE,
                    ..Default::default()
                };
                let page = store.audit_records(&query).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for row in &page {
                    match push_row(verifier, row) {
                        Ok(()) => {}
                        Err(error @ RowProblem::Malformed { .. }) => return Err(error.into()),
                        Err(problem) => return Ok(Err(problem.to_string())),
                    }
                }
            }
        }
    }
    Ok(Ok(()))
}

fn report(check: &CheckpointCheck, outcome: Result<VerifySummary, Problem>) -> Report {
    match outcome {
        Ok(summary) => {
            let data = json!({
                "intact": true,
                "records": summary.records,
                "last_seq": summary.last.seq,
                "last_hash": summary.last.hash,
                "checkpoints": check.to_json(Some(&summary)),
            });
            let text = format!(
                "audit log intact: {} records, last seq {} hash {}\n{}",
                summary.records,
                summary.last.seq,
                summary.last.hash,
                check.describe(&summary)
            );
            Report::lines(vec![data], View::Text(text))
        }
        Err(problem) => {
            let (headline, problem) = match problem {
                Problem::Log(problem) => ("audit log TAMPERED", problem),
                Problem::Checkpoints(problem) => ("audit checkpoints REFUSED", problem),
            };
            let data = json!({ "intact": false, "error": problem, "checkpoints": check.to_json(None) });
            Report::lines(vec![data], View::Text(format!("{headline}: {problem}"))).with_status(Status::Failure)
        }
    }
}

/// `rampart audit checkpoint`: the log's head, signed now with the configured key.
pub(crate) async fn checkpoint(config: &Config, source: &AuditSource, json: bool) -> anyhow::Result<Report> {
    let signer = signer(&config.audit_signing_key())?;
    let last = last_record(source).await?.context("the audit log is empty: there is no head to sign")?;
    let checkpoint = Checkpoint::sign(&signer, &ChainHead::of(&last), jiff::Timestamp::now());
    let line = checkpoint.json_line();
    let data = serde_json::from_str(&line).unwrap_or(Value::String(line.clone()));
    let report = Report::lines(vec![data], View::Text(line));
    Ok(if json {
        report
    } else {
        report.with_note(format!(
            "signed head: record {} hash {} (key id {}); keep this line where the log's writers cannot change it, \
             and check the log against it with `rampart audit verify --checkpoints FILE`:",
            checkpoint.seq, checkpoint.hash, checkpoint.key_id
        ))
    })
}

/// `rampart audit public-key`: the PEM that verifies the checkpoints.
pub(crate) fn public_key(config: &Config) -> anyhow::Result<Report> {
    let path = config.audit_signing_key();
    let key = signer(&path)?.public_key().clone();
    let file = public_key_path(&path);
    let data = json!({ "key_id": key.key_id(), "public_key": key.to_pem(), "file": file });
    Ok(Report::lines(vec![data], View::Text(key.to_pem())))
}

/// The configured signing key; never generated here (the server does, on its first run).
fn signer(path: &Path) -> anyhow::Result<CheckpointSigner> {
    if !path.exists() {
        anyhow::bail!(
            "no audit signing key at {}: the server generates it on its first run with checkpoints on \
             ([audit] checkpoint_every / checkpoint_interval_secs)",
            path.display()
        );
    }
    Ok(CheckpointSigner::load(path)?)
}

/// The log's last record, which must match its hash (and, in the store, its columns):
/// a checkpoint vouches for it.
async fn last_record(source: &AuditSource) -> anyhow::Result<Option<AuditRecord>> {
    let last = match source {
        AuditSource::File(path) => {
            let mut last = None;
            for record in JsonlRecords::open(path)? {
                last = Some(record?);
            }
            last
        }
        AuditSource::Store(store) => match store.last_audit("").await? {
            None => None,
            Some(row) => {
                let record = record_from_row(&row)?;
                check_columns(&row, &record)?;
                Some(record)
            }
        },
    };
    if let Some(record) = &last
        && !record.is_intact()
    {
        anyhow::bail!(
            "record {} was edited: its hash does not match its content; run `rampart audit verify`",
            record.seq
        );
    }
    Ok(last)
}
