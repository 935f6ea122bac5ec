//! `rampart audit verify`, `audit checkpoint` and `audit public-key`: the audit log
//! checked against its chain, its stored columns and its signed checkpoints, and the
//! signed head an operator keeps elsewhere.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rampart_audit::{
    AuditRecord, ChainHead, Checkpoint, CheckpointSigner, JsonlRecords, VerifySummary, public_key_path,
};
use rampart_config::Config;
use rampart_server::{
    AuditSource, AuditVerifyError, ChainVerified, CheckpointCheck, CheckpointFiles, VerifyProblem, check_columns,
    record_from_row, verify_audit_log,
};
use serde_json::{Value, json};

use crate::output::{Report, Status, View};

/// The checkpoints' part of the JSON report.
fn checkpoints_json(check: &CheckpointCheck, summary: Option<&VerifySummary>) -> Value {
    let (public_key, key_id) = match &check.public_key {
        Some((path, key)) => (json!(path), json!(key.key_id())),
        None => (Value::Null, Value::Null),
    };
    json!({
        "file": check.file,
        "public_key": public_key,
        "key_id": key_id,
        "checked": check.checked,
        "last_checkpoint_seq": summary.map(|s| s.confirmed),
    })
}

/// `rampart audit verify`: 0 intact, 1 tampered (or a checkpoint refused), 2 the log or
/// the checkpoints cannot be read. The checkpoint file and public key: the flags, else the
/// configured ones (a configured checkpoint file that does not exist means no
/// checkpoints; a named one that does not exist is an error).
pub(crate) async fn verify(
    config: &Config,
    source: &AuditSource,
    checkpoints: Option<PathBuf>,
    public_key: Option<PathBuf>,
) -> anyhow::Result<Report> {
    let configured = CheckpointFiles::configured(config);
    let files = CheckpointFiles {
        named: checkpoints.is_some(),
        file: checkpoints.unwrap_or(configured.file),
        public_key: public_key.unwrap_or(configured.public_key),
    };
    let verification = match verify_audit_log(source, files).await {
        Ok(verification) => verification,
        Err(AuditVerifyError::NoPublicKey { file, public_key }) => anyhow::bail!(
            "checkpoint file {} needs its public key, and there is none at {}: pass --public-key FILE \
             (`rampart audit public-key` prints it where the signing key is)",
            file.display(),
            public_key.display()
        ),
        Err(error) => return Err(error.into()),
    };
    let check = &verification.checkpoints;
    Ok(match verification.outcome {
        Ok(chains) => report_chains(check, chains),
        Err(problem) => failure(check, problem),
    })
}

/// The report of a log that verified: the default chain's figures as before, and each
/// chain's when there are several (a cluster's replicas).
fn report_chains(check: &CheckpointCheck, mut chains: Vec<ChainVerified>) -> Report {
    if chains.len() <= 1 {
        let Some(ChainVerified { summary, .. }) = chains.pop() else {
            return failure(check, VerifyProblem::Tampered("no chain to verify".into()));
        };
        return intact(check, &summary);
    }
    let records: u64 = chains.iter().map(|chain| chain.summary.records).sum();
    let each: Vec<Value> = chains
        .iter()
        .map(|ChainVerified { chain, summary }| {
            json!({
                "chain": chain,
                "records": summary.records,
                "last_seq": summary.last.seq,
                "last_hash": summary.last.hash,
                "last_checkpoint_seq": summary.confirmed,
            })
        })
        .collect();
    let data =
        json!({ "intact": true, "records": records, "chains": each, "checkpoints": checkpoints_json(check, None) });
    let mut text = format!("audit log intact: {records} records in {} hash chains\n", chains.len());
    for ChainVerified { chain, summary } in &chains {
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

/// The report of one chain that verified.
fn intact(check: &CheckpointCheck, summary: &VerifySummary) -> Report {
    let data = json!({
        "intact": true,
        "records": summary.records,
        "last_seq": summary.last.seq,
        "last_hash": summary.last.hash,
        "checkpoints": checkpoints_json(check, Some(summary)),
    });
    let text = format!(
        "audit log intact: {} records, last seq {} hash {}\n{}",
        summary.records,
        summary.last.seq,
        summary.last.hash,
        check.describe(summary)
    );
    Report::lines(vec![data], View::Text(text))
}

/// The report of a log that did not verify (exit status 1).
fn failure(check: &CheckpointCheck, problem: VerifyProblem) -> Report {
    let (headline, problem) = match problem {
        VerifyProblem::Tampered(problem) => ("audit log TAMPERED", problem),
        VerifyProblem::CheckpointsRefused(problem) => ("audit checkpoints REFUSED", problem),
    };
    let data = json!({ "intact": false, "error": problem, "checkpoints": checkpoints_json(check, None) });
    Report::lines(vec![data], View::Text(format!("{headline}: {problem}"))).with_status(Status::Failure)
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
