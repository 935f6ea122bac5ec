//! The `[exec]` table of `rampart.toml`: the programs and interpreters an agent may run,
//! the sandbox layers that must be enforced, and the limits of each run.
//!
//! Two stages, as everywhere in Rampart: [`ExecConfig`] is the serde shape (unknown keys
//! are errors) with [`ExecConfig::validate`] for what serde cannot check (absolute paths,
//! executable regular files, no setuid, no privilege tools); [`crate::ExecToolbox::new`]
//! then checks the machine ([`ExecConfig::check_required`]) and prepares the scratch
//! root. Every error names the key it is about, e.g. `exec.programs.git`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::sandbox::{HIDDEN_DIRECTORIES, Layer, SandboxReport};

/// The default of `exec.timeout_s`, seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// The default of `exec.max_output_bytes`: 1 MiB per stream.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// The default of `exec.scratch_root`.
pub const DEFAULT_SCRATCH_ROOT: &str = "/tmp/rampart-scratch";
/// The default of `exec.scratch_idle_s`: a session's scratch directory unused this long
/// (seconds) is deleted.
pub const DEFAULT_SCRATCH_IDLE_S: u64 = 3600;

/// Program names that are refused in `programs` and `interpreters` whatever their path:
/// tools whose purpose is to change identity. Setuid and setgid files are refused too, and
/// `no_new_privs` would make them powerless anyway.
pub const PRIVILEGE_TOOLS: [&str; 12] =
    ["sudo", "su", "doas", "pkexec", "runuser", "setpriv", "newgrp", "sg", "chroot", "nsenter", "capsh", "sudoedit"];

/// The `[exec]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The allowlist for `run_command`: name → absolute path of the executable.
    #[serde(default)]
    pub programs: BTreeMap<String, PathBuf>,
    /// The interpreters of `run_script`: language name → absolute path, e.g.
    /// `python3 = "/usr/bin/python3"`. The script is passed as a file in the scratch
    /// directory, as the interpreter's first argument.
    #[serde(default)]
    pub interpreters: BTreeMap<String, PathBuf>,
    /// Layers that must be enforced on this machine, or the toolbox refuses to start.
    /// Default: all of them.
    #[serde(default = "default_require")]
    pub require: Vec<Layer>,
    /// Whether programs may use the network (default `false`: no network namespace
    /// interface but loopback, which is down; no IP sockets; no TCP through Landlock).
    #[serde(default)]
    pub network: bool,
    /// Extra environment variables passed to every program. The sandbox itself sets only
    /// `PATH`, `HOME` and `TMPDIR` (the scratch directory) and `LANG` (`C.UTF-8`); the
    /// server's own environment is never passed. `PATH` and `LANG` may be overridden here.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The longest a run may take, seconds (wall clock); a call may ask for less.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// The most bytes kept of each of stdout and stderr; the rest is counted and dropped,
    /// and the kept part ends with `…[truncated N bytes]`.
    #[serde(default = "default_max_output_bytes")]
    pub max_output_bytes: usize,
    /// Resource limits of each run (rlimits).
    #[serde(default)]
    pub limits: ResourceLimits,
    /// Where per-session scratch directories are made. Must be dedicated to Rampart.
    #[serde(default = "default_scratch_root")]
    pub scratch_root: PathBuf,
    /// Seconds after which an unused session's scratch directory is deleted.
    #[serde(default = "default_scratch_idle_s")]
    pub scratch_idle_s: u64,
    /// Directories (or files) programs may read and execute besides the system ones
    /// (`/usr`, `/lib*`, `/bin`, `/sbin`, a few files of `/etc`), e.g. a toolchain
    /// under `/opt`.
    #[serde(default)]
    pub read_only_paths: Vec<PathBuf>,
}

/// `[exec.limits]`: rlimits applied to every process of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// CPU time per process, seconds (`RLIMIT_CPU`; SIGXCPU, then SIGKILL a second later).
    #[serde(default = "default_cpu_s")]
    pub cpu_s: u64,
    /// Address space per process, MiB (`RLIMIT_AS`).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Largest file a process may write, MiB (`RLIMIT_FSIZE`; SIGXFSZ beyond).
    #[serde(default = "default_file_size_mb")]
    pub file_size_mb: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    #[serde(default = "default_open_files")]
    pub open_files: u64,
    /// Processes of the run's user in its user namespace (`RLIMIT_NPROC`).
    #[serde(default = "default_processes")]
    pub processes: u64,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            cpu_s: default_cpu_s(),
            memory_mb: default_memory_mb(),
            file_size_mb: default_file_size_mb(),
            open_files: default_open_files(),
            processes: default_processes(),
        }
    }
}

