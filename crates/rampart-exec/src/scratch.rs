//! Scratch directories: one per MCP session under `exec.scratch_root`, kept between the
//! session's calls and deleted when the session ends (or has been idle for
//! `exec.scratch_idle_s`); one per call, deleted after it, when there is no session.
//!
//! The root is mode 0711 (the sandbox's user can reach its own directory but not list the
//! others); each directory is mode 0700, owned by the sandbox's user when the server is
//! root, and named `s-<uuid>` or `c-<uuid>` so that session ids never become paths.
//! Deletion never follows links (std's `remove_dir_all`).

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

/// The scratch directories of one toolbox.
#[derive(Debug)]
pub(crate) struct ScratchDirs {
    root: PathBuf,
    /// The owner given to new directories (the sandbox's user) when the server is root.
    owner: Option<(u32, u32)>,
    idle: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, SessionDir>,
    /// Per-call directories in use.
    calls: HashSet<PathBuf>,
}

#[derive(Debug)]
struct SessionDir {
    path: PathBuf,
    last_used: Instant,
    active: usize,
    /// Cancelled when the session ends: its running calls stop.
    ended: CancellationToken,
}

/// A scratch directory in use by one call.
#[derive(Debug)]
pub(crate) struct Lease {
    dirs: Arc<ScratchDirs>,
    path: PathBuf,
    session: Option<String>,
    /// Cancelled when the session ends.
    pub(crate) ended: CancellationToken,
    done: bool,
}

impl ScratchDirs {
    /// Prepares `root` (made if missing, mode 0711).
    pub(crate) fn new(root: &Path, owner: Option<(u32, u32)>, idle: Duration) -> std::io::Result<Self> {
        std::fs::DirBuilder::new().recursive(true).mode(0o711).create(root)?;
        let metadata = std::fs::symlink_metadata(root)?;
        if !metadata.is_dir() {
            return Err(std::io::Error::other("not a directory (or a symbolic link)"));
        }
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))?;
        if owner.is_some() {
            reachable_by_others(root)?;
        }
        Ok(Self { root: root.to_path_buf(), owner, idle, state: Mutex::default() })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The directory for a call of `session` (made on its first call), or a fresh one.
    pub(crate) fn acquire(self: &Arc<Self>, session: Option<&str>) -> std::io::Result<Lease> {
        let lease = |path: PathBuf, session: Option<String>, ended: CancellationToken| Lease {
            dirs: self.clone(),
            path,
            session,
            ended,
            done: false,
        };
        let Some(session) = session else {
            let path = self.make("c")?;
            self.state().calls.insert(path.clone());
            return Ok(lease(path, None, CancellationToken::new()));
        };
        let mut state = self.state();
        if let Some(dir) = state.sessions.get_mut(session)
            && dir.path.is_dir()
        {
            dir.active += 1;
            dir.last_used = Instant::now();
            return Ok(lease(dir.path.clone(), Some(session.to_owned()), dir.ended.clone()));
        }
        let path = self.make("s")?;
        let ended = CancellationToken::new();
        let dir = SessionDir { path: path.clone(), last_used: Instant::now(), active: 1, ended: ended.clone() };
        state.sessions.insert(session.to_owned(), dir);
        Ok(lease(path, Some(session.to_owned()), ended))
    }

    /// Makes `<root>/<prefix>-<uuid>`, mode 0700, owned by the sandbox's user.
    fn make(&self, prefix: &str) -> std::io::Result<PathBuf> {
        let path = self.root.join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(path)
    }

    /// Ends `session`: its running calls are cancelled and its directory deleted.
    pub(crate) fn end_session(&self, session: &str) {
        let Some(dir) = self.state().sessions.remove(session) else { return };
        dir.ended.cancel();
        remove_tree(&dir.path);
    }

    /// Ends every session (server shutdown).
    pub(crate) fn end_all_sessions(&self) {
        let sessions: Vec<String> = self.state().sessions.keys().cloned().collect();
        for session in sessions {
            self.end_session(&session);
        }
    }

    /// Deletes the directories of sessions idle longer than the idle time, and leftovers
    /// of earlier servers as old; returns how many were deleted.
    pub(crate) fn expire_idle(&self) -> usize {
        let expired: Vec<SessionDir> = {
            let mut state = self.state();
            let idle: Vec<String> = state
                .sessions
                .iter()
                .filter(|(_, dir)| dir.active == 0 && dir.last_used.elapsed() > self.idle)
                .map(|(id, _)| id.clone())
                .collect();
            idle.iter().filter_map(|id| state.sessions.remove(id)).collect()
        };
        for dir in &expired {
            dir.ended.cancel();
            remove_tree(&dir.path);
        }
        expired.len() + self.remove_leftovers()
    }

    /// `s-*`/`c-*` directories no session or call of ours uses, unchanged for the idle time.
    fn remove_leftovers(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return 0 };
        let in_use: HashSet<PathBuf> = {
            let state = self.state();
            state.sessions.values().map(|dir| dir.path.clone()).chain(state.calls.iter().cloned()).collect()
        };
        let old = |path: &Path| {
            std::fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| SystemTime::now().duration_since(modified).unwrap_or_default() > self.idle)
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if (name.starts_with("s-") || name.starts_with("c-")) && !in_use.contains(&path) && old(&path) {
                remove_tree(&path);
                removed += 1;
            }
        }
        removed
    }
}

impl Lease {
    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the lease, deleting the directory (on a blocking thread) if nothing keeps it.
    pub(crate) async fn release(mut self) {
        if let Some(path) = self.finish() {
            let _ = tokio::task::spawn_blocking(move || remove_tree(&path)).await;
        }
    }

    /// The bookkeeping of the end of the lease; the directory to delete, if any.
    fn finish(&mut self) -> Option<PathBuf> {
        if std::mem::replace(&mut self.done, true) {
            return None;
        }
        let mut state = self.dirs.state();
        match &self.session {
            None => {
                state.calls.remove(&self.path);
                Some(self.path.clone())
            }
            Some(session) => match state.sessions.get_mut(session) {
                Some(dir) if dir.path == self.path => {
                    dir.active -= 1;
                    dir.last_used = Instant::now();
                    None
                }
                // The session ended (or expired) while this call ran.
                _ => Some(self.path.clone()),
            },
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(path) = self.finish() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || remove_tree(&path))),
                Err(_) => remove_tree(&path),
            }
        }
    }
}

/// Deletes `path` and everything under it without following links; a directory the
/// program made unwritable (`chmod 000`) is opened up first when we own it.
pub(crate) fn remove_tree(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => {
            open_up(path);
            if let Err(error) = std::fs::remove_dir_all(path) {
                tracing::warn!(path = %path.display(), %error, "cannot delete an exec scratch directory");
            }
        }
    }
}

fn open_up(path: &Path) {
    let Ok(metadata) = std::fs::symlink_metadata(path) else { return };
    if !metadata.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            open_up(&entry.path());
        }
    }
}

/// Refuses a root the sandbox's user could not reach (an ancestor without `o+x`).
fn reachable_by_others(root: &Path) -> std::io::Result<()> {
    for ancestor in root.ancestors() {
        let mode = std::fs::metadata(ancestor)?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(std::io::Error::other(format!(
                "'{}' is not searchable by other users (mode {:o}), so the sandbox's user cannot reach its \
                 scratch directory",
                ancestor.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}
