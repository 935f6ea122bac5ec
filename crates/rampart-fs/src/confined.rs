//! Every filesystem access, made through a root's directory handle.
//!
//! Confinement is by construction, in two steps:
//!
//! 1. **Resolve** a located path with cap-std's `Dir::canonicalize` on the root's handle
//!    (`openat2` with `RESOLVE_BENEATH` on Linux, a manual resolver elsewhere): symbolic
//!    links are followed but a lookup that would leave the root fails, so the result is
//!    the real path of the object *inside* the root, with no `.`, `..` or links. That path
//!    is what the policy is asked about.
//! 2. **Open** that resolved path one component at a time from the root's handle with
//!    `O_NOFOLLOW` (`open_dir_nofollow`, `FollowSymlinks::No`). A link planted between the
//!    two steps (a directory swapped for a symlink) makes the open fail: what is opened is
//!    exactly what was authorized, and never anything outside the root.
//!
//! File types are checked on the opened handle (`fstat`), files are opened with
//! `O_NONBLOCK | O_NOCTTY` so a FIFO or terminal cannot hang or capture the server, and
//! writes go to a fresh temporary file in the target's directory handle, are fsynced and
//! renamed over the target, then the directory is fsynced.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{Dir, File, FileType, FileTypeExt, Metadata, OpenOptions, OpenOptionsExt};
use rampart_core::{Access, CallContext, Denied, ToolError};
use rustix::fs::{OFlags, RenameFlags};

use crate::config::RootMode;
use crate::roots::{Located, Root};

/// Why a filesystem operation failed, in words the caller can act on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FsError {
    /// The path lies outside every allowed directory.
    #[error("access denied: {path} is outside the allowed directories ({allowed})")]
    OutsideRoots { path: String, allowed: String },
    /// A relative path with several roots.
    #[error("the relative path '{path}' is ambiguous: give an absolute path under one of {allowed}")]
    Ambiguous { path: String, allowed: String },
    /// Resolving the path would leave its root (a symbolic link or `..` leading out).
    #[error("access denied: {path} leads outside the allowed directory {root} (through a symbolic link)")]
    Escapes { path: String, root: String },
    /// A write under a root configured `mode = "read"`.
    #[error("access denied: {path} is under the read-only root {root} (fs.roots mode = \"read\")")]
    ReadOnlyRoot { path: String, root: String },
    /// The path text itself is unusable.
    #[error("invalid path '{}': {reason}", path.escape_debug())]
    InvalidPath { path: String, reason: &'static str },
    /// A FIFO, socket, device, directory… where a regular file is needed.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    /// A file over `fs.max_read_bytes`.
    #[error(
        "{path} is {size} bytes, over the read limit of {limit} bytes (fs.max_read_bytes); read part of it with head or tail"
    )]
    TooLarge { path: String, size: u64, limit: u64 },
    /// The operating system refused.
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    /// The policy refused.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Anything else the caller can act on.
    #[error("{0}")]
    Failed(String),
    /// The client cancelled the call.
    #[error("cancelled")]
    Cancelled,
}

impl From<FsError> for ToolError {
    fn from(error: FsError) -> Self {
        match error {
            FsError::Denied(denied) => ToolError::Denied(denied),
            FsError::Cancelled => ToolError::Cancelled,
            FsError::OutsideRoots { .. }
            | FsError::Ambiguous { .. }
            | FsError::Escapes { .. }
            | FsError::ReadOnlyRoot { .. }
            | FsError::InvalidPath { .. }
            | FsError::NotRegular { .. }
            | FsError::TooLarge { .. }
            | FsError::Io { .. }
            | FsError::Failed(_) => ToolError::Failed(error.to_string()),
        }
    }
}

/// `root` joined with `rel`, as text (`/` when both are empty).
pub(crate) fn join_display(root: &Path, rel: &Path) -> String {
    if rel.as_os_str().is_empty() { root.display().to_string() } else { root.join(rel).display().to_string() }
}

/// cap-std reports an escape as a `PermissionDenied` error of its own (no OS error code).
fn is_escape(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::PermissionDenied && error.raw_os_error().is_none()
}

/// An [`FsError`] for `error` on `path` under `root`.
pub(crate) fn io_error(path: String, root: &Root, error: io::Error) -> FsError {
    if is_escape(&error) {
        FsError::Escapes { path, root: root.display() }
    } else {
        FsError::Io { path, source: error }
    }
}