fn default_require() -> Vec<Layer> {
    Layer::ALL.to_vec()
}
fn default_timeout_s() -> u64 {
    DEFAULT_TIMEOUT_S
}
fn default_max_output_bytes() -> usize {
    DEFAULT_MAX_OUTPUT_BYTES
}
fn default_scratch_root() -> PathBuf {
    PathBuf::from(DEFAULT_SCRATCH_ROOT)
}
fn default_scratch_idle_s() -> u64 {
    DEFAULT_SCRATCH_IDLE_S
}
fn default_cpu_s() -> u64 {
    10
}
fn default_memory_mb() -> u64 {
    512
}
fn default_file_size_mb() -> u64 {
    64
}
fn default_open_files() -> u64 {
    256
}
fn default_processes() -> u64 {
    64
}

/// Why the `[exec]` table was refused. The display starts with the key, e.g.
/// `exec.programs.git: …`.
#[derive(Debug, thiserror::Error)]
pub enum ExecConfigError {
    /// A key is unknown, missing, of the wrong type or has a value out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The dotted key, e.g. `exec.limits.cpu_s`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// Layers listed in `exec.require` are not enforced on this machine.
    #[error(
        "exec.require: the sandbox layer(s) {} are not available on this machine ({detail}); \
         fix the machine or remove them from exec.require to run with fewer layers",
        layers.iter().map(Layer::as_str).collect::<Vec<_>>().join(", ")
    )]
    LayerUnavailable {
        /// The missing layers.
        layers: Vec<Layer>,
        /// Why each is missing.
        detail: String,
    },
    /// The scratch root cannot be made or secured.
    #[error("exec.scratch_root: cannot prepare '{}': {source}", path.display())]
    Scratch {
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ExecConfigError {
    ExecConfigError::Invalid { key: key.into(), message: message.into() }
}

impl ExecConfig {
    /// Parses the `[exec]` table (as JSON, e.g. converted from TOML). Pure: touches
    /// nothing on disk.
    ///
    /// # Errors
    /// [`ExecConfigError::Invalid`] naming the key of the first problem.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ExecConfigError> {
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let key = if path == "." { "exec".to_owned() } else { format!("exec.{path}") };
            invalid(key, error.into_inner().to_string())
        })
    }

    /// Checks what serde cannot, looking at the files named: absolute paths to executable
    /// regular files without setuid/setgid bits, no privilege tools, valid names, non-zero
    /// limits, a dedicated scratch root.
    ///
    /// # Errors
    /// [`ExecConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ExecConfigError> {
        for (table, entries) in [("programs", &self.programs), ("interpreters", &self.interpreters)] {
            for (name, path) in entries {
                check_executable(&format!("exec.{table}.{name}"), name, path)?;
            }
        }
        for (name, value) in &self.env {
            let key = format!("exec.env.{name}");
            if !is_env_name(name) {
                return Err(invalid(key, "not a valid variable name (letters, digits and '_', not first a digit)"));
            }
            if matches!(name.as_str(), "HOME" | "TMPDIR") {
                return Err(invalid(key, "is set by the sandbox (the scratch directory) and cannot be configured"));
            }
            if value.contains('\0') {
                return Err(invalid(key, "must not contain a NUL byte"));
            }
        }
        let positive = [
            ("exec.timeout_s", self.timeout_s),
            ("exec.max_output_bytes", self.max_output_bytes as u64),
            ("exec.scratch_idle_s", self.scratch_idle_s),
            ("exec.limits.cpu_s", self.limits.cpu_s),
            ("exec.limits.memory_mb", self.limits.memory_mb),
            ("exec.limits.file_size_mb", self.limits.file_size_mb),
            ("exec.limits.open_files", self.limits.open_files),
            ("exec.limits.processes", self.limits.processes),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(*key, "must be greater than 0"));
        }
        check_absolute("exec.scratch_root", &self.scratch_root)?;
        if SHARED_DIRECTORIES.iter().any(|shared| self.scratch_root == Path::new(shared)) {
            return Err(invalid("exec.scratch_root", "must be a dedicated directory, e.g. /tmp/rampart-scratch"));
        }
        for (index, path) in self.read_only_paths.iter().enumerate() {
            let key = format!("exec.read_only_paths[{index}]");
            check_absolute(&key, path)?;
            check_visible(&key, &std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))?;
        }
        Ok(())
    }

    /// Refuses when a layer of `require` is not available according to `report`.
    ///
    /// # Errors
    /// [`ExecConfigError::LayerUnavailable`] listing every missing layer and why.
    pub fn check_required(&self, report: &SandboxReport) -> Result<(), ExecConfigError> {
        let layers = report.missing(&self.require);
        if layers.is_empty() {
            return Ok(());
        }
        let detail = layers
            .iter()
            .map(|layer| format!("{layer}: {}", report.detail(*layer).unwrap_or("unavailable")))
            .collect::<Vec<_>>()
            .join("; ");
        Err(ExecConfigError::LayerUnavailable { layers, detail })
    }
}

