//! Verifying the audit log, written once for `rampart audit verify` and the console's
//! Audit page: every record against its hash chain and, in the store, against its columns
//! ([`push_row`]); every chain of the store and every chain a signed checkpoint names (a
//! chain deleted whole is one its checkpoints say existed); the checkpoints against their
//! public key first.
//!
//! The result is data ([`AuditVerification`]); each caller words it (the command line's
//! text and `--json`, the console's page).

use std::path::PathBuf;

use rampart_audit::{
    CheckpointError, CheckpointPublicKey, JsonlRecords, KeyError, ReadError, VerifiedCheckpoint, Verifier,
    VerifySummary, public_key_path, verify_checkpoints,
};
use rampart_config::Config;
use rampart_store::{AuditQuery, Backend, Store, StoreError};

use crate::{RowProblem, push_row};

/// Rows read per query while verifying the store.
const PAGE: i64 = 1000;

/// Where the audit log is: a JSON-lines file (`[audit] file`) or the store.
#[derive(Debug, Clone)]
pub enum AuditSource {
    /// `[audit] file`.
    File(PathBuf),
    /// The store's `audit_records`.
    Store(Store),
}

/// The hash chains of the log: the default one (`""`), and in a cluster's PostgreSQL
/// store each replica's own.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn audit_chains(source: &AuditSource) -> Result<Vec<String>, StoreError> {
    Ok(match source {
        AuditSource::Store(store) if store.backend() == Backend::Postgres => {
            let chains = store.audit_chains().await?;
            if chains.is_empty() { vec![String::new()] } else { chains }
        }
        _ => vec![String::new()],
    })
}

/// The checkpoint file and public key a verification reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFiles {
    /// The signed checkpoints, one JSON line each.
    pub file: PathBuf,
    /// Named by the operator (`--checkpoints`): it must exist. A configured file that
    /// does not exist means there are no checkpoints to check.
    pub named: bool,
    /// The PEM public key that verifies them.
    pub public_key: PathBuf,
}

impl CheckpointFiles {
    /// The configured ones: `[audit] checkpoints`, and the public key beside
    /// `[audit] signing_key` (`audit-signing-key.pub.pem` in the data directory).
    pub fn configured(config: &Config) -> Self {
        Self {
            file: config.audit_checkpoints(),
            named: false,
            public_key: public_key_path(&config.audit_signing_key()),
        }
    }
}

/// The checkpoints a verification used: which file, which public key, how many.
#[derive(Debug, Clone)]
pub struct CheckpointCheck {
    /// The checkpoint file.
    pub file: PathBuf,
    /// The public key and where it was read; `None`: there is no checkpoint file (at the
    /// configured place), nothing was checked.
    pub public_key: Option<(PathBuf, CheckpointPublicKey)>,
    /// How many signed checkpoints the file holds, each verified with the key.
    pub checked: usize,
}

impl CheckpointCheck {
    /// What was checked, e.g. `2 signed checkpoints in FILE checked with public key PATH
    /// (key id ID)`; `None` when there is no checkpoint file.
    pub fn checked_with(&self) -> Option<String> {
        let (path, key) = self.public_key.as_ref()?;
        Some(format!(
            "{} signed checkpoint{} in {} checked with public key {} (key id {})",
            self.checked,
            if self.checked == 1 { "" } else { "s" },
            self.file.display(),
            path.display(),
            key.key_id()
        ))
    }

    /// One line on the checkpoints of a chain that verified with `summary`.
    pub fn describe(&self, summary: &VerifySummary) -> String {
        let Some(checked) = self.checked_with() else {
            return format!(
                "checkpoints: none checked: no checkpoint file at {} (truncation and re-chaining are not detectable without one)",
                self.file.display()
            );
        };
        let mut line = format!("checkpoints: {checked}");
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
}

/// One hash chain that verified.
#[derive(Debug, Clone)]
pub struct ChainVerified {
    /// Its name (`""`: the default chain).
    pub chain: String,
    /// Its records, head and checkpoints.
    pub summary: VerifySummary,
}

/// Why a log did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyProblem {
    /// The log was tampered with: the first problem found (naming the chain when it is not
    /// the default one).
    Tampered(String),
    /// A checkpoint was refused (bad signature, malformed line) before the log was read.
    CheckpointsRefused(String),
}

/// What a verification found.
#[derive(Debug, Clone)]
pub struct AuditVerification {
    /// The checkpoints it used.
    pub checkpoints: CheckpointCheck,
    /// Every chain, each intact (the default chain first), or the first problem.
    pub outcome: Result<Vec<ChainVerified>, VerifyProblem>,
}

