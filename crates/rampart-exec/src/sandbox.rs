//! The sandbox as a whole: its layers, what this machine enforces of them
//! ([`SandboxReport`], for `rampart sandbox check`), and [`Sandbox`], which turns one run
//! into a `Command` whose child confines itself before exec (see `spawn` for the child's
//! side, `confine` for Landlock, `filter` for seccomp).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ExecConfig, ResourceLimits};
use crate::confine::{self, PathRules};
use crate::filter;
use crate::spawn::{ChildSetup, IdMaps, MAX_REBINDS, MountPlan, Rebind, Rlimit};

/// The user and group programs run as when the server runs as root: `nobody`/`nogroup`.
pub const UNPRIVILEGED_ID: u32 = 65534;

/// Directories covered by an empty tmpfs in a run's mount namespace: where the host's
/// UNIX sockets live (session and system buses, ssh and gpg agents, X11, databases),
/// which neither the network namespace nor Landlock before ABI 9 keeps a program from
/// connecting to. The scratch directory is bound back if it is under one of them.
pub(crate) const HIDDEN_DIRECTORIES: [&str; 5] = ["/run", "/var/run", "/tmp", "/var/tmp", "/dev/shm"];

/// Seconds the reaper waits past a run's timeout before killing it on its own, in case
/// the server is gone.
const BACKSTOP_GRACE_S: u64 = 10;

/// A layer of the sandbox that `exec.require` can demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Landlock: filesystem (and, from ABI 4, TCP) access control.
    Landlock,
    /// A seccomp BPF filter on system calls.
    Seccomp,
    /// New user, PID, network, IPC and mount namespaces.
    Namespaces,
}

impl Layer {
    /// Every layer.
    pub const ALL: [Self; 3] = [Self::Landlock, Self::Seccomp, Self::Namespaces];

    /// The name used in `exec.require`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Landlock => "landlock",
            Self::Seccomp => "seccomp",
            Self::Namespaces => "namespaces",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What this machine enforces, found by trying each layer in a child process exactly as a
/// run would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxReport {
    /// The kernel's Landlock ABI version, `None` without Landlock.
    pub landlock_abi: Option<i32>,
    /// Landlock can refuse TCP bind/connect (ABI 4, Linux 6.7).
    pub landlock_network: bool,
    /// Landlock scopes signals and abstract UNIX sockets to the sandbox (ABI 6, Linux 6.12).
    pub landlock_scopes: bool,
    /// A seccomp filter can be installed.
    pub seccomp: bool,
    /// New user, PID, network, IPC and mount namespaces can be made for the sandbox's
    /// user, with the tmpfs mounts that hide the host's sockets.
    pub namespaces: bool,
    /// The uid programs run as.
    pub uid: u32,
    /// The gid programs run as.
    pub gid: u32,
    /// Why each unavailable layer is unavailable.
    pub problems: BTreeMap<Layer, String>,
}

impl SandboxReport {
    /// Probes this machine.
    pub(crate) fn probe() -> Self {
        let (uid, gid) = sandbox_ids();
        let mut problems = BTreeMap::new();
        let landlock_abi = confine::kernel_abi();
        let mut landlock = landlock_abi.is_some();
        if landlock {
            if let Err(problem) = probe_layer(Layer::Landlock) {
                problems.insert(Layer::Landlock, problem);
                landlock = false;
            }
        } else {
            problems.insert(Layer::Landlock, "the kernel has no Landlock (Linux 5.13+, enabled in `lsm=`)".into());
        }
        let seccomp = probe_layer(Layer::Seccomp).map_err(|problem| problems.insert(Layer::Seccomp, problem)).is_ok();
        let namespaces =
            probe_layer(Layer::Namespaces).map_err(|problem| problems.insert(Layer::Namespaces, problem)).is_ok();
        let abi = if landlock { landlock_abi } else { None };
        Self {
            landlock_abi: abi,
            landlock_network: abi.is_some_and(|abi| abi >= 4),
            landlock_scopes: abi.is_some_and(|abi| abi >= 6),
            seccomp,
            namespaces,
            uid,
            gid,
            problems,
        }
    }

    /// Whether `layer` is enforced here.
    pub fn is_available(&self, layer: Layer) -> bool {
        match layer {
            Layer::Landlock => self.landlock_abi.is_some(),
            Layer::Seccomp => self.seccomp,
            Layer::Namespaces => self.namespaces,
        }
    }