/// A path resolved inside its root: symbolic links followed (never out of the root), no
/// `.` or `..`; only normal components relative to the root's real path.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) root: Arc<Root>,
    pub(crate) rel: PathBuf,
}

impl Resolved {
    /// The absolute real path, as the policy sees it.
    pub(crate) fn absolute(&self) -> String {
        join_display(&self.root.path, &self.rel)
    }

    /// Asks the root's mode and then the policy for `access` to this path. Call before
    /// every access.
    pub(crate) fn authorize(&self, context: &CallContext, access: Access) -> Result<(), FsError> {
        let path = self.absolute();
        if access == Access::ReadWrite && self.root.mode == RootMode::Read {
            return Err(FsError::ReadOnlyRoot { path, root: self.root.display() });
        }
        if self.root.path.join(&self.rel).to_str().is_none() {
            return Err(FsError::InvalidPath { path, reason: "the path is not valid UTF-8" });
        }
        context.authorize(&rampart_core::Request::fs(path, access))?;
        Ok(())
    }

    /// Opens this directory, one component at a time, following no symbolic link.
    pub(crate) fn open_dir(&self) -> Result<Dir, FsError> {
        walk(&self.root.dir, &self.rel).map_err(|error| self.error(error))
    }

    /// Opens the parent directory (following no symbolic link) and returns it with the
    /// final component's name.
    pub(crate) fn open_parent(&self) -> Result<(Dir, OsString), FsError> {
        let name = self.rel.file_name().ok_or_else(|| FsError::Failed(format!("{} is a root", self.absolute())))?;
        let parent = self.rel.parent().unwrap_or(Path::new(""));
        let dir = walk(&self.root.dir, parent).map_err(|error| self.error(error))?;
        Ok((dir, name.to_owned()))
    }

    /// This path with `name` appended (a child of a resolved directory).
    pub(crate) fn child(&self, name: &OsStr) -> Self {
        Self { root: self.root.clone(), rel: self.rel.join(name) }
    }

    /// An [`FsError`] about this path.
    pub(crate) fn error(&self, error: io::Error) -> FsError {
        io_error(self.absolute(), &self.root, error)
    }
}

/// Opens `rel` below `root` one component at a time with `O_NOFOLLOW`.
fn walk(root: &Dir, rel: &Path) -> io::Result<Dir> {
    let mut dir = root.try_clone()?;
    for component in rel.components() {
        let Component::Normal(name) = component else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "unexpected path component"));
        };
        dir = dir.open_dir_nofollow(name)?;
    }
    Ok(dir)
}

/// The real path of `rel` inside `root`, following symbolic links but never out of it.
fn canonical(located: &Located, rel: &Path) -> Result<PathBuf, FsError> {
    let root = &located.root;
    let target = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let canonical = root.dir.canonicalize(target).map_err(|error| io_error(located.display(), root, error))?;
    let mut clean = PathBuf::new();
    for component in canonical.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(FsError::Escapes { path: located.display(), root: root.display() });
            }
        }
    }
    Ok(clean)
}

/// Resolves an existing path, following every symbolic link (inside the root).
pub(crate) fn resolve(located: &Located) -> Result<Resolved, FsError> {
    Ok(Resolved { root: located.root.clone(), rel: canonical(located, &located.rel)? })
}

/// Resolves the parent and keeps the final component as it is (not followed): for
/// operations on a name itself (rename, create).
pub(crate) fn resolve_parent(located: &Located) -> Result<Resolved, FsError> {
    let name = located.rel.file_name().ok_or_else(|| {
        FsError::Failed(format!("{} is a root directory; name something inside it", located.display()))
    })?;
    let parent = canonical(located, located.rel.parent().unwrap_or(Path::new("")))?;
    Ok(Resolved { root: located.root.clone(), rel: parent.join(name) })
}

/// Resolves a path to write: the real file when it exists (a link inside the root is
/// followed to its target), else the parent's real path plus the new name.
pub(crate) fn resolve_for_write(located: &Located) -> Result<Resolved, FsError> {
    match resolve(located) {
        Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => resolve_parent(located),
        other => other,
    }
}