/// The log or the checkpoints could not be read: nothing was decided.
#[derive(Debug, thiserror::Error)]
pub enum AuditVerifyError {
    /// A checkpoint file exists (or was named) but its public key does not.
    #[error("checkpoint file {} needs its public key, and there is none at {}", file.display(), public_key.display())]
    NoPublicKey {
        /// The checkpoint file.
        file: PathBuf,
        /// Where the public key was looked for.
        public_key: PathBuf,
    },
    /// The public key cannot be read or is not one.
    #[error(transparent)]
    PublicKey(#[from] KeyError),
    /// The checkpoint file cannot be read.
    #[error(transparent)]
    Checkpoints(#[from] CheckpointError),
    /// The store cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The JSON-lines audit file cannot be read, or a line is not a record.
    #[error(transparent)]
    File(#[from] ReadError),
    /// A stored row's record is not a record.
    #[error(transparent)]
    Row(RowProblem),
}

/// Which checkpoints to use: none when the configured file does not exist.
///
/// # Errors
/// [`AuditVerifyError::NoPublicKey`], [`AuditVerifyError::PublicKey`].
fn checkpoint_check(files: CheckpointFiles) -> Result<CheckpointCheck, AuditVerifyError> {
    let CheckpointFiles { file, named, public_key } = files;
    if !named && !file.exists() {
        return Ok(CheckpointCheck { file, public_key: None, checked: 0 });
    }
    if !public_key.exists() {
        return Err(AuditVerifyError::NoPublicKey { file, public_key });
    }
    let key = CheckpointPublicKey::load(&public_key)?;
    Ok(CheckpointCheck { file, public_key: Some((public_key, key)), checked: 0 })
}

/// Verifies the log at `source` with the checkpoints of `files`.
///
/// # Errors
/// [`AuditVerifyError`]: the log, the checkpoint file or its key cannot be read. A log
/// that was tampered with, or a refused checkpoint, is a [`VerifyProblem`] in the result.
pub async fn verify_audit_log(
    source: &AuditSource,
    files: CheckpointFiles,
) -> Result<AuditVerification, AuditVerifyError> {
    let mut checkpoints = checkpoint_check(files)?;
    let mut verified = Vec::new();
    if let Some((_, key)) = &checkpoints.public_key {
        match verify_checkpoints(&checkpoints.file, key) {
            Ok(all) => {
                checkpoints.checked = all.len();
                verified = all;
            }
            Err(error @ CheckpointError::Io { .. }) => return Err(error.into()),
            Err(refused) => {
                let outcome = Err(VerifyProblem::CheckpointsRefused(refused.to_string()));
                return Ok(AuditVerification { checkpoints, outcome });
            }
        }
    }
    let outcome = verify_chains(source, &verified).await?;
    Ok(AuditVerification { checkpoints, outcome })
}

/// Every chain of `source` and of `verified`, each against its checkpoints.
async fn verify_chains(
    source: &AuditSource,
    verified: &[VerifiedCheckpoint],
) -> Result<Result<Vec<ChainVerified>, VerifyProblem>, AuditVerifyError> {
    let mut chains = audit_chains(source).await?;
    for checkpoint in verified {
        if !chains.iter().any(|chain| chain == checkpoint.chain()) {
            chains.push(checkpoint.chain().to_owned());
        }
    }
    let mut intact = Vec::new();
    for chain in chains {
        let mut verifier = Verifier::new().with_checkpoints(verified.iter().filter(|c| c.chain() == chain).cloned());
        let checked = match verify_records(source, &chain, &mut verifier).await? {
            Ok(()) => verifier.finish().map_err(|error| error.to_string()),
            Err(problem) => Err(problem),
        };
        match checked {
            Ok(summary) => intact.push(ChainVerified { chain, summary }),
            Err(problem) => return Ok(Err(VerifyProblem::Tampered(in_chain(&chain, &problem)))),
        }
    }
    if intact.is_empty() {
        return Ok(Err(VerifyProblem::Tampered("no chain to verify".into())));
    }
    Ok(Ok(intact))
}

/// `problem`, naming the chain when it is not the default one.
fn in_chain(chain: &str, problem: &str) -> String {
    if chain.is_empty() { problem.to_owned() } else { format!("chain {chain}: {problem}") }
}

/// Feeds every record of `chain` in `source` to `verifier`, with the store's columns. The
/// outer error: the log cannot be read; the inner one: the first problem found.
async fn verify_records(
    source: &AuditSource,
    chain: &str,
    verifier: &mut Verifier,
) -> Result<Result<(), String>, AuditVerifyError> {
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
                        Err(error @ RowProblem::Malformed { .. }) => return Err(AuditVerifyError::Row(error)),
                        Err(problem) => return Ok(Err(problem.to_string())),
                    }
                }
            }
        }
    }
    Ok(Ok(()))
}