/// Directories that are never a scratch root: deleting sessions there would be a disaster.
const SHARED_DIRECTORIES: [&str; 16] = [
    "/", "/tmp", "/var/tmp", "/home", "/root", "/etc", "/usr", "/var", "/dev", "/proc", "/sys", "/bin", "/lib", "/opt",
    "/srv", "/run",
];

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Program and language names: what an agent types, so no paths or spaces.
fn is_program_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

/// Refuses paths the runs never see: the sandbox covers these directories with an empty
/// tmpfs (see `sandbox::HIDDEN_DIRECTORIES`).
fn check_visible(key: &str, path: &Path) -> Result<(), ExecConfigError> {
    let hidden = HIDDEN_DIRECTORIES.iter().map(Path::new).find(|hidden| {
        path.starts_with(hidden) || std::fs::canonicalize(hidden).is_ok_and(|real| path.starts_with(real))
    });
    match hidden {
        Some(hidden) => Err(invalid(
            key,
            format!(
                "'{}' is under {}, which sandboxed programs do not see (the sandbox hides /run, /tmp, /var/tmp \
                 and /dev/shm); install it elsewhere",
                path.display(),
                hidden.display()
            ),
        )),
        None => Ok(()),
    }
}

fn check_absolute(key: &str, path: &Path) -> Result<(), ExecConfigError> {
    if !path.is_absolute() {
        return Err(invalid(key, "must be an absolute path"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(invalid(key, "must not contain '..'"));
    }
    if path.to_str().is_none() {
        return Err(invalid(key, "must be valid UTF-8"));
    }
    Ok(())
}

/// One `programs`/`interpreters` entry: a name an agent may use and an executable that
/// cannot raise privileges.
fn check_executable(key: &str, name: &str, path: &Path) -> Result<(), ExecConfigError> {
    if !is_program_name(name) {
        return Err(invalid(key, "not a valid program name (letters, digits, '.', '_', '+', '-')"));
    }
    check_absolute(key, path)?;
    let real = std::fs::canonicalize(path)
        .map_err(|error| invalid(key, format!("'{}' does not exist or cannot be resolved: {error}", path.display())))?;
    for candidate in [Some(name), path.file_name().and_then(|n| n.to_str()), real.file_name().and_then(|n| n.to_str())]
        .into_iter()
        .flatten()
    {
        if PRIVILEGE_TOOLS.contains(&candidate) {
            return Err(invalid(
                key,
                format!("'{candidate}' changes identity; Rampart never runs anything as root or through sudo"),
            ));
        }
    }
    let metadata =
        std::fs::metadata(&real).map_err(|error| invalid(key, format!("cannot read '{}': {error}", real.display())))?;
    if !metadata.is_file() {
        return Err(invalid(key, format!("'{}' is not a regular file", real.display())));
    }
    let mode = metadata.permissions().mode();
    if mode & 0o4000 != 0 {
        return Err(invalid(key, format!("'{}' is setuid; privileged programs are refused", real.display())));
    }
    if mode & 0o2000 != 0 {
        return Err(invalid(key, format!("'{}' is setgid; privileged programs are refused", real.display())));
    }
    if mode & 0o111 == 0 {
        return Err(invalid(key, format!("'{}' is not executable", real.display())));
    }
    check_visible(key, &real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["git", "python3", "g++", "clang-18", "x.y"] {
            assert!(is_program_name(good), "{good}");
        }
        for bad in ["", "/bin/sh", "a b", "-rf", ".hidden", "sh;"] {
            assert!(!is_program_name(bad), "{bad}");
        }
        assert!(is_env_name("LANG") && is_env_name("_X1") && !is_env_name("1X") && !is_env_name("A-B"));
    }
}