    /// The layers of `wanted` that are not enforced here.
    pub fn missing(&self, wanted: &[Layer]) -> Vec<Layer> {
        let mut missing: Vec<Layer> = wanted.iter().copied().filter(|layer| !self.is_available(*layer)).collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// Why `layer` is unavailable, when it is.
    pub fn detail(&self, layer: Layer) -> Option<&str> {
        if self.is_available(layer) {
            return None;
        }
        Some(self.problems.get(&layer).map_or("unavailable", String::as_str))
    }
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        for layer in Layer::ALL {
            let state = match (layer, self.detail(layer)) {
                (_, Some(problem)) => format!("UNAVAILABLE: {problem}"),
                (Layer::Landlock, None) => format!(
                    "enforced (ABI {}; TCP rules: {}; signal and abstract-socket scopes: {})",
                    self.landlock_abi.unwrap_or_default(),
                    yes(self.landlock_network),
                    yes(self.landlock_scopes)
                ),
                (Layer::Seccomp, None) => "enforced (deny list, see the threat model)".to_owned(),
                (Layer::Namespaces, None) => {
                    "enforced (user, pid, network, ipc, mount: /run, /tmp, /var/tmp, /dev/shm hidden)".to_owned()
                }
            };
            writeln!(f, "{:<12}{state}", layer.as_str())?;
        }
        let root = if nix::unistd::geteuid().is_root() { " (the server runs as root)" } else { "" };
        writeln!(f, "{:<12}uid {}, gid {}{root}", "runs as", self.uid, self.gid)?;
        write!(f, "{:<12}setsid + process group, rlimits, scrubbed environment, wall-clock timeout", "always")
    }
}

/// The uid and gid programs run as: `nobody` when the server is root, else the server's.
fn sandbox_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (UNPRIVILEGED_ID, UNPRIVILEGED_ID)
    } else {
        (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }
}

/// Runs one layer's setup in a child that then execs a program that does not exist:
/// "not found" means every step before exec succeeded.
fn probe_layer(layer: Layer) -> Result<(), String> {
    let mut setup = ChildSetup::default();
    match layer {
        Layer::Landlock => {
            let scratch = std::env::temp_dir();
            let ruleset = PathRules::new([], false).ruleset(&scratch).map_err(|error| error.to_string())?;
            setup.landlock = Some(ruleset.ok_or("the kernel refused to create a Landlock ruleset")?);
        }
        Layer::Seccomp => setup.seccomp = filter::programs(false).map_err(|error| error.to_string())?,
        Layer::Namespaces => {
            setup.namespaces = Some(namespaces(false));
            // A scratch-like directory under a hidden one, as a run would bind back.
            let scratch = ProbeDirectory::new().map_err(|e| format!("making a probe directory: {e}"))?;
            let plan = mount_plan(&hidden_directories(), &scratch.0, &scratch.0, false);
            setup.mounts = plan.map_err(|e| e.to_string())?;
            return spawn_probe(layer, setup);
        }
    }
    spawn_probe(layer, setup)
}

/// A directory like a scratch directory (under the temporary directory, reachable by the
/// sandbox's user), removed when dropped.
struct ProbeDirectory(PathBuf);

impl ProbeDirectory {
    fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("rampart-probe-{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new().mode(0o755).create(&path)?;
        Ok(Self(path))
    }
}

