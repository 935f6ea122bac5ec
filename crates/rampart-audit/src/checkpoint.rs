//! Signed checkpoints: the chain's head (`seq`, `hash`) signed with the server's Ed25519
//! key and kept outside the audit store, as Certificate Transparency's signed tree heads
//! (RFC 9162 §4.10) or CloudTrail's digest files do.
//!
//! The hash chain alone shows an edited, removed or moved record, but not records cut off
//! at the end (the shorter chain is valid), nor a log rewritten and re-chained from the
//! first record by whoever can write the store. A checkpoint says "record `seq` had hash
//! `hash`", signed with a key the store's writers cannot read: a log that ends before a
//! checkpoint's `seq` was truncated, and a log whose record at that `seq` has another hash
//! was rewritten, however well its chain verifies
//! ([`Verifier::with_checkpoints`](crate::Verifier::with_checkpoints)).
//!
//! # The signed message
//! The UTF-8 bytes of four lines, each ending in `\n` ([`signed_message`]):
//!
//! ```text
//! rampart-audit-checkpoint/v1
//! <seq: decimal, no leading zeros>
//! <hash: the record's 64 lower-case hex digits>
//! <time: when the checkpoint was signed, RFC 3339 UTC, exactly 3 fractional digits>
//! ```
//!
//! The first line separates these signatures from any other use of the key (domain
//! separation) and names the format's version. The signature is pure Ed25519 (RFC 8032
//! §5.1.6) over those bytes, verified with RFC 8032 §5.1.7 plus `verify_strict`'s checks.
//!
//! # The checkpoint file
//! JSON lines, one [`Checkpoint`] per line, append-only: the writer opens it with
//! `O_APPEND`, takes an exclusive `flock` (a server and `rampart token` commands may both
//! append), writes one line and `fdatasync`s it. A line looks like
//!
//! ```text
//! {"seq":2000,"hash":"<64 hex>","time":"2026-12-03T19:26:14.515Z","key_id":"<16 hex>","signature":"<128 hex>"}
//! ```
//!
//! Lines are not necessarily in `seq` order (two processes), and a line cut short by a
//! crash is followed by a newline before the next one is written: reading reports it as
//! malformed, by line number. Blank lines are skipped.

use std::{
    fs::OpenOptions,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use ed25519_dalek::Signature;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{ChainHead, CheckpointPublicKey, CheckpointSigner, event::format_time};

/// The first line of every signed message: domain separation and version.
pub const CHECKPOINT_DOMAIN: &str = "rampart-audit-checkpoint/v1\n";

/// One signed checkpoint, as a line of the checkpoint file (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The sequence number of the record it covers (the chain's head then).
    pub seq: u64,
    /// That record's hash: 64 lower-case hex digits.
    pub hash: String,
    /// When it was signed, to the millisecond (RFC 3339 UTC, 3 fractional digits).
    #[serde(with = "crate::event::time_ms")]
    pub time: Timestamp,
    /// The signing key's id ([`CheckpointPublicKey::key_id`]): 16 lower-case hex digits.
    pub key_id: String,
    /// The Ed25519 signature of [`signed_message`]: 128 lower-case hex digits (64 bytes).
    pub signature: String,
    /// The hash chain it covers, when not the default one: a replica's own chain in a
    /// cluster's store. Signed with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// The bytes a checkpoint's signature covers (see the module docs); a checkpoint of
/// another chain than the default one has one more line, `chain NAME`.
pub fn signed_message(seq: u64, hash: &str, time: Timestamp, chain: Option<&str>) -> String {
    let mut message = format!("{CHECKPOINT_DOMAIN}{seq}\n{hash}\n{}\n", format_time(time));
    if let Some(chain) = chain {
        message.push_str(&format!("chain {chain}\n"));
    }
    message
}

impl Checkpoint {
    /// Signs `head` at `time` (truncated to whole milliseconds, the serialized precision).
    pub fn sign(signer: &CheckpointSigner, head: &ChainHead, time: Timestamp) -> Self {
        Self::sign_chain(signer, head, time, None)
    }

    /// Signs `head` of the chain `chain` (`None`: the default chain) at `time`.
    pub fn sign_chain(signer: &CheckpointSigner, head: &ChainHead, time: Timestamp, chain: Option<&str>) -> Self {
        let time = crate::event::truncate_to_ms(time);
        let signature = signer.sign(signed_message(head.seq, &head.hash, time, chain).as_bytes());
        let signature = signature.to_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        let (hash, key_id, chain) = (head.hash.clone(), signer.key_id().to_owned(), chain.map(str::to_owned));
        Self { seq: head.seq, hash, time, key_id, signature, chain }
    }

    /// The head it covers.
    pub fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: self.hash.clone() }
    }

    /// The checkpoint on one line, without newline: what the checkpoint file holds.
    pub fn json_line(&self) -> String {
        // Strings and integers only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the signature with `key`.
    ///
    /// # Errors
    /// [`SignatureProblem`]: another key's id, a malformed hash or signature, or a
    /// signature that does not verify (the checkpoint was edited or forged).
    pub fn verify(&self, key: &CheckpointPublicKey) -> Result<VerifiedCheckpoint, SignatureProblem> {
        if self.key_id != key.key_id() {
            return Err(SignatureProblem::OtherKey { key_id: self.key_id.clone(), expected: key.key_id().to_owned() });
        }
        if !is_lower_hex(&self.hash, 64) {
            return Err(SignatureProblem::MalformedHash);
        }
        let signature = decode_signature(&self.signature).ok_or(SignatureProblem::MalformedSignature)?;
        let message = signed_message(self.seq, &self.hash, self.time, self.chain.as_deref());
        if !key.verifies(message.as_bytes(), &signature) {
            return Err(SignatureProblem::Mismatch { key_id: key.key_id().to_owned() });
        }
        Ok(VerifiedCheckpoint { head: self.head(), time: self.time, chain: self.chain.clone().unwrap_or_default() })
    }
}