/// Resolves a directory to create: the deepest existing ancestor's real path plus the
/// names still to create, which are returned too.
pub(crate) fn resolve_for_create_dir(located: &Located) -> Result<(Resolved, Vec<OsString>), FsError> {
    let names: Vec<&OsStr> = located.rel.iter().collect();
    for existing in (0..=names.len()).rev() {
        let prefix: PathBuf = names[..existing].iter().collect();
        match canonical(located, &prefix) {
            Ok(real) => {
                let missing: Vec<OsString> = names[existing..].iter().map(|name| (*name).to_owned()).collect();
                let rel = missing.iter().fold(real, |path, name| path.join(name));
                return Ok((Resolved { root: located.root.clone(), rel }, missing));
            }
            Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Err(FsError::Failed(format!("{}: no existing ancestor inside the root", located.display())))
}

/// How a file type reads in a message.
pub(crate) fn describe(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Opens the regular file `name` in `dir` for reading, without following a link, and
/// without blocking on a FIFO; refuses anything but a regular file, judged on the handle.
pub(crate) fn open_regular(dir: &Dir, name: &OsStr, resolved: &Resolved) -> Result<(File, Metadata), FsError> {
    // Checked before opening too, so that a device is never even opened in the common
    // case; the check on the handle below is the one that counts.
    let before = dir.symlink_metadata(name).map_err(|error| resolved.error(error))?;
    if !before.is_file() {
        return Err(FsError::NotRegular { path: resolved.absolute(), kind: describe(before.file_type()) });
    }
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No).custom_flags(nonblocking_flags());
    let file = dir.open_with(name, &options).map_err(|error| resolved.error(error))?;
    let metadata = file.metadata().map_err(|error| resolved.error(error))?;
    if !metadata.is_file() {
        return Err(FsError::NotRegular { path: resolved.absolute(), kind: describe(metadata.file_type()) });
    }
    Ok((file, metadata))
}

fn nonblocking_flags() -> i32 {
    (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32
}

/// Reads all of `file` (whose size is `size`), refusing more than `limit` bytes, also
/// when the file grows while it is read.
pub(crate) fn read_capped(file: File, size: u64, limit: u64, resolved: &Resolved) -> Result<Vec<u8>, FsError> {
    if size > limit {
        return Err(FsError::TooLarge { path: resolved.absolute(), size, limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|error| resolved.error(error))?;
    let read = bytes.len() as u64;
    if read > limit {
        return Err(FsError::TooLarge { path: resolved.absolute(), size: read, limit });
    }
    Ok(bytes)
}

const CHUNK: usize = 64 * 1024;

/// The first `lines` lines of `file`, reading at most `limit` bytes.
pub(crate) fn read_head(mut file: File, lines: usize, limit: u64, resolved: &Resolved) -> Result<String, FsError> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0; CHUNK];
    let mut newlines = 0;
    while newlines < lines {
        if bytes.len() as u64 > limit {
            return Err(lines_too_long("first", lines, limit, resolved));
        }
        let budget = usize::try_from(limit.saturating_add(1) - bytes.len() as u64).unwrap_or(CHUNK).min(CHUNK);
        let read = file.read(&mut chunk[..budget]).map_err(|error| resolved.error(error))?;
        if read == 0 {
            break;
        }
        newlines += chunk[..read].iter().filter(|byte| **byte == b'\n').count();
        bytes.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(split_lines(&text).take(lines).collect::<Vec<_>>().join("\n"))
}

/// The last `lines` lines of `file` (whose size is `size`), reading backwards at most
/// `limit` bytes.
pub(crate) fn read_tail(
    mut file: File,
    size: u64,
    lines: usize,
    limit: u64,
    resolved: &Resolved,
) -> Result<String, FsError> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut position = size;
    let mut newlines = 0;
    let mut total = 0u64;
    // `lines` newlines (a newline ending the file does not count) delimit the last
    // `lines` complete lines.
    while position > 0 && newlines < lines {
        if total > limit {
            return Err(lines_too_long("last", lines, limit, resolved));
        }
        let length = position.min(CHUNK as u64).min(limit.saturating_add(1) - total);
        position -= length;
        let mut chunk = vec![0; usize::try_from(length).unwrap_or(CHUNK)];
        file.seek(SeekFrom::Start(position)).map_err(|error| resolved.error(error))?;
        file.read_exact(&mut chunk).map_err(|error| resolved.error(error))?;
        let skip_final = usize::from(chunks.is_empty() && chunk.last() == Some(&b'\n'));
        newlines += chunk[..chunk.len() - skip_final].iter().filter(|byte| **byte == b'\n').count();
        total += length;
        chunks.push(chunk);
    }
    let bytes: Vec<u8> = chunks.into_iter().rev().flatten().collect();
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = split_lines(&text).collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

fn lines_too_long(which: &str, lines: usize, limit: u64, resolved: &Resolved) -> FsError {
    FsError::Failed(format!(
        "the {which} {lines} lines of {} are longer than the read limit of {limit} bytes (fs.max_read_bytes)",
        resolved.absolute()
    ))
}

/// Lines of `text` without their `\n` or `\r\n`; a final newline does not start a line.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).filter(|_| !text.is_empty())
}

/// Replaces (or creates) `name` in `dir` with `content`, atomically: a temporary file in
/// the same directory, written and fsynced, renamed over `name`, then the directory
/// fsynced. A crash at any point leaves the old content or the new, never a mix. A
/// symbolic link at `name` is replaced, never written through.
pub(crate) fn write_atomic(dir: &Dir, name: &OsStr, content: &[u8], resolved: &Resolved) -> Result<(), FsError> {
    let error = |error: io::Error| resolved.error(error);
    let permissions = match dir.symlink_metadata(name) {
        Ok(metadata) if metadata.is_file() => Some(metadata.permissions()),
        Ok(metadata) if metadata.is_symlink() => None,
        Ok(metadata) => {
            return Err(FsError::NotRegular { path: resolved.absolute(), kind: describe(metadata.file_type()) });
        }
        Err(missing) if missing.kind() == io::ErrorKind::NotFound => None,
        Err(other) => return Err(error(other)),
    };
    let temporary = format!(".rampart-{}.tmp", uuid::Uuid::new_v4().simple());
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).follow(FollowSymlinks::No);
    let file = dir.open_with(&temporary, &options).map_err(error)?;
    let written = fill(file, content, permissions).and_then(|()| dir.rename(&temporary, dir, name));
    if let Err(failure) = written {
        let _ = dir.remove_file(&temporary);
        return Err(error(failure));
    }
    sync_dir(dir).map_err(error)
}

fn fill(mut file: File, content: &[u8], permissions: Option<cap_std::fs::Permissions>) -> io::Result<()> {
    if let Some(permissions) = permissions {
        file.set_permissions(permissions)?;
    }
    file.write_all(content)?;
    file.sync_all()
}

/// fsyncs the directory itself, so a rename in it survives a crash.
fn sync_dir(dir: &Dir) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.read(true).maybe_dir(true);
    dir.open_with(".", &options)?.sync_all()
}

/// Creates each of `names` below `base` in turn (an existing directory is fine) and opens
/// it without following links.
pub(crate) fn create_dirs(base: Dir, names: &[OsString]) -> io::Result<()> {
    let mut dir = base;
    for name in names {
        match dir.create_dir(name) {
            Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(error),
            _ => {}
        }
        dir = dir.open_dir_nofollow(name)?;
    }
    Ok(())
}

/// Renames `from` in `from_dir` to `to` in `to_dir`, failing if `to` exists. Both names
/// are single components, so the rename stays inside the two handles.
pub(crate) fn rename_noreplace(from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // Filesystems without RENAME_NOREPLACE: check, then rename (a narrow race that can
        // only replace an entry inside the roots, never reach outside).
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => match to_dir.symlink_metadata(to) {
            Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => from_dir.rename(from, to_dir, to),
            Err(error) => Err(error),
        },
        Err(errno) => Err(errno.into()),
    }
}

/// What a directory entry is, without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Directory,
    File,
    Symlink,
    Other,
}

/// One directory entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: OsString,
    pub(crate) kind: EntryKind,
    /// Size in bytes (of the link itself for a symbolic link); 0 when unknown.
    pub(crate) size: u64,
}

impl Entry {
    /// The name as text (invalid UTF-8 replaced).
    pub(crate) fn display_name(&self) -> String {
        self.name.to_string_lossy().into_owned()
    }
}

/// Up to `limit` entries of `dir`, sorted by name, and whether there were more.
pub(crate) fn list(dir: &Dir, limit: usize) -> io::Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in dir.entries()? {
        if entries.len() == limit {
            truncated = true;
            break;
        }
        let entry = entry?;
        let metadata = entry.metadata().ok();
        let kind = match entry.file_type() {
            Ok(file_type) if file_type.is_dir() => EntryKind::Directory,
            Ok(file_type) if file_type.is_file() => EntryKind::File,
            Ok(file_type) if file_type.is_symlink() => EntryKind::Symlink,
            _ => EntryKind::Other,
        };
        entries.push(Entry { name: entry.file_name(), kind, size: metadata.map_or(0, |m| m.len()) });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((entries, truncated))
}