impl Drop for ProbeDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Spawns the probe with `setup`: "not found" means every step before exec succeeded.
fn spawn_probe(layer: Layer, setup: ChildSetup) -> Result<(), String> {
    let mut command = std::process::Command::new("/nonexistent/rampart-sandbox-probe");
    apply_identity(&mut command);
    crate::spawn::install(&mut command, setup);
    match command.spawn() {
        Ok(mut child) => {
            let _ = child.kill();
            let _ = child.wait();
            Err("the probe unexpectedly ran".into())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(match layer {
            Layer::Namespaces => format!("unshare(user, pid, net, ipc, mount), uid/gid maps and tmpfs mounts: {error}"),
            Layer::Landlock => format!("landlock_restrict_self: {error}"),
            Layer::Seccomp => format!("installing the filter: {error}"),
        }),
    }
}

/// `unshare` flags and id maps for the sandbox's user.
fn namespaces(network: bool) -> (libc::c_int, IdMaps) {
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWNS;
    if !network {
        flags |= libc::CLONE_NEWNET;
    }
    let (uid, gid) = sandbox_ids();
    let maps =
        IdMaps { uid_map: format!("{uid} {uid} 1\n").into_bytes(), gid_map: format!("{gid} {gid} 1\n").into_bytes() };
    (flags, maps)
}

/// Drops to [`UNPRIVILEGED_ID`] when the server is root (std does it in the child, with
/// `setgroups([])`, before the sandbox's own hook).
fn apply_identity(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    if nix::unistd::geteuid().is_root() {
        command.uid(UNPRIVILEGED_ID).gid(UNPRIVILEGED_ID);
    }
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    /// Building the Landlock ruleset failed.
    #[error("preparing the Landlock ruleset: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// Landlock was available at start and is not now.
    #[error("Landlock is no longer available; refusing to run unconfined")]
    LandlockGone,
    /// Preparing the mount namespace failed (a path with a NUL byte, an unopenable
    /// scratch directory).
    #[error("preparing the mount namespace: {0}")]
    Mounts(std::io::Error),
    /// Building the seccomp filter failed.
    #[error(transparent)]
    Filter(#[from] filter::FilterError),
}

/// The sandbox of one toolbox: the layers in force and everything about a run that does
/// not change between runs.
#[derive(Debug)]
pub(crate) struct Sandbox {
    pub(crate) report: SandboxReport,
    paths: Option<PathRules>,
    seccomp: Option<Vec<seccompiler::BpfProgram>>,
    namespaces: bool,
    /// [`HIDDEN_DIRECTORIES`] that exist here, resolved.
    hidden: Vec<PathBuf>,
    network: bool,
    limits: ResourceLimits,
    env: BTreeMap<String, String>,
}

/// One run to start.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: Vec<OsString>,
    pub(crate) scratch: &'a Path,
    pub(crate) cwd: PathBuf,
    pub(crate) timeout_s: u64,
    pub(crate) stdin: bool,
}

impl Sandbox {
    /// The sandbox for `config`, with every available layer in force (whether required or
    /// not: `require` only decides whether a missing one is fatal).
    pub(crate) fn new(config: &ExecConfig, report: SandboxReport) -> Result<Self, SandboxError> {
        if !report.problems.is_empty() {
            tracing::warn!(%report, "exec sandbox: some layers are unavailable on this machine");
        }
        let extra = config
            .programs
            .values()
            .chain(config.interpreters.values())
            .filter_map(|path| std::fs::canonicalize(path).ok())
            .chain(config.read_only_paths.iter().cloned());
        let paths = report.is_available(Layer::Landlock).then(|| PathRules::new(extra, config.network));
        let seccomp = if report.seccomp { Some(filter::programs(config.network)?) } else { None };
        Ok(Self {
            namespaces: report.namespaces,
            hidden: hidden_directories(),
            report,
            paths,
            seccomp,
            network: config.network,
            limits: config.limits,
            env: config.env.clone(),
        })
    }

    /// The command for `launch`: scrubbed environment, the sandbox's identity, and the
    /// child's hook with every layer.
    pub(crate) fn command(&self, launch: &Launch<'_>) -> Result<tokio::process::Command, SandboxError> {
        let mut setup = ChildSetup { rlimits: rlimits(&self.limits), ..ChildSetup::default() };
        if let Some(paths) = &self.paths {
            setup.landlock = Some(paths.ruleset(launch.scratch)?.ok_or(SandboxError::LandlockGone)?);
        }
        if let Some(programs) = &self.seccomp {
            setup.seccomp = programs.clone();
        }
        if self.namespaces {
            setup.namespaces = Some(namespaces(self.network));
            setup.mounts = mount_plan(&self.hidden, launch.scratch, &launch.cwd, self.network)?;
        }
        setup.backstop_s = libc::c_uint::try_from(launch.timeout_s + BACKSTOP_GRACE_S).unwrap_or(libc::c_uint::MAX);
        let mut command = std::process::Command::new(launch.program);
        command.args(&launch.args).current_dir(&launch.cwd).env_clear().envs(self.environment(launch.scratch));
        command.stdin(if launch.stdin { std::process::Stdio::piped() } else { std::process::Stdio::null() });
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        apply_identity(&mut command);
        crate::spawn::install(&mut command, setup);
        Ok(tokio::process::Command::from(command))
    }

    /// `PATH`, `HOME`, `TMPDIR`, `LANG`, then the configured variables.
    fn environment(&self, scratch: &Path) -> BTreeMap<OsString, OsString> {
        let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
        env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        env.insert("LANG".into(), "C.UTF-8".into());
        env.extend(self.env.iter().map(|(k, v)| (k.into(), v.into())));
        env.insert("HOME".into(), scratch.into());
        env.insert("TMPDIR".into(), scratch.into());
        env
    }
}

/// The rlimits of a run. The CPU hard limit is a second above the soft one, so SIGXCPU
/// comes first and SIGKILL after; no core files.
fn rlimits(limits: &ResourceLimits) -> Vec<Rlimit> {
    const MIB: u64 = 1024 * 1024;
    let limit = |resource, soft: u64, hard: u64| Rlimit { resource, soft, hard };
    let mut all = vec![
        limit(libc::RLIMIT_CPU, limits.cpu_s, limits.cpu_s.saturating_add(1)),
        limit(libc::RLIMIT_AS, limits.memory_mb.saturating_mul(MIB), limits.memory_mb.saturating_mul(MIB)),
        limit(libc::RLIMIT_FSIZE, limits.file_size_mb.saturating_mul(MIB), limits.file_size_mb.saturating_mul(MIB)),
        limit(libc::RLIMIT_NOFILE, limits.open_files, limits.open_files),
        limit(libc::RLIMIT_NPROC, limits.processes, limits.processes),
        limit(libc::RLIMIT_CORE, 0, 0),
    ];
    // Never above the server's own hard limits, which an unprivileged child cannot raise.
    for rlimit in &mut all {
        if let Ok((_, hard)) = nix::sys::resource::getrlimit(resource_of(rlimit.resource)) {
            rlimit.hard = rlimit.hard.min(hard);
            rlimit.soft = rlimit.soft.min(rlimit.hard);
        }
    }
    all
}

fn resource_of(resource: libc::__rlimit_resource_t) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource;
    match resource {
        libc::RLIMIT_CPU => Resource::RLIMIT_CPU,
        libc::RLIMIT_AS => Resource::RLIMIT_AS,
        libc::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        libc::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        libc::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        _ => Resource::RLIMIT_CORE,
    }
}

