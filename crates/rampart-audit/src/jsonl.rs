//! The JSONL audit file: [`JsonlSink`] appends one record per line, [`read_jsonl`] and
//! [`JsonlRecords`] read them back.
//!
//! The file is opened with `O_APPEND` (created with mode 0600 on Unix), each batch is
//! written with one `write` and flushed with `fdatasync` before the writer is told it is
//! stored. A crash in the middle of a write leaves a last line without its newline (a
//! *torn tail*); [`JsonlSink::open`] moves those bytes to `<file>.torn` and cuts the file
//! back to its last complete line, so nothing is ever chained onto half a record. Such a
//! record was never acknowledged: the writer had not returned from `fdatasync`.
//!
//! Several processes may append to one file (a server, and `rampart token …` recording
//! what it did): each holds an exclusive advisory lock (`flock`) on the file while it
//! checks the file's length and writes a batch, and while [`JsonlSink::open`] reads or
//! repairs the tail. A sink that finds the file longer than it left it re-reads the last
//! record and reports [`SinkError::Conflict`]; the writer then chains its batch after the
//! other process's records.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;

use crate::{AuditRecord, AuditSink, SealedRecord, SinkError};

/// Bytes read per step when looking for the last line from the end of the file.
const TAIL_CHUNK: u64 = 64 * 1024;

/// An append-only JSONL audit file: one [`AuditRecord`] (its serde JSON) per line.
///
/// Processes appending to the same file take turns under its lock (see the module
/// docs); within one process, use one `JsonlSink` per file. The sink refuses a record
/// that does not continue the file's last record.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    state: Arc<Mutex<FileState>>,
    torn_tail: Option<TornTail>,
}

#[derive(Debug)]
struct FileState {
    file: File,
    /// Length of the complete records: where the next record starts.
    len: u64,
    /// A failed write may have left bytes past `len`, to cut before the next write.
    dirty: bool,
    last: Option<AuditRecord>,
}

/// A partial last line found (and removed) when the file was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Byte offset where the partial line started (the file's new length).
    pub offset: u64,
    /// How many bytes it had.
    pub bytes: u64,
    /// Where they were saved (`<file>.torn`, appended to).
    pub saved_to: PathBuf,
}

impl JsonlSink {
    /// Opens (or creates, mode 0600) the audit file at `path` and reads its last record.
    /// A torn tail is saved to `<path>.torn`, cut off, logged as a warning and reported
    /// by [`Self::torn_tail`].
    ///
    /// # Errors
    /// [`SinkError::Io`] when the file cannot be opened, read or repaired;
    /// [`SinkError::Corrupt`] when the last complete line is not a valid record.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_file(&path)).await.map_err(SinkError::backend)??
        };
        let (state, torn_tail) = opened;
        if let Some(torn) = &torn_tail {
            tracing::warn!(
                path = %path.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                saved_to = %torn.saved_to.display(),
                "audit file ended in a partial record (a write cut short); it was moved aside",
            );
        }
        Ok(Self { path, state: Arc::new(Mutex::new(state)), torn_tail })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The partial last line removed by [`Self::open`], if there was one.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    async fn write(&self, records: Vec<SealedRecord>) -> Result<(), SinkError> {
        let state = Arc::clone(&self.state);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            state.append(&records).map_err(|error| match error {
                AppendError::Io(source) => SinkError::Io { path, source },
                AppendError::OutOfOrder { seq, last_seq } => SinkError::OutOfOrder { seq, last_seq },
                AppendError::Conflict { seq } => SinkError::Conflict { seq },
                AppendError::Corrupt { offset, message } => SinkError::Corrupt { path, offset, message },
            })
        })
        .await
        .map_err(SinkError::backend)?
    }
}

#[async_trait]
impl AuditSink for JsonlSink {
    async fn append(&self, record: &SealedRecord) -> Result<(), SinkError> {
        self.write(vec![record.clone()]).await
    }

    async fn append_batch(&self, records: &[SealedRecord]) -> Result<(), SinkError> {
        self.write(records.to_vec()).await
    }

    async fn last(&self) -> Result<Option<AuditRecord>, SinkError> {
        Ok(self.state.lock().unwrap_or_else(PoisonError::into_inner).last.clone())
    }
}

enum AppendError {
    Io(io::Error),
    OutOfOrder {
        seq: u64,
        last_seq: u64,
    },
    /// Another process appended since this sink last wrote; the state is re-read.
    Conflict {
        seq: u64,
    },
    /// The file's last record, re-read after another process appended, is not valid.
    Corrupt {
        offset: u64,
        message: String,
    },
}

