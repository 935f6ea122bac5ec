//! Roots: an open directory handle per allowed directory, which root a client's path
//! belongs to (component by component, never by string prefix), and narrowing by the
//! client's MCP roots.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::config::{RootConfig, RootMode, clean_absolute};
use crate::confined::{self, FsError};

/// The longest path, in bytes, a client may give (Linux's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// One allowed directory and the handle every access under it goes through.
#[derive(Debug)]
pub(crate) struct Root {
    /// The directory's real path (symbolic links resolved), as policy sees it.
    pub(crate) path: PathBuf,
    /// Other absolute spellings clients may use for it (the configured path when it
    /// differs from the real one, e.g. `/tmp` on a system where it is a symlink).
    aliases: Vec<PathBuf>,
    /// Whether writes are allowed under it.
    pub(crate) mode: RootMode,
    /// The handle; lookups through it cannot leave the directory (cap-std).
    pub(crate) dir: Dir,
}

impl Root {
    /// Opens the configured root `config`.
    pub(crate) fn open(config: &RootConfig) -> std::io::Result<Self> {
        let configured = clean_absolute(&config.path);
        let path = std::fs::canonicalize(&configured)?;
        let dir = Dir::open_ambient_dir(&path, ambient_authority())?;
        let aliases = if configured == path { Vec::new() } else { vec![configured] };
        Ok(Self { path, aliases, mode: config.mode, dir })
    }

    /// The root's real path as text.
    pub(crate) fn display(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// The spellings of this root a client path is matched against.
    fn prefixes(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.path.as_path()).chain(self.aliases.iter().map(PathBuf::as_path))
    }

    /// The part of absolute, normalized `path` under this root, if it is under it.
    fn relative<'p>(&self, path: &'p Path) -> Option<(usize, &'p Path)> {
        self.prefixes()
            .filter_map(|prefix| path.strip_prefix(prefix).ok().map(|rest| (prefix.components().count(), rest)))
            .max_by_key(|(depth, _)| *depth)
    }
}

/// A client path placed in a root: relative, lexically normalized, only normal components.
/// Not yet resolved: symbolic links in it are still to be followed (inside the root).
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) root: Arc<Root>,
    pub(crate) rel: PathBuf,
}

impl Located {
    /// The absolute path as the client meant it (lexically), for messages.
    pub(crate) fn display(&self) -> String {
        confined::join_display(&self.root.path, &self.rel)
    }
}

/// Places `input` in one of `roots`.
///
/// Absolute paths must lie under a root (the deepest one when roots nest); relative paths
/// are taken relative to the root when there is exactly one. `.` and `..` are applied
/// lexically first (as the reference server does); `..` above the root is refused here,
/// and symbolic links are resolved later, inside the root's handle.
pub(crate) fn locate(roots: &[Arc<Root>], input: &str) -> Result<Located, FsError> {
    let invalid = |reason: &'static str| FsError::InvalidPath { path: input.to_owned(), reason };
    if input.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if input.contains('\0') {
        return Err(invalid("the path contains a NUL byte"));
    }
    if input.len() > MAX_PATH_BYTES {
        return Err(invalid("the path is longer than 4096 bytes"));
    }
    let path = Path::new(input);
    if path.is_absolute() {
        let normalized = normalize(path.components()).ok_or_else(|| invalid("'..' leads above '/'"))?;
        let absolute = Path::new("/").join(&normalized);
        let found = roots
            .iter()
            .filter_map(|root| root.relative(&absolute).map(|(depth, rel)| (depth, root, rel)))
            .max_by_key(|(depth, ..)| *depth);
        return match found {
            Some((_, root, rel)) => Ok(Located { root: root.clone(), rel: rel.to_path_buf() }),
            None => Err(FsError::OutsideRoots { path: absolute.display().to_string(), allowed: allowed(roots) }),
        };
    }
    let [root] = roots else {
        return Err(FsError::Ambiguous { path: input.to_owned(), allowed: allowed(roots) });
    };
    match normalize(path.components()) {
        Some(rel) => Ok(Located { root: root.clone(), rel }),
        None => Err(FsError::OutsideRoots { path: confined::join_display(&root.path, path), allowed: allowed(roots) }),
    }
}

/// Applies `.` and `..` lexically; `None` when `..` climbs above the start.
fn normalize<'a>(components: impl Iterator<Item = Component<'a>>) -> Option<PathBuf> {
    let mut parts: Vec<&OsStr> = Vec::new();
    for component in components {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.iter().collect())
}

/// The roots, comma-separated, for messages.
pub(crate) fn allowed(roots: &[Arc<Root>]) -> String {
    if roots.is_empty() {
        return "none".into();
    }
    roots.iter().map(|root| root.display()).collect::<Vec<_>>().join(", ")
}

/// The configured roots narrowed to the client's roots (`file://` URIs from
/// `roots/list`): for each overlapping pair, the deeper of the two. Never wider than
/// `configured`; client roots that overlap none are dropped.
pub(crate) fn narrow(configured: &[Arc<Root>], client: &[PathBuf]) -> Vec<Arc<Root>> {
    let mut effective: Vec<Arc<Root>> = Vec::new();
    for wanted in client {
        let Some(wanted) = normalize(wanted.components()).map(|rel| Path::new("/").join(rel)) else { continue };
        for root in configured {
            let narrowed = if root.prefixes().any(|prefix| prefix.starts_with(&wanted)) {
                Some(root.clone())
            } else {
                root.relative(&wanted).and_then(|(_, rel)| open_below(root, rel, &wanted).map(Arc::new))
            };
            if let Some(narrowed) = narrowed
                && !effective.iter().any(|known| known.path == narrowed.path)
            {
                effective.push(narrowed);
            }
        }
    }
    effective
}

/// A root for the directory `rel` below `root`, opened through `root`'s handle (so it
/// cannot lead out of it) without following symbolic links once resolved.
fn open_below(root: &Arc<Root>, rel: &Path, wanted: &Path) -> Option<Root> {
    let located = Located { root: root.clone(), rel: rel.to_path_buf() };
    let resolved = confined::resolve(&located).ok()?;
    let dir = resolved.open_dir().ok()?;
    let path = root.path.join(&resolved.rel);
    let aliases = if path == wanted { Vec::new() } else { vec![wanted.to_path_buf()] };
    Some(Root { path, aliases, mode: root.mode, dir })
}
