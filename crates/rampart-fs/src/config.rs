//! The `[fs]` table of `rampart.toml`: the roots the toolbox may touch and its size caps.
//!
//! Two stages, as everywhere in Rampart: [`FsConfig`] is the serde shape (unknown keys are
//! errors), and [`crate::FsToolbox::new`] validates it and opens a directory handle on each
//! root. Every error names the key it is about, e.g. `fs.roots[1].mode`.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// The default of `fs.max_read_bytes`: 10 MiB.
pub const DEFAULT_MAX_READ_BYTES: u64 = 10 * 1024 * 1024;
/// The default of `fs.max_list_entries`.
pub const DEFAULT_MAX_LIST_ENTRIES: usize = 10_000;

/// The `[fs]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// `[[fs.roots]]`: the directories the toolbox may touch. At least one.
    #[serde(default)]
    pub roots: Vec<RootConfig>,
    /// The largest file, in bytes, a read returns (also the cap of `head`/`tail` scans and
    /// of the combined size of `read_multiple_files`).
    #[serde(default = "default_max_read_bytes")]
    pub max_read_bytes: u64,
    /// The most directory entries one listing, tree or search reads.
    #[serde(default = "default_max_list_entries")]
    pub max_list_entries: usize,
}

/// One `[[fs.roots]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// Absolute path of the directory. Symbolic links in it are resolved once, at start.
    pub path: PathBuf,
    /// `read` (the default) or `read-write`.
    #[serde(default)]
    pub mode: RootMode,
}

/// What a root allows, whatever the caller's role says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootMode {
    /// Reads only: every write tool is refused under this root.
    #[default]
    Read,
    /// Reads and writes (still subject to the policy's fs scopes).
    ReadWrite,
}

impl RootMode {
    /// `read` or `read-write`, as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read-write",
        }
    }
}

fn default_max_read_bytes() -> u64 {
    DEFAULT_MAX_READ_BYTES
}

fn default_max_list_entries() -> usize {
    DEFAULT_MAX_LIST_ENTRIES
}

/// Why the `[fs]` table was refused. The display starts with the key, e.g.
/// `fs.roots[0].path: …`.
#[derive(Debug, thiserror::Error)]
pub enum FsConfigError {
    /// A key is unknown, missing, of the wrong type or has a value out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The dotted key, e.g. `fs.roots[0].mode`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A root cannot be opened as a directory.
    #[error("{key}: cannot open '{}' as a directory: {source}", path.display())]
    Root {
        /// The dotted key, e.g. `fs.roots[0].path`.
        key: String,
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl FsConfig {
    /// Parses the `[fs]` table (as JSON, e.g. converted from TOML).
    ///
    /// # Errors
    /// [`FsConfigError::Invalid`] naming the key of the first problem.
    pub fn from_value(value: serde_json::Value) -> Result<Self, FsConfigError> {
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let key = if path == "." { "fs".to_owned() } else { format!("fs.{path}") };
            FsConfigError::Invalid { key, message: error.into_inner().to_string() }
        })
    }

    /// Checks what serde cannot: at least one root, absolute UTF-8 root paths, non-zero caps.
    ///
    /// # Errors
    /// [`FsConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), FsConfigError> {
        let invalid = |key: String, message: &str| FsConfigError::Invalid { key, message: message.to_owned() };
        if self.roots.is_empty() {
            return Err(invalid("fs.roots".into(), "at least one [[fs.roots]] entry is required"));
        }
        for (index, root) in self.roots.iter().enumerate() {
            let key = format!("fs.roots[{index}].path");
            if !root.path.is_absolute() {
                return Err(invalid(key, "must be an absolute path"));
            }
            if root.path.to_str().is_none() {
                return Err(invalid(key, "must be valid UTF-8"));
            }
            if root.path.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(invalid(key, "must not contain '..'"));
            }
        }
        if self.max_read_bytes == 0 {
            return Err(invalid("fs.max_read_bytes".into(), "must be greater than 0"));
        }
        if self.max_list_entries == 0 {
            return Err(invalid("fs.max_list_entries".into(), "must be greater than 0"));
        }
        Ok(())
    }
}

/// `path` without `.` components or trailing slashes (`..` is refused by validation).
pub(crate) fn clean_absolute(path: &Path) -> PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}