/// [`HIDDEN_DIRECTORIES`] that exist as directories here, resolved and without
/// duplicates (`/var/run` is usually a link to `/run`).
fn hidden_directories() -> Vec<PathBuf> {
    let mut hidden: Vec<PathBuf> = HIDDEN_DIRECTORIES
        .iter()
        .filter_map(|path| std::fs::canonicalize(path).ok())
        .filter(|path| path.is_dir())
        .collect();
    hidden.sort();
    hidden.dedup();
    hidden
}

/// The mounts of a run: `hidden` covered, and bound back inside them the scratch
/// directory and, with network, the real `/etc/resolv.conf` (often a link into `/run`).
fn mount_plan(hidden: &[PathBuf], scratch: &Path, cwd: &Path, network: bool) -> Result<MountPlan, SandboxError> {
    let mut rebind = Vec::with_capacity(MAX_REBINDS);
    let scratch = std::fs::canonicalize(scratch).map_err(SandboxError::Mounts)?;
    if let Some(bind) = rebind_under(hidden, &scratch, false)? {
        rebind.push(bind);
    }
    if network && let Some(resolv) = std::fs::canonicalize("/etc/resolv.conf").ok().filter(|p| p.is_file()) {
        rebind.extend(rebind_under(hidden, &resolv, true)?);
    }
    Ok(MountPlan { hide: hidden.iter().map(|p| c_path(p)).collect::<Result<_, _>>()?, rebind, cwd: Some(c_path(cwd)?) })
}

/// How to bind `path` back if it lies under one of `hidden`.
fn rebind_under(hidden: &[PathBuf], path: &Path, file: bool) -> Result<Option<Rebind>, SandboxError> {
    // The innermost hidden directory holding `path` (it covers the outer ones).
    let Some(base) = hidden.iter().filter(|dir| path.starts_with(dir)).max_by_key(|dir| dir.as_os_str().len()) else {
        return Ok(None);
    };
    let components: Vec<_> = path.strip_prefix(base).unwrap_or(path).components().collect();
    if components.is_empty() {
        // A hidden directory itself is never bound back whole.
        return Ok(None);
    }
    let parents = if file { components.len() - 1 } else { components.len() };
    let mut current = base.clone();
    let mut directories = Vec::with_capacity(parents);
    for component in &components[..parents] {
        current.push(component);
        directories.push(c_path(&current)?);
    }
    Ok(Some(Rebind { path: c_path(path)?, directories, file }))
}

fn c_path(path: &Path) -> Result<std::ffi::CString, SandboxError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Mounts(std::io::Error::other(format!("{} contains a NUL byte", path.display()))))
}