impl FileState {
    /// Under the file's lock: [`Self::append_locked`].
    fn append(&mut self, records: &[SealedRecord]) -> Result<(), AppendError> {
        self.file.lock().map_err(AppendError::Io)?;
        let result = self.append_locked(records);
        // Closing the file would release it too; an unlock that fails leaves it held.
        let _ = self.file.unlock();
        result
    }

    /// Writes `records` as lines with one `write` and one `fdatasync`; on failure cuts the
    /// file back to its previous length (now or before the next append). A file longer
    /// than this sink left it has records of another process: the last one is re-read and
    /// nothing is written ([`AppendError::Conflict`]).
    fn append_locked(&mut self, records: &[SealedRecord]) -> Result<(), AppendError> {
        if !self.dirty {
            let len = self.file.metadata().map_err(AppendError::Io)?.len();
            if len != self.len {
                self.reload(len)?;
                return Err(AppendError::Conflict { seq: records.first().map_or(0, |record| record.seq) });
            }
        }
        self.check_continues(records)?;
        if self.dirty {
            self.cut_back().map_err(AppendError::Io)?;
        }
        let mut lines = String::new();
        for record in records {
            lines.push_str(record.line());
            lines.push('\n');
        }
        let written = self.file.write_all(lines.as_bytes()).and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            self.dirty = true;
            // Best effort now; retried before the next append if it fails too.
            let _ = self.cut_back();
            return Err(AppendError::Io(error));
        }
        self.len += lines.len() as u64;
        if let Some(last) = records.last() {
            self.last = Some(last.record().clone());
        }
        Ok(())
    }

    fn check_continues(&self, records: &[SealedRecord]) -> Result<(), AppendError> {
        let mut head = self.last.as_ref().map_or((0, crate::GENESIS_HASH), |last| (last.seq, last.hash.as_str()));
        for record in records {
            if record.seq != head.0.saturating_add(1) || record.prev_hash != head.1 {
                let last_seq = self.last.as_ref().map_or(0, |last| last.seq);
                return Err(AppendError::OutOfOrder { seq: record.seq, last_seq });
            }
            head = (record.seq, record.hash.as_str());
        }
        Ok(())
    }

    /// Re-reads the last record of the file, now `len` bytes long.
    fn reload(&mut self, len: u64) -> Result<(), AppendError> {
        let tail = read_tail(&mut self.file, len).map_err(AppendError::Io)?;
        if tail.torn.is_some() {
            // Another process's write was cut short; its next open moves the bytes aside.
            let message = "a partial record at the end (another writer's write cut short)".to_owned();
            return Err(AppendError::Corrupt { offset: tail.complete_len, message });
        }
        self.last = match tail.last_line {
            Some((offset, line)) => Some(
                serde_json::from_slice(&line)
                    .map_err(|error| AppendError::Corrupt { offset, message: error.to_string() })?,
            ),
            None => None,
        };
        self.len = tail.complete_len;
        Ok(())
    }

    fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_all()?;
        self.dirty = false;
        Ok(())
    }
}

/// Opens the file, repairs a torn tail and reads the last record, under the file's lock
/// (another process's write in progress is not a torn tail).
fn open_file(path: &Path) -> Result<(FileState, Option<TornTail>), SinkError> {
    let io_error = |source| SinkError::Io { path: path.to_path_buf(), source };
    let file = append_options().read(true).open(path).map_err(io_error)?;
    file.lock().map_err(io_error)?;
    let opened = open_locked(path, file);
    if let Ok((state, _)) = &opened {
        let _ = state.file.unlock();
    }
    opened
}

fn open_locked(path: &Path, mut file: File) -> Result<(FileState, Option<TornTail>), SinkError> {
    let io_error = |source| SinkError::Io { path: path.to_path_buf(), source };
    let metadata = file.metadata().map_err(io_error)?;
    warn_if_readable_by_others(path, &metadata);
    let len = metadata.len();
    let tail = read_tail(&mut file, len).map_err(io_error)?;
    let torn_tail = match tail.torn {
        Some(bytes) => Some(move_torn_tail(path, &mut file, tail.complete_len, &bytes).map_err(io_error)?),
        None => None,
    };
    let last =
        match tail.last_line {
            Some((offset, line)) => Some(serde_json::from_slice::<AuditRecord>(&line).map_err(|error| {
                SinkError::Corrupt { path: path.to_path_buf(), offset, message: error.to_string() }
            })?),
            None => None,
        };
    Ok((FileState { file, len: tail.complete_len, dirty: false, last }, torn_tail))
}

/// The file is created 0600; one that already existed may be more open than that.
fn warn_if_readable_by_others(path: &Path, metadata: &std::fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "audit file is accessible to other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata);
}

