//! Recursive walks for `directory_tree` and `search_files`: each directory is authorized
//! before it is listed and opened from its parent's handle without following links, so a
//! walk never leaves its root and never loops; the number of entries read is capped.

use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use cap_std::fs::Dir;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use rampart_core::{Access, CallContext};
use schemars::JsonSchema;
use serde::Serialize;

use crate::confined::{self, EntryKind, FsError, Resolved};

/// Directories deeper than this below the start of a walk are not entered.
const MAX_DEPTH: usize = 256;

/// One node of `directory_tree`'s JSON.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TreeEntry {
    /// The entry's name.
    name: String,
    /// `file` or `directory` (a symbolic link is a `file`: it is not followed).
    #[serde(rename = "type")]
    kind: &'static str,
    /// The directory's entries; absent for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    children: Option<Vec<TreeEntry>>,
}

/// Glob patterns (minimatch-like: `*` stays within a component, `**` crosses them, dot
/// files match) over paths relative to the start of the walk.
#[derive(Debug)]
pub(crate) struct Patterns(GlobSet);

impl Patterns {
    /// `directory_tree`'s excludes: a pattern without `*` also matches that name at any
    /// depth, and everything below it.
    pub(crate) fn tree_excludes(patterns: &[String]) -> Result<Self, FsError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            set.add(glob(pattern)?);
            if !pattern.contains('*') {
                set.add(glob(&format!("**/{pattern}"))?);
                set.add(glob(&format!("**/{pattern}/**"))?);
            }
        }
        Self::build(set)
    }

    /// Plain patterns, as `search_files` uses them.
    pub(crate) fn plain(patterns: &[String]) -> Result<Self, FsError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            set.add(glob(pattern)?);
        }
        Self::build(set)
    }

    fn build(set: GlobSetBuilder) -> Result<Self, FsError> {
        set.build().map(Self).map_err(|error| FsError::Failed(format!("invalid pattern: {error}")))
    }

    fn matches(&self, rel: &Path) -> bool {
        self.0.is_match(rel)
    }
}

fn glob(pattern: &str) -> Result<Glob, FsError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|error| FsError::Failed(format!("invalid pattern '{pattern}': {error}")))
}

/// The state of one walk.
pub(crate) struct Walk<'a> {
    context: &'a CallContext,
    excludes: Patterns,
    /// Entries that may still be read.
    remaining: usize,
    /// Whether the walk stopped early (entry cap or depth).
    pub(crate) truncated: bool,
}

impl<'a> Walk<'a> {
    /// A walk reading at most `limit` entries.
    pub(crate) fn new(context: &'a CallContext, excludes: Patterns, limit: usize) -> Self {
        Self { context, excludes, remaining: limit, truncated: false }
    }

    /// The tree below `start` (already authorized and opened as `dir`).
    pub(crate) fn tree(&mut self, start: &Resolved, dir: &Dir) -> Result<Vec<TreeEntry>, FsError> {
        self.tree_below(start, dir, Path::new(""), 0)
    }

    fn tree_below(&mut self, at: &Resolved, dir: &Dir, rel: &Path, depth: usize) -> Result<Vec<TreeEntry>, FsError> {
        let mut nodes = Vec::new();
        for entry in self.list(at, dir)? {
            let entry_rel = rel.join(&entry.name);
            if self.excludes.matches(&entry_rel) {
                continue;
            }
            let children = match entry.kind {
                EntryKind::Directory => Some(match self.enter(at, dir, &entry.name, depth)? {
                    Some((child, sub)) => self.tree_below(&child, &sub, &entry_rel, depth + 1)?,
                    None => Vec::new(),
                }),
                EntryKind::File | EntryKind::Symlink | EntryKind::Other => None,
            };
            let kind = if children.is_some() { "directory" } else { "file" };
            nodes.push(TreeEntry { name: entry.display_name(), kind, children });
        }
        Ok(nodes)
    }

    /// Absolute paths of entries below `start` whose relative path matches `pattern`.
    pub(crate) fn search(&mut self, start: &Resolved, dir: &Dir, pattern: &Patterns) -> Result<Vec<String>, FsError> {
        let mut found = Vec::new();
        self.search_below(start, dir, PathBuf::new(), 0, pattern, &mut found)?;
        Ok(found)
    }

    fn search_below(
        &mut self,
        at: &Resolved,
        dir: &Dir,
        rel: PathBuf,
        depth: usize,
        pattern: &Patterns,
        found: &mut Vec<String>,
    ) -> Result<(), FsError> {
        for entry in self.list(at, dir)? {
            let entry_rel = rel.join(&entry.name);
            if self.excludes.matches(&entry_rel) {
                continue;
            }
            if pattern.matches(&entry_rel) {
                found.push(at.child(&entry.name).absolute());
            }
            if entry.kind == EntryKind::Directory
                && let Some((child, sub)) = self.enter(at, dir, &entry.name, depth)?
            {
                self.search_below(&child, &sub, entry_rel, depth + 1, pattern, found)?;
            }
        }
        Ok(())
    }

    /// Lists `dir` within the remaining budget.
    fn list(&mut self, at: &Resolved, dir: &Dir) -> Result<Vec<confined::Entry>, FsError> {
        if self.context.is_cancelled() {
            return Err(FsError::Cancelled);
        }
        let (entries, truncated) = confined::list(dir, self.remaining).map_err(|error| at.error(error))?;
        self.remaining -= entries.len();
        self.truncated |= truncated;
        Ok(entries)
    }

    /// Authorizes and opens the subdirectory `name` of `at`; `None` when the policy, the
    /// depth cap or the operating system says no (a walk skips what it may not read).
    fn enter(
        &mut self,
        at: &Resolved,
        dir: &Dir,
        name: &std::ffi::OsStr,
        depth: usize,
    ) -> Result<Option<(Resolved, Dir)>, FsError> {
        if depth + 1 >= MAX_DEPTH {
            self.truncated = true;
            return Ok(None);
        }
        let child = at.child(name);
        match child.authorize(self.context, Access::Read) {
            Ok(()) => {}
            Err(FsError::Denied(_) | FsError::InvalidPath { .. }) => return Ok(None),
            Err(other) => return Err(other),
        }
        Ok(dir.open_dir_nofollow(name).ok().map(|sub| (child, sub)))
    }
}