/// A checkpoint whose signature was verified ([`Checkpoint::verify`]): the only way to
/// make one, so that [`Verifier::with_checkpoints`](crate::Verifier::with_checkpoints)
/// never trusts an unchecked head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    head: ChainHead,
    time: Timestamp,
    chain: String,
}

impl VerifiedCheckpoint {
    /// The head it covers.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// When it was signed.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// The chain it covers (`""`: the default one).
    pub fn chain(&self) -> &str {
        &self.chain
    }
}

/// Why a checkpoint's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// It names another key than the one given.
    #[error("it names key {key_id}, not the public key given ({expected})")]
    OtherKey {
        /// The key id in the checkpoint.
        key_id: String,
        /// The key id of the public key given.
        expected: String,
    },
    /// Its hash is not 64 lower-case hex digits.
    #[error("its hash is not 64 lower-case hex digits")]
    MalformedHash,
    /// Its signature is not 128 lower-case hex digits.
    #[error("its signature is not 128 lower-case hex digits")]
    MalformedSignature,
    /// The signature does not verify.
    #[error("the signature does not verify with public key {key_id}: the checkpoint was edited or forged")]
    Mismatch {
        /// The key id of the public key given.
        key_id: String,
    },
}

/// Why a checkpoint file could not be written, read or verified.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file operation failed.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A line is not a checkpoint.
    #[error("checkpoint file {path} line {line}: not a valid checkpoint: {message}")]
    Malformed {
        /// The checkpoint file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A checkpoint's signature was refused.
    #[error("checkpoint at line {line} of {path} (record {seq}): bad signature: {problem}")]
    BadSignature {
        /// The checkpoint file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The record the checkpoint claims to cover.
        seq: u64,
        /// Why.
        #[source]
        problem: SignatureProblem,
    },
}

/// Appends `checkpoint` as one line to the file at `path` (created with mode 0644 and its
/// directory if missing): `O_APPEND`, under an exclusive `flock`, then `fdatasync`.
/// Blocking.
///
/// # Errors
/// [`CheckpointError::Io`].
pub fn append_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let io_error = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = options.open(path).map_err(io_error)?;
    file.lock().map_err(io_error)?;
    let written = append_locked(&mut file, checkpoint);
    // Closing the file releases the lock too.
    let _ = file.unlock();
    written.map_err(io_error)
}

fn append_locked(file: &mut std::fs::File, checkpoint: &Checkpoint) -> io::Result<()> {
    let mut line = String::new();
    let len = file.metadata()?.len();
    if len > 0 {
        // A line cut short by a crash stays a line of its own.
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.push('\n');
        }
    }
    line.push_str(&checkpoint.json_line());
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

/// Every checkpoint of the file at `path` with its 1-based line number, in file order.
/// Blocking.
///
/// # Errors
/// [`CheckpointError::Io`]; [`CheckpointError::Malformed`] for the first line that is not
/// a checkpoint.
pub fn read_checkpoints(path: &Path) -> Result<Vec<(u64, Checkpoint)>, CheckpointError> {
    let io_error = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let reader = BufReader::new(std::fs::File::open(path).map_err(io_error)?);
    let mut checkpoints = Vec::new();
    for (line, text) in (1..).zip(reader.split(b'\n')) {
        let text = text.map_err(io_error)?;
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let checkpoint = serde_json::from_slice(&text).map_err(|error| CheckpointError::Malformed {
            path: path.to_path_buf(),
            line,
            message: error.to_string(),
        })?;
        checkpoints.push((line, checkpoint));
    }
    Ok(checkpoints)
}

/// Reads the checkpoint file at `path` and verifies every signature with `key`. Blocking.
///
/// # Errors
/// As [`read_checkpoints`], and [`CheckpointError::BadSignature`] for the first
/// checkpoint whose signature is refused, by line and seq.
pub fn verify_checkpoints(path: &Path, key: &CheckpointPublicKey) -> Result<Vec<VerifiedCheckpoint>, CheckpointError> {
    read_checkpoints(path)?
        .into_iter()
        .map(|(line, checkpoint)| {
            checkpoint.verify(key).map_err(|problem| CheckpointError::BadSignature {
                path: path.to_path_buf(),
                line,
                seq: checkpoint.seq,
                problem,
            })
        })
        .collect()
}

fn is_lower_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_signature(hex: &str) -> Option<Signature> {
    if !is_lower_hex(hex, 128) {
        return None;
    }
    let mut bytes = [0u8; 64];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(Signature::from_bytes(&bytes))
}

#[cfg(test)]
mod tests;