fn append_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Saves the bytes after the last newline to `<path>.torn` and cuts them off.
fn move_torn_tail(path: &Path, file: &mut File, complete_len: u64, bytes: &[u8]) -> io::Result<TornTail> {
    let mut saved_to = path.as_os_str().to_owned();
    saved_to.push(".torn");
    let saved_to = PathBuf::from(saved_to);
    let mut aside = append_options().open(&saved_to)?;
    aside.write_all(bytes)?;
    aside.write_all(b"\n")?;
    aside.sync_all()?;
    file.set_len(complete_len)?;
    file.sync_all()?;
    Ok(TornTail { offset: complete_len, bytes: bytes.len() as u64, saved_to })
}

/// The end of the file: its last complete line and any partial line after it.
struct Tail {
    /// Length up to and including the last newline.
    complete_len: u64,
    /// The last complete line (without its newline) and its offset.
    last_line: Option<(u64, Vec<u8>)>,
    /// Bytes after the last newline, if any.
    torn: Option<Vec<u8>>,
}

/// Reads backwards from `len` until the last complete line is in hand.
fn read_tail(file: &mut File, len: u64) -> io::Result<Tail> {
    let mut start = len;
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let newlines: Vec<usize> = buffer.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
        let enough = newlines.len() >= 2;
        if enough || start == 0 {
            return Ok(split_tail(start, &buffer, &newlines));
        }
        let step = TAIL_CHUNK.min(start);
        start -= step;
        let mut chunk = vec![0; usize::try_from(step).map_err(io::Error::other)?];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buffer);
        buffer = chunk;
    }
}

/// `buffer` holds the file from byte `start` to its end, with newlines at `newlines`;
/// either it has two newlines or `start` is 0.
fn split_tail(start: u64, buffer: &[u8], newlines: &[usize]) -> Tail {
    let at = |index: usize| start + index as u64;
    let (complete_end, torn) = match newlines.last() {
        Some(&last) if last + 1 == buffer.len() => (Some(last), None),
        Some(&last) => (Some(last), Some(buffer[last + 1..].to_vec())),
        None if buffer.is_empty() => (None, None),
        None => (None, Some(buffer.to_vec())),
    };
    let Some(end) = complete_end else {
        return Tail { complete_len: start, last_line: None, torn };
    };
    let line_start = newlines.iter().rev().nth(1).map_or(0, |previous| previous + 1);
    Tail { complete_len: at(end + 1), last_line: Some((at(line_start), buffer[line_start..end].to_vec())), torn }
}

/// Why a JSONL audit file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be opened or read.
    #[error("cannot read audit file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A line is not a valid audit record.
    #[error("audit file {path} line {line}: not a valid audit record: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The last line has no newline: a write was cut short (the sink repairs this when it
    /// opens the file).
    #[error("audit file {path} line {line}: partial record at the end of the file (a write was cut short)")]
    TornTail {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
    },
}

/// Reads every record of a JSONL audit file, in file order. Blocking: in async code run
/// it on `spawn_blocking`. For large files stream with [`JsonlRecords`] instead.
///
/// # Errors
/// The first unreadable line, by number: see [`ReadError`].
pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Vec<AuditRecord>, ReadError> {
    JsonlRecords::open(path)?.collect()
}

/// The records of a JSONL audit file, one line at a time (blocking IO). Feed them to a
/// [`Verifier`](crate::Verifier) to verify a file of any size.
#[derive(Debug)]
pub struct JsonlRecords {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
    done: bool,
}

impl JsonlRecords {
    /// Opens the file for reading.
    ///
    /// # Errors
    /// [`ReadError::Io`] when it cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| ReadError::Io { path: path.clone(), source })?;
        Ok(Self { path, reader: BufReader::new(file), line: 0, done: false })
    }

    fn next_record(&mut self) -> Option<Result<AuditRecord, ReadError>> {
        let mut bytes = Vec::new();
        match self.reader.read_until(b'\n', &mut bytes) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(source) => return Some(Err(ReadError::Io { path: self.path.clone(), source })),
        }
        self.line += 1;
        let (path, line) = (self.path.clone(), self.line);
        if bytes.pop() != Some(b'\n') {
            return Some(Err(ReadError::TornTail { path, line }));
        }
        Some(serde_json::from_slice(&bytes).map_err(|error| ReadError::Malformed {
            path,
            line,
            message: error.to_string(),
        }))
    }
}

impl Iterator for JsonlRecords {
    type Item = Result<AuditRecord, ReadError>;

    /// The next record; after the first error, `None`.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_record();
        self.done = matches!(item, None | Some(Err(_)));
        item
    }
}

#[cfg(test)]
mod tests;
